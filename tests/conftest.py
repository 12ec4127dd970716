"""Fixtures: the real service (scripts/serve.sh: spawn-fcgi pool + nginx) on a free port.

The service is started once per test session, exactly as `make run` starts it, and stopped
at the end; the session fails if anything it started is still running afterwards. What they
use, and what the tests share besides fixtures, is in helpers.py.
"""
import os

import pytest

from helpers import (FAST_CPU_S, FAST_WALL_S, PYEXEC_RUN, Service, remove_suite_configs, start_service,
                     stop_service, suite_config)


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
    return PYEXEC_RUN


# ---- build/pyexec-run without HTTP (helpers.suite_config; the adversarial suite) ---------

@pytest.fixture(scope="module", autouse=True)
def _remove_suite_configs():
    """The config files helpers.suite_config() made for a module, deleted after it."""
    yield
    remove_suite_configs()


@pytest.fixture(scope="module")
def fast_config():
    """A 3-second wall clock and 2 seconds of CPU."""
    return suite_config(wall_time_s=FAST_WALL_S, cpu_time_s=FAST_CPU_S)


@pytest.fixture(params=["warm", "cold"])
def mode(request):
    """For the cases that run in both sandbox modes."""
    return request.param
