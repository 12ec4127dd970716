"""Many inputs in one request ("inputs", issue 14), end to end in both modes (base_url): the
module body runs once, then main(v) for each value in a fork of its own, in order; one entry per
input in "results", the module body's output in "stdout". Every answer is also held to
nginx/openapi.json by helpers.request."""

import os

import pytest

from helpers import assert_refused, post_execute

TIMEOUT_2S = "Script execution timed out (2 seconds)"


def run(base_url, script, **fields):
    status, _, body = post_execute(base_url, script, **fields)
    assert status == 200, (status, str(body)[:2000])
    return body


def test_each_input_gets_its_own_call_in_order(base_url):
    script = ("print('body ran')\nSEEN = []\n"
              "def main(x):\n    SEEN.append(x)\n    print('call', x)\n    return {'x': x, 'seen': len(SEEN)}\n")
    body = run(base_url, script, inputs=[3, "a", None, [1, 2], 12345678901234567890123])
    assert list(body) == ["results", "stdout"], list(body)
    assert body["stdout"] == "body ran\n"
    values = [3, "a", None, [1, 2], 12345678901234567890123]
    # seen == 1 every time: no call sees what another appended (each is a fork of the body's process).
    assert body["results"] == [{"result": {"x": v, "seen": 1}, "stdout": "call %s\n" % (v,)} for v in values]


def test_a_failing_call_does_not_stop_the_others(base_url):
    script = ("import os\n"
              "def main(x):\n"
              "    if x == 1: raise ValueError('one')\n"
              "    if x == 2: os._exit(7)\n"
              "    if x == 3: return {1, 2}\n"
              "    if x == 4: return len(bytearray(2 << 30))\n"
              "    if x == 5: os.kill(os.getpid(), 11)\n"
              "    return x\n")
    results = run(base_url, script, inputs=[0, 1, 2, 3, 4, 5, 6])["results"]
    assert results[0] == {"result": 0, "stdout": ""} and results[6] == {"result": 6, "stdout": ""}
    kinds = [r.get("error_kind") for r in results[1:6]]
    assert kinds == ["exception", "exited", "not_serializable", "memory_limit", "killed"], results
    assert results[1]["error"] == "ValueError: one" and "line 3, in main" in results[1]["traceback"]
    assert results[2]["error"] == "Script exited with status 7 before main() returned"
    assert results[5]["error"] == "Script execution error: killed by signal SIGSEGV"


def test_calls_not_reached_in_time_get_timeout(base_url):
    script = "import time\ndef main(x):\n    time.sleep(x)\n    return x\n"
    results = run(base_url, script, inputs=[0, 0.2, 30, 0], limits={"wall_time_s": 2})["results"]
    assert results[:2] == [{"result": 0, "stdout": ""}, {"result": 0.2, "stdout": ""}], results
    assert results[2:] == [{"error": TIMEOUT_2S, "stdout": "", "error_kind": "timeout"}] * 2, results


def test_each_call_has_the_cpu_limit(base_url):
    script = "def main(x):\n    if x:\n        while True: pass\n    return x\n"
    results = run(base_url, script, inputs=[1, 0], limits={"cpu_time_s": 1, "wall_time_s": 5})["results"]
    assert results[0]["error_kind"] == "timeout" and results[0]["error"] == "Script execution timed out (1 seconds)"
    assert results[1] == {"result": 0, "stdout": ""}


def test_numpy_random_differs_between_calls(base_url):
    script = "import numpy as np\ndef main(x):\n    return float(np.random.random())\n"
    values = [r["result"] for r in run(base_url, script, inputs=[0, 0, 0, 0])["results"]]
    assert len(set(values)) == 4, values


def test_the_calls_share_the_output_budget(base_url):
    script = "def main(x):\n    print('y' * 600)\n    return x\n"
    results = run(base_url, script, inputs=[1, 2, 3], limits={"stdout_max_bytes": 1000})["results"]
    assert results[0] == {"result": 1, "stdout": "y" * 600 + "\n"}
    assert results[1] == {"result": 2, "stdout": "y" * 399, "stdout_truncated": True}
    assert results[2] == {"result": 3, "stdout": "", "stdout_truncated": True}


