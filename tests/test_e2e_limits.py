"""Every limit in the README's table, end to end."""

import concurrent.futures
import os
import time
import uuid

from helpers import assert_json_content_type, post_execute, procs_with

MiB = 1024 * 1024
TIMEOUT_MSG = "Script execution timed out (10 seconds)"
MEMORY_MSG = "Script execution error: Memory limit exceeded"


def run(base_url, script, timeout=60):
    status, headers, body = post_execute(base_url, script, timeout=timeout)
    assert status == 200, body
    assert_json_content_type(headers)
    assert isinstance(body, dict), body
    return body


def run_ok(base_url, script):
    body = run(base_url, script)
    assert set(body) == {"result", "stdout"}, body
    return body


def run_err(base_url, script, kind):
    body = run(base_url, script)
    assert "result" not in body, body
    assert body.get("error_kind") == kind, body
    assert isinstance(body.get("stdout"), str), body
    return body


# ================================================================ wall time / CPU time

def test_wall_time_limit(base_url):
    script = "import time\n\ndef main():\n    print('start', flush=True)\n    time.sleep(30)\n    return 1\n"
    t0 = time.monotonic()
    body = run_err(base_url, script, "timeout")
    elapsed = time.monotonic() - t0
    assert body["error"] == TIMEOUT_MSG
    assert body["stdout"] == "start\n"
    assert 9.0 <= elapsed < 20.0, elapsed


def test_cpu_time_limit(base_url):
    t0 = time.monotonic()
    body = run_err(base_url, "def main():\n    while True:\n        pass\n", "timeout")
    elapsed = time.monotonic() - t0
    assert body["error"] == TIMEOUT_MSG
    assert body["stdout"] == ""
    assert elapsed < 20.0, elapsed


def test_timeout_kills_every_process_and_service_recovers(base_url):
    marker = "PYEXEC_ORPHAN_" + uuid.uuid4().hex
    # The marker is split in the script so that only the grandchild's argv holds it whole.
    script = '''import os, sys, time

def main():
    tag = %r + %r
    pid = os.fork()
    if pid == 0:
        os.setsid()
        if os.fork() == 0:
            os.execv("/usr/bin/python3",
                     ["python3", "-c", "import time; time.sleep(1000) # " + tag])
        os._exit(0)
    os.waitpid(pid, 0)
    print("spawned", flush=True)
    time.sleep(30)
    return "not reached"
''' % (marker[:10], marker[10:])
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as ex:
        t0 = time.monotonic()
        fut = ex.submit(post_execute, base_url, script)
        seen = []
        while not fut.done() and time.monotonic() - t0 < 9:
            seen = procs_with(marker)
            if seen:
                break
            time.sleep(0.1)
        status, headers, body = fut.result()
    # The detached grandchild really existed while the script ran ...
    assert seen, "the script's daemonized grandchild was never seen running"
    assert status == 200, body
    assert body.get("error_kind") == "timeout", body
    assert body["error"] == TIMEOUT_MSG
    assert body["stdout"] == "spawned\n"
    # ... and is gone within 2 s of the answer.
    deadline = time.monotonic() + 2
    while procs_with(marker) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert procs_with(marker) == [], "processes of the timed-out script survived"
    # The next request is served normally.
    body = run_ok(base_url, "def main():\n    print('alive')\n    return 'next'\n")
    assert body == {"result": "next", "stdout": "alive\n"}


# ================================================================ memory

def test_memory_bytearray_600mib(base_url):
    script = ("def main():\n    print('allocating', flush=True)\n"
              "    b = bytearray(600 * 1024 * 1024)\n    return len(b)\n")
    body = run_err(base_url, script, "memory_limit")
    assert body["error"] == MEMORY_MSG
    assert body["stdout"] == "allocating\n"


def test_memory_numpy_ones(base_url):
    script = "import numpy\n\ndef main():\n    a = numpy.ones(10**9)\n    return float(a.sum())\n"
    body = run_err(base_url, script, "memory_limit")
    assert body["error"] == MEMORY_MSG
    assert body["stdout"] == ""


def test_memory_200mib_is_allowed(base_url):
    script = ("def main():\n    b = bytearray(200 * 1024 * 1024)\n"
              "    b[-1] = 7\n    return [len(b), b[-1]]\n")
    body = run_ok(base_url, script)
    assert body == {"result": [200 * MiB, 7], "stdout": ""}


# ================================================================ processes / threads

def test_thread_limit(base_url):
    script = '''import threading

def main():
    threading.stack_size(256 * 1024)   # keep memory out of the way: only the process limit counts
    ev = threading.Event()
    threads, err = [], None
    for i in range(200):
        t = threading.Thread(target=ev.wait)
        try:
            t.start()
        except RuntimeError as e:
            err = "RuntimeError: " + str(e)
            break
        threads.append(t)
    ev.set()
    for t in threads:
        t.join()
    return {"count": len(threads), "error": err}
'''
    body = run_ok(base_url, script)
    r = body["result"]
    assert r["error"] is not None and r["error"].startswith("RuntimeError"), r
    assert 32 <= r["count"] < 64 + 4, r


