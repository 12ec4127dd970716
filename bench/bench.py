#!/usr/bin/python3
"""make bench: pyexec warm against pyexec cold and against the seeds' architecture, side by
side, with a real load generator; then the library table.

Starts pyexec twice as `make run` does (scripts/serve.sh): once warm (the default config) and
once cold (warm = 0: python3 is execve()d for every request); and the architecture pyexec
replaces, as the seeds describe it: Flask + gunicorn (sync workers, as many as pyexec's) + one
namespace-sandboxed python3 per request (bench/seeds_app.py, bubblewrap standing in for nsjail;
bench/seeds.py). Then, for several rounds, drives each with wrk (bench/post.lua) for three
scripts — hello world, a small numpy computation, a small pandas DataFrame operation — at
concurrency 1 and 4, alternating the three so that all see the same machine noise; beside
them the floor (bench/floor_load.py): a fork of a warm, unsandboxed python3 per request with no
HTTP, at the same concurrency, whose req/s over the seeds' is the highest warm/seeds ratio a
fork-per-request service reaches on this machine; and the sandboxed floor, the same fork made in
fresh namespaces, born in cgroups its driver lives in (the least that "brand-new namespaces per
request" costs, as pyexec keeps that promise), whose
ratio is the highest any service keeping that promise reaches here. Prints the medians over the rounds (req/s,
p50, p99), the warm/cold, warm/seeds and floor/seeds ratios and the issue's targets, and where a
warm request's time goes by phase (pyexec_sandbox_phase_seconds_total, read before and after
each cell). Then the library table (bench/libraries.py): scipy, scikit-learn, matplotlib, seaborn
and requests scripts, p50 at concurrency 1 against pyexec warm, each beside its floor (a fork of
an unsandboxed python3 that has imported them all, bench/floor.py), with the target: within 10 ms
of it. Then the pool's memory by part (PSS, bench/memory.py) and one request with `inputs`
against a request per input (bench/batch.py). Writes every table to bench/results.md.

    bench/bench.py [--rounds N] [--seconds S] [--workers W] [--samples N]
"""
import argparse
import json
import math
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

import batch
import libraries
import memory
from seeds import Seeds
from services import ROOT, Pyexec, cold_config

SCRIPTS = {
    "hello": ('def main():\n    return "hello world"\n', "hello world"),
    "numpy": ("import numpy as np\n"
              "def main():\n"
              "    a = np.arange(1000, dtype=np.float64)\n"
              "    return {'sum': float(a.sum()), 'std': round(float(a.std()), 3)}\n",
              {"sum": 499500.0, "std": 288.675}),
    "pandas": ("import pandas as pd\n"
               "def main():\n"
               "    df = pd.DataFrame({'k': [i % 3 for i in range(60)], 'v': range(60)})\n"
               "    return {str(k): int(v) for k, v in df.groupby('k')['v'].sum().items()}\n",
               {"0": 570, "1": 590, "2": 610}),
}
# What the floor's interpreter imports for each script: what pyexec's tier for it has.
FLOOR_IMPORTS = {"hello": [], "numpy": ["numpy"], "pandas": ["numpy", "pandas"]}
CONCURRENCY = [1, 4]
MODES = ["warm", "cold", "seeds"]
FLOORS = ["floor", "sandboxed floor"]  # bench/floor_load.py, without and with namespaces and cgroups
# The targets: (script, metric, concurrency or None for each, bound); a ratio is warm's
# req/s over cold's or the seeds'.
TARGETS = [
    ("pandas", "warm/cold", 4, 40.0),
    ("pandas", "p50_ms", 1, 15.0),
    ("numpy", "warm/cold", None, 20.0),
    ("hello", "warm/cold", None, 8.0),
    ("hello", "p50_ms", 1, 5.0),
    ("hello", "warm/seeds", 4, 8.0),
    ("numpy", "warm/seeds", 4, 20.0),
    ("pandas", "warm/seeds", 4, 40.0),
]
LINE = re.compile(r"BENCH rps=(\S+) p50_ms=(\S+) p99_ms=(\S+) requests=(\d+) errors=(\d+) non_2xx=(\d+) failures=(\d+)")


