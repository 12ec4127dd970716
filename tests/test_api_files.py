"""The /execute request fields of issue 13 that move files: `files` (written into the script's
working directory, its private /tmp, before the module body runs) and `return_files` (glob
patterns; the matching regular files come back in the answer), end to end in both modes
(base_url). The budgets (files_max_count, files_max_bytes, the /tmp size) are also tested
against a service of their own with small values (small_url). input, figures, limits and usage
are in test_api_fields.py."""

import base64
import concurrent.futures
import hashlib
import os
import uuid

import pytest

from helpers import served_err as run_err, served_ok as run_ok
from helpers import assert_refused, start_service, stop_service

BINARY = b"\x00\xff\x00\x01\xfe\x80\x7f" + bytes(range(256)) + b"\xff\x00"
LISTING = ("import os\ndef tree():\n    out = []\n"
           "    for d, dirs, names in os.walk('.'):\n"
           "        dirs[:] = [x for x in dirs if not x.startswith('.')]\n"
           "        out += [os.path.relpath(os.path.join(d, n), '.') for n in names if not n.startswith('.')]\n"
           "    return sorted(out)\n")


def b64(data):
    return base64.b64encode(data).decode("ascii")


def refused_naming(base_url, files, named):
    msg = assert_refused(base_url, "files: ", files=files)
    assert named in msg, (named, msg)
    return msg


# ============================================================ files: written into the working dir

def test_files_text_readable_with_open(base_url):
    script = "import os\ndef main():\n    return [os.getcwd(), open('data.csv').read(), open('/tmp/data.csv').read()]\n"
    body = run_ok(base_url, script, files={"data.csv": "a,b\n1,2\n3,4\n"})
    assert body == {"result": ["/tmp", "a,b\n1,2\n3,4\n", "a,b\n1,2\n3,4\n"], "stdout": ""}


def test_files_readable_with_pandas(base_url):
    script = "import pandas as pd\ndef main():\n    return pd.read_csv('data.csv').to_dict('list')\n"
    body = run_ok(base_url, script, files={"data.csv": "a,b\n1,2\n3,4\n"})
    assert body == {"result": {"a": [1, 3], "b": [2, 4]}, "stdout": ""}


def test_files_written_before_the_module_body(base_url):
    script = "DATA = open('in.txt').read()\ndef main():\n    return DATA\n"
    assert run_ok(base_url, script, files={"in.txt": "early"}) == {"result": "early", "stdout": ""}


def test_files_text_is_utf8(base_url):
    text = "h\u00e9llo \u2713 \U0001F600\nline2\r\n\x00end"
    script = "def main():\n    return open('u.txt', 'rb').read().hex()\n"
    assert run_ok(base_url, script, files={"u.txt": text})["result"] == text.encode("utf-8").hex()


def test_files_base64_binary(base_url):
    script = ("import hashlib\ndef main():\n    data = open('blob.bin', 'rb').read()\n"
              "    return [len(data), hashlib.sha256(data).hexdigest(), data[:9].hex()]\n")
    body = run_ok(base_url, script, files={"blob.bin": {"base64": b64(BINARY)}})
    assert body["result"] == [len(BINARY), hashlib.sha256(BINARY).hexdigest(), BINARY[:9].hex()]


@pytest.mark.parametrize("data", [b"", b"a", b"ab", b"abc", b"\xff" * 1000, os.urandom(100000)],
                         ids=["empty", "pad2", "pad1", "pad0", "ff", "random"])
def test_files_base64_lengths(base_url, data):
    script = "def main():\n    return open('x', 'rb').read().hex()\n"
    assert run_ok(base_url, script, files={"x": {"base64": b64(data)}})["result"] == data.hex()


def test_files_empty_text_file_and_empty_files_object(base_url):
    script = "import os\ndef main():\n    return os.path.getsize('empty.txt')\n"
    assert run_ok(base_url, script, files={"empty.txt": ""})["result"] == 0
    assert run_ok(base_url, "def main():\n    return 1\n", files={}) == {"result": 1, "stdout": ""}


