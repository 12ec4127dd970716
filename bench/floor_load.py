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
{"script", "concurrency", "seconds"} with one JSON line: {"rps": ..., "requests": ...} or
{"error": ...}.
"""
import gc
import importlib
import json
import os
import sys
import time


def request(script):
    """One request's unavoidable work; True when main() answered."""
    r, w = os.pipe()
    pid = os.fork()
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


def driver(script, seconds, w):
    """In a fork of the warm process: requests in a loop until the time is up; writes the count."""
    n, end = 0, time.monotonic() + seconds
    try:
        while time.monotonic() < end:
            if not request(script):
                n = -1
                break
            n += 1
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


def load(script, concurrency, seconds):
    warm_up(script)
    pipes, pids = [], []
    started = time.monotonic()
    for _ in range(concurrency):
        r, w = os.pipe()
        pid = os.fork()
        if pid == 0:
            os.close(r)
            driver(script, seconds, w)
        os.close(w)
        pipes.append(r)
        pids.append(pid)
    counts = []
    for r, pid in zip(pipes, pids):
        with os.fdopen(r) as f:
            counts.append(int(f.read().strip() or -1))
        os.waitpid(pid, 0)
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
        print(json.dumps(load(ask["script"], ask["concurrency"], ask["seconds"])), flush=True)


if __name__ == "__main__":
    main()