INTERPRETERS = {}  # script -> what pyexec warm said ran it (X-Pyexec-Interpreter)
LATENCY_S = {}     # (script, mode) -> one request's seconds, alone (write_bodies)
# wrk counts the requests answered within a cell: the ones still running at its end are lost,
# with the time they took, which undercounts req/s by about latency / (2 x cell length). So a
# cell lasts at least this many latencies (at its concurrency), keeping that under 2%: 5 s
# would undercount the seeds' pandas at c=4 (~1.1 s a request) by ~11%, in pyexec's favour.
CELL_LATENCIES = 25
PHASES = ("cgroup_create", "spawn_init", "root", "inject", "run", "teardown", "cgroup_remove")


class FloorLoad:
    """bench/floor_load.py, running: the load table's floor (no sandbox, no HTTP)."""

    def __init__(self, modules):
        # One BLAS thread, as pyexec's scripts have: the sandboxed floor's clone() copies only
        # the calling thread.
        self.proc = subprocess.Popen(["/usr/bin/python3", "-I", os.path.join(ROOT, "bench", "floor_load.py"), *modules],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                                     env=dict(os.environ, OPENBLAS_NUM_THREADS="1"))
        if self.proc.stdout.readline().strip() != "ready":
            sys.exit("bench: bench/floor_load.py did not start")

    def load(self, script, concurrency, seconds, sandboxed=False):
        self.proc.stdin.write(json.dumps({"script": script, "concurrency": concurrency, "seconds": seconds,
                                          "sandboxed": sandboxed}) + "\n")
        self.proc.stdin.flush()
        answer = json.loads(self.proc.stdout.readline())
        if "error" in answer:
            sys.exit(f"bench: the floor failed: {answer['error']}")
        return {"rps": answer["rps"], "p50_ms": float("nan"), "p99_ms": float("nan")}

    def stop(self):
        self.proc.stdin.close()
        self.proc.wait(timeout=30)


def phase_seconds(url):
    """pyexec's per-phase counters and its answered requests, from /metrics."""
    with urllib.request.urlopen(url + "/metrics", timeout=10) as r:
        text = r.read().decode()
    out = {p: float(re.search(rf'^pyexec_sandbox_phase_seconds_total{{phase="{p}"}} (\S+)$', text, re.M).group(1))
           for p in PHASES}
    out["requests"] = float(re.search(r'^pyexec_execute_seconds_count (\S+)$', text, re.M).group(1))
    return out


def check(url, script, expected):
    """The service's answer is the expected one: (what it says ran it (pyexec's header, or
    None), the request's seconds)."""
    body = json.dumps({"script": script}).encode()
    req = urllib.request.Request(url + "/execute", data=body, headers={"Content-Type": "application/json"})
    t0 = time.perf_counter()
    with urllib.request.urlopen(req, timeout=60) as r:
        answer = json.loads(r.read())
        served_by = r.headers.get("X-Pyexec-Interpreter")
    if answer.get("result") != expected:
        sys.exit(f"bench: {url} answered {answer!r}, expected result {expected!r}")
    return served_by, time.perf_counter() - t0


def cell_seconds(seconds, script, mode, c):
    """A cell's length: seconds, or CELL_LATENCIES requests' latencies at concurrency c (a
    request alone, times the requests that share each core) if that is longer."""
    latency = LATENCY_S.get((script, mode), 0.0) * max(1.0, c / (os.cpu_count() or 1))
    return max(seconds, math.ceil(CELL_LATENCIES * latency))


def wrk(url, body_file, connections, seconds):
    env = dict(os.environ, PYEXEC_BODY_FILE=body_file)
    threads = 1 if connections == 1 else 2
    out = subprocess.run(["wrk", "-t", str(threads), "-c", str(connections), "-d", f"{seconds}s", "--timeout", "30s",
                          "-s", os.path.join(ROOT, "bench", "post.lua"), url + "/execute"],
                         capture_output=True, text=True, env=env, check=True).stdout
    m = LINE.search(out)
    if not m:
        sys.exit(f"bench: could not read wrk's output:\n{out}")
    rps, p50, p99, n, errors, non2xx, failures = m.groups()
    if int(errors) or int(non2xx) or int(failures):
        sys.exit(f"bench: {url} failed requests under load: {out}")
    return {"rps": float(rps), "p50_ms": float(p50), "p99_ms": float(p99), "requests": int(n)}


