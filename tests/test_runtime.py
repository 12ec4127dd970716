"""GET /runtime (the monitor; fcgi/stats.c): besides the pool (cgroups, mode, workers) the Python
and the package versions a script finds — asked of a sandbox when the pool starts
(sandbox/inventory.c) — the server's limits under the names of a request's `limits`, and the
request members this server takes. Every answer here also passes helpers.check_openapi (the
Runtime schema of nginx/openapi.json)."""
import json
import os
import subprocess

import pytest

from helpers import BUILD, ROOT, parse_json_strict, post_execute, request, start_service, stop_service

REQUIRED = ["numpy", "pandas", "scipy", "scikit-learn", "matplotlib", "seaborn", "requests"]
# A request's `limits` members, then the sizes: what /runtime's "limits" holds.
LIMITS = ["wall_time_s", "cpu_time_s", "memory_mb", "max_processes", "max_open_files", "stdout_max_bytes",
          "script_max_bytes", "body_max_bytes", "result_max_bytes", "files_max_count", "files_max_bytes",
          "max_batch", "tmp_size_mb"]

# What a script itself sees: the same facts, asked from inside the sandbox by a request.
SEEN_FROM_INSIDE = """
import platform
from importlib import metadata
def main():
    names = %r
    return {"python": platform.python_version(), "packages": {n: metadata.version(n) for n in names}}
""" % (REQUIRED,)


def runtime(url):
    status, headers, raw = request(url, "GET", "/runtime")
    assert status == 200, (status, raw)
    return parse_json_strict(raw)


def printed_config(path=None):
    args = [os.path.join(BUILD, "pyexec-worker"), "-c", path or os.path.join(ROOT, "config", "pyexec.conf"),
            "--print-config"]
    out = subprocess.run(args, capture_output=True, text=True, check=True).stdout
    return dict(line.split("=", 1) for line in out.splitlines())


def test_python_and_packages_are_what_a_script_sees(service):
    rt = runtime(service.url)
    status, _, inside = post_execute(service.url, SEEN_FROM_INSIDE)
    assert status == 200 and "result" in inside, inside
    assert rt["python"] == inside["result"]["python"], (rt["python"], inside)
    for name in REQUIRED:
        assert rt["packages"].get(name) == inside["result"]["packages"][name], (name, rt["packages"])


def test_package_versions_are_the_modules_own(service):
    """numpy.__version__ and the like, imported in the sandbox: the metadata is not stale."""
    modules = {"numpy": "numpy", "pandas": "pandas", "scipy": "scipy", "scikit-learn": "sklearn",
               "matplotlib": "matplotlib", "seaborn": "seaborn", "requests": "requests"}
    script = ("import importlib\ndef main():\n    return {d: importlib.import_module(m).__version__ for d, m in %r.items()}\n"
              % (modules,))
    status, _, inside = post_execute(service.url, script)
    assert status == 200 and "result" in inside, inside
    packages = runtime(service.url)["packages"]
    assert {d: packages.get(d) for d in modules} == inside["result"]


def test_packages_are_sorted_lowercase_names_with_versions(service):
    packages = runtime(service.url)["packages"]
    assert list(packages) == sorted(packages) and all(n == n.lower() for n in packages), packages
    assert all(isinstance(v, str) and v and v != "0.0.0" for v in packages.values()), packages
    # What the libraries bring along is there too, not only the seven.
    assert len(packages) > len(REQUIRED), packages


def test_limits_are_the_configs(service):
    conf = printed_config()
    names = LIMITS
    limits = runtime(service.url)["limits"]
    assert limits == {n: int(conf[n]) for n in names}


def test_limits_follow_the_config_in_force_and_the_inventory_stays():
    svc = start_service(wall_time_s=3, memory_mb=256, stdout_max_bytes=4096, workers=1)
    try:
        rt = runtime(svc.url)
        assert rt["limits"]["wall_time_s"] == 3 and rt["limits"]["memory_mb"] == 256, rt
        assert rt["limits"]["stdout_max_bytes"] == 4096 and rt["workers"] == 1, rt
        assert rt["python"] and set(REQUIRED) <= set(rt["packages"]), rt
    finally:
        stop_service(svc)


def test_features_are_the_request_members_beyond_script(service):
    assert runtime(service.url)["features"] == ["input", "inputs", "files", "return_files", "figures", "limits",
                                                "usage"]


def test_existing_members_are_kept_in_order(service):
    rt = runtime(service.url)
    keys = [k for k in rt if k != "cgroups_problem"]
    assert keys == ["cgroups", "mode", "workers", "python", "packages", "limits", "features"], keys
    assert rt["mode"] == "warm" and rt["cgroups"] in ("v1", "v2"), rt


@pytest.mark.parametrize("method", ["HEAD", "POST"])
def test_other_methods(service, method):
    status, headers, raw = request(service.url, method, "/runtime")
    if method == "HEAD":
        assert status == 200 and raw == b"", (status, raw)
    else:
        assert status == 405 and headers.get("allow") == "GET, HEAD", (status, headers)
        assert json.loads(raw)["error_kind"] == "method_not_allowed"
