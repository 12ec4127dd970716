"""The library table's floor (libraries.py): what a script costs in a fresh fork of an
unsandboxed /usr/bin/python3 that has already imported every library it uses.

Run by libraries.py as `/usr/bin/python3 -I bench/floor.py`. Imports the libraries, prints
"ready", then for each line of stdin ({"script": ...}) forks once: the child compiles and runs
the module body and main() (its output captured, as pyexec captures it), and sends back its
elapsed time, counted from just before the fork to main()'s return, with main()'s result; the
answer is one JSON line on stdout: {"elapsed_ms", "result"} or {"error"}. The child's exit
(tearing down its copy of the interpreter) is not counted: pyexec answers before it too.
"""
import contextlib
import io
import json
import os
import sys
import time
import traceback

import matplotlib.pyplot  # noqa: F401  (MPLBACKEND=Agg from libraries.py, as in pyexec's sandbox)
import numpy  # noqa: F401
import pandas  # noqa: F401
import requests  # noqa: F401
import scipy.stats  # noqa: F401
import seaborn  # noqa: F401
import sklearn.linear_model  # noqa: F401


def child(script, t0, w):
    """In the fork: never returns (a failure is an answer too, never the parent's loop)."""
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            module = type(sys)("script")
            exec(compile(script, "<script>", "exec"), module.__dict__)
            result = module.main()
        text = json.dumps({"elapsed_ms": (time.perf_counter() - t0) * 1000, "result": result})
    except BaseException:
        text = json.dumps({"error": traceback.format_exc()})
    finally:
        try:
            os.write(w, text.encode())
        finally:
            os._exit(0)


def sample(script):
    r, w = os.pipe()
    t0 = time.perf_counter()
    pid = os.fork()
    if pid == 0:
        os.close(r)
        child(script, t0, w)
    os.close(w)
    chunks = []
    while chunk := os.read(r, 65536):
        chunks.append(chunk)
    os.close(r)
    _, status = os.waitpid(pid, 0)
    if not chunks:
        return {"error": f"the fork ended without an answer (wait status {status})"}
    return json.loads(b"".join(chunks))


def main():
    print("ready", flush=True)
    for line in sys.stdin:
        print(json.dumps(sample(json.loads(line)["script"])), flush=True)


if __name__ == "__main__":
    main()