def test_fork_limit(base_url):
    script = '''import os

def main():
    r, w = os.pipe()
    pids, err = [], None
    for i in range(200):
        try:
            pid = os.fork()
        except OSError as e:
            err = [type(e).__name__, e.errno]
            break
        if pid == 0:
            os.close(w)
            os.read(r, 1)
            os._exit(0)
        pids.append(pid)
    os.close(w)
    for p in pids:
        os.waitpid(p, 0)
    return {"count": len(pids), "error": err}
'''
    body = run_ok(base_url, script)
    r = body["result"]
    assert r["error"] == ["BlockingIOError", 11], r
    assert 32 <= r["count"] < 64 + 4, r
    assert body["stdout"] == ""


# ================================================================ open files

def test_open_files_limit(base_url):
    script = '''def main():
    files, err = [], None
    for i in range(1000):
        try:
            files.append(open("/tmp/f%d" % i, "w"))
        except OSError as e:
            err = [e.errno, e.strerror]
            break
    n = len(files)
    for f in files:
        f.close()
    return {"count": n, "error": err}
'''
    body = run_ok(base_url, script)
    r = body["result"]
    assert r["error"] == [24, "Too many open files"], r
    assert 200 <= r["count"] < 256, r


# ================================================================ /tmp

def test_tmp_size_limit(base_url):
    script = '''def main():
    chunk = b"z" * (1024 * 1024)
    written, err = 0, None
    try:
        with open("/tmp/big", "wb", buffering=0) as f:
            for i in range(100):
                written += f.write(chunk)
    except OSError as e:
        err = e.errno
    return {"written": written, "errno": err}
'''
    body = run_ok(base_url, script)
    r = body["result"]
    assert r["errno"] in (27, 28), r
    assert 32 * MiB <= r["written"] < 65 * MiB, r


def test_tmp_inode_limit(base_url):
    script = '''import os

def main():
    os.mkdir("/tmp/many")
    count, err = 0, None
    for i in range(6000):
        try:
            open("/tmp/many/%d" % i, "w").close()
        except OSError as e:
            err = e.errno
            break
        count += 1
    return {"count": count, "errno": err}
'''
    body = run_ok(base_url, script)
    r = body["result"]
    assert r["errno"] == 28, r
    assert 3000 <= r["count"] < 4096, r


def test_tmp_is_private_to_each_run(base_url):
    name = "/tmp/persist_" + uuid.uuid4().hex
    body = run_ok(base_url, "def main():\n    open(%r, 'w').write('x')\n    return 1\n" % name)
    assert body == {"result": 1, "stdout": ""}
    body = run_ok(base_url, "import os\n\ndef main():\n    return os.path.exists(%r)\n" % name)
    assert body == {"result": False, "stdout": ""}
    assert not os.path.exists(name)


# ================================================================ stdout

def test_stdout_truncated_at_1mib(base_url):
    script = ("import sys\n\ndef main():\n    sys.stdout.write('x' * (2 * 1024 * 1024))\n"
              "    print('more after the limit')\n    return 'done'\n")
    body = run(base_url, script)
    assert set(body) == {"result", "stdout", "stdout_truncated"}, list(body)
    assert body["result"] == "done"
    assert body["stdout_truncated"] is True
    assert len(body["stdout"].encode("utf-8")) <= MiB
    assert body["stdout"] == "x" * MiB


def test_stdout_exactly_1mib_not_truncated(base_url):
    script = "import sys\n\ndef main():\n    sys.stdout.write('y' * (1024 * 1024))\n    return 0\n"
    body = run_ok(base_url, script)
    assert body == {"result": 0, "stdout": "y" * MiB}


def test_stdout_truncated_multibyte(base_url):
    # '€' is 3 bytes: the 1 MiB cut falls inside a character.
    script = "def main():\n    print('\\u20ac' * 700000)\n    return 'ok'\n"
    body = run(base_url, script)
    assert body.get("result") == "ok", body.get("error")
    assert body.get("stdout_truncated") is True
    out = body["stdout"]
    whole = MiB // 3
    assert out.startswith("\u20ac" * whole)
    assert out[whole:] in ("", "\ufffd"), repr(out[whole:])


# ================================================================ result

def test_result_too_large(base_url):
    script = "def main():\n    print('made it')\n    return 'x' * 9_000_000\n"
    body = run_err(base_url, script, "result_too_large")
    assert body["error"] == "main() returned more than the 8388608-byte result limit"
    assert body["stdout"] == "made it\n"


def test_result_just_under_limit(base_url):
    body = run_ok(base_url, "def main():\n    return 'r' * 8_000_000\n")
    assert body["stdout"] == ""
    assert body["result"] == "r" * 8_000_000