def test_files_nested_directories_created(base_url):
    files = {"a/b/c/deep.txt": "deep", "a/top.txt": "top", "a/b/mid.bin": {"base64": b64(b"\x00mid")},
             "dir with space/na\u00efve \u2713.txt": "unicode"}
    script = LISTING + ("def main():\n    return {'tree': tree(), 'isdir': os.path.isdir('a/b/c'),\n"
                        "            'deep': open('a/b/c/deep.txt').read(),\n"
                        "            'mid': open('a/b/mid.bin', 'rb').read().hex(),\n"
                        "            'u': open('dir with space/na\\u00efve \\u2713.txt').read()}\n")
    r = run_ok(base_url, script, files=files)["result"]
    assert r == {"tree": sorted(files), "isdir": True, "deep": "deep", "mid": "006d6964", "u": "unicode"}


def test_files_component_and_path_at_their_maximum(base_url):
    comp = "c" * 255
    path = "/".join(["p" * 255, "q" * 255, "r" * 255, "s" * 254, "t"])
    assert len(path) == 1024
    script = "def main(p):\n    return open(p).read()\n"
    assert run_ok(base_url, script, files={comp: "c", path: "long"}, input=path)["result"] == "long"
    assert run_ok(base_url, script, files={comp: "c", path: "long"}, input=comp)["result"] == "c"


def test_files_at_files_max_count(base_url):
    files = {"f%03d.txt" % i: str(i) for i in range(100)}
    script = "import os\ndef main():\n    return len([n for n in os.listdir('.') if n.endswith('.txt')])\n"
    assert run_ok(base_url, script, files=files)["result"] == 100


def test_files_with_input_and_return_files(base_url):
    script = "def main(name):\n    open('out.txt', 'w').write(open(name).read().upper())\n    return name\n"
    body = run_ok(base_url, script, files={"in.txt": "abc"}, input="in.txt", return_files=["*.txt"])
    assert body["result"] == "in.txt"
    assert {k: base64.b64decode(v["base64"]) for k, v in body["files"].items()} == {"in.txt": b"abc", "out.txt": b"ABC"}


# ============================================================ files: refusals

@pytest.mark.parametrize("path,named", [
    ("/etc/passwd", "/etc/passwd"),
    ("/tmp/x.txt", "/tmp/x.txt"),
    ("/", "/"),
    ("..", ".."),
    ("../x", "../x"),
    ("a/../x", "a/../x"),
    ("a/..", "a/.."),
    (".", "."),
    ("./x", "./x"),
    ("a/./b", "a/./b"),
    ("a/.", "a/."),
    ("a//b", "a//b"),
    ("a/", "a/"),
    ("a/b/", "a/b/"),
    ("bad\x00name", "bad"),
    ("toolong_dir/" + "c" * 256, "toolong_dir/"),
    ("toolong_utf8/" + "\u00e9" * 128, "toolong_utf8/"),          # 128 characters, 256 bytes
    ("toolong_path/" + "/".join(["d" * 200] * 6), "toolong_path/"),  # 13 + 1205 bytes
], ids=["absolute", "absolute_tmp", "root", "dotdot", "dotdot_first", "dotdot_middle", "dotdot_last", "dot",
        "dot_first", "dot_middle", "dot_last", "empty_component", "trailing_slash", "trailing_slash_deep", "nul",
        "component_256", "component_256_utf8", "path_1218"])
def test_files_bad_path_refused(base_url, path, named):
    refused_naming(base_url, {"ok.txt": "fine", path: "x"}, named)


def test_files_empty_path_refused(base_url):
    assert_refused(base_url, "files: ", files={"": "x"})


