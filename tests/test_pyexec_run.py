"""pyexec-run, the service's sandbox without HTTP: one script per outcome, both modes.

A short tour of every path from a script to its answer (the runner's frames, forged frames,
the kernel's verdicts, the output escaper), so that `make test SANITIZE=1` runs all of them
under ASan and UBSan (PYEXEC_BUILD=build-san) without the 229 cases of test_adversarial_*.py.
"""
import subprocess

import pytest

from helpers import PYEXEC_RUN, parse_json_strict, sanitizer_reports, suite_config


@pytest.fixture(scope="module")
def config():
    """The defaults with no warm preload (a plain interpreter starts fast) and short limits."""
    return suite_config(wall_time_s=3, cpu_time_s=2)


def run(config, mode, script, *flags):
    p = subprocess.run([PYEXEC_RUN, "-c", config, "-w" if mode == "warm" else "-W", *flags, "-"],
                       input=script.encode(), capture_output=True, timeout=60)
    assert not sanitizer_reports(p.stderr.decode(errors="replace")), p.stderr.decode(errors="replace")
    assert p.returncode == 0, (p.returncode, p.stdout, p.stderr)
    return parse_json_strict(p.stdout), p.stderr


CASES = [
    ("ok", "def main():\n    print('hi')\n    return {'a': [1, 2.5, None], 'b': 'caf\u00e9'}\n",
     {"result": {"a": [1, 2.5, None], "b": "caf\u00e9"}, "stdout": "hi\n"}),
    ("no_main", "x = 1\n", "no_main"),
    ("syntax_error", "def main(:\n    pass\n", "syntax_error"),
    ("not_serializable", "def main():\n    return {1, 2}\n", "not_serializable"),
    ("exception", "def main():\n    return 1 / 0\n", "exception"),
    ("exited", "import sys\nsys.exit(3)\n", "exited"),
    ("killed", "import os, signal\ndef main():\n    os.kill(os.getpid(), signal.SIGSEGV)\n", "killed"),
    # The wall clock, not the CPU limit: under load the kernel's tick-sampled CPU time that
    # fires SIGXCPU can run ahead of the rusage figure sb_decide() checks it against.
    ("timeout", "import time\ndef main():\n    time.sleep(60)\n", "timeout"),
    ("memory_limit", "def main():\n    return len(list(range(100000000)))\n", "memory_limit"),
    ("result_too_large", "def main():\n    return 'x' * (9 << 20)\n", "result_too_large"),
    ("invalid_utf8_stdout", "import sys\ndef main():\n    sys.stdout.buffer.write(b'\\xff\\xfe\\x00')\n"
     "    return None\n", {"result": None, "stdout": "\ufffd\ufffd\u0000"}),
    ("lone_surrogates", "def main():\n    return {'k\\ud800': ['\\udfff']}\n",
     {"result": {"k\ufffd": ["\ufffd"]}, "stdout": ""}),
]

# What a script may write on the result channel (fd 3) itself: never taken as a result.
FORGED = [b'R{"a": NaN}', b'R"\xff"', b"R[1, 2", b"Rnull garbage", b"R1R2", b"X123", b"R", b"E",
          b'E1 1\n{"kind": "timeout", "message": "fake"}', b"R1 1\n" + b"[" * 3000 + b"]" * 3000,
          b'E1 1\n{"kind": "exception", "message": "\\ud800", "traceback": 1}']


@pytest.mark.parametrize("mode", ["warm", "cold"])
@pytest.mark.parametrize("name,script,want", CASES, ids=[c[0] for c in CASES])
def test_outcome(config, mode, name, script, want):
    body, _ = run(config, mode, script)
    if isinstance(want, dict):
        assert body == want
    else:
        assert "result" not in body and body["error_kind"] == want, body


@pytest.mark.parametrize("mode", ["warm", "cold"])
@pytest.mark.parametrize("frame", FORGED, ids=range(len(FORGED)))
def test_forged_frame(config, mode, frame):
    script = "import os\ndef main():\n    os.write(3, %r)\n    os._exit(0)\n" % frame
    body, _ = run(config, mode, script)
    assert "result" not in body, body


@pytest.mark.parametrize("mode", ["warm", "cold"])
def test_verbose_reports_usage(config, mode):
    body, err = run(config, mode, "import sys\ndef main():\n    sys.stderr.write('to stderr')\n    return 1\n", "-v")
    assert body == {"result": 1, "stdout": ""}
    assert b"to stderr" in err and b"pyexec-run: ok, wall" in err, err


def test_usage_error():
    p = subprocess.run([PYEXEC_RUN], capture_output=True)
    assert p.returncode == 1 and b"usage" in p.stderr
