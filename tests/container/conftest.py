"""Tests of a running container image: scripts/image-test.sh (`make image-test`) runs them with
PYEXEC_URL set to the container it started. Without PYEXEC_URL there is nothing to test, so
`make test` (pytest tests) does not collect them at all: its count stays the local suites'."""
import os

import pytest

if not os.environ.get("PYEXEC_URL"):
    collect_ignore_glob = ["test_*.py"]


@pytest.fixture(scope="session")
def image_url():
    """The container under test (PYEXEC_URL), without a trailing slash."""
    return os.environ["PYEXEC_URL"].rstrip("/")
