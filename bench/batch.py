"""Many inputs per call in `make bench`: one request with `inputs` against as many sequential
requests with `input`, on one kept-alive connection to pyexec warm, alternating the two ways
round by round (medians of the rounds).

Beside them, each case's floor per call: main(v) in a fresh fork of an unsandboxed python3 that
ran the module body (FLOOR). Two cases, the issue's: the seed pandas script with 100 inputs (its main() is cheap: the
question is what a call costs beyond it — a fork of the process the module body ran in), and a
module body that takes 300 ms (as one that fits a model) with 50 inputs."""
import http.client
import json
import os
import statistics
import subprocess
import sys
import time
import urllib.parse

CASES = {
    "pandas x 100": ("import pandas as pd\n"
                     "def main(n):\n"
                     "    df = pd.DataFrame({'k': [i % 3 for i in range(60)], 'v': range(60)})\n"
                     "    return int(df['v'].sum()) + n\n", list(range(100)), 3.0),
    "300 ms module body x 50": ("import time\n"
                                "time.sleep(0.3)  # stands for fitting a model\n"
                                "def main(x):\n"
                                "    return x * 2\n", list(range(50)), 20.0),
}


# The floor of a call: the same module body run once in an unsandboxed /usr/bin/python3 (and
# main once, to warm), then main(v) in a fresh fork of it per input, sequentially, the answer
# sent back on a pipe (what a fork per call costs anywhere, before any sandbox): milliseconds
# per call, of wall time and of CPU (the fork, main(v) and the child's exit, which frees its
# copied pages). No service that forks a call per input can spend less CPU per call, so on
# this machine's cores one request with n inputs takes at least n x that CPU / cores.
FLOOR = r"""
import os, resource, sys, time
source, inputs = sys.stdin.read().split("\0")
module = type(sys)("script")
exec(compile(source, "<script>", "exec"), module.__dict__)
inputs = eval(inputs)
# Once here first, as pyexec's interpreter ran the libraries' common paths before any request
# (zygote-main.c's warm-ups): a fork's first pandas call would otherwise set up, in every
# call, what pandas sets up on first use, which no warm service pays per call.
module.main(inputs[0])
def cpu():
    return sum(getattr(resource.getrusage(who), f) for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)
               for f in ("ru_utime", "ru_stime"))
t0, c0 = time.perf_counter(), cpu()
for v in inputs:
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(r)
        os.write(w, repr(module.main(v)).encode())
        os._exit(0)
    os.close(w)
    os.read(r, 1 << 16)
    os.close(r)
    os.waitpid(pid, 0)
print((time.perf_counter() - t0) * 1000 / len(inputs), (cpu() - c0) * 1000 / len(inputs))
"""


def floor_per_call_ms(script, inputs):
    """(wall ms, CPU ms) per call."""
    env = {"PATH": "/usr/bin:/bin", "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "LANG": "C.UTF-8"}
    out = subprocess.run(["/usr/bin/python3", "-I", "-c", FLOOR], input=script + "\0" + repr(inputs),
                         capture_output=True, text=True, env=env, check=True, timeout=300).stdout
    wall, cpu = out.split()
    return float(wall), float(cpu)


class Connection:
    def __init__(self, url):
        u = urllib.parse.urlsplit(url)
        self.conn = http.client.HTTPConnection(u.hostname, u.port, timeout=120)

    def post(self, body):
        self.conn.request("POST", "/execute", json.dumps(body), {"Content-Type": "application/json"})
        resp = self.conn.getresponse()
        answer = json.loads(resp.read())
        if resp.status != 200:
            sys.exit(f"bench: batch answered {resp.status} {answer!r}")
        return answer


def one_round(conn, script, inputs):
    """(seconds for one request with inputs, seconds for one request per input)."""
    t0 = time.perf_counter()
    batch = conn.post({"script": script, "inputs": inputs})
    t1 = time.perf_counter()
    singles = [conn.post({"script": script, "input": v}) for v in inputs]
    t2 = time.perf_counter()
    want = [s.get("result") for s in singles]
    if [r.get("result") for r in batch["results"]] != want or None in want:
        bad = next(i for i, (r, s) in enumerate(zip(batch["results"], singles)) if r.get("result") != s.get("result"))
        sys.exit(f"bench: the batch and the single requests differ at input {bad}: {batch['results'][bad]!r:.300} "
                 f"against {singles[bad]!r:.300}")
    return t1 - t0, t2 - t1


def measure(url, rounds=3):
    """{case: {"batch_s", "singles_s", "ratio", "target"}} (medians over the rounds)."""
    conn, results = Connection(url), {}
    for name, (script, inputs, target) in CASES.items():
        conn.post({"script": script, "input": 0})  # warm the tier
        # The floor in each round, right after the requests: the same machine noise for both.
        runs = [one_round(conn, script, inputs) + floor_per_call_ms(script, inputs) for _ in range(rounds)]
        batch, singles, floor, floor_cpu = (statistics.median(r[i] for r in runs) for i in range(4))
        cores = os.cpu_count() or 1
        ceiling = statistics.median(r[1] / (len(inputs) * r[3] / 1000 / cores) for r in runs)
        results[name] = {"batch_s": batch, "singles_s": singles, "ratio": singles / batch, "target": target,
                         "n": len(inputs), "floor_ms": floor, "floor_cpu_ms": floor_cpu, "ceiling": ceiling}
        print(f"batch {name}: one request {batch * 1000:.0f} ms, {len(inputs)} requests {singles * 1000:.0f} ms, "
              f"{singles / batch:.1f}x", flush=True)
    return results


def table(results):
    rows = ["Many inputs: one request with `inputs` against one request per input (sequential, one kept-alive "
            "connection), pyexec warm, medians of 3 rounds (bench/batch.py). The floor: main(v) in a fresh fork "
            "per input of an unsandboxed python3 that ran the module body and main() once (warm, as "
            "pyexec's interpreter is), one after another; ceiling: the "
            "per-input requests' time over the floor's CPU for all the inputs spread over all "
            f"{os.cpu_count()} cores, the most any service that forks a process per input could gain here.", "",
            "| case | one request ms | per-input requests ms | one request / inputs ms | floor per call ms "
            "| floor CPU per call ms | ratio | ceiling | target |",
            "|---|---|---|---|---|---|---|---|---|"]
    lines = []
    for name, r in results.items():
        rows.append(f"| {name} | {r['batch_s'] * 1000:.0f} | {r['singles_s'] * 1000:.0f} | "
                    f"{r['batch_s'] * 1000 / r['n']:.1f} | {r['floor_ms']:.1f} | {r['floor_cpu_ms']:.1f} | "
                    f"{r['ratio']:.1f}x | {r['ceiling']:.1f}x | >= {r['target']:g}x |")
        ok = r["ratio"] >= r["target"]
        lines.append(f"- {'met' if ok else 'MISSED'}: {name} in one request is {r['ratio']:.1f}x faster than "
                     f"{r['n']} requests (target >= {r['target']:g}x); the ceiling is {r['ceiling']:.1f}x"
                     + (": below the target, which no fork per input reaches here"
                        if not ok and r["ceiling"] < r["target"] else ""))
    return "\n".join(rows + [""] + lines)
