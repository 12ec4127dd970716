"""Resource exhaustion: fork and thread bombs, memory in every shape, disk, descriptors,
stdout/stderr floods, huge results, CPU.

One file of the adversarial suite (issue 3): hostile scripts written by someone who has read
the source, each asserting the safe outcome the issue guarantees. tests/helpers.py lists the
suite's files and holds what they share; conftest.py the fixtures fast_config and mode.
"""

import base64
import time
import zlib

import pytest

from helpers import (FAST_WALL_S, MEMORY_MSG, NAME_SNIPPET, S, SYSCALL_SNIPPET, MiB, cgroups_v1_available, memory_spread_script,
                     new_marker, run_err, run_ok, run_script, wait_gone)


class TestResourceExhaustion:

    def test_fork_bomb_is_capped_and_cleaned_up(self, fast_config, mode):
        marker = new_marker()
        script = NAME_SNIPPET + S('''
            import os, time

            def bomb(tag):
                try:
                    set_name(tag)
                    while True:
                        try:
                            os.fork()
                        except OSError:
                            time.sleep(0.001)
                finally:
                    os._exit(0)

            def main():
                tag = "MARK" + "ER"
                forked = failed = 0
                t0 = time.monotonic()
                while time.monotonic() - t0 < 1.0:
                    try:
                        pid = os.fork()
                    except OSError:
                        failed += 1
                        time.sleep(0.005)
                        continue
                    if pid == 0:
                        bomb(tag)
                    forked += 1
                alive = sum(1 for d in os.listdir("/proc") if d.isdigit())
                return {"forked": forked, "failed": failed, "alive": alive}
        ''').replace('"MARK" + "ER"', repr(marker[:7]) + " + " + repr(marker[7:]))
        body = run_ok(script, config=fast_config, mode=mode)
        r = body["result"]
        assert r["failed"] > 0, r
        assert r["alive"] <= 64 + 2, r
        assert wait_gone(marker) == [], "fork-bomb processes survived the request"

    def test_thread_bomb_fails_precisely(self):
        script = S('''
            import threading

            def main():
                threading.stack_size(256 * 1024)
                ev = threading.Event()
                threads, err = [], None
                for i in range(100000):
                    t = threading.Thread(target=ev.wait)
                    try:
                        t.start()
                    except RuntimeError as e:
                        err = str(e)
                        break
                    threads.append(t)
                ev.set()
                for t in threads:
                    t.join()
                return {"count": len(threads), "error": err}
        ''')
        r = run_ok(script)["result"]
        assert r["error"] == "can't start new thread", r
        assert r["count"] < 64 + 2, r

    def test_spinning_threads_hit_the_cpu_limit(self, fast_config):
        script = S('''
            import threading

            def spin():
                while True:
                    pass

            def main():
                for i in range(8):
                    threading.Thread(target=spin, daemon=True).start()
                spin()
        ''')
        t0 = time.monotonic()
        body = run_err(script, "timeout", config=fast_config)
        assert time.monotonic() - t0 < FAST_WALL_S + 3
        assert body["error"].startswith("Script execution timed out"), body

    def test_cpu_burn_ignoring_sigxcpu_times_out(self, fast_config):
        script = S('''
            import signal

            def main():
                signal.signal(signal.SIGXCPU, signal.SIG_IGN)
                while True:
                    pass
        ''')
        t0 = time.monotonic()
        run_err(script, "timeout", config=fast_config)
        assert time.monotonic() - t0 < FAST_WALL_S + 3

    def test_sleeping_forever_times_out(self, fast_config):
        t0 = time.monotonic()
        body = run_err("import time\ndef main():\n    print('zz', flush=True)\n    time.sleep(1000)\n", "timeout",
                       config=fast_config)
        elapsed = time.monotonic() - t0
        assert FAST_WALL_S - 0.5 <= elapsed < FAST_WALL_S + 3, elapsed
        assert body["stdout"] == "zz\n"

    def test_memory_one_huge_allocation(self):
        body = run_err("def main():\n    b = bytearray(3 << 30)\n    return len(b)\n", "memory_limit")
        assert body["error"] == MEMORY_MSG

    def test_memory_gradual_growth(self):
        script = S('''
            def main():
                hoard = []
                while True:
                    hoard.append(b"m" * (4 << 20))
        ''')
        assert run_err(script, "memory_limit")["error"] == MEMORY_MSG

    def test_memory_blowup_in_module_body(self):
        body = run_err("x = 'y' * (5 << 30)\ndef main():\n    return 1\n", "memory_limit")
        assert body["error"] == MEMORY_MSG

    def test_memory_numpy_allocation_in_c(self):
        script = "import numpy as np\ndef main():\n    a = np.ones((40000, 40000))\n    return float(a.sum())\n"
        assert run_err(script, "memory_limit")["error"] == MEMORY_MSG

    def test_memory_decompression_bomb(self):
        # 768 MiB of zeros, deflated twice: 10 KiB of script, a failed allocation inside zlib.
        c = zlib.compressobj(1)
        zero = bytes(MiB)
        inner = b"".join([c.compress(zero) for _ in range(768)] + [c.flush()])
        blob = base64.b64encode(zlib.compress(inner, 9)).decode()
        script = S('''
            import base64, zlib
            BLOB = "%s"
            def main():
                data = zlib.decompress(zlib.decompress(base64.b64decode(BLOB)))
                return len(data)
        ''') % blob
        assert run_err(script, "memory_limit")["error"] == MEMORY_MSG

    def test_memory_spread_over_processes_is_limited_as_a_whole(self, mode):
        # RLIMIT_AS is per process: four children of 300 MiB each stay under it but take
        # 1.2 GiB together. Only the request's memory cgroup can stop this.
        if not cgroups_v1_available():
            pytest.skip("this machine has no cgroup v1 memory+pids hierarchies")
        script = memory_spread_script(300)
        body = run_err(script, "memory_limit", mode=mode)
        assert body["error"] == MEMORY_MSG

    def test_memory_in_memfds_outside_tmp(self):
        # memfds are not in /tmp, so its 64 MiB do not bound them; each is only capped by
        # RLIMIT_FSIZE, and 40 of them hold 2 GiB outside every process's address space.
        script = S('''
            import os

            def main():
                chunk = b"f" * (1 << 20)
                fds, total, err = [], 0, None
                try:
                    for i in range(40):
                        fd = os.memfd_create("fill%d" % i)
                        fds.append(fd)
                        for j in range(50):
                            total += os.write(fd, chunk)
                except OSError as e:
                    err = e.errno
                return {"mib": total >> 20, "errno": err}
        ''')
        body = run_script(script)
        if "result" in body:
            assert body["result"]["mib"] < 1024, body["result"]
        else:
            assert body["error_kind"] == "memory_limit", body

    def test_memory_in_detached_sysv_segments(self):
        # Touch a segment, detach it: the memory stays allocated but leaves the address space,
        # so RLIMIT_AS never sees it.
        script = SYSCALL_SNIPPET + S('''
            import ctypes

            def main():
                _libc.shmat.restype = ctypes.c_void_p
                size = 128 << 20
                kept, err = 0, None
                for i in range(16):
                    sid = _libc.shmget(0, ctypes.c_size_t(size), 0o1600)
                    if sid < 0:
                        err = ("shmget", ctypes.get_errno())
                        break
                    addr = _libc.shmat(sid, None, 0)
                    if addr in (None, ctypes.c_void_p(-1).value):
                        err = ("shmat", ctypes.get_errno())
                        break
                    ctypes.memset(addr, 7, size)
                    _libc.shmdt(ctypes.c_void_p(addr))
                    kept += size
                return {"mib": kept >> 20, "err": err}
        ''')
        body = run_script(script)
        if "result" in body:
            assert body["result"]["mib"] < 1024, body["result"]
        else:
            assert body["error_kind"] == "memory_limit", body

    def test_disk_fill_tmp(self):
        script = S('''
            def main():
                chunk = b"d" * (1 << 20)
                written, err = 0, None
                try:
                    with open("/tmp/fill", "wb", buffering=0) as f:
                        while True:
                            written += f.write(chunk)
                except OSError as e:
                    err = e.errno
                return {"written": written, "errno": err}
        ''')
        r = run_ok(script)["result"]
        assert r["errno"] in (27, 28), r
        assert r["written"] <= 64 * MiB, r

    def test_disk_fill_across_many_files_and_dev_shm(self):
        script = S('''
            import os

            def main():
                chunk = b"s" * (1 << 20)
                written, err = 0, None
                try:
                    for i in range(200):
                        d = "/dev/shm" if i % 2 else "/tmp"
                        with open("%s/f%d" % (d, i), "wb", buffering=0) as f:
                            for j in range(2):
                                written += f.write(chunk)
                except OSError as e:
                    err = e.errno
                return {"written": written, "errno": err}
        ''')
        r = run_ok(script)["result"]
        assert r["errno"] == 28, r
        assert r["written"] <= 64 * MiB, r

    def test_disk_fill_inodes(self):
        script = S('''
            import os

            def main():
                n, err = 0, None
                try:
                    while True:
                        os.mkdir("/tmp/d%d" % n)
                        n += 1
                except OSError as e:
                    err = e.errno
                return {"n": n, "errno": err}
        ''')
        r = run_ok(script)["result"]
        assert r["errno"] == 28 and r["n"] <= 4096, r

    def test_descriptor_flood(self):
        script = S('''
            import os, socket

            def main():
                got, err = [], None
                try:
                    while True:
                        a, b = socket.socketpair(socket.AF_UNIX)
                        got += [a, b]
                        got.append(os.pipe())
                except OSError as e:
                    err = e.errno
                return {"n": len(got), "errno": err}
        ''')
        r = run_ok(script)["result"]
        assert r["errno"] == 24, r
        assert r["n"] < 256, r

    def test_raising_limits_is_refused(self):
        script = S('''
            import resource

            def main():
                raised = []
                for name in ("RLIMIT_NOFILE", "RLIMIT_NPROC", "RLIMIT_AS", "RLIMIT_CPU", "RLIMIT_FSIZE",
                             "RLIMIT_CORE", "RLIMIT_MEMLOCK", "RLIMIT_STACK", "RLIMIT_MSGQUEUE"):
                    res = getattr(resource, name)
                    soft, hard = resource.getrlimit(res)
                    try:
                        resource.setrlimit(res, (resource.RLIM_INFINITY, resource.RLIM_INFINITY))
                        raised.append(name)
                    except (ValueError, OSError):
                        pass
                    if hard != resource.RLIM_INFINITY:
                        try:
                            resource.setrlimit(res, (hard + 1, hard + 1))
                            raised.append(name + "+1")
                        except (ValueError, OSError):
                            pass
                return raised
        ''')
        assert run_ok(script)["result"] == []

    def test_stdout_flood_is_truncated_and_the_result_kept(self):
        script = S('''
            import sys

            def main():
                block = "o" * 65536
                for i in range(320):
                    sys.stdout.write(block)
                return "after the flood"
        ''')
        body = run_ok(script)
        assert body["result"] == "after the flood"
        assert body.get("stdout_truncated") is True
        assert body["stdout"] == "o" * MiB

    def test_stdout_flood_from_child_processes(self):
        script = S('''
            import os

            def main():
                pids = []
                for i in range(8):
                    pid = os.fork()
                    if pid == 0:
                        block = b"c" * 65536
                        for j in range(64):
                            os.write(1, block)
                        os._exit(0)
                    pids.append(pid)
                for p in pids:
                    os.waitpid(p, 0)
                return 8
        ''')
        body = run_ok(script)
        assert body["result"] == 8
        assert body.get("stdout_truncated") is True
        assert body["stdout"] == "c" * MiB

    def test_endless_stdout_flood_times_out(self, fast_config):
        script = "import os\ndef main():\n    b = b'e' * 65536\n    while True:\n        os.write(1, b)\n"
        t0 = time.monotonic()
        body = run_err(script, "timeout", config=fast_config)
        assert time.monotonic() - t0 < FAST_WALL_S + 3
        assert body.get("stdout_truncated") is True
        assert len(body["stdout"]) == MiB

    def test_stderr_flood_is_not_answered(self):
        script = S('''
            import os

            def main():
                b = b"E" * 65536
                for i in range(800):
                    os.write(2, b)
                return "ok"
        ''')
        body = run_ok(script)
        assert body == {"result": "ok", "stdout": ""}

    def test_huge_return_value(self):
        body = run_err("def main():\n    return 'h' * (40 << 20)\n", "result_too_large")
        assert body["error"] == "main() returned more than the 8388608-byte result limit"

    def test_huge_return_value_by_sharing(self):
        # 20 000 references to one 1 KiB string: small in memory, 20 MB as JSON.
        script = "def main():\n    s = 'r' * 1024\n    return [s] * 20000\n"
        run_err(script, "result_too_large")

    def test_zombie_pileup(self):
        script = S('''
            import os

            def main():
                n, err = 0, None
                while True:
                    try:
                        pid = os.fork()
                    except OSError as e:
                        err = e.errno
                        break
                    if pid == 0:
                        os._exit(0)
                    n += 1
                return {"n": n, "errno": err}
        ''')
        r = run_ok(script)["result"]
        assert r["errno"] == 11 and r["n"] < 64 + 2, r

    def test_c_stack_exhaustion(self):
        # With the recursion limit lifted, comparing two million-deep tuples recurses in C
        # until the 8 MiB stack runs out: a crash, reported as such, quickly.
        script = S('''
            import sys
            sys.setrecursionlimit(10 ** 8)

            def main():
                x = y = ()
                for i in range(10 ** 6):
                    x, y = (x,), (y,)
                return x == y
        ''')
        body = run_err(script, "killed")
        assert body["error"] == "Script execution error: killed by signal SIGSEGV", body

    def test_memory_blowup_by_deep_recursion(self, fast_config):
        # Python frames live on the heap: with the recursion limit lifted, plain recursion eats
        # the whole address space inside CPython's frame allocator (about a second here).
        script = S('''
            import sys
            sys.setrecursionlimit(10 ** 8)

            def f(n):
                return f(n + 1) + 1

            def main():
                return f(0)
        ''')
        body = run_script(script, config=fast_config)
        assert body.get("error_kind") == "memory_limit", body
        assert body["error"] == MEMORY_MSG