def test_files_path_1025_bytes_refused(base_url):
    path = "/".join(["p" * 255, "q" * 255, "r" * 255, "s" * 255, "t"])
    assert len(path) == 1025
    refused_naming(base_url, {path: "x"}, "p" * 100)


@pytest.mark.parametrize("value", [[], [{"a": "b"}], "data.csv", 1, None, True],
                         ids=["array", "array_of_object", "string", "number", "null", "true"])
def test_files_not_an_object_refused(base_url, value):
    assert_refused(base_url, "files: ", files=value)


@pytest.mark.parametrize("value", [
    1, 1.5, None, True, ["x"],
    {}, {"base64": 1}, {"base64": None}, {"base64": True}, {"base64": ["YQ=="]}, {"base64": {"x": 1}},
    {"base64": "YQ==", "name": "x"}, {"base64": "YQ==", "text": "a"}, {"text": "a"}, {"BASE64": "YQ=="},
], ids=["number", "float", "null", "true", "array", "empty_object", "b64_number", "b64_null", "b64_true",
        "b64_array", "b64_object", "extra_key", "extra_text_key", "text_key", "uppercase_key"])
def test_files_bad_value_refused(base_url, value):
    refused_naming(base_url, {"good.txt": "ok", "bad_value.bin": value}, "bad_value.bin")


@pytest.mark.parametrize("data", [
    "@@@@", "YWJj!", "abc", "YQ", "YQ=", "Y===", "=YQ=", "YQ==YQ==", "YW Jj", "YWJj\n", "-_-_", "YWJ\u00e9",
], ids=["alphabet", "bang", "length3", "no_padding", "short_padding", "too_much_padding", "leading_pad",
        "padding_inside", "space", "newline", "urlsafe", "non_ascii"])
def test_files_invalid_base64_refused(base_url, data):
    refused_naming(base_url, {"bad_b64.bin": {"base64": data}}, "bad_b64.bin")


@pytest.mark.parametrize("files", [
    {"a": "file", "a/b": "under it"},
    {"a/b": "under it", "a": "file"},
    {"x/y/z": "deep", "x/y": "file"},
], ids=["file_first", "dir_first", "deep"])
def test_files_path_also_a_directory_refused(base_url, files):
    msg = assert_refused(base_url, "files: ", files=files)
    assert any(p in msg for p in files), msg


def test_files_more_than_max_count_refused(base_url):
    assert_refused(base_url, "files: ", files={"f%03d.txt" % i: "" for i in range(101)})


def test_files_refusal_runs_nothing(base_url):
    # The good file of a refused request is not left behind for the next one.
    name = "left_%s.txt" % uuid.uuid4().hex[:8]
    assert_refused(base_url, "files: ", files={name: "x", "../bad": "y"})
    script = "import os\ndef main(n):\n    return os.path.exists(n)\n"
    for _ in range(6):
        assert run_ok(base_url, script, input=name)["result"] is False


# ============================================================ files: gone afterwards, never shared

def test_files_gone_after_the_request(base_url):
    name = "secret_%s.txt" % uuid.uuid4().hex[:8]
    script = "def main():\n    return open(%r).read()\n" % name
    assert run_ok(base_url, script, files={name: "s3cret", "sub/dir/f": "x"})["result"] == "s3cret"
    look = LISTING + "def main():\n    return tree()\n"
    for _ in range(8):       # more than the pool's workers: every worker's next sandbox
        t = run_ok(base_url, look)["result"]
        assert name not in t and "sub/dir/f" not in t, t


def test_files_never_reach_a_concurrent_request(base_url):
    script = LISTING + ("import time\ndef main(me):\n    time.sleep(0.5)\n"
                        "    return {'me': me, 'shared': open('shared.txt').read(), 'tree': tree()}\n")

    def one(i):
        token = uuid.uuid4().hex
        files = {"shared.txt": token, "only_%d.txt" % i: str(i), "d%d/x.bin" % i: {"base64": b64(token.encode())}}
        return i, token, files, run_ok(base_url, script, files=files, input=i)["result"]

    with concurrent.futures.ThreadPoolExecutor(max_workers=8) as ex:
        for i, token, files, r in ex.map(one, range(16)):
            assert r == {"me": i, "shared": token, "tree": sorted(files)}, (i, r)


