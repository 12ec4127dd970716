"""warm_rotate_s: the pool starts its interpreters (and a new generation of workers) afresh
every so often. Every script of one warm interpreter is a fork of it, so all of them share
CPython's string hash secret, picked once at its start, and the addresses of everything it
mapped: a script can read both and use them against the scripts that come after it (strings
that all collide in a dict, for a script that handles text it is sent). Rotating bounds the
scripts that share them to those of warm_rotate_s seconds. Real pool, real nginx, real clock."""

import concurrent.futures as cf
import time

import pytest

from helpers import post_execute, start_service, stop_service

ROTATE_S = 4
# What a script of the tier sees of its interpreter: the hash secret (through a string's hash)
# and the layout (the address of a module object the interpreter made at its start).
SHARED = ("import sys{imp}\n"
          "def main():\n"
          "    return [hash('pyexec'), id(sys)]\n")


@pytest.fixture(scope="module")
def rotating():
    svc = start_service(warm_rotate_s=ROTATE_S, warm_preload="numpy", workers=2)
    yield svc
    stop_service(svc)


def shared_state(url, imp):
    status, headers, body = post_execute(url, SHARED.format(imp=imp))
    assert status == 200, body
    return tuple(body["result"]), headers.get("x-pyexec-interpreter")


def test_the_interpreters_hash_secret_and_layout_change_at_each_rotation_and_no_request_fails(rotating):
    seen = {"": [], ", numpy": []}
    statuses = []
    stop = time.monotonic() + 3 * ROTATE_S + 4

    def load():  # the rotations happen under load: no request may be refused or lost
        while time.monotonic() < stop:
            statuses.append(post_execute(rotating.url, "def main():\n    return 1\n")[0])

    with cf.ThreadPoolExecutor(2) as ex:
        loaders = [ex.submit(load) for _ in range(2)]
        while time.monotonic() < stop:
            for imp, states in seen.items():
                states.append(shared_state(rotating.url, imp))
            time.sleep(0.2)
        for f in loaders:
            f.result()
    assert statuses and all(s == 200 for s in statuses), [s for s in statuses if s != 200]
    for imp, states in seen.items():
        tiers = {tier for _, tier in states}
        assert tiers == {"warm:numpy" if imp else "warm:"}, tiers
        values = [state for state, _ in states]
        # Shared between rotations: each value serves a run of scripts, not one.
        runs = [v for i, v in enumerate(values) if i == 0 or values[i - 1] != v]
        assert len(values) >= 3 * len(runs), (imp, runs, len(values))
        # New after each: at least two rotations in the window, and no secret or layout
        # comes back.
        assert len(runs) >= 3 and len(set(runs)) == len(runs), (imp, runs)
        assert len({h for h, _ in runs}) == len(runs) and len({a for _, a in runs}) == len(runs), runs
    assert rotating.logs().count("event=rotate ") >= 2, rotating.logs()[-3000:]