def test_a_module_body_that_fails_fails_the_request(base_url):
    body = run(base_url, "raise KeyError('k')\ndef main(x):\n    return x\n", inputs=[1, 2])
    assert body["error_kind"] == "exception" and "results" not in body, body
    body = run(base_url, "x = 1\n", inputs=[1])
    assert body["error_kind"] == "no_main", body


def test_usage_and_order(base_url):
    body = run(base_url, "def main(x):\n    return x\n", inputs=[1], usage=True)
    assert list(body) == ["results", "stdout", "usage"], list(body)


@pytest.mark.parametrize("fields,message", [
    ({"inputs": []}, "inputs: must be an array of 1 to 100 values"),
    ({"inputs": list(range(101))}, "inputs: must be an array of 1 to 100 values"),
    ({"inputs": {"a": 1}}, "inputs: must be an array"),
    ({"inputs": 3}, "inputs: must be an array"),
    ({"inputs": [1], "input": 1}, "inputs: give either input or inputs, not both"),
    ({"inputs": [1], "return_files": ["*"]}, "return_files and figures: not with inputs"),
    ({"inputs": [1], "figures": "png"}, "return_files and figures: not with inputs"),
], ids=["empty", "over_max_batch", "object", "number", "with_input", "with_return_files", "with_figures"])
def test_refused(base_url, fields, message):
    assert_refused(base_url, message, script="def main(x):\n    return x\n", **fields)


def test_the_calls_run_one_after_another_though_the_next_is_forked_ahead(base_url):
    # Each call logs its start and end in a file the module body opened, which every call
    # holds (what the module body made is every call's; /tmp is set back between calls); the
    # next call's process exists (forked while this one runs), but its main() starts only
    # after this one's ended.
    script = ("import os, time\n"
              "LOG = os.memfd_create('log')\n"
              "def main(x):\n"
              "    os.write(LOG, b'start %d\\n' % x)\n"
              "    time.sleep(0.02)\n"
              "    os.write(LOG, b'end %d\\n' % x)\n"
              "    return os.pread(LOG, 1 << 16, 0).decode().split()\n")
    results = run(base_url, script, inputs=list(range(6)))["results"]
    want = []
    for x in range(6):
        want += ["start", str(x), "end", str(x)]
    assert results[-1] == {"result": want, "stdout": ""}, results


def test_a_call_holds_no_descriptor_of_another(base_url):
    # Forked while the call before it ran, a call must keep none of the batch's descriptors
    # but its own: not that call's pipes (it could read what the call before printed), nor
    # the runner's epoll. Every call holds the same kinds: /dev/null, and pipes' write ends.
    script = ("import os, fcntl\n"
              "def main(x):\n"
              "    held = []\n"
              "    for fd in os.listdir('/proc/self/fd'):\n"
              "        try:\n"
              "            mode = fcntl.fcntl(int(fd), fcntl.F_GETFL) & os.O_ACCMODE\n"
              "            held.append([os.readlink('/proc/self/fd/' + fd).split(':')[0], mode])\n"
              "        except OSError:\n"
              "            pass  # the listing's own descriptor, closed by now\n"
              "    return sorted(held)\n")
    results = [r["result"] for r in run(base_url, script, inputs=[0, 1, 2, 3, 4])["results"]]
    # stdout, stderr, the request's channel, the call's entry pipe
    assert results[0] == [["/dev/null", os.O_RDONLY]] + [["pipe", os.O_WRONLY]] * 4, results[0]
    assert results[1:] == results[:1] * 4, results


def test_a_call_holds_its_stdout_pipe_once(base_url):
    # The runner takes a call as done when its stdout pipe ends (and its entry is in). A
    # second descriptor of that pipe left in the call would end only with the process, after
    # the exit has freed the forked memory: every call would wait for the one before it to be
    # torn down.
    script = ("import os\n"
              "def main(x):\n"
              "    out = os.readlink('/proc/self/fd/1')\n"
              "    fds = os.listdir('/proc/self/fd')\n"
              "    return sum(1 for fd in fds if os.path.exists('/proc/self/fd/' + fd)\n"
              "               and os.readlink('/proc/self/fd/' + fd) == out)\n")
    assert [r["result"] for r in run(base_url, script, inputs=[0, 1])["results"]] == [1, 1]