# ============================================================ return_files

TREE = '''import os
def w(path, data):
    d = os.path.dirname(path)
    if d:
        os.makedirs(d, exist_ok=True)
    with open(path, "wb") as f:
        f.write(data)
def main():
    for p in ["a.txt", "b.txt", "notes.md", "c.csv", "sub/d.csv", "sub/deep/e.csv", "sub/deep/f.txt",
              "out/x.bin", "out/22.bin", "out/sub/3.bin"]:
        w(p, p.encode())
    w("out/1.bin", bytes(range(256)))
    w("u.txt", "h\\u00e9llo\\n".encode())
    return "written"
'''


def returned(body):
    files = body["files"]
    assert isinstance(files, dict), files
    out = {}
    for path, entry in files.items():
        assert set(entry) == {"base64", "size", "media_type"}, (path, entry)
        data = base64.b64decode(entry["base64"], validate=True)
        assert type(entry["size"]) is int and entry["size"] == len(data), (path, entry)
        assert isinstance(entry["media_type"], str) and "/" in entry["media_type"], (path, entry)
        out[path] = data
    return out


@pytest.mark.parametrize("patterns,expected", [
    (["*.txt"], {"a.txt", "b.txt", "u.txt"}),
    (["**/*.csv"], {"c.csv", "sub/d.csv", "sub/deep/e.csv"}),
    (["out/?.bin"], {"out/1.bin", "out/x.bin"}),
    (["sub/**/e.csv"], {"sub/deep/e.csv"}),
    (["sub/**/d.csv"], {"sub/d.csv"}),
    (["*"], {"a.txt", "b.txt", "u.txt", "notes.md", "c.csv"}),
    (["*/*"], {"sub/d.csv", "out/x.bin", "out/22.bin", "out/1.bin"}),
    (["a.txt"], {"a.txt"}),
    (["*.txt", "*.md", "a.*"], {"a.txt", "b.txt", "u.txt", "notes.md"}),
    (["nothing*"], set()),
    (["sub"], set()),                           # a directory is not a regular file
    (["missing/dir/*.txt"], set()),
    ([], set()),
], ids=["star_txt", "globstar_csv", "question_bin", "globstar_middle", "globstar_none", "star", "star_star",
        "literal", "several_overlapping", "nothing", "directory", "missing_dir", "no_patterns"])
def test_return_files_globs(base_url, patterns, expected):
    body = run_ok(base_url, TREE, return_files=patterns)
    assert list(body) == ["result", "stdout", "files"], list(body)
    got = returned(body)
    assert set(got) == expected
    for p, data in got.items():
        if p == "out/1.bin":
            assert data == bytes(range(256))
        elif p == "u.txt":
            assert data == "h\u00e9llo\n".encode()
        else:
            assert data == p.encode(), p


def test_return_files_size_and_content(base_url):
    body = run_ok(base_url, TREE, return_files=["out/1.bin", "u.txt"])
    assert body["files"]["out/1.bin"]["size"] == 256
    assert body["files"]["out/1.bin"]["base64"] == b64(bytes(range(256)))
    assert body["files"]["u.txt"]["size"] == 7
    assert body["files"]["u.txt"]["base64"] == b64("h\u00e9llo\n".encode())


def test_return_files_nothing_matching_is_empty_object(base_url):
    body = run_ok(base_url, "def main():\n    return 0\n", return_files=["*.txt"])
    assert body == {"result": 0, "stdout": "", "files": {}}