def write_bodies(tmp, services):
    """Each script's request body in a file for wrk, after checking every service's answer."""
    bodies = {}
    for name, (script, expected) in SCRIPTS.items():
        bodies[name] = os.path.join(tmp, f"{name}.json")
        with open(bodies[name], "w") as f:
            json.dump({"script": script}, f)
        for mode in MODES:
            check(services[mode].url, script, expected)  # the first may warm something up
            served_by, LATENCY_S[(name, mode)] = check(services[mode].url, script, expected)
            if mode == "warm":
                INTERPRETERS[name] = served_by
    return bodies


def warm_cell(url, body, c, seconds):
    """A wrk cell against pyexec warm, with its per-phase ms per request (from /metrics)."""
    before = phase_seconds(url)
    res = wrk(url, body, c, seconds)
    after = phase_seconds(url)
    n = max(after["requests"] - before["requests"], 1)
    res.update({p: (after[p] - before[p]) * 1000 / n for p in PHASES})
    return res


def run_rounds(services, bodies, floors, args):
    """Every (script, mode, concurrency) once per round, the modes in turn, then the floor; the
    medians."""
    samples = {}  # (script, mode, c) -> [runs]
    for rnd in range(args.rounds):
        for name in SCRIPTS:
            for c in CONCURRENCY:
                for mode in MODES + FLOORS:
                    seconds = cell_seconds(args.seconds, name, mode, c)
                    if mode in FLOORS:
                        res = floors[name].load(SCRIPTS[name][0], c, seconds, sandboxed=mode == "sandboxed floor")
                    elif mode == "warm":
                        res = warm_cell(services[mode].url, bodies[name], c, seconds)
                    else:
                        res = wrk(services[mode].url, bodies[name], c, seconds)
                    samples.setdefault((name, mode, c), []).append(res)
                    print(f"round {rnd + 1}/{args.rounds} {name:6} {mode:5} c={c}: {res['rps']:8.1f} req/s  "
                          f"p50 {res['p50_ms']:7.1f} ms  p99 {res['p99_ms']:7.1f} ms  ({seconds} s)", flush=True)
    return {k: {m: statistics.median(r[m] for r in runs) for m in runs[0]} for k, runs in samples.items()}


def load_table(med):
    """The wrk table, in markdown, with the floors' req/s and their ratios to the seeds' (the
    highest warm/seeds any fork-per-request service, and any that also makes fresh namespaces
    and cgroups per request, could reach here)."""
    cols = ([f"{m} req/s" for m in MODES + FLOORS] + [f"warm/{m}" for m in MODES[1:]]
            + [f"{m}/seeds" for m in FLOORS]
            + [f"{m} p50 ms" for m in MODES] + [f"{m} p99 ms" for m in MODES])
    rows = ["| script | concurrency | " + " | ".join(cols) + " |", "|---|---|" + "---|" * len(cols)]
    for name in SCRIPTS:
        for c in CONCURRENCY:
            r = {m: med[(name, m, c)] for m in MODES + FLOORS}
            cells = ([f"{r[m]['rps']:.1f}" for m in MODES + FLOORS]
                     + [f"{r[a]['rps'] / r[b]['rps']:.1f}x" if r[b]["rps"] else "n/a"
                        for a, b in [("warm", m) for m in MODES[1:]] + [(m, "seeds") for m in FLOORS]]
                     + [f"{r[m]['p50_ms']:.1f}" for m in MODES] + [f"{r[m]['p99_ms']:.1f}" for m in MODES])
            rows.append(f"| {name} | {c} | " + " | ".join(cells) + " |")
    return rows


def phase_table(med):
    """Where a warm request's time goes: each phase's wall ms per request, from /metrics. All but
    run happen before or after the request (prefork, refill), on the same cores."""
    rows = ["| script | concurrency | " + " | ".join(PHASES) + " | all | 1000 / req/s x workers |",
            "|---|---|" + "---|" * (len(PHASES) + 2)]
    for name in SCRIPTS:
        for c in CONCURRENCY:
            r = med[(name, "warm", c)]
            cells = [f"{r[p]:.2f}" for p in PHASES] + [f"{sum(r[p] for p in PHASES):.2f}",
                                                       f"{1000 / r['rps'] * WORKERS[0]:.2f}"]
            rows.append(f"| {name} | {c} | " + " | ".join(cells) + " |")
    return rows


WORKERS = [4]  # set by main(): the pool's workers, for the table's last column


