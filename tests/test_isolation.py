"""What an attacker who read the source tried next (issue 10): host secrets in the script's
memory, per-user kernel budgets shared between sandboxes and with the host, channels between
concurrent requests, and CPU time counted per process instead of per request.

Each test runs the attack and checks that it fails. They run against services started here
with a canary in the environment of the process that starts the pool (as an operator's
credentials would be), in warm and cold mode."""
import concurrent.futures
import ctypes
import errno
import json
import os
import re
import signal
import subprocess
import textwrap
import time

import pytest

from helpers import PYEXEC_RUN, ROOT, Service, config_with, post_execute, stop_service

CANARY = "PYEXEC-CANARY-7f3a9c1e"


@pytest.fixture(scope="module", params=["warm", "cold"])
def svc(request, tmp_path_factory):
    """A pool of 2 workers started with the canary in its environment."""
    conf = config_with(str(tmp_path_factory.mktemp("conf")), warm=1 if request.param == "warm" else 0,
                       workers=2, cpu_time_s=2, wall_time_s=20)
    service = Service(config=conf, env={"PYEXEC_TEST_SECRET": CANARY})
    yield service
    stop_service(service)


def run(svc, script, timeout=60):
    status, headers, body = post_execute(svc.url, textwrap.dedent(script).lstrip("\n"), timeout=timeout)
    assert status == 200, body
    return body


def result(svc, script):
    body = run(svc, script)
    assert "result" in body, body
    return body["result"]


# ---- host secrets -------------------------------------------------------------------------------

LOOK_AROUND = r'''
import ctypes, os, struct

def main():
    libc = ctypes.CDLL(None)
    libc.prctl(4, 1, 0, 0, 0)  # PR_SET_DUMPABLE: /proc/self/environ and mem readable again
    out = {"environ": open("/proc/self/environ", "rb").read().decode("latin1"),
           "exe": os.readlink("/proc/self/exe"), "cmdline": open("/proc/self/cmdline", "rb").read().decode("latin1")}
    maps = open("/proc/self/maps").read().splitlines()
    out["paths"] = sorted({l.split()[5] for l in maps if len(l.split()) > 5})
    lo, hi = (int(x, 16) for x in [l for l in maps if l.endswith("[stack]")][0].split()[0].split("-"))
    with open("/proc/self/mem", "rb") as f:
        f.seek(lo)
        out["stack"] = f.read(hi - lo).decode("latin1")
    auxv = open("/proc/self/auxv", "rb").read()
    entries = dict(struct.unpack("QQ", auxv[i:i + 16]) for i in range(0, len(auxv), 16))
    out["execfn"] = ctypes.string_at(entries[31]).decode("latin1")  # AT_EXECFN
    out["unix"] = open("/proc/net/unix").read().splitlines()[1:]
    out["usr"] = sorted(os.listdir("/usr"))
    return out
'''


def test_no_byte_of_the_host_environment_or_install_paths(svc):
    r = result(svc, LOOK_AROUND)
    for where in ("environ", "stack", "cmdline", "exe", "execfn"):
        assert CANARY not in r[where], where
        assert ROOT not in r[where], (where, r[where][:200] if where != "stack" else "")
    assert "PYEXEC_TEST_SECRET" not in r["environ"] + r["stack"]
    for path in r["paths"]:
        assert path.startswith(("/usr/", "/memfd:", "[", "(deleted)")), path
    assert r["execfn"] in ("/usr/bin/python3",) or r["execfn"].startswith("/dev/fd/"), r["execfn"]
    # Nothing of the worker's own sockets (its zygotes') in the network namespace it shares.
    assert r["unix"] == [], r["unix"]


def test_only_what_python_needs_of_usr(svc):
    r = result(svc, LOOK_AROUND)
    assert r["usr"] == ["bin", "lib", "lib64", "share"], r["usr"]


def live_processes():
    """(pid, ppid, comm) of every process but zombies: a zombie waits for its parent to reap it
    (a worker reaps a killed init factory only when it next needs one) and has no namespaces,
    memory or exe left to read."""
    out = subprocess.run(["ps", "-eo", "pid=,ppid=,stat=,comm="], capture_output=True, text=True).stdout
    rows = [line.split(None, 3) for line in out.splitlines()]
    return [(int(pid), int(ppid), comm.strip()) for pid, ppid, stat, comm in rows if not stat.startswith("Z")]


def inits_of(svc):
    """Host pids of the sandboxes' live init processes of this service: children named init of
    its workers."""
    procs = live_processes()
    workers = {pid for pid, ppid, comm in procs if comm == "pyexec-worker"
               and (svc.run_dir in open(f"/proc/{pid}/cmdline", "rb").read().decode("latin1", "replace")
                    or _session(pid) == svc.proc.pid)}
    return [pid for pid, ppid, comm in procs if comm == "init" and ppid in workers]


def _session(pid):
    try:
        return int(open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()[3])
    except (OSError, IndexError, ValueError):
        return -1


