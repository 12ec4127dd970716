#!/usr/bin/python3
"""make bench: warm against cold mode, side by side, with a real load generator.

Starts the service twice as `make run` does (scripts/serve.sh): once warm (the default
config) and once cold (warm = 0: python3 is execve()d for every request). Then, for several
rounds, drives each with wrk (bench/post.lua) for three scripts — hello world, a small numpy
computation, a small pandas DataFrame operation — at concurrency 1 and 4, alternating the
modes so that both see the same machine noise. Prints the medians over the rounds (req/s, p50,
p99), the warm/cold ratios, and the issue's targets, and writes the table to
bench/results.md.

    bench/bench.py [--rounds N] [--seconds S] [--workers W]
"""
import argparse
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

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
CONCURRENCY = [1, 4]
MODES = ["warm", "cold"]
# The targets: (script, metric, concurrency or None for "any", bound)
TARGETS = [
    ("pandas", "ratio", 4, 40.0),
    ("pandas", "p50_ms", 1, 15.0),
    ("numpy", "ratio", None, 20.0),
    ("hello", "ratio", None, 8.0),
    ("hello", "p50_ms", 1, 5.0),
]
LINE = re.compile(r"BENCH rps=(\S+) p50_ms=(\S+) p99_ms=(\S+) requests=(\d+) errors=(\d+) non_2xx=(\d+) failures=(\d+)")


class Service:
    """scripts/serve.sh on a free port of 127.0.0.1, as `make run` starts it, with a run
    directory of its own; config: a config file instead of config/pyexec.conf."""

    def __init__(self, workers, config=None):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        self.url = f"http://127.0.0.1:{port}"
        self.run_dir = tempfile.mkdtemp(prefix="pyexec-bench-run-")
        args = [os.path.join(ROOT, "scripts", "serve.sh"), "--port", str(port), "--run-dir", self.run_dir,
                "--workers", str(workers)] + (["--config", config] if config else [])
        self.log = open(os.path.join(self.run_dir, "serve.log"), "w")
        self.proc = subprocess.Popen(args, stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + 30
        while not self.healthy():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                sys.exit(f"bench: the service did not become healthy (serve.sh: {self.proc.returncode})")
            time.sleep(0.1)

    def healthy(self):
        try:
            with urllib.request.urlopen(self.url + "/health", timeout=2) as r:
                return r.status == 200
        except OSError:
            return False

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
        self.log.close()
        shutil.rmtree(self.run_dir, ignore_errors=True)


def cold_config(directory):
    """A copy of config/pyexec.conf with warm = 0; returns its path."""
    path = os.path.join(directory, "cold.conf")
    with open(os.path.join(ROOT, "config", "pyexec.conf")) as src, open(path, "w") as out:
        for line in src:
            out.write("warm = 0\n" if line.split("=")[0].strip() == "warm" else line)
    return path


def check(url, script, expected):
    body = json.dumps({"script": script}).encode()
    req = urllib.request.Request(url + "/execute", data=body, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=60) as r:
        answer = json.loads(r.read())
    if answer.get("result") != expected:
        sys.exit(f"bench: {url} answered {answer!r}, expected result {expected!r}")


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


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--seconds", type=int, default=5)
    ap.add_argument("--workers", type=int, default=4)
    args = ap.parse_args()
    if not shutil.which("wrk"):
        sys.exit("bench: wrk is missing (apt-get install wrk)")

    tmp = tempfile.mkdtemp(prefix="pyexec-bench-")
    services = {}
    try:
        services["warm"] = Service(workers=args.workers)
        services["cold"] = Service(workers=args.workers, config=cold_config(tmp))
        bodies = {}
        for name, (script, expected) in SCRIPTS.items():
            bodies[name] = os.path.join(tmp, f"{name}.json")
            with open(bodies[name], "w") as f:
                json.dump({"script": script}, f)
            for mode in MODES:
                check(services[mode].url, script, expected)

        samples = {}  # (script, mode, c) -> [runs]
        for rnd in range(args.rounds):
            for name in SCRIPTS:
                for c in CONCURRENCY:
                    for mode in MODES:
                        res = wrk(services[mode].url, bodies[name], c, args.seconds)
                        samples.setdefault((name, mode, c), []).append(res)
                        print(f"round {rnd + 1}/{args.rounds} {name:6} {mode:4} c={c}: {res['rps']:8.1f} req/s  "
                              f"p50 {res['p50_ms']:7.1f} ms  p99 {res['p99_ms']:7.1f} ms", flush=True)
    finally:
        for svc in services.values():
            svc.stop()
        shutil.rmtree(tmp, ignore_errors=True)

    med = {k: {m: statistics.median(r[m] for r in runs) for m in ("rps", "p50_ms", "p99_ms")}
           for k, runs in samples.items()}
    rows = ["| script | concurrency | warm req/s | cold req/s | warm/cold | warm p50 ms | cold p50 ms "
            "| warm p99 ms | cold p99 ms |", "|---|---|---|---|---|---|---|---|---|"]
    for name in SCRIPTS:
        for c in CONCURRENCY:
            w, k = med[(name, "warm", c)], med[(name, "cold", c)]
            rows.append(f"| {name} | {c} | {w['rps']:.1f} | {k['rps']:.1f} | {w['rps'] / k['rps']:.1f}x "
                        f"| {w['p50_ms']:.1f} | {k['p50_ms']:.1f} | {w['p99_ms']:.1f} | {k['p99_ms']:.1f} |")
    verdicts = []
    for name, metric, c, bound in TARGETS:
        for conc in ([c] if c else CONCURRENCY):
            w, k = med[(name, "warm", conc)], med[(name, "cold", conc)]
            if metric == "ratio":
                value, ok, text = w["rps"] / k["rps"], w["rps"] / k["rps"] >= bound, f">= {bound:g}x"
            else:
                value, ok, text = w[metric], w[metric] <= bound, f"<= {bound:g} ms"
            verdicts.append(f"- {'met' if ok else 'MISSED'}: {name} warm {metric} at c={conc} = {value:.1f} (target {text})")
    stamp = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    text = (f"Medians of {args.rounds} rounds of {args.seconds} s per cell, {args.workers} workers, "
            f"{os.cpu_count()} cores, {stamp}.\n\n" + "\n".join(rows) + "\n\nTargets:\n" + "\n".join(verdicts) + "\n")
    print("\n" + text)
    with open(os.path.join(ROOT, "bench", "results.md"), "w") as f:
        f.write(text)


if __name__ == "__main__":
    main()