def verdicts(med):
    lines = []
    for name, metric, c, bound in TARGETS:
        for conc in ([c] if c else CONCURRENCY):
            w = med[(name, "warm", conc)]
            if metric == "p50_ms":
                value, ok = w[metric], w[metric] <= bound
                text = f"{name} warm p50 at c={conc} = {value:.1f} ms (target <= {bound:g} ms)"
            else:
                other = med[(name, metric.split("/")[1], conc)]["rps"]
                value = w["rps"] / other if other else float("inf")
                ok, text = value >= bound, f"{name} {metric} req/s at c={conc} = {value:.1f}x (target >= {bound:g}x)"
                ceiling, sandboxed = (med[(name, m, conc)]["rps"] / other if other else float("inf")
                                      for m in FLOORS)
                text += f"; the floor's is {ceiling:.1f}x, the sandboxed floor's {sandboxed:.1f}x"
                if not ok and ceiling < bound:
                    text += ": below the target, which no fork per request reaches here"
                elif not ok and sandboxed < bound:
                    text += (": below the target, which no fork per request in fresh namespaces and "
                             "cgroups reaches here")
            lines.append(f"- {'met' if ok else 'MISSED'}: {text}")
    return lines


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--seconds", type=int, default=5)
    ap.add_argument("--workers", type=int, default=4)
    ap.add_argument("--samples", type=int, default=libraries.SAMPLES, help="requests per library script")
    args = ap.parse_args()
    if not shutil.which("wrk"):
        sys.exit("bench: wrk is missing (make bench installs it)")

    tmp = tempfile.mkdtemp(prefix="pyexec-bench-")
    services = {}
    try:
        services["warm"] = Pyexec(workers=args.workers)
        services["cold"] = Pyexec(workers=args.workers, config=cold_config(tmp))
        services["seeds"] = Seeds(workers=args.workers)
        WORKERS[0] = args.workers
        floors = {name: FloorLoad(FLOOR_IMPORTS[name]) for name in SCRIPTS}
        try:
            med = run_rounds(services, write_bodies(tmp, services), floors, args)
        finally:
            for floor in floors.values():
                floor.stop()
        libs = libraries.measure(services["warm"].url, samples=args.samples)
        memory_text, _ = memory.table(memory.measure(services["warm"].run_dir), args.workers)
        batches = batch.measure(services["warm"].url)
    finally:
        for svc in services.values():
            svc.stop()
        shutil.rmtree(tmp, ignore_errors=True)

    stamp = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    text = (f"Medians of {args.rounds} rounds; a cell lasts {args.seconds} s or {CELL_LATENCIES} times its "
            "request latency if longer (so that the requests cut off at its end undercount its req/s by under "
            f"2%); {args.workers} workers (pyexec's "
            f"pool; gunicorn's sync workers for the seeds), {os.cpu_count()} cores, {stamp}. seeds: the seeds' "
            "architecture, Flask + gunicorn + one bubblewrap-sandboxed python3 per request (bench/seeds_app.py)."
            " pyexec warm ran them in the interpreters "
            + ", ".join(f"{n}: `{i}`" for n, i in INTERPRETERS.items()) + "."
            " floor: no sandbox, no HTTP — a fork of a warm python3 that has imported what the tier has and run "
            "the script once, per request (bench/floor_load.py). sandboxed floor: the same fork made in the fresh "
            "namespaces pyexec makes per request (user, PID, mount, IPC, UTS, cgroup), born in memory, pids and "
            "cpuacct cgroups its driver made once and lives in, as pyexec's forkers live in their workers' "
            "(no root, no seccomp, no HTTP): what the issue's "
            "\"brand-new namespaces\" cost at the least, as pyexec keeps that promise."
            "\n\n" + "\n".join(load_table(med)) + "\n\nTargets:\n" + "\n".join(verdicts(med)) + "\n\n"
            + "Where a warm request's time goes: wall ms per request in each phase of its sandbox's life "
            "(pyexec_sandbox_phase_seconds_total over the requests, medians of the rounds). Only run is "
            "on the client's path; the others happen ahead of it or after the answer, on the same cores; "
            "the last column is the workers' time per request.\n\n" + "\n".join(phase_table(med)) + "\n\n"
            + libraries.table(libs, samples=args.samples) + "\n\n" + memory_text + "\n\n"
            + batch.table(batches) + "\n")
    print("\n" + text)
    with open(os.path.join(ROOT, "bench", "results.md"), "w") as f:
        f.write(text)


if __name__ == "__main__":
    main()
