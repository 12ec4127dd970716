# runner.py — the trusted harness that runs inside the sandbox, before and around the script.
#
# It is compiled into the C library. Cold mode starts it as `python3 -I -c <this file>
# <result_max>`; warm mode (pyexec-zygote) imports it as module pyexec_runner before any
# request exists and calls _pyexec_run([..., result_max], warm=True) in each sandbox's fork.
# Descriptors on entry: 0 = /dev/null, 1 = stdout pipe, 2 = stderr pipe, 3 = the result
# channel (a pipe only the worker reads), 4 = the job (a pipe the worker writes and closes):
# a line of limits to lower this process's own to, a line of options (input, files,
# return_files, figures: JSON the worker has validated), then the script.
#
# It writes exactly one frame to fd 3 and then leaves with os._exit(0), so nothing the script
# registered (atexit, threads, finalizers) runs after the frame is written:
#   b"R" + b"<cpu_ms> <peak_rss_kb>\n" + <JSON text of main()'s return value>
#   b"R" + b"<cpu_ms> <peak_rss_kb> <n>\n" + <n bytes: JSON object of extras> + <the value>
#         (extras: "files", "files_truncated", "figures", "figures_truncated", when asked for)
#   b"E" + b"<cpu_ms> <peak_rss_kb>\n" + <JSON object {"kind", "message", "traceback"}>
# What the script prints goes to fd 1 and can never be taken for the result. The script runs
# in this same process, so it *can* write to fd 3 itself; the worker therefore trusts nothing
# it reads there: it accepts one frame, validates its JSON strictly, and decides timeouts,
# signals and exit codes from the kernel, not from the frame. A script that forges a frame
# can only produce a value it could have returned from main() anyway.
#
# Only the process the run started in writes a frame: copies made by os.fork() that come back
# into the runner (main() returned or raised in the child) leave without one (_leave_if_forked).
# Error messages and tracebacks are cut to ERROR_TEXT_MAX bytes each, marked "… [truncated N
# bytes]", so that an error frame's size does not depend on the script.


import json
import math
import os
import sys
import time
import types

RESULT_FD = 3
SCRIPT_FD = 4
USER_FILE = "<script>"
# An error message and a traceback are each cut to this many bytes of UTF-8, so that an error
# frame fits the worker's room for one whatever the result limit (SB_ERROR_FRAME_MAX in
# sandbox/verdict.h allows for every byte escaped to six).
ERROR_TEXT_MAX = 64 << 10

# The process that runs the script: the only one that may write a frame. A script that calls
# os.fork() without os._exit() in the child has copies of it, runner included, that run on.
_owner_pid = None


# When this run started (monotonic): a batch ends before the worker's deadline.
_started = 0.0


def _pyexec_run(argv, warm=False):
    global _owner_pid, _started
    _owner_pid = os.getpid()
    result_max = int(argv[1]) if len(argv) > 1 else 8 << 20

    # The script's streams: the ones the zygote made for it (see _pyexec_warm_up), else new.
    streams = _warm_streams if warm and _warm_streams else _script_streams()
    sys.stdout = sys.__stdout__ = streams[0]
    sys.stderr = sys.__stderr__ = streams[1]
    if warm:
        if not _numpy_in_place:  # else done before any Python ran (see _pyexec_fork_hooks)
            _reseed_numpy()
        for hook in _deferred_hooks:  # for the script's own forks (see _pyexec_fork_hooks)
            os.register_at_fork(after_in_child=hook)

    lower, options, source = _read_job()
    if "inputs" in options:
        _started = time.monotonic()  # the job is here: the worker's clock runs (a sandbox may wait)
    if lower:
        _lower_limits(_limits)
    if "files" in options:
        _write_files(options["files"])
    code = _compile_script(source)
    module = types.ModuleType("script")
    module.__file__ = USER_FILE
    sys.modules["script"] = module
    sys.argv = [USER_FILE]

    try:
        exec(code, module.__dict__)
    except SystemExit as exc:
        _exit_like_python(exc)
    except BaseException as exc:
        _report_exception(exc)

    main = module.__dict__.get("main")
    if not callable(main):
        _send_error("no_main", "Script must contain a main() function")
        _finish()
    if "inputs" in options:
        _run_batch(main, options["inputs"], _limits, result_max)

    try:
        value = main(options["input"]) if "input" in options else main()
    except SystemExit as exc:
        _exit_like_python(exc)
    except BaseException as exc:
        _report_exception(exc)

    data = _serialize(value)
    if len(data) > result_max:
        _send_error("result_too_large", _too_large_text(result_max))
        _finish()
    extras = _extras(options, _limits["files_max_bytes"]) if options else b""
    _flush_stdio()
    _send(b"R", data, extras)
    _finish()


# ---- reporting ----------------------------------------------------------------------------

def _usage():
    """CPU ms and peak RSS KiB of this process and its reaped children, for the usage
    headers of a response sent before the kernel's own figures are in."""
    import resource

    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime
    return b"%d %d\n" % (int(cpu * 1000), max(me.ru_maxrss, kids.ru_maxrss))


def _leave_if_forked(status):
    """A fork of the script's process that reached the runner's end leaves as a forked child
    would, without a frame (the original reports; a second frame would spoil its answer).
    What it printed counts. Status 0 after a result, 1 after an error, for its waitpid()."""
    if os.getpid() != _owner_pid:
        _flush_stdio()
        os._exit(status)


def _send(tag, payload, extras=b""):
    _leave_if_forked(0 if tag == b"R" else 1)
    usage = _usage()
    if extras:
        usage = usage[:-1] + b" %d\n" % len(extras)
    data = tag + usage + extras + payload
    view = memoryview(data)
    while view:
        n = os.write(RESULT_FD, view)
        view = view[n:]


def _clip(text, limit=ERROR_TEXT_MAX):
    """text, or its first limit bytes of UTF-8 (whole characters) and a marker."""
    if len(text) <= limit // 4:  # no character takes more than 4 bytes
        return text
    data = text.encode("utf-8", "pyexec_replace")
    if len(data) <= limit:
        return text
    head = data[:limit].decode("utf-8", "ignore")  # drops a character cut in two
    return f"{head}\u2026 [truncated {len(data) - len(head.encode('utf-8'))} bytes]"


def _send_error(kind, message, tb=""):
    frame = {"kind": kind, "message": _clip(message), "traceback": _clip(tb)}
    _send(b"E", json.dumps(frame, ensure_ascii=False).encode("utf-8", "pyexec_replace"))


def _send_memory_limit():
    # The text is the worker's, from its table of error kinds (sandbox/errors.c).
    _send_error("memory_limit", "")


def _flush_stdio():
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except BaseException:
            pass


def _finish(code=0):
    _flush_stdio()
    # Closing the pipes first lets the worker answer while this process is still being
    # torn down (freeing a forked interpreter's memory takes a while).
    os.closerange(1, 4)
    os._exit(code)