def test_a_process_a_call_leaves_behind_neither_stalls_the_batch_nor_outlives_its_call(base_url):
    # Call 0 starts a process that holds its stdout and, a moment later, writes into the
    # request's /tmp. The batch waited for the call's pipes to close, which that process
    # never did: every entry became a wall-time timeout. Nor may it reach call 1, which
    # looks for it (the write would come after /tmp was set back): what a call started ends
    # with the call.
    script = ("import os, time\n"
              "def main(x):\n"
              "    if x == 0 and os.fork() == 0:\n"
              "        time.sleep(0.3)\n"
              "        open('/tmp/left-behind', 'w').close()\n"
              "        time.sleep(30)\n"
              "        os._exit(0)\n"
              "    if x == 1:\n"
              "        time.sleep(0.8)\n"
              "    return [x, os.path.exists('/tmp/left-behind')]\n")
    results = run(base_url, script, inputs=[0, 1, 2], limits={"wall_time_s": 5})["results"]
    assert results == [{"result": [x, False], "stdout": ""} for x in range(3)], results


def test_a_call_that_leaves_a_process_and_dies_still_gets_its_entry(base_url):
    # The call is killed (its own doing) while a process it started holds its pipes: the
    # batch learns of the end from the call's exit, not from its pipes' end-of-file.
    script = ("import os, signal, time\n"
              "def main(x):\n"
              "    if x == 0:\n"
              "        if os.fork() == 0:\n"
              "            time.sleep(30)\n"
              "            os._exit(0)\n"
              "        print('before', flush=True)\n"
              "        os.kill(os.getpid(), signal.SIGKILL)\n"
              "    return x\n")
    results = run(base_url, script, inputs=[0, 1], limits={"wall_time_s": 5})["results"]
    assert results == [{"error": "Script execution error: killed by signal SIGKILL", "stdout": "before\n",
                        "error_kind": "killed"}, {"result": 1, "stdout": ""}], results


def test_the_module_body_s_processes_outlive_the_calls(base_url):
    # What the module body started is the module's, like its objects: every call finds it.
    script = ("import os, time\n"
              "HELPER = os.fork()\n"
              "if HELPER == 0:\n"
              "    time.sleep(30)\n"
              "    os._exit(0)\n"
              "def main(x):\n"
              "    os.kill(HELPER, 0)\n"
              "    return open('/proc/%d/stat' % HELPER).read().split()[2] != 'Z'\n")
    results = run(base_url, script, inputs=[0, 1, 2])["results"]
    assert results == [{"result": True, "stdout": ""}] * 3, results


def test_a_call_that_closes_its_pipes_and_goes_on_is_timed_out_with_the_batch_kept(base_url):
    # End-of-file on both of a call's pipes without an entry is not its end: the batch waited
    # for its exit without a deadline, and the whole request ended in the worker's timeout,
    # the entries before it lost.
    script = ("import os, time\n"
              "def main(x):\n"
              "    if x == 1:\n"
              "        os.closerange(0, 64)\n"
              "        time.sleep(30)\n"
              "    return x\n")
    results = run(base_url, script, inputs=[0, 1, 2], limits={"wall_time_s": 2})["results"]
    assert results == [{"result": 0, "stdout": ""}] + [{"error": TIMEOUT_2S, "stdout": "",
                                                        "error_kind": "timeout"}] * 2, results


