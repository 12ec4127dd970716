"""Concurrency: hostile requests at once over HTTP (the real service, both modes), and the
service keeps serving.

One file of the adversarial suite (issue 3): hostile scripts written by someone who has read
the source, each asserting the safe outcome the issue guarantees. tests/helpers.py lists the
suite's files and holds what they share; conftest.py the fixtures fast_config and mode.
"""

import concurrent.futures
import errno
import json
import os
import subprocess
import time

from helpers import NAME_SNIPPET, S, SYSCALL_SNIPPET, check_envelope, new_marker, post_execute, request, wait_seen


def http_run(base_url, script, timeout=60):
    status, headers, body = post_execute(base_url, script, timeout=timeout)
    assert status == 200, (status, body)
    return check_envelope(body)


class TestConcurrency:

    def test_two_hostile_requests_cannot_see_each_other(self, base_url):
        tag = new_marker()
        key = int(tag[3:11], 16) & 0x7FFFFFFF
        writer = SYSCALL_SNIPPET + NAME_SNIPPET + S('''
            import os, socket, time

            def main():
                set_name(@TAG@)
                open("/tmp/" + @TAG@, "w").write("secret")
                os.environ["ADV_SECRET"] = @TAG@
                s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                s.bind("\\0" + @TAG@)
                s.listen(5)
                with open("/dev/shm/" + @TAG@, "w") as f:
                    f.write("shm")
                shm = _libc.shmget(@KEY@, 4096, 0o1666)
                time.sleep(3)
                return {"shm": shm, "own_file": os.path.exists("/tmp/" + @TAG@)}
        ''').replace("@TAG@", repr(tag)).replace("@KEY@", str(key))
        reader = SYSCALL_SNIPPET + S('''
            import os, socket

            def main():
                seen = []
                if os.path.exists("/tmp/" + @TAG@) or os.path.exists("/dev/shm/" + @TAG@):
                    seen.append("file")
                if os.environ.get("ADV_SECRET"):
                    seen.append("env")
                for d in os.listdir("/proc"):
                    if d.isdigit():
                        try:
                            if @TAG@ in open("/proc/%s/comm" % d).read():
                                seen.append("process")
                        except OSError:
                            pass
                s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                try:
                    s.connect("\\0" + @TAG@)
                    seen.append("socket")
                except OSError:
                    pass
                if _libc.shmget(@KEY@, 0, 0) >= 0:
                    seen.append("sysv-shm")
                return {"seen": seen, "pids": sorted(int(d) for d in os.listdir("/proc") if d.isdigit())}
        ''').replace("@TAG@", repr(tag)).replace("@KEY@", str(key))
        with concurrent.futures.ThreadPoolExecutor(max_workers=2) as ex:
            fa = ex.submit(http_run, base_url, writer)
            if not wait_seen(tag, fa, within=8):
                time.sleep(1)  # a remote service: give the writer time to set up
            assert not fa.done(), fa.result()
            fb = ex.submit(http_run, base_url, reader)
            a, b = fa.result(), fb.result()
        assert a.get("result", {}).get("own_file") is True and a["result"]["shm"] >= 0, a
        assert b.get("result", {}).get("seen") == [], b
        assert b["result"]["pids"] == [1, 2], b

    def test_kill_storm_spares_the_neighbour(self, base_url):
        storm = S('''
            import os, signal

            def main():
                for pid in range(1, 1 << 17):
                    if pid != os.getpid():
                        try:
                            os.kill(pid, signal.SIGKILL)
                        except OSError:
                            pass
                try:
                    os.kill(-1, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        ''')
        calm = "import time\ndef main():\n    time.sleep(2)\n    print('still here')\n    return 42\n"
        with concurrent.futures.ThreadPoolExecutor(max_workers=4) as ex:
            fc = ex.submit(http_run, base_url, calm)
            time.sleep(0.3)
            storms = [ex.submit(http_run, base_url, storm) for _ in range(2)]
            assert fc.result() == {"result": 42, "stdout": "still here\n"}
            for f in storms:
                assert f.result() == {"result": None, "stdout": ""}

    def test_bombs_next_door_do_not_disturb(self, base_url):
        fork_bomb = S('''
            import os, time

            def main():
                t0 = time.monotonic()
                while time.monotonic() - t0 < 1.5:
                    try:
                        if os.fork() == 0:
                            while True:
                                try:
                                    os.fork()
                                except OSError:
                                    pass
                    except OSError:
                        pass
                return "bomb done"
        ''')
        memory_bomb = S('''
            import os

            def main():
                pids = []
                for i in range(4):
                    pid = os.fork()
                    if pid == 0:
                        b = bytearray(300 << 20)
                        for off in range(0, len(b), 4096):
                            b[off] = 1
                        os._exit(0)
                    pids.append(pid)
                for p in pids:
                    os.waitpid(p, 0)
                return bytearray(3 << 30)
        ''')
        flood = S('''
            import os

            def main():
                b = b"f" * 65536
                for i in range(1000):
                    os.write(1, b)
                return "flood"
        ''')
        disk = S('''
            def main():
                f = open("/tmp/fill", "wb")
                try:
                    while True:
                        f.write(b"x" * (1 << 20))
                        f.flush()
                except OSError as e:
                    return e.errno
        ''')
        normal = S('''
            import numpy as np, os

            def main():
                print("normal", os.listdir("/tmp"))
                return int(np.arange(1000).sum())
        ''')
        with concurrent.futures.ThreadPoolExecutor(max_workers=6) as ex:
            hostile = [ex.submit(http_run, base_url, s) for s in (fork_bomb, memory_bomb, flood, disk)]
            time.sleep(0.3)
            t0 = time.monotonic()
            nf = ex.submit(http_run, base_url, normal)
            assert nf.result() == {"result": 499500, "stdout": "normal []\n"}
            assert time.monotonic() - t0 < 8
            results = [f.result() for f in hostile]
        assert results[0].get("result") == "bomb done", results[0]
        assert results[1].get("error_kind") == "memory_limit", results[1]
        assert results[2].get("result") == "flood", results[2].get("error")
        assert results[2].get("stdout_truncated") is True
        assert results[3].get("result") in (27, 28), results[3]
        status, _, raw = request(base_url, "GET", "/health")
        assert status == 200 and json.loads(raw) == {"status": "healthy"}

    def test_concurrent_spoofers_get_their_own_answers(self, base_url):
        script = S('''
            import os

            def main():
                for fd in range(4, 64):
                    try:
                        os.write(fd, b'R"pwned"')
                    except OSError:
                        pass
                print("I am", @ID@)
                return @ID@
        ''')
        with concurrent.futures.ThreadPoolExecutor(max_workers=8) as ex:
            futs = {i: ex.submit(http_run, base_url, script.replace("@ID@", str(i))) for i in range(8)}
            for i, f in futs.items():
                assert f.result() == {"result": i, "stdout": "I am %d\n" % i}

    def test_next_request_sees_nothing_of_the_previous(self, base_url):
        tag = new_marker()
        dirty = S('''
            import builtins, json, os, random, sys
            import numpy as np

            def main():
                open("/tmp/" + @TAG@, "w").write("x")
                os.environ["ADV_TAG"] = @TAG@
                json.ADV_TAG = @TAG@
                builtins.ADV_TAG = @TAG@
                sys.modules["adv_evil"] = @TAG@
                sys.path.insert(0, "/tmp/" + @TAG@)
                random.seed(12345)
                np.random.seed(12345)
                os.chdir("/tmp")
                return "dirtied"
        ''').replace("@TAG@", repr(tag))
        check = S('''
            import builtins, json, os, random, sys
            import numpy as np

            def main():
                return {
                    "file": os.path.exists("/tmp/" + @TAG@),
                    "tmp": os.listdir("/tmp"),
                    "env": os.environ.get("ADV_TAG"),
                    "module": getattr(json, "ADV_TAG", None),
                    "builtin": getattr(builtins, "ADV_TAG", None),
                    "sysmod": "adv_evil" in sys.modules,
                    "path": any(@TAG@ in p for p in sys.path),
                    "random": random.random(),
                    "np_random": float(np.random.random_sample()),
                    "np_seeded": float(np.random.RandomState(12345).random_sample()),
                    "urandom": os.urandom(16).hex(),
                }
        ''').replace("@TAG@", repr(tag))
        first = http_run(base_url, dirty)
        assert first.get("result") == "dirtied", first
        import random as host_random
        seeded = host_random.Random(12345).random()
        answers = [http_run(base_url, check) for _ in range(8)]
        assert all("result" in a for a in answers), answers
        seen = [a["result"] for a in answers]
        for r in seen:
            assert (r["file"], r["tmp"], r["env"], r["module"], r["builtin"], r["sysmod"], r["path"]) == \
                (False, [], None, None, None, False, False), r
            assert r["random"] != seeded and r["np_random"] != r["np_seeded"], r
        assert len({r["random"] for r in seen}) == len(seen), "two requests drew the same random numbers"
        assert len({r["np_random"] for r in seen}) == len(seen), "two requests drew the same numpy numbers"
        assert len({r["urandom"] for r in seen}) == len(seen)

    def test_what_a_request_leaves_running_is_gone_before_the_next(self, base_url):
        # A worker's sandboxes may share one network namespace, one at a time (spawn.c): a
        # process the previous script left behind, holding an abstract unix socket, must be
        # dead before the next script starts, or the two could talk.
        tag = new_marker()
        leaver = S('''
            import os, socket, time

            def main():
                ready_r, ready_w = os.pipe()
                if os.fork() == 0:
                    os.setsid()
                    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                    s.bind("\\0" + @TAG@)
                    s.listen(5)
                    os.write(ready_w, b"x")
                    while True:
                        try:
                            s.accept()[0].sendall(b"left over")
                        except OSError:
                            time.sleep(0.01)
                os.read(ready_r, 1)
                return os.stat("/proc/self/ns/net").st_ino
        ''').replace("@TAG@", repr(tag))
        prober = S('''
            import os, socket

            def main():
                s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                try:
                    s.connect("\\0" + @TAG@)
                    return ["reached", s.recv(100).decode()]
                except OSError as e:
                    return [e.errno, os.stat("/proc/self/ns/net").st_ino]
        ''').replace("@TAG@", repr(tag))
        first = http_run(base_url, leaver)
        assert isinstance(first.get("result"), int), first
        # Which idle worker takes a connection is the kernel's choice (EPOLLEXCLUSIVE wakes them
        # in a fixed order), so probe until one lands on the leaver's worker, or enough have.
        probes = []
        while len(probes) < 12 or (len(probes) < 80 and first["result"] not in
                                   [p.get("result", [None, None])[1] for p in probes]):
            probes.append(http_run(base_url, prober))
        assert all("result" in p and p["result"][0] != "reached" for p in probes), probes
        assert all(p["result"][0] == errno.ECONNREFUSED for p in probes), probes
        # Either some probe ran in the leaver's (per-worker) namespace, and was refused there,
        # or every sandbox had a namespace of its own.
        namespaces = [p["result"][1] for p in probes]
        assert first["result"] in namespaces or len(set(namespaces)) == len(namespaces), (first, namespaces)

    def test_worker_descriptors_do_not_leak(self, base_url, request):
        # Needs the workers' PIDs, so always a local service, in the mode under test.
        warm = request.node.callspec.params.get("base_url", "warm") == "warm"
        svc = request.getfixturevalue("service" if warm else "cold_service")
        url = svc.url
        out = subprocess.run(["ps", "-eo", "pid=,sid=,args="], capture_output=True, text=True).stdout
        workers = [int(l.split()[0]) for l in out.splitlines()
                   if len(l.split()) >= 3 and int(l.split()[1]) == svc.proc.pid and "pyexec-worker" in l]
        assert workers, "no worker processes found"

        def fds():
            n = {}
            for w in workers:
                try:
                    n[w] = sorted(os.readlink("/proc/%d/fd/%s" % (w, fd)) for fd in os.listdir("/proc/%d/fd" % w))
                except OSError:
                    n[w] = None
            return n

        hostile = [
            "import os\ndef main():\n    os.close(3)\n    return 1\n",
            "import os\ndef main():\n    os.kill(os.getpid(), 9)\n",
            "def main():\n    return 'x' * (9 << 20)\n",
            "import os\ndef main():\n    fs = [os.dup(1) for _ in range(200)]\n    raise ValueError('x')\n",
            "def main():\n    return bytearray(3 << 30)\n",
            "import os\ndef main():\n    os.write(3, b'garbage')\n    os._exit(0)\n",
        ]
        # A worker may hold a few descriptors between requests (a sandbox prepared ahead, its
        # zygote's socket), so the count may move by one prepared sandbox's worth; a leak of
        # one descriptor per request would grow it by ~12 per worker over the last two rounds.
        with concurrent.futures.ThreadPoolExecutor(max_workers=4) as ex:
            rounds = []
            for i in range(3):
                list(ex.map(lambda s: http_run(url, s), hostile * 4))
                time.sleep(0.3)
                rounds.append(fds())
        first, last = rounds[0], rounds[-1]
        grown = {w: [t for t in last[w] if t not in first[w]] for w in workers
                 if last[w] is not None and first[w] is not None and len(last[w]) > len(first[w]) + 8}
        assert grown == {}, "descriptors the workers gained over 48 requests: %s" % grown