def _user_traceback(exc):
    """The traceback from the first frame of the script on: the runner's frames dropped."""
    import traceback

    tb = exc.__traceback__
    while tb is not None and tb.tb_frame.f_code.co_filename != USER_FILE:
        tb = tb.tb_next
    lines = traceback.format_exception(type(exc), exc, tb, chain=False)
    return "".join(lines)


def _describe(exc):
    text = ""
    try:
        text = str(exc)
    except BaseException:
        pass
    name = type(exc).__name__
    return f"{name}: {text}" if text else name


def _near_memory_limit():
    """Whether this process's address space reached its limit: then an allocation that
    failed in C code may surface as any exception (SystemError, RecursionError, ...). The
    limit is the worker's rule (sb_memory_ceiling), sent with the job."""
    try:
        with open("/proc/self/status", "rb") as f:
            for line in f:
                if line.startswith(b"VmPeak:"):
                    return int(line.split()[1]) * 1024 >= _limits["memory_ceiling"]
    except BaseException:
        pass
    return False


def _report_exception(exc):
    _leave_if_forked(1)  # before the work of a traceback, in every copy of a fork bomb
    if isinstance(exc, MemoryError) or _near_memory_limit():
        _send_memory_limit()
    else:
        try:
            tb = _user_traceback(exc)
        except BaseException:
            tb = ""
        _send_error("exception", _describe(exc), tb)
    _finish()


def _exit_like_python(exc):
    """sys.exit() ends the run as it would end a process: the worker reports "exited"."""
    status = exc.code
    if status is None:
        status = 0
    elif not isinstance(status, int):
        print(status, file=sys.stderr)
        status = 1
    _flush_stdio()
    os._exit(status & 0xFF)


# ---- before the script --------------------------------------------------------------------

def _reseed_numpy():
    """A fork inherits its parent's random state: reseed what the zygote may have seeded.
    random has reseeded itself already (its os.register_at_fork hook, run by
    PyOS_AfterFork_Child in the zygote's fork); numpy's global RNG does not."""
    np = sys.modules.get("numpy")
    if np is not None:
        # A key of 624 words from the kernel, as np.random.seed() would derive from 128
        # bits, at a third of its cost in a fork (where seed() touches ~150 pages).
        key = np.frombuffer(os.urandom(624 * 4), dtype=np.uint32)
        np.random.set_state(("MT19937", key, 624))


class _JobLimits:
    """The job's first line, parsed only when something needs it: json.loads in a fresh fork
    costs ~0.15 ms of page faults, a tenth of a hello world's whole run."""

    raw = b"{}"
    parsed = None

    def __getitem__(self, key):
        if self.parsed is None:
            self.parsed = json.loads(self.raw)
        return self.parsed[key]


_limits = _JobLimits()


def _read_job():
    """(whether to lower the rlimits, the options, the script's source), from the worker: its
    first line is "<" + limits when the job has limits of its own, "=" + limits when not."""
    limits, options, source = _read_all_script_fd().split(b"\n", 2)
    _limits.raw = limits[1:]
    return limits[:1] == b"<", {} if options == b"{}" else json.loads(options), source


def _lower_limits(limits):
    """A job's own limits, at most the sandbox's: lowering is allowed, raising is not."""
    import resource

    # As sandbox/child.c sets them: SIGXCPU at the CPU limit, SIGKILL a second later.
    cpu, mem = limits["cpu_time_s"], limits["memory_mb"] << 20
    for which, wanted in ((resource.RLIMIT_CPU, (cpu, cpu + 1)),
                          (resource.RLIMIT_AS, (mem, mem)),
                          (resource.RLIMIT_NPROC, (limits["max_processes"],) * 2),
                          (resource.RLIMIT_NOFILE, (limits["max_open_files"],) * 2)):
        if resource.getrlimit(which) != wanted:
            resource.setrlimit(which, wanted)


def _read_all_script_fd():
    chunks = []
    while True:
        # 64 KiB at a time: most scripts come in one read, without a 1 MiB buffer to shrink.
        chunk = os.read(SCRIPT_FD, 64 << 10)
        if not chunk:
            break
        chunks.append(chunk)
    os.close(SCRIPT_FD)
    return b"".join(chunks)


def _compile_script(source):
    """The script's code object; a script that does not compile is reported here."""
    try:
        text = source.decode("utf-8")
    except UnicodeDecodeError as exc:  # the worker only passes UTF-8; keep the runner total
        _send_error("syntax_error", f"Syntax error in script: {exc}")
        _finish()
    # A byte-order mark opens the file, as `python3 file.py` allows (compile() of a str
    # would see U+FEFF as a stray character). It is not a line: line numbers stay.
    if text.startswith("\ufeff"):
        text = text[1:]

    # Make the script's lines available to tracebacks.
    import linecache

    linecache.cache[USER_FILE] = (len(text), None, text.splitlines(True), USER_FILE)
    try:
        return compile(text, USER_FILE, "exec", dont_inherit=True)
    except SyntaxError as exc:
        line = f" (line {exc.lineno})" if exc.lineno else ""
        _send_error("syntax_error", f"Syntax error in script: {exc.msg}{line}")
    except (ValueError, OverflowError) as exc:  # e.g. "source code string cannot contain null bytes"
        _send_error("syntax_error", f"Syntax error in script: {exc}")
    except MemoryError:
        _send_memory_limit()
    _finish()


# ---- after main() -------------------------------------------------------------------------

def _numpy_default(obj):
    np = sys.modules.get("numpy")
    if np is not None:
        if isinstance(obj, np.generic):
            return obj.item()
        if isinstance(obj, np.ndarray):
            return obj.tolist()
    raise TypeError(f"Object of type {type(obj).__name__} is not JSON serializable")


def _finite(obj):
    """A copy of obj with NaN and the infinities as None (JSON has no word for them)."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_finite(v) for v in obj]
    np = sys.modules.get("numpy")
    if np is not None and isinstance(obj, (np.generic, np.ndarray)):
        return _finite(_numpy_default(obj))
    return obj


def _dumps(obj):
    return json.dumps(obj, ensure_ascii=False, allow_nan=False, default=_numpy_default)


def _serialize(value):
    """main()'s value as UTF-8 JSON text; a value that has none is reported here. (Keys that
    become one name, 1 and "1", are refused by the worker's validator, which sees the text.)"""
    try:
        try:
            text = _dumps(value)
        except ValueError as exc:
            if "Out of range float" not in str(exc):
                raise
            text = _dumps(_finite(value))
        return text.encode("utf-8", "pyexec_replace")
    except MemoryError:
        _send_memory_limit()
    except BaseException as exc:
        _send_error("not_serializable", f"main() function must return JSON serializable data: {_describe(exc)}")
    _finish()