def test_each_call_has_the_process_limit_whatever_the_call_before_left(base_url):
    # Each call leaves as many sleeping processes (in sessions of their own) as the limit lets
    # it make. Were they left running, the next call could make none.
    script = ("import os, time\n"
              "def main(x):\n"
              "    made = 0\n"
              "    while made < 20:\n"
              "        try:\n"
              "            pid = os.fork()\n"
              "        except OSError:\n"
              "            break\n"
              "        if pid == 0:\n"
              "            os.setsid()\n"
              "            time.sleep(30)\n"
              "            os._exit(0)\n"
              "        made += 1\n"
              "    return made\n")
    results = run(base_url, script, inputs=[0, 1, 2], limits={"max_processes": 8})["results"]
    # A call shares the limit with the next one, forked ahead, unless it won the race for the
    # slot (that fork failed and is made again at its turn), and the last has none beside it:
    # one process more or less, never the few a call's leftovers would leave.
    made = [r["result"] for r in results]
    assert min(made) > 0 and max(made) - min(made) <= 1, results


def test_calls_that_ended_are_reaped_not_left_as_zombies(base_url):
    # Each call keeps 32 MiB to its exit, which then takes milliseconds to free: the next call
    # starts meanwhile. Each call counts the zombies it sees. Left unreaped, they piled up (one
    # every few calls here, 23 after 100 calls on a loaded machine), each one of the process
    # limit, until a call "could not start".
    script = ("import os\n"
              "KEEP = []\n"
              "def main(x):\n"
              "    KEEP.append(bytearray(32 << 20))\n"
              "    for i in range(0, len(KEEP[0]), 4096):\n"
              "        KEEP[0][i] = 1\n"
              "    zombies = 0\n"
              "    for pid in filter(str.isdigit, os.listdir('/proc')):\n"
              "        try:\n"
              "            with open(f'/proc/{pid}/stat') as f:\n"
              "                zombies += f.read().rsplit(')', 1)[1].split()[0] == 'Z'\n"
              "        except OSError:\n"
              "            pass\n"
              "    return zombies\n")
    results = run(base_url, script, inputs=list(range(40)), limits={"max_processes": 6})["results"]
    seen = [r.get("result") for r in results]
    # The call before this one may have exited since the runner last reaped: one or two, no pile.
    assert all(isinstance(z, int) for z in seen) and max(seen) <= 3, results


# A call's child writes an entry on the call's result pipe (any pipe above fd 3 but stdout's),
# then the call closes its output and every other pipe, as a call that means to run on would.
FORGE_ENTRY_AND_CLOSE = ("import os, time\n"
                         "def forge_entry_and_close():\n"
                         "    fds = {}\n"
                         "    for f in os.listdir('/proc/self/fd'):\n"
                         "        try:\n"
                         "            fds[int(f)] = os.readlink(f'/proc/self/fd/{f}')\n"
                         "        except OSError:\n"
                         "            pass\n"
                         "    if os.fork() == 0:\n"
                         "        for fd, link in fds.items():\n"
                         "            if fd > 3 and link.startswith('pipe:') and link != fds[1]:\n"
                         "                os.write(fd, b'{\"result\": \"forged\"}')\n"
                         "        os._exit(0)\n"
                         "    os.wait()\n"
                         "    for fd in [1, 2] + [fd for fd in fds if fd > 3]:\n"
                         "        try:\n"
                         "            os.close(fd)\n"
                         "        except OSError:\n"
                         "            pass\n")


def test_a_call_whose_entry_a_child_forged_does_not_run_on(base_url):
    # Call 0's child writes an entry on the call's result pipe; call 0 closes its pipes and goes
    # on, and writes a file during call 1. The entry it forged stands (it is the script's own
    # word), but the call is over: its process must not outlive it.
    script = (FORGE_ENTRY_AND_CLOSE +
              "def main(x):\n"
              "    if x == 1:\n"
              "        time.sleep(1.5)\n"
              "        return os.path.exists('/tmp/late')\n"
              "    forge_entry_and_close()\n"
              "    time.sleep(0.5)\n"
              "    with open('/tmp/late', 'w') as f:\n"
              "        f.write('call 0 ran on')\n"
              "    time.sleep(5)\n"
              "    return 'real'\n")
    results = run(base_url, script, inputs=[0, 1])["results"]
    assert results == [{"result": "forged", "stdout": ""}, {"result": False, "stdout": ""}], results