def test_return_files_binary_and_big(base_url):
    data = os.urandom(1 << 20) + BINARY
    script = "def main():\n    open('big.bin', 'wb').write(open('in.bin', 'rb').read())\n    return 1\n"
    body = run_ok(base_url, script, files={"in.bin": {"base64": b64(data)}}, return_files=["big.bin"])
    assert returned(body) == {"big.bin": data}


def test_return_files_absent_adds_nothing(base_url):
    body = run_ok(base_url, TREE)
    assert body == {"result": "written", "stdout": ""}


SYMLINKS = '''import os, socket
def main():
    open("real.txt", "w").write("real")
    os.symlink("/etc/passwd", "passwd.txt")
    os.symlink("/etc/passwd", "passwd")
    os.symlink("/etc", "etc")
    os.symlink("/", "root")
    os.symlink("real.txt", "alias.txt")
    os.symlink("../../etc/shadow", "shadow.txt")
    os.mkdir("d")
    os.symlink("/etc", "d/up")
    os.symlink("..", "d/parent")
    os.symlink("/proc/self/environ", "env.txt")
    s = socket.socket(socket.AF_UNIX)      # not a regular file (mkfifo is not allowed here)
    s.bind("sock.txt")
    return "linked"
'''


def test_return_files_relative_to_tmp_whatever_the_cwd(base_url):
    # The script may leave /tmp; the patterns still apply to /tmp and nothing else is read.
    script = "import os\ndef main():\n    open('mine.txt', 'w').write('m')\n    os.chdir('/etc')\n    return os.getcwd()\n"
    body = run_ok(base_url, script, return_files=["passwd", "*", "mine.txt"])
    assert body["result"] == "/etc"
    assert returned(body) == {"mine.txt": b"m"}


@pytest.mark.parametrize("patterns", [
    ["*.txt"],
    ["passwd", "passwd.txt", "alias.txt", "env.txt", "sock.txt"],
    ["etc/*", "etc/passwd", "root/etc/passwd", "d/up/*", "d/up/passwd", "d/parent/*.txt", "d/parent/etc/passwd"],
    ["**/passwd", "**/*.txt", "**/*"],
    ["*", "*/*", "*/*/*"],
], ids=["star_txt", "links_by_name", "through_linked_dirs", "globstar", "stars"])
def test_return_files_never_follow_symlinks(base_url, patterns):
    body = run_ok(base_url, SYMLINKS, return_files=patterns, timeout=60)
    got = returned(body)
    assert set(got) <= {"real.txt"}, sorted(got)
    for data in got.values():
        assert data == b"real"
    if "*.txt" in patterns or "**/*.txt" in patterns or "*" in patterns:
        assert got == {"real.txt": b"real"}


def long_pattern(n):
    """A pattern of n bytes (n > 1005) whose components are all short."""
    return "/".join(["x" * 200] * 5) + "/" + "y" * (n - 1005)


@pytest.mark.parametrize("patterns", [
    ["../*"], ["../etc/passwd"], ["a/../../*"], ["**/../*"], [".."], ["/etc/*"], ["/etc/passwd"], ["/tmp/*"],
    ["/*"], [""], ["ok.txt", ""], ["*.txt", "../*"], [long_pattern(1025)], [long_pattern(2000)],
    ["p%d" % i for i in range(101)],
    "*.txt", None, 1, {"pattern": "*"}, [1], [None], [["*.txt"]], [{"glob": "*"}], True,
], ids=["dotdot_star", "dotdot_passwd", "dotdot_deep", "globstar_dotdot", "dotdot", "etc_star", "etc_passwd",
        "tmp_star", "root_star", "empty", "empty_second", "dotdot_second", "len_1025", "len_2000", "count_101",
        "string", "null", "number", "object", "number_item", "null_item", "nested_array", "object_item", "true"])
def test_return_files_bad_patterns_refused(base_url, patterns):
    msg = assert_refused(base_url, "", return_files=patterns)
    assert "return_files" in msg, msg