# ---- many inputs: main(v) in a fork per input ---------------------------------------------
#
# The module body ran once, in this process; each main(v) runs in a fork of it, so no call
# sees another's objects (nor its files or IPC objects: see _set_back below). Each call has
# the CPU, memory and process limits (rlimits count per process); the calls share the output
# budget (stdout_max_bytes) and the result budget (result_max_bytes), and the request's wall
# time: calls not reached before it get "timeout". The R frame's value is the list of entries.

BATCH_TEXT_MAX = 4 << 10  # an entry's error text and traceback, each (sandbox/verdict.c)
BATCH_MARGIN_S = 0.3      # ends the batch this long before the worker's deadline
PIPE_READS_AFTER_EXIT = 16  # 64 KiB reads: a pipe's buffer (64 KiB by default) and then some
_texts = {}               # the entries' fixed texts, the worker's own (sent with the limits)
_ended = set()            # calls that gave their entry and were not yet reaped (this one's children)


def _entry_error(kind, message, tb=""):
    entry = {"error": _clip(message, BATCH_TEXT_MAX), "error_kind": kind}
    if tb:
        entry["traceback"] = _clip(tb, BATCH_TEXT_MAX)
    return entry


def _call_value(main, value):
    """main(value)'s entry as JSON text (without stdout), in the fork."""
    me = os.getpid()
    try:
        result = main(value)
    except SystemExit as exc:
        _flush_stdio()
        os._exit((exc.code if isinstance(exc.code, int) else 1) & 0xFF)
    except BaseException as exc:
        if isinstance(exc, MemoryError) or _near_memory_limit():
            entry = _entry_error("memory_limit", _texts["memory_limit"])
        else:
            entry = _entry_error("exception", _describe(exc), _user_traceback(exc))
        return json.dumps(entry, ensure_ascii=False).encode("utf-8", "pyexec_replace")
    if os.getpid() != me:  # a fork main() made came back here: it has no entry to give
        _flush_stdio()
        os._exit(0)
    try:
        try:
            text = _dumps(result)
        except ValueError as exc:
            if "Out of range float" not in str(exc):
                raise
            text = _dumps(_finite(result))
        return b'{"result": ' + text.encode("utf-8", "pyexec_replace") + b"}"
    except MemoryError:
        entry = _entry_error("memory_limit", _texts["memory_limit"])
    except BaseException as exc:
        entry = _entry_error("not_serializable", f"main() function must return JSON serializable data: "
                             f"{_describe(exc)}")
    return json.dumps(entry, ensure_ascii=False).encode("utf-8", "pyexec_replace")


def _call_child(main, value, out_w, res_w, go_r):
    """In the fork: waits for its turn (a byte on go_r), then main(value), and its entry
    (without stdout) on res_w."""
    os.dup2(out_w, 1)
    # Only fd 1 may hold the pipe: the runner knows the call is done when it reads its end,
    # and a copy left open would keep that end until the exit has freed the forked memory
    # (exit_files comes after exit_mm), ~2 ms of a pandas call's.
    if out_w != 1:
        os.close(out_w)
    _reseed_numpy()  # before its turn, off the batch's path
    if os.read(go_r, 1) != b"g":  # the batch ended before this call's turn
        os._exit(0)
    os.close(go_r)
    data = _call_value(main, value)
    _flush_stdio()
    view = memoryview(data)
    while view:
        view = view[os.write(res_w, view):]
    # Closed before the exit, whose freeing of the forked memory comes first: the runner has
    # its entry at once and need not wait for that.
    os.closerange(1, 4)  # stdout, stderr and the result channel, which the worker waits on
    os.close(res_w)
    os._exit(0)


def _drain(pid, out_r, res_r, pidfd, deadline, budget, entry_max):
    """Reads the call's output (up to budget bytes kept) and entry until both end with an
    entry, or the call has exited (its pidfd: a process it started may hold its pipes open,
    and main() may close them and go on), or kills it at the deadline or once its entry
    passes entry_max bytes (it could never be answered, and the call writes it into this
    process's memory: a call writing without end on its entry pipe would have ended the
    batch). (output, truncated, entry bytes, why it was cut: None, "timeout" or
    "too_large")."""
    import selectors

    # Closed on the way out: its epoll descriptor would otherwise live until a collection
    # (the selector refers to itself), and every call forked meanwhile would hold it.
    with selectors.DefaultSelector() as sel:
        bufs = {out_r: bytearray(), res_r: bytearray()}
        for fd in bufs:
            sel.register(fd, selectors.EVENT_READ)
        if pidfd is not None:
            sel.register(pidfd, selectors.EVENT_READ)
        truncated = exited = False
        cut = None

        def take(fd, chunk):  # the entry whole, the output up to the budget; whether cut
            if fd == res_r and len(bufs[res_r]) + len(chunk) > entry_max:
                raise _EntryTooLarge
            if fd == res_r or len(bufs[out_r]) < budget:
                bufs[fd] += chunk
                return False
            return True

        while not exited:
            if out_r not in sel.get_map() and res_r not in sel.get_map() and (bufs[res_r] or pidfd is None):
                break  # its entry is in, and it is exiting (freeing its memory): not waited for
            left = deadline - time.monotonic()
            if left <= 0:
                os.kill(pid, 9)
                cut = "timeout"
                break
            try:
                for key, _ in sel.select(left):
                    if key.fd == pidfd:
                        exited = True  # what it wrote is in the pipes: read below, without waiting
                        break
                    chunk = os.read(key.fd, 1 << 16)
                    if not chunk:
                        sel.unregister(key.fd)
                    else:
                        truncated |= take(key.fd, chunk)
            except _EntryTooLarge:
                os.kill(pid, 9)
                cut = "too_large"
                break
        if exited:  # what is in the pipes, but not what a process left behind goes on writing
            for fd in (fd for fd in bufs if fd in sel.get_map()):
                os.set_blocking(fd, False)
                try:
                    for _ in range(PIPE_READS_AFTER_EXIT):
                        chunk = os.read(fd, 1 << 16)
                        if not chunk:
                            break
                        truncated |= take(fd, chunk)
                except BlockingIOError:
                    pass
                except _EntryTooLarge:
                    cut = "too_large"
    out = bufs[out_r]
    if len(out) > budget:
        out, truncated = out[:budget], True
    return bytes(out), truncated, b"" if cut == "too_large" else bytes(bufs[res_r]), cut


class _EntryTooLarge(Exception):
    """A call's entry outgrew the result limit (_drain)."""


def _too_large_text(limit):
    """What a request whose main() returned too much is told, and a batch call's entry."""
    return f"main() returned more than the {limit}-byte result limit"


def _sandbox_pids():
    """The processes of the request's PID namespace but init and this one (none known without
    a /proc)."""
    try:
        names = os.listdir("/proc")
    except OSError:
        return set()
    return {int(n) for n in names if n.isdigit()} - {1, os.getpid()}


