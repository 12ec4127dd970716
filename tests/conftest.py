"""Fixtures: the real service (scripts/serve.sh: spawn-fcgi pool + nginx) on a free port.

The service is started once per test session, exactly as `make run` starts it, and stopped
at the end; the session fails if anything it started is still running afterwards. What they
use, and what the tests share besides fixtures, is in helpers.py.
"""
import os

import pytest

from helpers import BUILD, Service, start_service, stop_service


@pytest.fixture(scope="session")
def service():
    """The service as `make run` starts it (warm mode, prefork)."""
    svc = Service()
    yield svc
    stop_service(svc)


@pytest.fixture(scope="session")
def cold_service():
    """The same service in cold mode: python3 is execve()d for every request."""
    svc = start_service(warm=0)
    yield svc
    stop_service(svc)


# Every end-to-end test runs against both modes: warm is the default, cold the fallback and
# the benchmark's yardstick, and both must give the same answers.
@pytest.fixture(scope="session", params=["warm", "cold"])
def base_url(request):
    """The service under test: PYEXEC_URL if set (a container, a deployment; then only once),
    else a local one started with scripts/serve.sh in the given mode."""
    url = os.environ.get("PYEXEC_URL")
    if url:
        if request.param == "cold":
            pytest.skip("PYEXEC_URL is tested once, as deployed")
        return url.rstrip("/")
    return request.getfixturevalue("service" if request.param == "warm" else "cold_service").url


@pytest.fixture(scope="session")
def pyexec_run():
    """Path of the standalone runner, for tests of the sandbox without HTTP."""
    return os.path.join(BUILD, "pyexec-run")