def test_a_call_whose_entry_a_child_forged_leaves_nothing_it_forks_after(base_url):
    # As above, but call 0 goes on forking children (each in a session of its own, each writing
    # a file later) until it is stopped: the look for strays after a call must come after that
    # call is killed, or what it forks between the look and the kill lives on into call 1.
    script = (FORGE_ENTRY_AND_CLOSE +
              "def main(x):\n"
              "    if x == 1:\n"
              "        time.sleep(1.5)\n"
              "        return sorted(os.listdir('/tmp'))\n"
              "    forge_entry_and_close()\n"
              "    n, end = 0, time.time() + 3\n"
              "    while time.time() < end:\n"
              "        try:\n"
              "            pid = os.fork()\n"
              "        except OSError:\n"
              "            continue\n"
              "        if pid == 0:\n"
              "            os.setsid()\n"
              "            time.sleep(0.8)\n"
              "            open(f'/tmp/late-{n}', 'w').close()\n"
              "            os._exit(0)\n"
              "        n += 1\n"
              "        try:\n"
              "            while os.waitpid(-1, os.WNOHANG)[0]:\n"
              "                pass\n"
              "        except ChildProcessError:\n"
              "            pass\n"
              "    return 'real'\n")
    # The race is the attacker's to win or lose: three tries (two in five won it before).
    for _ in range(3):
        results = run(base_url, script, inputs=[0, 1])["results"]
        assert results == [{"result": "forged", "stdout": ""}, {"result": [], "stdout": ""}], results


# What a call sees of the request's /tmp: every name, type, mode and file's bytes, walked
# without following links.
LOOK_AT_TMP = ("import os, stat\n"
               "def look():\n"
               "    seen = {}\n"
               "    for top, dirs, files in os.walk('/tmp'):\n"
               "        for name in sorted(dirs + files):\n"
               "            path = os.path.join(top, name)\n"
               "            st = os.lstat(path)\n"
               "            what = [oct(st.st_mode)]\n"
               "            if not stat.S_ISLNK(st.st_mode) and st.st_mode & 0o400:\n"
               "                what.append({n: os.getxattr(path, n).hex() for n in os.listxattr(path)})\n"
               "            if stat.S_ISLNK(st.st_mode):\n"
               "                what.append(os.readlink(path))\n"
               "            elif stat.S_ISREG(st.st_mode) and st.st_mode & 0o400:\n"
               "                with open(path, 'rb') as f:\n"
               "                    what.append(f.read().hex())\n"
               "            seen[path] = what\n"
               "    seen['/tmp'] = [oct(os.stat('/tmp').st_mode), {n: os.getxattr('/tmp', n).hex() for n in os.listxattr('/tmp')}]\n"
               "    return seen\n")


