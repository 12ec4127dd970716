"""The C unit tests (tests/unit/unit_tests.c), one pytest case each."""
import os
import subprocess

import pytest

from helpers import BUILD, ROOT

BINARY = os.path.join(BUILD, "tests", "unit_tests")


def names():
    out = subprocess.run([BINARY, "--list"], capture_output=True, text=True, check=True, cwd=ROOT)
    return out.stdout.split()


@pytest.mark.parametrize("name", names())
def test_c_unit(name):
    r = subprocess.run([BINARY, name], capture_output=True, text=True, cwd=ROOT)
    assert r.returncode == 0 and f"PASS {name}" in r.stdout, r.stdout + r.stderr
