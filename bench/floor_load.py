"""The load table's floor (bench.py): how many requests per second a machine could answer if
each one cost only what pyexec cannot avoid — a fresh fork of a warm python3 that has already
imported the script's libraries, the script compiled and run in it, main()'s result encoded as
JSON and read back through a pipe, and the fork's exit — with no sandbox, no HTTP, no nginx (and the script already run once in the warm process).
At concurrency c, c drivers (forks of the warm process) do that in a loop for the same time as a
wrk cell. The floor's req/s over the seeds' is the highest warm/seeds ratio any sandboxing
service built on a fork per request could reach here.

Run by bench.py as `/usr/bin/python3 -I bench/floor_load.py [MODULE...]`, one for each of the
load table's scripts with what pyexec's interpreter for it has imported (none for hello: a fork
of a bigger interpreter costs more). Imports them, prints "ready", then answers each stdin line
{"script", "concurrency", "seconds", "sandboxed"} with one JSON line: {"rps": ..., "requests": ...}
or {"error": ...}.

sandboxed: the same, but each request's fork is made in the fresh namespaces pyexec makes per
request (user, PID, mount, IPC, UTS, cgroup; the network namespace is the worker's, see the
README's security model), born in cgroups of each of pyexec's controllers (v1 memory, pids and
cpuacct; one cgroup on v2) that its driver made once and lives in — as pyexec's forker lives in
the cgroups its worker lends to one sandbox after another. Nothing else: no root, no seccomp, no
rlimits, no HTTP. The issue asks for namespaces per request ("brand-new namespaces that die with
it"), so its req/s over the seeds' is the highest warm/seeds ratio that a service keeping that
promise as pyexec does could reach on this machine, whatever else it did better.
"""
import ctypes
import gc
import importlib
import json
import os
import sys
import time

# clone(2)'s flags: the namespaces pyexec makes for each request (user, PID, mount, IPC, UTS,
# cgroup), and SIGCHLD as fork's.
NAMESPACES = 0x10000000 | 0x20000000 | 0x00020000 | 0x08000000 | 0x04000000 | 0x02000000
SIGCHLD = 17
SYS_CLONE = {"x86_64": 56, "aarch64": 220}.get(os.uname().machine)
CONTROLLERS = ("memory", "pids", "cpuacct")  # pyexec's v1 controllers (sandbox/cgroup.c)
_libc = ctypes.CDLL(None, use_errno=True)
_libc.syscall.restype = ctypes.c_long


def cgroup_parents():
    """Where a request's cgroups go: this process's own cgroup in each of pyexec's v1
    controllers, or its v2 cgroup."""
    with open("/proc/self/cgroup") as f:
        lines = [line.rstrip("\n").split(":", 2) for line in f]
    parents = []
    for name in CONTROLLERS:
        for _, controllers, path in lines:
            if name in controllers.split(",") and os.path.isdir(f"/sys/fs/cgroup/{name}"):
                parents.append(f"/sys/fs/cgroup/{name}{path.rstrip('/')}")
    if not parents:
        parents = [f"/sys/fs/cgroup{path.rstrip('/')}" for hid, _, path in lines if hid == "0"]
    return parents


def fork_sandboxed():
    """fork() into fresh namespaces: clone(2) with the namespace flags and no new stack, which
    returns twice as fork does (the caller is single-threaded: OPENBLAS_NUM_THREADS=1)."""
    pid = _libc.syscall(SYS_CLONE, ctypes.c_ulong(NAMESPACES | SIGCHLD), None, None, None, None)
    if pid < 0:
        raise OSError(ctypes.get_errno(), "clone with new namespaces")
    return pid


def request(script, sandboxed=False):
    """One request's unavoidable work (sandboxed: in fresh namespaces, born in its driver's
    cgroups); True when main() answered."""
    r, w = os.pipe()
    pid = fork_sandboxed() if sandboxed else os.fork()
    if pid == 0:
        os.close(r)
        try:
            module = type(sys)("script")
            exec(compile(script, "<script>", "exec"), module.__dict__)
            os.write(w, json.dumps({"result": module.main()}).encode())
        finally:
            os._exit(0)
    os.close(w)
    answer = b""
    while chunk := os.read(r, 65536):
        answer += chunk
    os.close(r)
    os.waitpid(pid, 0)
    return answer.startswith(b'{"result"')


def driver_cgroups(parents, driver_pid):
    """The cgroups a driver's requests are born in, one below each parent: as pyexec lends a
    worker's cgroups to one sandbox after another, whose forker lives in them."""
    return [os.path.join(parent, f"floor-{driver_pid}") for parent in parents]


def driver(script, seconds, w, cgroups):
    """In a fork of the warm process: requests in a loop until the time is up; writes the count."""
    n, end = 0, time.monotonic() + seconds
    try:
        for path in driver_cgroups(cgroups or [], os.getpid()):
            os.mkdir(path)
            with open(os.path.join(path, "cgroup.procs"), "w") as f:
                f.write("0")
        while time.monotonic() < end:
            if not request(script, sandboxed=cgroups is not None):
                n = -1
                break
            n += 1
    except OSError as exc:  # a cgroup or namespace it could not make: no floor rather than a wrong one
        print(f"floor_load: {exc}", file=sys.stderr, flush=True)
        n = -1
    finally:
        os.write(w, f"{n}\n".encode())
        os._exit(0)


def warm_up(script):
    """The script once in the warm process itself, then its objects frozen out of the collector's
    reach: its forks find every code path the script takes already run, more than pyexec's
    interpreters can know in advance; the floor is then the most favourable one."""
    module = type(sys)("script")
    exec(compile(script, "<script>", "exec"), module.__dict__)
    module.main()
    gc.collect()
    gc.freeze()


def load(script, concurrency, seconds, sandboxed=False):
    warm_up(script)
    cgroups = cgroup_parents() if sandboxed else None
    pipes, pids = [], []
    started = time.monotonic()
    for _ in range(concurrency):
        r, w = os.pipe()
        pid = os.fork()
        if pid == 0:
            os.close(r)
            driver(script, seconds, w, cgroups)
        os.close(w)
        pipes.append(r)
        pids.append(pid)
    counts = []
    for r, pid in zip(pipes, pids):
        with os.fdopen(r) as f:
            counts.append(int(f.read().strip() or -1))
        os.waitpid(pid, 0)
        for path in driver_cgroups(cgroups or [], pid):
            if os.path.isdir(path):
                os.rmdir(path)
    elapsed = time.monotonic() - started
    if min(counts) < 0:
        return {"error": "a request of the floor failed"}
    return {"rps": sum(counts) / elapsed, "requests": sum(counts)}


def main():
    for module in sys.argv[1:]:
        importlib.import_module(module)
    print("ready", flush=True)
    for line in sys.stdin:
        ask = json.loads(line)
        print(json.dumps(load(ask["script"], ask["concurrency"], ask["seconds"], ask.get("sandboxed", False))),
              flush=True)


if __name__ == "__main__":
    main()