def test_no_call_sees_what_another_did_to_tmp(base_url):
    # Each call looks at /tmp, then does everything it can to it: a file of the module body
    # changed in place, through a shared mapping (which changes neither its times nor its
    # inode), made unreadable, removed, replaced; extended attributes set on a file, a
    # directory and /tmp itself; a directory locked; new files, directories, a POSIX shared
    # memory object. The next call must find /tmp as the module body left it, the request's
    # files included.
    script = (LOOK_AT_TMP +
              "import _posixshmem\n"
              "with open('/tmp/body.txt', 'w') as f: f.write('from the body')\n"
              "os.makedirs('/tmp/d/e')\n"
              "with open('/tmp/d/e/deep', 'wb') as f: f.write(bytes(range(256)) * 100)\n"
              "os.symlink('body.txt', '/tmp/link')\n"
              "os.chmod('/tmp/d', 0o750)\n"
              "def main(x):\n"
              "    before = look()\n"
              "    import mmap\n"
              "    with open('/tmp/body.txt', 'r+b') as f:\n"
              "        with mmap.mmap(f.fileno(), 4) as m: m[:4] = b'FROM'\n"
              "    tagged = []\n"
              "    for path in ('/tmp/body.txt', '/tmp/d', '/tmp'):\n"
              "        try:\n"
              "            os.setxattr(path, 'user.note', b'a call was here')\n"
              "            tagged.append(path)\n"
              "        except OSError:\n"
              "            pass\n"
              "    with open('/tmp/in.txt', 'a') as f: f.write(' and a call')\n"
              "    os.chmod('/tmp/d/e/deep', 0)\n"
              "    os.remove('/tmp/link')\n"
              "    os.symlink('/etc/passwd', '/tmp/link')\n"
              "    os.makedirs('/tmp/new/deeper')\n"
              "    with open('/tmp/new/deeper/x', 'w') as f: f.write('new')\n"
              "    os.chmod('/tmp/new/deeper', 0)\n"
              "    os.chmod('/tmp/d', 0o500)\n"
              "    _posixshmem.shm_open('/left', os.O_CREAT | os.O_RDWR, 0o600)\n"
              "    return [before, tagged]\n")
    results = run(base_url, script, inputs=[0, 1, 2], files={"in.txt": "from the request"})["results"]
    first, tagged = results[0]["result"]
    assert first["/tmp/body.txt"][1:] == [{}, b"from the body".hex()], first
    assert first["/tmp/in.txt"][2] == b"from the request".hex() and first["/tmp/link"][1] == "body.txt", first
    assert first["/tmp/d"] == ["0o40750", {}] and "/tmp/new" not in first and "/tmp/left" not in first, first
    assert [r["result"][0] for r in results] == [first] * 3, results
    # Where the kernel lets a call tag a file (tmpfs user xattrs: Linux 6.6 on), the next must not see it.
    assert all(r["result"][1] == tagged for r in results), results


def test_no_call_sees_the_sysv_objects_another_made(base_url):
    # SysV IPC is the request's (its IPC namespace): a segment or semaphore set a call made
    # would outlive it, seen by key by the next call, and hold memory against its limit.
    script = ("import ctypes, os\n"
              "libc = ctypes.CDLL(None, use_errno=True)\n"
              "IPC_CREAT = 0o1000\n"
              "BODY_SEGMENT = libc.shmget(1000, 4096, IPC_CREAT | 0o600)\n"
              "def main(x):\n"
              "    found = [libc.shmget(1000, 0, 0) == BODY_SEGMENT, libc.shmget(2000 + x, 0, 0) >= 0,\n"
              "             libc.semget(3000 + x, 0, 0) >= 0]\n"
              "    made = [libc.shmget(2000 + x + 1, 64 << 20, IPC_CREAT | 0o600) >= 0,\n"
              "            libc.semget(3000 + x + 1, 1, IPC_CREAT | 0o600) >= 0]\n"
              "    with open('/proc/sysvipc/shm') as f:\n"
              "        segments = len(f.read().splitlines()) - 1\n"
              "    return [found, made, segments]\n")
    results = run(base_url, script, inputs=[0, 1, 2])["results"]
    # Each call finds the module body's segment, not the one the call before made (its key is
    # 2000 + x), and counts two segments: the body's and its own.
    assert [r["result"] for r in results] == [[[True, False, False], [True, True], 2]] * 3, results


def test_a_call_s_threads_writing_as_it_ends_leave_nothing_for_the_next(base_url):
    # Call 0's threads write to /tmp without pause, in place and into new files, while main()
    # returns: the process ends with them mid-write. /tmp must be set back only once none of
    # them can finish a write, or what lands after the look would reach call 1. (That window,
    # a system call in flight as the process dies, did not show here without the wait for it,
    # _await_death: this holds the outcome, with threads, not the wait itself.)
    script = (LOOK_AT_TMP +
              "import threading\n"
              "with open('/tmp/body.txt', 'w') as f: f.write('from the body')\n"
              "def scribble(n):\n"
              "    fd = os.open('/tmp/body.txt', os.O_WRONLY)\n"
              "    i = 0\n"
              "    while True:\n"
              "        os.pwrite(fd, b'%013d' % i, 0)\n"
              "        with open(f'/tmp/t{n}-{i % 50}', 'wb') as f: f.write(b'x' * 65536)\n"
              "        i += 1\n"
              "def main(x):\n"
              "    if x == 0:\n"
              "        for n in range(4):\n"
              "            threading.Thread(target=scribble, args=(n,), daemon=True).start()\n"
              "        time.sleep(0.05)\n"
              "        return 'scribbling'\n"
              "    return look()\n")
    script = "import time\n" + script
    for _ in range(3):
        results = run(base_url, script, inputs=[0, 1])["results"]
        assert results[0] == {"result": "scribbling", "stdout": ""}, results
        seen = results[1]["result"]
        assert sorted(seen) == ["/tmp", "/tmp/body.txt"] and seen["/tmp/body.txt"][2] == b"from the body".hex(), seen


