"""One table of error kinds (sandbox/errors.c): every error_kind the worker, pyexec-run and
nginx's own error pages can answer is in it, with the HTTP status it is answered with there,
and the README documents each one."""
import os
import re
import subprocess

from helpers import BUILD, ROOT


def table():
    out = subprocess.run([os.path.join(BUILD, "pyexec-worker"), "--print-error-kinds"], capture_output=True,
                         text=True, check=True).stdout
    return {name: int(status) for name, status in (line.split() for line in out.splitlines())}


def read(*path):
    with open(os.path.join(ROOT, *path)) as f:
        return f.read()


def test_the_table_has_the_sandbox_outcomes_then_the_request_errors():
    kinds = table()
    assert list(kinds)[:11] == ["ok", "no_main", "syntax_error", "not_serializable", "exception", "timeout",
                                "memory_limit", "result_too_large", "exited", "killed", "channel_tampered"]
    assert all(kinds[k] == 200 for k in list(kinds)[:11])
    assert all(400 <= s < 600 for s in list(kinds.values())[11:])


def test_every_error_the_c_code_sets_is_in_the_table_with_its_status():
    kinds = table()
    found = []
    for d in ("fcgi", "sandbox"):
        for name in sorted(os.listdir(os.path.join(ROOT, d))):
            if name.endswith(".c"):
                src = read(d, name)
                found += [(name, int(s), k) for s, k in re.findall(r'api_error_set\(\s*[^,]+,\s*(\d+),\s*"([a-z_]+)"', src)]
    assert len(found) > 20, found  # the regex still sees the calls
    wrong = [(f, s, k) for f, s, k in found if kinds.get(k) != s]
    assert not wrong, wrong
    # pyexec-run writes the service's 500 body itself, through the one envelope function.
    direct = re.findall(r'sb_error_json\(\s*"([a-z_]+)"', read("sandbox", "pyexec-run.c"))
    assert direct == ["sandbox_error"] and kinds["sandbox_error"] == 500, direct


def test_every_error_page_of_nginx_is_in_the_table_with_its_status():
    kinds = table()
    pages = []
    for name in ("nginx.conf.in", "json_errors.conf.in"):
        pages += re.findall(r'return (\d+) \'\{[^\']*"error_kind": "([a-z_]+)"', read("nginx", name))
    assert len(pages) >= 10, pages
    wrong = [(s, k) for s, k in pages if kinds.get(k) != int(s)]
    assert not wrong, wrong


def test_the_readme_documents_every_kind():
    readme = read("README.md")
    missing = [k for k in table() if k != "ok" and f"`{k}`" not in readme]
    assert not missing, missing
    errors = readme[readme.index("### When the script fails"):readme.index("### Health and metrics")]
    documented = set(re.findall(r"^\| (?:\d{3} \| )?`([a-z_]+)` \|", errors, re.M)) - {"error_kind"}
    unknown = documented - set(table())
    assert not unknown, unknown