def readable_memory(pid):
    data = []
    with open(f"/proc/{pid}/maps") as maps, open(f"/proc/{pid}/mem", "rb") as mem:
        for line in maps:
            lo, hi = (int(x, 16) for x in line.split()[0].split("-"))
            if "r" not in line.split()[1] or "[vsyscall]" in line:
                continue
            try:
                mem.seek(lo)
                data.append(mem.read(hi - lo))
            except OSError:
                pass
    return b"".join(data)


def test_init_never_holds_an_earlier_request(svc):
    """init is PID 1 of every sandbox; started as a copy of the worker it held the bodies,
    scripts and outputs of the worker's earlier requests."""
    marker = "EARLIER-REQUEST-%d" % time.monotonic_ns()
    for _ in range(4):  # reaches both workers
        run(svc, f"def main():\n    print({marker!r})\n    return {marker!r}\n")
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        slow = [pool.submit(run, svc, "import time\ndef main():\n    time.sleep(2)\n") for _ in range(2)]
        time.sleep(0.8)
        inits = inits_of(svc)
        assert inits, "no init process found"
        for pid in inits:
            memory = readable_memory(pid)
            assert marker.encode() not in memory, f"init {pid} holds an earlier request"
            assert CANARY.encode() not in memory, f"init {pid} holds the host's environment"
            assert os.readlink(f"/proc/{pid}/exe").startswith("/memfd:pyexec-init")
        for f in slow:
            f.result()


def test_tmp_and_proc_are_each_requests_own_and_the_rest_the_workers_template(svc):
    """Every request mounts a /tmp and a /proc of its own; the rest of its root is bound from
    the read-only template its worker's init factory built once (sandbox/mounts.c), so its
    file system is one of the two workers' and lives as long as they do."""
    script = ("import os\ndef main():\n"
              "    seen = sorted(os.listdir('/tmp'))\n"
              "    open('/tmp/left-behind', 'w').write('x')\n"
              "    return {'devs': [os.stat(p).st_dev for p in ('/', '/etc/passwd', '/dev', '/tmp', '/proc')],\n"
              "            'tmp': seen, 'pids': sorted(int(d) for d in os.listdir('/proc') if d.isdigit())}\n")
    seen = [result(svc, script) for _ in range(8)]
    assert all(r["tmp"] == [] for r in seen), seen
    assert all(r["pids"] == [1, 2] for r in seen), seen
    # (Device numbers of ended file systems are reused: only those alive together differ.)
    assert all(len(set(r["devs"][2:])) == 3 and r["devs"][0] not in r["devs"][2:] for r in seen), seen
    root, etc, dev = (set(column) for column in list(zip(*(r["devs"] for r in seen)))[:3])
    assert root == etc and 1 <= len(root) <= 2 and 1 <= len(dev) <= 2, seen


# ---- budgets the kernel keeps per user ----------------------------------------------------------

def in_parallel(svc, first, second, head_start=0.6):
    """Runs first, and second once first has had head_start seconds (on the other worker)."""
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        a = pool.submit(run, svc, first)
        time.sleep(head_start)
        b = pool.submit(run, svc, second)
        return a.result(), b.result()


def test_descriptors_in_flight_do_not_starve_a_neighbour(svc):
    hog = '''
        import os, socket, time
        def main():
            a, b = socket.socketpair()
            sent = 0
            try:
                while sent < 2000:
                    socket.send_fds(a, [b"x"], [0])
                    sent += 1
            except OSError as e:
                err = e.errno
            time.sleep(2.5)
            return [sent, err]
    '''
    neighbour = '''
        import socket
        def main():
            a, b = socket.socketpair()
            socket.send_fds(a, [b"x"], [0])
            return "passed a descriptor"
    '''
    hogged, other = in_parallel(svc, hog, neighbour)
    assert hogged["result"][1] == errno.ETOOMANYREFS, hogged  # its own budget ran out
    assert other.get("result") == "passed a descriptor", other


def test_pipe_buffers_do_not_shrink_a_neighbours(svc):
    hog = '''
        import fcntl, os, time
        def main():
            pipes = []
            for _ in range(120):
                r, w = os.pipe()
                try:
                    fcntl.fcntl(w, fcntl.F_SETPIPE_SZ, 1 << 20)
                except OSError:
                    break
                pipes.append((r, w))
            time.sleep(2.5)
            return len(pipes)
    '''
    neighbour = '''
        import fcntl, os
        def main():
            r, w = os.pipe()
            return fcntl.fcntl(w, fcntl.F_GETPIPE_SZ)
    '''
    hogged, other = in_parallel(svc, hog, neighbour)
    assert "result" in hogged, hogged
    assert other.get("result") == 65536, other


