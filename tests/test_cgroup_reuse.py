"""A worker makes its cgroups once per interpreter tier (and once for cold sandboxes) and lends
them to one sandbox after another (sandbox/cgroup.c, "slots"). Nothing of one request's use may
reach the next one that gets them: not its CPU time, not an OOM kill, not limits it lowered, not
processes it left. One worker, so that every request here gets the same cgroups; warm (the tier
of a script without imports) and cold."""
import os
import signal
import tempfile

import pytest

from helpers import (S, Service, cgroups_v1_available, config_with, memory_spread_script, post_execute, served,
                     served_ok)
from test_tiers import BIG, forkers, hubs, wait_for

pytestmark = pytest.mark.skipif(not cgroups_v1_available(), reason="no cgroup v1 memory+pids hierarchies here")

LIMITS = {"workers": 1, "cpu_time_s": 2, "memory_mb": 256, "max_processes": 40}


@pytest.fixture(scope="module", params=["warm", "cold"])
def service(request):
    conf = config_with(tempfile.mkdtemp(prefix="pyexec-reuse-"), warm=int(request.param == "warm"), **LIMITS)
    svc = Service(config=conf)
    svc.mode = request.param
    yield svc
    svc.stop()


@pytest.fixture
def url(service):
    return service.url


BURN_1_3_S = S('''
    import time

    def main():
        end = time.process_time() + 1.3
        while time.process_time() < end:
            pass
        return "burnt"
''')


def test_cpu_time_of_one_request_does_not_count_against_the_next(url):
    # 1.3 s each, under the limit of 2 s; counted together they would be 2.6 s.
    for _ in range(2):
        assert served_ok(url, BURN_1_3_S)["result"] == "burnt"


def test_an_oom_kill_is_not_the_next_requests(url):
    # Four processes of 150 MiB each stay under RLIMIT_AS (256 MiB) but not under the cgroup's
    # 256 + 64 (/tmp) + 64 (kernel) MiB together: the kernel OOM-kills one.
    blowup = memory_spread_script(150)
    assert served(url, blowup)["error_kind"] == "memory_limit"
    assert served_ok(url, "def main():\n    return 'after'\n")["result"] == "after"


def test_limits_a_request_lowered_do_not_stay(url):
    assert served_ok(url, "def main():\n    return 1\n", limits={"memory_mb": 64, "max_processes": 4})["result"] == 1
    # The configured ones again: 20 processes and 150 MiB in one.
    many = S('''
        import os, time

        def main():
            pids = []
            for _ in range(20):
                pid = os.fork()
                if pid == 0:
                    time.sleep(5)
                    os._exit(0)
                pids.append(pid)
            b = bytearray(150 << 20)
            for off in range(0, len(b), 4096):
                b[off] = 1
            return len(pids)
    ''')
    assert served_ok(url, many)["result"] == 20


def test_processes_a_request_left_do_not_count_against_the_next(url):
    # 30 of the 40 processes left sleeping: they die with the sandbox, and the next request
    # has all 40 again (less its own).
    leave = S('''
        import os, time

        def main():
            n = 0
            while n < %d:
                if os.fork() == 0:
                    time.sleep(60)
                    os._exit(0)
                n += 1
            return n
    ''')
    assert served_ok(url, leave % 30)["result"] == 30
    assert served_ok(url, leave % 35)["result"] == 35


def test_a_killed_forker_leaves_the_pool_serving(service):
    """A tier's forker lives in the cgroups it forks into. Where the pool may not make it immune
    to OOM kills (oom_score_adj -1000 needs CAP_SYS_RESOURCE, which this machine's root lacks), a
    script can make it the OOM killer's choice: lower its processes' own score (after
    PR_SET_DUMPABLE, or in an exec'd child) and spread its memory over processes smaller than
    the forker (the largest tier's counts ~140 MiB); 30 exec'd python3 of 14 MiB each did, in
    5 runs of 8 (the kernel picks). Killed here outright, so that it always is: the worker's
    next script of the tier still runs warm, in a new forker, and the sandbox it had prepared
    with the old one is not used."""
    if service.mode != "warm":
        pytest.skip("cold sandboxes have no forker")
    hello = "import sklearn\ndef main():\n    return 1\n"
    assert served_ok(service.url, hello)["result"] == 1
    big = wait_for(lambda: hubs(service).get(BIG), what="the largest tier's interpreter")
    before = wait_for(lambda: [f for f, hub in forkers(service).items() if hub == big], what="its forker")
    os.kill(before[0], signal.SIGKILL)
    wait_for(lambda: before[0] not in forkers(service), what="the forker gone")
    for _ in range(3):
        status, headers, body = post_execute(service.url, hello)
        assert status == 200 and body["result"] == 1, body
    assert headers.get("x-pyexec-interpreter") == "warm:" + BIG, headers
    assert [f for f, hub in forkers(service).items() if hub == big] not in ([], before)