def test_return_files_at_the_limits(base_url):
    script = "def main():\n    open('hit.txt', 'w').write('h')\n    return 1\n"
    pats = ["hit.txt"] + ["nomatch%d" % i for i in range(99)]
    assert returned(run_ok(base_url, script, return_files=pats)) == {"hit.txt": b"h"}
    assert len(long_pattern(1024)) == 1024
    assert returned(run_ok(base_url, script, return_files=[long_pattern(1024), "*.txt"])) == {"hit.txt": b"h"}


def test_return_files_pattern_with_a_long_component_refused(base_url):
    # A pattern follows the rules of a path (README): a component over 255 bytes could match
    # no file name, so it is refused rather than silently matching nothing.
    msg = assert_refused(base_url, "", return_files=["n" * 300, "*.txt"])
    assert msg.startswith("return_files[0]: a component over 255 bytes"), msg


@pytest.mark.parametrize("script,kind", [
    ("def main():\n    open('a.txt', 'w').write('a')\n    raise ValueError('no')\n", "exception"),
    ("import os\ndef main():\n    open('a.txt', 'w').write('a')\n    os._exit(0)\n", "exited"),
    ("def main():\n    open('a.txt', 'w').write('a')\n    return {1, 2}\n", "not_serializable"),
    ("open('a.txt', 'w').write('a')\nx = 1\n", "no_main"),
], ids=["exception", "exited", "not_serializable", "no_main"])
def test_return_files_not_on_errors(base_url, script, kind):
    body = run_err(base_url, script, kind, return_files=["*.txt"], files={"in.txt": "in"})
    assert "files" not in body and "files_truncated" not in body, list(body)


def test_return_files_not_on_timeout(base_url):
    script = "import time\ndef main():\n    open('a.txt', 'w').write('a')\n    time.sleep(5)\n"
    body = run_err(base_url, script, "timeout", return_files=["*.txt"], limits={"wall_time_s": 1})
    assert "files" not in body, list(body)


# ============================================================ budgets: a service with small values

SMALL = {"files_max_bytes": 2000, "files_max_count": 5, "tmp_size_mb": 2, "wall_time_s": 5, "workers": 2}


@pytest.fixture(scope="module", params=["warm", "cold"])
def small_url(request):
    if os.environ.get("PYEXEC_URL"):
        pytest.skip("needs a service of its own config")
    svc = start_service(warm={"warm": 1, "cold": 0}[request.param], **SMALL)
    yield svc.url
    stop_service(svc)


WRITE = ("def main(sizes):\n    for name, n in sizes:\n        open(name, 'wb').write(b'z' * n)\n"
         "    return len(sizes)\n")


def test_small_files_truncated_in_path_order(small_url):
    # c.txt is written first, but a.txt comes first in path order; a.txt and b.txt fill the
    # 2000-byte budget exactly (raw bytes, not base64), c.txt is past it.
    body = run_ok(small_url, WRITE, input=[["c.txt", 10], ["b.txt", 1000], ["a.txt", 1000]], return_files=["*.txt"])
    assert list(body) == ["result", "stdout", "files", "files_truncated"], list(body)
    assert body["files_truncated"] is True
    assert returned(body) == {"a.txt": b"z" * 1000, "b.txt": b"z" * 1000}
    assert list(body["files"]) == ["a.txt", "b.txt"]


def test_small_files_exactly_at_budget_not_truncated(small_url):
    body = run_ok(small_url, WRITE, input=[["b.txt", 1000], ["a.txt", 1000]], return_files=["*.txt"])
    assert list(body) == ["result", "stdout", "files"], list(body)
    assert returned(body) == {"a.txt": b"z" * 1000, "b.txt": b"z" * 1000}


def test_small_files_one_file_over_budget(small_url):
    body = run_ok(small_url, WRITE, input=[["big.txt", 2001]], return_files=["*.txt"])
    assert body["files"] == {} and body["files_truncated"] is True, body