def test_no_inotify_and_a_bounded_number_of_timers(svc):
    r = result(svc, '''
        import ctypes, resource
        def main():
            libc = ctypes.CDLL(None, use_errno=True)
            inotify = libc.inotify_init1(0)
            inotify_errno = ctypes.get_errno()
            timer, n = ctypes.c_void_p(), 0
            while n < 100000 and libc.timer_create(1, None, ctypes.byref(timer)) == 0:
                n += 1
            return [inotify, inotify_errno, n, ctypes.get_errno(), resource.getrlimit(resource.RLIMIT_SIGPENDING)]
    ''')
    assert r[:2] == [-1, errno.EPERM], r
    assert r[2] <= 256 and r[3] == errno.EAGAIN and r[4] == [256, 256], r
    libc = ctypes.CDLL(None, use_errno=True)  # and the host's root still may
    fd = libc.inotify_init1(0)
    assert fd >= 0, ctypes.get_errno()
    os.close(fd)


def test_page_cache_probes_are_refused(svc):
    r = result(svc, '''
        import os
        def main():
            fd = os.open("/usr/lib/python3.11/os.py", os.O_RDONLY)
            out = []
            try:
                os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
                out.append("evicted")
            except OSError as e:
                out.append(e.errno)
            try:
                os.preadv(fd, [bytearray(16)], 0, os.RWF_NOWAIT)
                out.append("probed")
            except OSError as e:
                out.append(e.errno)
            out.append(os.preadv(fd, [bytearray(16)], 0, 0))  # without the flag: fine
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_SEQUENTIAL)  # other advice: fine
            return out
    ''')
    assert r == [errno.EPERM, errno.EOPNOTSUPP, 16], r


def test_one_file_the_size_of_tmp_says_enospc(svc):
    r = result(svc, '''
        def main():
            with open("/tmp/big", "wb") as f:
                try:
                    for i in range(100):
                        f.write(b"x" * (1 << 20))
                        f.flush()
                except OSError as e:
                    return [i, e.errno]
    ''')
    assert r == [64, errno.ENOSPC], r


# ---- CPU time is the request's, not each process's ----------------------------------------------

def cgroups_v1_available():
    return all(os.path.isdir(f"/sys/fs/cgroup/{c}") for c in ("memory", "pids", "cpuacct"))


@pytest.mark.skipif(not cgroups_v1_available(), reason="no cgroup v1 memory/pids/cpuacct here: CPU is per process")
def test_cpu_time_of_all_processes_counts_against_the_limit(svc):
    """4 processes that each stay under the 2 s RLIMIT_CPU, 6 s of CPU together."""
    status, headers, body = post_execute(svc.url, textwrap.dedent('''
        import os, time
        def burn(seconds):
            end = time.process_time() + seconds
            while time.process_time() < end:
                pass
        def main():
            for _ in range(3):
                if os.fork() == 0:
                    burn(1.5)
                    os._exit(0)
            burn(1.5)
            while True:
                try:
                    os.wait()
                except ChildProcessError:
                    return "6 s of CPU used"
    '''), timeout=60)
    assert body.get("error_kind") == "timeout", body
    assert body["error"] == "Script execution timed out (2 seconds)", body
    assert int(headers["x-pyexec-cpu-ms"]) >= 2000, headers


def test_uid_base_meeting_a_host_user_is_refused(tmp_path):
    conf = tmp_path / "c.conf"
    conf.write_text("uid_base = 1\n")  # meets daemon (1), bin (2), ...
    p = subprocess.run([PYEXEC_RUN, "-c", str(conf), "-"], input=b"def main(): pass\n", capture_output=True,
                       timeout=30)
    assert p.returncode != 0
    assert b"uid_base" in p.stderr and b"/etc/passwd" in p.stderr, p.stderr


def _init_factories(svc):
    """The live pyexec-init factories of svc's pool (its workers' children in its session)."""
    factories = [pid for pid, ppid, comm in live_processes()
                 if comm == "pyexec-initd" and _session(pid) == svc.proc.pid]
    assert factories, "no init factory found"
    return factories


def test_a_killed_init_factory_is_replaced(svc):
    """Each worker's pyexec-init factory clones its sandboxes' inits; killed, the next request
    still runs (the worker starts a new one)."""
    for i in range(3):  # cold workers start theirs with their first sandbox
        result(svc, "def main():\n    return 0\n")
    factories = _init_factories(svc)
    for pid in factories:
        os.kill(pid, signal.SIGKILL)
    for i in range(4):
        assert result(svc, f"def main():\n    return {i}\n") == i


def test_init_factories_keep_none_of_the_hosts_mounts_but_root_and_proc(svc):
    """Each init's namespace is a copy of its factory's: of the host's mounts the factory keeps
    only / (each init pivots away from it) and /proc (a user namespace may mount a new procfs
    only where one is fully visible), the rest detached once the template is built (fewer
    mounts copied per request, none of the host's /sys or /dev reachable before the pivot)."""
    for i in range(3):
        result(svc, "def main():\n    return 0\n")
    factories = _init_factories(svc)
    for pid in factories:
        with open(f"/proc/{pid}/mountinfo") as f:
            points = [line.split()[4] for line in f]
        host = [p for p in points if p not in ("/", "/proc") and not p.startswith(("/proc/", "/tmp"))]
        assert not host, (pid, host)
        assert "/proc" in points and "/tmp/usr/lib" in points, points