def _last_pid():
    """The PID this namespace gave last (/proc/loadavg's last field), or None."""
    try:
        fd = os.open("/proc/loadavg", os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        return int(os.read(fd, 128).rsplit(None, 1)[1])
    except (OSError, ValueError, IndexError):
        return None
    finally:
        os.close(fd)


def _end_strays(keep, deadline):
    """Kills every process of the sandbox but keep's (the next call, the module body's own),
    this one and init: what the call that just ended left running, however far it went
    (setsid, double forks; orphans are init's, not ours). A process killed cannot fork, and a
    fork that won the race is visible by the next look, so looking until nothing new shows
    up is enough. Then waits (until the deadline at most) for init to have reaped them."""
    killed = set()
    while True:
        new = _sandbox_pids() - keep - killed
        if not new:
            break
        for pid in new:
            try:
                os.kill(pid, 9)
            except OSError:
                pass
        killed |= new
    # Until init has reaped them they still count against the process limit, which is the
    # next call's whole.
    while killed and time.monotonic() < deadline:
        left = killed & _sandbox_pids()
        if all(_reaped_by_another(pid) for pid in left):
            return
        time.sleep(0.0005)


def _reaped_by_another(pid):
    """Whether pid is a zombie that a live process other than init must reap (a module-body
    process's child): waiting for it could take forever. Also true once it is gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            fields = f.read().rsplit(b")", 1)[1].split()
    except (OSError, IndexError):
        return True
    return fields[0] == b"Z" and fields[1] != b"1"


def _call_entry(status, data, cut, entry_max):
    """The entry of a call that ended with wait status status, having sent data, or that was
    cut (_drain)."""
    import signal

    if cut == "timeout":
        return _entry_error("timeout", _texts["timeout_wall"])
    if cut == "too_large":
        return _entry_error("result_too_large", _too_large_text(entry_max))
    if os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGXCPU:
        return _entry_error("timeout", _texts["timeout_cpu"])
    if data and os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0:
        try:
            return json.loads(data)
        except ValueError:
            pass
    if os.WIFSIGNALED(status):
        name = signal.Signals(os.WTERMSIG(status)).name
        return _entry_error("killed", f"Script execution error: killed by signal {name}")
    code = os.WEXITSTATUS(status) if os.WIFEXITED(status) else -1
    return _entry_error("exited", f"Script exited with status {code} before main() returned")


def _fork_call(main, value, inherited=()):
    """A fork of this process that waits for its go (one byte on its go pipe), then runs
    main(value): (pid, out_r, res_r, go_w), or an OSError. The batch forks the next call while
    the current one runs, so that fork (a millisecond or more for a large interpreter) and
    the call's own preparation happen on another core, off the batch's path; the calls still
    run one after another, in order. inherited: the running call's descriptors, which the
    fork must not keep (it could read what that call prints)."""
    _flush_stdio()
    out_r, out_w = os.pipe()
    res_r, res_w = os.pipe()
    go_r, go_w = os.pipe()
    try:
        pid = os.fork()
    except OSError:
        for fd in (out_r, out_w, res_r, res_w, go_r, go_w):
            os.close(fd)
        raise
    if pid == 0:
        global _owner_pid
        _owner_pid = os.getpid()  # its own frame goes to res_w, never to the channel
        for fd in (out_r, res_r, go_w, *inherited):
            os.close(fd)
        _call_child(main, value, out_w, res_w, go_r)
    for fd in (out_w, res_w, go_r):
        os.close(fd)
    try:
        pidfd = os.pidfd_open(pid)
    except OSError:  # no pidfds (Linux before 5.3): its end is its pipes' end-of-file
        pidfd = None
    return pid, out_r, res_r, go_w, pidfd


def _cancel_call(call):
    """A forked call whose turn did not come: it reads end-of-file and leaves unrun."""
    for fd in call[1:]:
        if fd is not None:
            os.close(fd)


def _one_call(call, next_call, deadline, budget, keep, entry_max):
    """Runs the forked call (after forking the next one, next_call(inherited), while it runs),
    then ends what it left running but keep's processes: (entry, the output it printed,
    truncated, the next call's fork or None)."""
    pid, out_r, res_r, go_w, pidfd = call
    pids_before = _last_pid()  # before the go: what the call forks comes after it
    try:
        os.write(go_w, b"g")
    except OSError:  # it died waiting (killed): its wait status says how
        pass
    os.close(go_w)
    following = next_call((out_r, res_r) if pidfd is None else (out_r, res_r, pidfd))
    out, truncated, data, cut = _drain(pid, out_r, res_r, pidfd, deadline, budget, entry_max)
    for fd in (out_r, res_r, pidfd):
        if fd is not None:
            os.close(fd)
    # A call that gave its entry is not waited for here: it is exiting (freeing its memory,
    # which can take milliseconds; _set_back waits only until it cannot make a system call any
    # more). It is killed all the same, in case a process it started forged
    # that entry while main() goes on (a no-op for a process already exiting), and before the
    # look below, so that it cannot fork after it; it is reaped later (_reap_ended): until
    # then it counts against the process limit. Any other call has exited or was killed.
    done, status = os.waitpid(pid, os.WNOHANG)
    exiting = not done and data and not cut
    if exiting:
        os.kill(pid, 9)
        _ended.add(pid)
        status = 0
    # The look costs ~0.2 ms (what the runner allocates is copied: its pages are shared with
    # the call forked ahead), and most calls fork nothing: if the namespace gave no PID since
    # the go but the next call's, nothing is left to find. (PIDs are given in turn; coming
    # back to the same one takes all pid_max of them.) A call that is exiting is left out of
    # the look, which would kill it again.
    if pids_before is None or _last_pid() != pids_before + (1 if following else 0):
        _end_strays(keep | ({following[0]} if following else set()) | ({pid} if exiting else set()), deadline)
    if not done and not exiting:
        _, status = os.waitpid(pid, 0)
    return _call_entry(status, data, cut, entry_max), out, truncated, following


def _reap_ended(deadline=None):
    """Reaps the ended calls that have exited; with a deadline, waits until all have (they
    were killed: not long) or it passes. Unreaped, they would pile up as zombies, each one
    of the process limit, until forks failed (a loaded machine left 23 after 100 calls)."""
    while True:
        for pid in list(_ended):
            try:
                if os.waitpid(pid, os.WNOHANG)[0]:
                    _ended.discard(pid)
            except ChildProcessError:
                _ended.discard(pid)
        if not _ended or deadline is None or time.monotonic() >= deadline:
            return
        time.sleep(0.0005)


def _fork_at_turn(main, value, deadline):
    """The call forked at its turn (its fork ahead failed): if the process limit refused it,
    again once the calls that ended are reaped."""
    import errno

    try:
        return _fork_call(main, value)
    except OSError as exc:
        if exc.errno != errno.EAGAIN or not _ended:
            raise
    _reap_ended(deadline)
    return _fork_call(main, value)


def _run_batch(main, inputs, limits, result_max):
    """Every main(v), in order; the list of entries is the R frame's value."""
    import functools

    _texts.update(limits["texts"])
    deadline = _started + limits["wall_time_s"] - BATCH_MARGIN_S
    budget, used, entries = limits["stdout_max_bytes"], 2, []
    ahead = None  # the next call, forked while the one before it ran
    # What the module body started is the module's, as its objects are, and outlives the
    # calls; what a call starts ends with it. Calls that have ended are spared too: they are
    # gone or exiting by their own _exit (a second look and a kill for them cost ~0.2 ms a
    # call).
    spared = _sandbox_pids()
    try:
        state, broken = _keep_state(), None
    except MemoryError:
        _send_memory_limit()
        _finish()
    except OSError as exc:
        state, broken = None, f"what the module body left in /tmp could not be kept: {_describe(exc)}"

    def fork_ahead(i, inherited):
        _reap_ended()
        if i < len(inputs):
            try:
                return _fork_call(main, inputs[i], inherited)
            except OSError:  # forked again at its turn, where a failure is its entry's
                pass
        return None

    for i, value in enumerate(inputs):
        call, ahead = ahead, None
        if time.monotonic() >= deadline:
            if call:
                _cancel_call(call)
            entry, out, truncated = _entry_error("timeout", _texts["timeout_wall"]), b"", False
        elif broken:
            if call:
                _cancel_call(call)
            entry, out, truncated = _entry_error(
                "exception", f"The call could not start: {broken}"), b"", False
        else:
            try:
                call = call or _fork_at_turn(main, value, deadline)
                entry, out, truncated, ahead = _one_call(call, functools.partial(fork_ahead, i + 1),
                                                         deadline, budget, spared, result_max)
                spared.add(call[0])
                if i + 1 < len(inputs):
                    broken = _set_back(state, call[0], deadline)
            except OSError as exc:
                entry, out, truncated = _entry_error(
                    "exception", f"The call could not start: {_describe(exc)}"), b"", False
        budget -= len(out)
        entry = _with_stdout(entry, out, truncated)
        data = json.dumps(entry, ensure_ascii=False).encode("utf-8", "pyexec_replace")
        if used + len(data) + 1 > result_max:
            entry = _with_stdout(_entry_error("result_too_large", f"main() returned more than the "
                                              f"{result_max}-byte result limit, with the entries before it"),
                                 b"", bool(out))
            data = json.dumps(entry, ensure_ascii=False).encode("utf-8", "pyexec_replace")
        used += len(data) + 1
        entries.append(data)
    if ahead:
        _cancel_call(ahead)
    _flush_stdio()
    _send(b"R", b"[" + b",".join(entries) + b"]")
    _finish()


def _with_stdout(entry, out, truncated):
    """The entry's members in the order of an answer: result or error, stdout, the rest."""
    first = {k: entry[k] for k in ("result", "error") if k in entry}
    rest = {k: v for k, v in entry.items() if k not in first}
    merged = {**first, "stdout": out.decode("utf-8", "replace"), **rest}
    if truncated:
        merged["stdout_truncated"] = True
    return merged


# ---- what a call leaves behind: set back before the next call ------------------------------
#
# A call's fork keeps its objects to itself, but the file system and the IPC namespace are the
# request's. So that no call sees another's effects there either, /tmp (the one writable file
# system; POSIX shared memory lives there too) is set back between calls to what the module
# body left, and the SysV segments and semaphore sets a call made are removed, once what the
# call started is dead and none of its own threads can make a system call any more (a thread
# being killed may still finish the one it is in). What the module body made is every call's: its files as it left them, its open
# descriptors, its IPC objects, its processes. Its files' bytes are kept here, in this process
# (so they count twice against the memory limit), since no place in the sandbox is out of a
# call's reach, and compared with each file after every call: a write through a shared mapping
# changes neither a tmpfs file's times nor its inode. Modes, mtimes and the extended attributes
# a call can set (user.*, POSIX ACLs) come back too; directories' times do not, and hard links
# between kept files come back as copies.

_IPC_TABLES = ("/proc/sysvipc/shm", "/proc/sysvipc/sem")


class _Kept:
    __slots__ = ("mode", "ino", "mtime_ns", "data", "xattrs")

    def __init__(self, st, data, xattrs):
        self.mode, self.ino, self.mtime_ns, self.data = st.st_mode, st.st_ino, st.st_mtime_ns, data
        self.xattrs = xattrs


# The extended attributes a call can set, and so must find as the module body left them: its
# own (user.*) and POSIX ACLs. Others (security.*, trusted.*) are not the sandbox's to set.
_XATTR_PREFIXES = ("user.", "system.posix_acl_")


def _xattrs(full):
    """{name: value} of path's extended attributes a call could have set (read even where
    its mode denies its owner reading them)."""
    try:
        names = [n for n in os.listxattr(full, follow_symlinks=False) if n.startswith(_XATTR_PREFIXES)]
    except OSError:  # none on this file system
        return {}
    try:
        return {n: os.getxattr(full, n, follow_symlinks=False) for n in names}
    except PermissionError:
        mode = os.lstat(full).st_mode & 0o7777
        os.chmod(full, mode | 0o600)
        try:
            return {n: os.getxattr(full, n, follow_symlinks=False) for n in names}
        finally:
            os.chmod(full, mode)


def _set_xattrs(full, want):
    """path's settable extended attributes made want (removed, added, changed)."""
    have = _xattrs(full)
    for name in have.keys() - want.keys():
        os.removexattr(full, name, follow_symlinks=False)
    for name, value in want.items():
        if have.get(name) != value:
            os.setxattr(full, name, value, follow_symlinks=False)


def _depth(path):
    return path.count("/")


def _scan_tmp():
    """({path under WORK_DIR: lstat}, {path: mode before}) of everything in /tmp, walked without
    recursion (a call may nest directories deeper than Python recurses) and without following
    links. A directory without rwx for its owner gets them, to be walked and emptied: the
    second dict gives their modes before (the first has their stats after)."""
    import stat

    found, loosened, todo = {}, {}, [""]
    while todo:
        rel = todo.pop()
        top = os.path.join(WORK_DIR, rel)
        with os.scandir(top) as entries:
            for entry in entries:
                path, st = f"{rel}/{entry.name}" if rel else entry.name, entry.stat(follow_symlinks=False)
                if stat.S_ISDIR(st.st_mode):
                    if st.st_mode & 0o700 != 0o700:
                        loosened[path] = st.st_mode
                        os.chmod(os.path.join(top, entry.name), stat.S_IMODE(st.st_mode) | 0o700)
                        st = os.lstat(os.path.join(top, entry.name))
                    todo.append(path)
                found[path] = st
    return found, loosened


def _ipc_tables():
    """The IPC namespace's SysV segment and semaphore set tables, as /proc gives them."""
    tables = []
    for table in _IPC_TABLES:
        fd = os.open(table, os.O_RDONLY | os.O_CLOEXEC)
        try:
            chunks = [os.read(fd, 1 << 16)]
            while chunks[-1]:
                chunks.append(os.read(fd, 1 << 16))
        finally:
            os.close(fd)
        tables.append(b"".join(chunks))
    return tables


def _ipc_ids(tables):
    """The ids in each table (its second column), one set per table."""
    return [{int(line.split()[1]) for line in table.splitlines()[1:]} for table in tables]


def _read_file(full, st):
    """A regular file's bytes, even if its mode denies its owner reading it (then given back)."""
    import stat

    if not st.st_mode & 0o400:
        os.chmod(full, stat.S_IMODE(st.st_mode) | 0o400)
    try:
        with open(os.open(full, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK), "rb") as f:
            return f.read()
    finally:
        if not st.st_mode & 0o400:
            os.chmod(full, stat.S_IMODE(st.st_mode))


def _keep_state():
    """What the module body left in /tmp (each file's bytes) and in the IPC namespace."""
    import stat

    kept = {}
    now, loosened = _scan_tmp()
    for path, st in now.items():
        full, data = os.path.join(WORK_DIR, path), None
        if stat.S_ISREG(st.st_mode):
            data = _read_file(full, st)
        elif stat.S_ISLNK(st.st_mode):
            data = os.readlink(full)
        kept[path] = _Kept(st, data, _xattrs(full))
    for path in sorted(loosened, key=_depth, reverse=True):
        os.chmod(os.path.join(WORK_DIR, path), stat.S_IMODE(loosened[path]))
        kept[path].mode = loosened[path]
    return {"tmp": kept, "root_mode": os.stat(WORK_DIR).st_mode, "root_xattrs": _xattrs(WORK_DIR),
            "ipc": _ipc_tables()}


def _changed(path, kept, st):
    """Whether path (st) is not what was kept: type, inode, and for what is not a directory
    (whose mode and extended attributes are set back in any case) mode, mtime and extended
    attributes; for a file, its bytes."""
    import stat

    if stat.S_IFMT(st.st_mode) != stat.S_IFMT(kept.mode) or st.st_ino != kept.ino:
        return True
    if stat.S_ISDIR(st.st_mode):
        return False
    full = os.path.join(WORK_DIR, path)
    if st.st_mode != kept.mode or st.st_mtime_ns != kept.mtime_ns or _xattrs(full) != kept.xattrs:
        return True
    return stat.S_ISREG(st.st_mode) and (st.st_size != len(kept.data) or _read_file(full, st) != kept.data)


def _restore_entry(path, kept):
    """Makes path again as the module body left it (a directory's mode comes later). False
    for what cannot be made again."""
    import stat

    full = os.path.join(WORK_DIR, path)
    if stat.S_ISDIR(kept.mode):
        os.mkdir(full, 0o700)
    elif stat.S_ISREG(kept.mode):
        fd = os.open(full, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        try:
            view = memoryview(kept.data)
            while view:
                view = view[os.write(fd, view):]
            _set_xattrs(full, kept.xattrs)  # while its mode lets its owner write them
            os.fchmod(fd, stat.S_IMODE(kept.mode))
            os.utime(fd, ns=(kept.mtime_ns, kept.mtime_ns))
        finally:
            os.close(fd)
    elif stat.S_ISLNK(kept.mode):
        os.symlink(kept.data, full)
        os.utime(full, ns=(kept.mtime_ns, kept.mtime_ns), follow_symlinks=False)
    elif stat.S_ISFIFO(kept.mode):
        os.mkfifo(full, 0o600)
        _set_xattrs(full, kept.xattrs)
        os.chmod(full, stat.S_IMODE(kept.mode))  # the mode whatever the umask
        os.utime(full, ns=(kept.mtime_ns, kept.mtime_ns))
    else:  # a socket the module body bound: nothing can bind it again
        return False
    kept.ino = os.lstat(full).st_ino
    return True


def _set_back_tmp(state):
    """/tmp as the module body left it: what a call made or changed removed, what it removed
    or changed made again, directories' modes set back."""
    import stat

    if os.stat(WORK_DIR).st_mode != state["root_mode"]:  # before the walk, which it could stop
        os.chmod(WORK_DIR, stat.S_IMODE(state["root_mode"]))
    kept, (now, _) = state["tmp"], _scan_tmp()
    gone = set()
    for path in sorted(now, key=_depth):  # a directory made again takes all below it along
        if path not in kept or path.rpartition("/")[0] in gone or _changed(path, kept[path], now[path]):
            gone.add(path)
    for path in sorted(gone, key=_depth, reverse=True):  # directories are empty by their turn
        full = os.path.join(WORK_DIR, path)
        if stat.S_ISDIR(now.pop(path).st_mode):
            os.rmdir(full)
        else:
            os.unlink(full)
    back = {p for p in kept if p not in now}
    for path in sorted(back, key=_depth):
        if not _restore_entry(path, kept[path]):
            del kept[path]  # not to be looked for again
    for path in sorted((p for p in kept if stat.S_ISDIR(kept[p].mode)), key=_depth, reverse=True):
        full = os.path.join(WORK_DIR, path)
        _set_xattrs(full, kept[path].xattrs)  # an ACL first: chmod then sets its mask
        if path in back or now[path].st_mode != kept[path].mode:
            os.chmod(full, stat.S_IMODE(kept[path].mode))
    _set_xattrs(WORK_DIR, state["root_xattrs"])
    if os.stat(WORK_DIR).st_mode != state["root_mode"]:
        os.chmod(WORK_DIR, stat.S_IMODE(state["root_mode"]))


def _remove_ipc(state):
    """Removes the SysV segments and semaphore sets a call made."""
    tables = _ipc_tables()
    if tables == state["ipc"]:  # most often: no table but its header line
        return
    shm, sem = (now - before for now, before in zip(_ipc_ids(tables), _ipc_ids(state["ipc"])))
    if not shm and not sem:
        return
    import ctypes
    import errno

    libc = ctypes.CDLL(None, use_errno=True)
    IPC_RMID = 0
    for ids, remove in ((shm, lambda i: libc.shmctl(i, IPC_RMID, None)),
                        (sem, lambda i: libc.semctl(i, 0, IPC_RMID))):
        for i in ids:
            if remove(i) < 0 and ctypes.get_errno() not in (errno.EINVAL, errno.EIDRM):
                raise OSError(ctypes.get_errno(), f"removing the SysV IPC object {i}")


PF_EXITING = 0x4  # a task's flag (/proc/PID/stat's ninth field) once it is in do_exit()


def _await_death(pid, deadline):
    """Until no thread of the call pid can make a system call any more (or the deadline): its
    only thread left is its first, and that one is exiting (PF_EXITING: it may still be
    freeing its memory, not waited for), or it has exited."""
    while time.monotonic() < deadline:
        try:
            fd = os.open(f"/proc/{pid}/stat", os.O_RDONLY | os.O_CLOEXEC)
        except OSError:  # reaped already
            return
        try:
            fields = os.read(fd, 1024).rsplit(b")", 1)[1].split()
        finally:
            os.close(fd)
        if fields[0] in (b"Z", b"X") or (int(fields[6]) & PF_EXITING and fields[17] == b"1"):
            return
        time.sleep(0.0001)


def _set_back(state, pid, deadline):
    """After the call pid (whose other processes are dead): /tmp and the IPC namespace as the
    module body left them. None, or why not (then no later call may start)."""
    _await_death(pid, deadline)
    try:
        _set_back_tmp(state)
        _remove_ipc(state)
    except OSError as exc:
        return f"what an earlier call left could not be cleared: {_describe(exc)}"
    return None


# ---- files in, files and figures out -------------------------------------------------------

WORK_DIR = "/tmp"  # the script's working directory, where "files" go and "return_files" look
# What one answer's extras may hold beside the byte budget (sandbox/verdict.c sizes the
# channel for these): returned files, figures, and a returned file's path in bytes.
RETURN_FILES_MAX = 1000
FIGURES_MAX = 100
RETURN_PATH_MAX = 1024


def _write_files(files):
    """The request's files, before the module body runs; the worker checked every path."""
    import base64

    try:
        for path, value in files.items():
            data = value.encode("utf-8") if isinstance(value, str) else base64.b64decode(value["base64"])
            full = os.path.join(WORK_DIR, path)
            os.makedirs(os.path.dirname(full), exist_ok=True)
            with open(full, "xb") as f:
                f.write(data)
    except OSError as exc:
        _send_error("exception", f"The request's files could not be written: {_describe(exc)}")
        _finish()


def _glob_regex(pattern):
    """* and ? within one path component; ** as a whole component: any number of them."""
    import re

    parts = pattern.split("/")
    out = []
    for i, part in enumerate(parts):
        last = i == len(parts) - 1
        if part == "**":
            out.append(".*" if last else "(?:[^/]*/)*")
            continue
        out.append("".join("[^/]*" if c == "*" else "[^/]" if c == "?" else re.escape(c) for c in part))
        if not last:
            out.append("/")
    return re.compile("".join(out) + r"\Z", re.S)


def _regular_files():
    """(path, dir_fd, name) of every regular file under WORK_DIR; symbolic links are neither
    followed nor returned (fwalk walks by descriptor, so a link swapped in meanwhile is not
    followed either)."""
    import stat

    for top, _dirs, names, dir_fd in os.fwalk(WORK_DIR, follow_symlinks=False):
        rel = os.path.relpath(top, WORK_DIR)
        for name in names:
            st = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
            if stat.S_ISREG(st.st_mode):
                yield (name if rel == "." else f"{rel}/{name}"), dir_fd, name


def _read_nofollow(dir_fd, name, limit):
    fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK, dir_fd=dir_fd)
    try:
        chunks, size = [], 0
        while size <= limit:
            chunk = os.read(fd, 1 << 20)
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
        return b"".join(chunks)
    finally:
        os.close(fd)


def _returned_files(patterns, budget):
    """The files that match, in path order, as many as fit the budget (raw bytes)."""
    import base64
    import mimetypes

    regexes = [_glob_regex(p) for p in patterns]
    found = {}
    for path, dir_fd, name in _regular_files():
        if len(path.encode("utf-8", "surrogateescape")) > RETURN_PATH_MAX:
            continue
        try:
            path.encode("utf-8")
        except UnicodeEncodeError:  # a name that is not UTF-8 has no JSON key
            continue
        if any(r.match(path) for r in regexes):
            found[path] = _read_nofollow(dir_fd, name, budget)
    files, used, truncated = {}, 0, False
    for path in sorted(found):
        data = found[path]
        if used + len(data) > budget or len(files) == RETURN_FILES_MAX:
            truncated = True
            continue
        used += len(data)
        files[path] = {"base64": base64.b64encode(data).decode("ascii"), "size": len(data),
                       "media_type": mimetypes.guess_type(path)[0] or "application/octet-stream"}
    return files, truncated


def _figures(fmt, budget):
    """Every open matplotlib figure, in figure-number order, as many as fit the budget."""
    plt = sys.modules.get("matplotlib.pyplot")
    if plt is None:
        return [], False
    import base64
    import io

    figures, used, truncated = [], 0, False
    for num in plt.get_fignums():
        buf = io.BytesIO()
        plt.figure(num).savefig(buf, format=fmt)
        data = buf.getvalue()
        if used + len(data) > budget or len(figures) == FIGURES_MAX:
            truncated = True
            continue
        used += len(data)
        figures.append({"media_type": "image/png" if fmt == "png" else "image/svg+xml",
                        "base64": base64.b64encode(data).decode("ascii")})
    return figures, truncated


def _extras(options, budget):
    """The answer's extras the request asked for, as JSON text (b"" for none)."""
    extras = {}
    try:
        if "return_files" in options:
            extras["files"], truncated = _returned_files(options["return_files"], budget)
            if truncated:
                extras["files_truncated"] = True
        if "figures" in options:
            extras["figures"], truncated = _figures(options["figures"], budget)
            if truncated:
                extras["figures_truncated"] = True
    except MemoryError:
        _send_memory_limit()
        _finish()
    except BaseException as exc:
        _send_error("exception", f"Collecting the answer's files and figures failed: {_describe(exc)}")
        _finish()
    return json.dumps(extras).encode("ascii") if extras else b""


def _script_streams():
    """sys.stdout and sys.stderr for a script, on fds 1 and 2 as they are when it runs:
    UTF-8, line-buffered so that what was printed before a timeout or a kill still reaches the
    client, and lone surrogates (from a str the script built) written as U+FFFD."""
    import codecs
    import io

    # (The UTF-8 encoder takes only ASCII text from a handler, so the bytes are given.)
    codecs.register_error("pyexec_replace", lambda e: (b"\xef\xbf\xbd" * (e.end - e.start), e.end))

    def stream(fd):
        raw = io.FileIO(fd, "w", closefd=False)
        return io.TextIOWrapper(io.BufferedWriter(raw), encoding="utf-8", errors="pyexec_replace",
                                line_buffering=True)

    return stream(1), stream(2)


# Warm mode: the script's streams, made by the zygote before any request (_pyexec_warm_up).
_warm_streams = None

# ---- warm mode: what every fork of the zygote would otherwise redo in Python ----------------
#
# Run for the first time in a fork, Python code pays for every page it touches with a
# copy-on-write fault (~3-4 us each here). Two things every script's process did in Python
# cost ~0.6 ms of CPU together (~120 faults) for a numpy request, a tenth of its CPU:
# - the os.register_at_fork hooks run by PyOS_AfterFork_Child: threading's (_after_fork) and
#   random's (_inst.seed);
# - numpy's reseed through np.random.set_state() (_reseed_numpy).
# What they do is done without Python instead. The zygote (_pyexec_fork_hooks) keeps those two
# hooks out of the list its forks run, and gives the C side where the two generators' MT19937
# states live, each checked against a state set through the library's own API; each script's
# process fills them from getrandom() before any Python runs (sandbox/zygote-main.c). Where a
# check fails, the hook stays or _reseed_numpy runs, as before. Each script's process
# registers the hooks again (_pyexec_run) for the forks the script makes itself.
#
# threading's hook repairs what a fork breaks when other threads held threading's locks or
# ran: the zygote has one thread (init_python refuses to serve otherwise) and forks from C,
# never inside Python code that holds a lock, so the threading state a fork inherits is
# already right (its one thread, its ident, its locks free). It is deferred only when
# threading knows of that one thread alone.

_deferred_hooks = []  # the hooks the zygote's forks do without, in the order they came
_numpy_in_place = False  # numpy's global state is reseeded by the C side
_deferring = False  # within the zygote's window (_pyexec_fork_hooks)
_os_register_at_fork = os.register_at_fork


def _deferrable_hook(hook):
    """threading's or random's at-fork hook, else None."""
    threading, random = sys.modules.get("threading"), sys.modules.get("random")
    if threading is not None and hook is getattr(threading, "_after_fork", None):
        return "threading"
    if random is not None and getattr(hook, "__self__", None) is getattr(random, "_inst", None) \
            and getattr(hook, "__func__", None) is random.Random.seed:
        return "random"
    return None


def _deferring_register_at_fork(*, before=None, after_in_child=None, after_in_parent=None):
    """os.register_at_fork within the window; os.register_at_fork itself after it (for a
    library that kept a reference of its own)."""
    if _deferring and after_in_child is not None and _deferrable_hook(after_in_child):
        _deferred_hooks.append(after_in_child)
        after_in_child = None
    hooks = {"before": before, "after_in_child": after_in_child, "after_in_parent": after_in_parent}
    if any(hooks.values()):
        _os_register_at_fork(**{when: hook for when, hook in hooks.items() if hook is not None})


def _mt_state_at(address, key_offset, position_offset):
    import ctypes

    return (ctypes.c_uint32 * 624).from_address(address + key_offset), ctypes.c_int.from_address(address + position_offset)


def _random_state():
    """(key address, position address) of random's shared generator, checked, or None.
    CPython's RandomObject: PyObject_HEAD, int index, uint32_t state[624]."""
    import random

    inst = random._inst
    if type(inst).__mro__[1:2] != (random._random.Random,) or inst.gauss_next is not None:
        return None
    head = object.__basicsize__  # PyObject_HEAD
    inst.setstate((3, tuple(range(1, 625)) + (7,), None))
    key, position = _mt_state_at(id(inst), head + 4, head)
    known = list(key) == list(range(1, 625)) and position.value == 7
    inst.seed()  # a fresh state again, and no cached Gaussian
    return (id(inst) + head + 4, id(inst) + head) if known else None


def _numpy_state():
    """(key address, position address) of numpy's global MT19937, checked, or None. Its C
    struct: uint32 key[624], int pos. Leaves a fresh state with no cached Gaussian (set_state
    of a 3-tuple clears it), which every fork inherits."""
    np = sys.modules.get("numpy")
    if np is None:
        return None
    bit_generator = np.random.mtrand._rand._bit_generator
    if type(bit_generator).__name__ != "MT19937":
        return None
    address = bit_generator.ctypes.state_address
    np.random.set_state(("MT19937", np.arange(1, 625, dtype=np.uint32), 7))
    key, position = _mt_state_at(address, 0, 624 * 4)
    known = list(key) == list(range(1, 625)) and position.value == 7
    _reseed_numpy()
    return (address, address + 624 * 4) if known else None


def _pyexec_fork_hooks(begin):
    """Warm mode, in the zygote: begin=True before anything that may import threading or
    random; False after the last import. Returns, at the end, the MT19937 states each fork
    fills itself: a list of (key address, position address)."""
    global _deferring, _numpy_in_place
    _deferring = begin
    if begin:
        os.register_at_fork = _deferring_register_at_fork
        return []
    os.register_at_fork = _os_register_at_fork
    states = []
    for hook in list(_deferred_hooks):
        if _deferrable_hook(hook) == "threading":
            threading = sys.modules["threading"]
            if threading.active_count() == 1 and not threading._limbo:
                continue  # nothing for it to repair
        elif (state := _random_state()) is not None:
            states.append(state)  # the fork reseeds random in place
            continue
        _deferred_hooks.remove(hook)  # cannot be done without: every fork runs it
        os.register_at_fork(after_in_child=hook)
    numpy_state = _numpy_state()
    if numpy_state is not None:
        states.append(numpy_state)
        _numpy_in_place = True
    return states


def _pyexec_warm_up():
    """Warm mode, in the zygote before any request exists: do once what every request would
    otherwise do for the first time in its own fork. CPython sets up some machinery lazily on
    first use (the first compile() builds the ast module's ~100 types, a text stream looks up
    its codec, json its encoder, traceback its formatting), and a fork that does it pays for
    it in every request, copy-on-write faults included: about 2 ms of CPU for hello world."""
    import io
    import json
    import traceback

    code = compile('def main():\n    return {"a": [1, 2.5, "x"]}\n', "<script>", "exec", dont_inherit=True)
    namespace = {}
    exec(code, namespace)
    json.dumps(namespace["main"](), ensure_ascii=False, allow_nan=False, default=str).encode("utf-8")
    # The job's two lines (_read_job) and the rlimits (_lower_limits, _usage): the decoder's
    # first use and the resource module's loading, once here rather than in every fork.
    json.loads('{"a": [1, 2.5, "x", {"b": null}], "c": true}')
    import resource

    resource.getrlimit(resource.RLIMIT_AS)
    resource.getrusage(resource.RUSAGE_SELF)
    with open("/dev/null", "wb", buffering=0) as raw:
        text = io.TextIOWrapper(io.BufferedWriter(raw), encoding="utf-8", line_buffering=True)
        text.write("warm\n")
        text.flush()
        text.detach()

    # The script's streams, made here once instead of in every fork. They are made while fds 1
    # and 2 are a pipe, as they are in the sandbox, so that what the objects learn about their
    # descriptor (not seekable, so not telling) is what it will be; nothing is ever written to
    # them here, so a fork starts with empty buffers.
    import os

    global _warm_streams
    read_end, write_end = os.pipe()
    saved = os.dup(1), os.dup(2)
    try:
        os.dup2(write_end, 1)
        os.dup2(write_end, 2)
        _warm_streams = _script_streams()
    finally:
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        for fd in (*saved, read_end, write_end):
            os.close(fd)
    try:
        raise ValueError("warm-up")
    except ValueError as exc:
        "".join(traceback.format_exception(type(exc), exc, exc.__traceback__, chain=False))


if __name__ == "__main__":
    _pyexec_run(__import__("sys").argv)