TINY_FIG = "    plt.figure(figsize=(1, 1), dpi=10)\n    plt.plot([1, 2])\n"
BIG_FIG = "    plt.figure(figsize=(8, 6), dpi=100)\n    plt.plot(range(100), [i * i % 17 for i in range(100)])\n"


def test_small_figures_truncated(small_url):
    script = "import matplotlib.pyplot as plt\ndef main():\n" + TINY_FIG + BIG_FIG + "    return 2\n"
    body = run_ok(small_url, script, figures="png")
    assert list(body) == ["result", "stdout", "figures", "figures_truncated"], list(body)
    assert body["figures_truncated"] is True
    assert len(body["figures"]) == 1
    assert base64.b64decode(body["figures"][0]["base64"])[:8] == b"\x89PNG\r\n\x1a\n"


def test_small_figures_have_a_budget_of_their_own(small_url):
    # 1900 bytes of files and a ~300-byte figure: each within its own 2000-byte budget.
    script = ("import matplotlib.pyplot as plt\ndef main():\n    open('f.txt', 'wb').write(b'y' * 1900)\n"
              + TINY_FIG + "    return 1\n")
    body = run_ok(small_url, script, figures="png", return_files=["f.txt"])
    assert list(body) == ["result", "stdout", "files", "figures"], list(body)
    assert returned(body) == {"f.txt": b"y" * 1900}
    assert len(body["figures"]) == 1


def test_small_files_max_count(small_url):
    script = "import os\ndef main():\n    return len([n for n in os.listdir('.') if n.endswith('.txt')])\n"
    assert run_ok(small_url, script, files={"f%d.txt" % i: "" for i in range(5)})["result"] == 5
    assert_refused(small_url, "files: ", files={"f%d.txt" % i: "" for i in range(6)})


def test_small_files_more_bytes_than_tmp_refused(small_url):
    # 2 MiB of /tmp; 3 MiB of files (base64 or text) are refused before anything runs.
    assert_refused(small_url, "files: ", files={"a.bin": {"base64": b64(b"\0" * (3 << 20))}})
    assert_refused(small_url, "files: ", files={"a.txt": "t" * (1 << 20), "b.txt": "t" * (1 << 20),
                                                "c.txt": "t" * (1 << 20)})
    # within it: fine
    script = "import os\ndef main():\n    return os.path.getsize('a.bin')\n"
    assert run_ok(small_url, script, files={"a.bin": {"base64": b64(b"\0" * (1 << 20))}})["result"] == 1 << 20


def test_small_limits_maximum_is_the_configured_value(small_url):
    msg = assert_refused(small_url, "limits.wall_time_s: ", limits={"wall_time_s": 6})
    assert msg == "limits.wall_time_s: 6 is above the server's maximum of 5"
    body = run_err(small_url, "import time\ndef main():\n    time.sleep(3)\n", "timeout", limits={"wall_time_s": 1})
    assert body["error"] == "Script execution timed out (1 seconds)"


def test_small_order_with_every_member(small_url):
    script = ("import matplotlib.pyplot as plt\ndef main(x):\n    print('s' * 100)\n"
              "    open('a.txt', 'wb').write(b'a' * 1500)\n    open('b.txt', 'wb').write(b'b' * 1500)\n"
              + TINY_FIG + BIG_FIG + "    return x\n")
    body = run_ok(small_url, script, input={"k": "v"}, return_files=["*.txt"], figures="png", usage=True,
                  limits={"stdout_max_bytes": 10})
    assert list(body) == ["result", "stdout", "stdout_truncated", "files", "files_truncated", "figures",
                          "figures_truncated", "usage"], list(body)
    assert body["result"] == {"k": "v"} and body["stdout"] == "s" * 10
    assert returned(body) == {"a.txt": b"a" * 1500}
    assert len(body["figures"]) == 1
