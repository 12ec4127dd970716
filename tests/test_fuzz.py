"""The libFuzzer harnesses (tests/fuzz/), briefly: each replays its seed corpus, which holds
every crash found so far as a regression file, then fuzzes for FUZZ_SECONDS (default 3).
`make fuzz` runs them for longer; see scripts/fuzz.sh."""
import os
import subprocess

import pytest

from helpers import ROOT

FUZZ_BUILD = os.path.join(ROOT, "build-fuzz")
SECONDS = int(os.environ.get("FUZZ_SECONDS", "3"))


def harnesses():
    return sorted(f[len("fuzz_"):-2] for f in os.listdir(os.path.join(ROOT, "tests", "fuzz"))
                  if f.startswith("fuzz_") and f.endswith(".c"))


@pytest.fixture(scope="module")
def built():
    """make fuzz-build (clang, ASan+UBSan): incremental, a few seconds when up to date."""
    r = subprocess.run(["make", "-s", "fuzz-build"], cwd=ROOT, capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr


@pytest.mark.parametrize("name", harnesses())
def test_fuzz(built, name, tmp_path):
    seeds = os.path.join(ROOT, "tests", "fuzz", "corpus", name)
    assert len(os.listdir(seeds)) > 0, f"no seed corpus in {seeds}"
    # What it finds goes to tmp_path/corpus (the first directory); the seeds are only read.
    (tmp_path / "corpus").mkdir()
    r = subprocess.run([os.path.join(FUZZ_BUILD, "fuzz_" + name), f"-max_total_time={SECONDS}", "-timeout=5",
                        "-rss_limit_mb=1024", f"-artifact_prefix={tmp_path}/", str(tmp_path / "corpus"), seeds],
                       cwd=ROOT, capture_output=True, text=True, timeout=SECONDS + 120,
                       env=dict(os.environ, ASAN_OPTIONS="detect_leaks=1", UBSAN_OPTIONS="print_stacktrace=1"))
    crashes = [f for f in os.listdir(tmp_path) if f.startswith(("crash-", "leak-", "timeout-", "oom-"))]
    assert r.returncode == 0 and not crashes, f"{crashes}\n{r.stderr[-6000:]}"