def test_no_call_changes_the_nice_value_affinity_or_limits_the_next_inherits(base_url):
    # The calls are forks of the runner, the module body's process, which every call can name
    # (its parent). Were a call let renice it, pin it to one CPU or lower its limits, every
    # later call would inherit that: a channel, and a priority no call can raise back. A
    # process may change these for itself only (its own calls still work).
    script = ("import os, resource\n"
              "def main(x):\n"
              "    seen = [os.getpriority(os.PRIO_PROCESS, 0), sorted(os.sched_getaffinity(0)),\n"
              "            resource.getrlimit(resource.RLIMIT_NOFILE)]\n"
              "    refused = []\n"
              "    for name, change in [\n"
              "            ('renice', lambda: os.setpriority(os.PRIO_PROCESS, os.getppid(), 19)),\n"
              "            ('renice all', lambda: os.setpriority(os.PRIO_USER, os.getuid(), 19)),\n"
              "            ('renice group', lambda: os.setpriority(os.PRIO_PGRP, os.getpgid(os.getppid()), 19)),\n"
              "            ('pin', lambda: os.sched_setaffinity(os.getppid(), {min(os.sched_getaffinity(0))})),\n"
              "            ('limit', lambda: resource.prlimit(os.getppid(), resource.RLIMIT_NOFILE, (20, 20)))]:\n"
              "        try:\n"
              "            change()\n"
              "        except PermissionError:\n"
              "            refused.append(name)\n"
              "    os.nice(1)\n"
              "    os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})\n"
              "    resource.setrlimit(resource.RLIMIT_NOFILE, (30, 30))\n"
              "    return [seen, refused, os.getpriority(os.PRIO_PROCESS, 0) == seen[0] + 1]\n")
    entries = run(base_url, script, inputs=[0, 1, 2])["results"]
    assert all("result" in e for e in entries), entries
    results = [e["result"] for e in entries]
    assert results[0][1] == ["renice", "renice all", "renice group", "pin", "limit"] and results[0][2], results
    assert results == results[:1] * 3, results


def test_a_call_that_floods_its_entry_pipe_loses_only_its_own_entry(base_url):
    # A call can find the pipe its entry goes back on (its one pipe beyond fds 1-3) and write
    # gigabytes to it from main(). The runner keeps an entry whole in its own memory, so it
    # must stop at the result limit: before, the runner ran out of memory and the whole batch
    # was lost ("Script exited with status 1 before main() returned").
    script = ("import os\n"
              "def main(v):\n"
              "    if v:\n"
              "        fds = [int(f) for f in os.listdir('/proc/self/fd') if int(f) > 3]\n"
              "        pipes = [f for f in fds if os.path.exists(f'/proc/self/fd/{f}')\n"
              "                 and os.readlink(f'/proc/self/fd/{f}').startswith('pipe:')]\n"
              "        chunk = b'x' * (1 << 20)\n"
              "        for _ in range(3000):\n"
              "            os.write(pipes[0], chunk)\n"
              "    return v\n")
    results = run(base_url, script, inputs=[1, 0, 2])["results"]
    assert results[1] == {"result": 0, "stdout": ""}, results
    for flooded in (results[0], results[2]):
        assert flooded["error_kind"] == "result_too_large", str(flooded)[:300]
        assert "result limit" in flooded["error"], flooded
