"""Edge cases an outside attacker found (project issue 10): forks, the result limit's exact
edge, huge error messages, repeated object names, numbers beyond a double, real-time
signals, a byte-order mark, and usage figures after a flooded result channel.

End-to-end cases run over HTTP in both modes (base_url); the limit edges run build/pyexec-run
with a small result limit, in both modes, to stay fast."""

import subprocess

import pytest

from helpers import PYEXEC_RUN, parse_json_strict, post_execute, request, suite_config

SERIALIZE_PREFIX = "main() function must return JSON serializable data: "
TAMPERED = "Script execution error: the result channel was written to by the script"
ERROR_TEXT_MAX = 64 << 10  # the runner's bound on an error message and on a traceback (UTF-8)
RESULT_MAX = 8 << 20       # result_max_bytes in config/pyexec.conf


def run(base_url, script):
    status, headers, body = post_execute(base_url, script)
    assert status == 200, body
    return headers, body


def run_ok(base_url, script):
    _, body = run(base_url, script)
    assert set(body) == {"result", "stdout"}, str(body)[:2000]
    return body


def run_err(base_url, script, kind):
    _, body = run(base_url, script)
    assert "result" not in body, str(body)[:2000]
    assert body.get("error_kind") == kind, str(body)[:2000]
    return body


# ============================================================ 1. forks

def test_forked_child_returning_leaves_silently(base_url):
    # The child runs main() to its end like the original; only the original may report.
    script = ("import os\n\ndef main():\n    pid = os.fork()\n    if pid == 0:\n"
              "        print('child')\n        return 'from the child'\n"
              "    _, status = os.waitpid(pid, 0)\n    print('parent')\n"
              "    return {'child_exit': os.waitstatus_to_exitcode(status)}\n")
    body = run_ok(base_url, script)
    assert body == {"result": {"child_exit": 0}, "stdout": "child\nparent\n"}


def test_forked_child_raising_leaves_silently(base_url):
    script = ("import os\n\ndef main():\n    pid = os.fork()\n    if pid == 0:\n"
              "        raise ValueError('in the child')\n"
              "    _, status = os.waitpid(pid, 0)\n"
              "    return {'child_exit': os.waitstatus_to_exitcode(status)}\n")
    body = run_ok(base_url, script)
    assert body == {"result": {"child_exit": 1}, "stdout": ""}


def test_fork_at_module_level(base_url):
    # Both processes go on to call main(); the child's result is not the answer.
    script = ("import os\n\npid = os.fork()\n\ndef main():\n    if pid == 0:\n"
              "        return 'child'\n    os.waitpid(pid, 0)\n    return 'parent'\n")
    assert run_ok(base_url, script) == {"result": "parent", "stdout": ""}


def test_print_fork_dify(base_url):
    # dify-sandbox's test: the child may or may not print before the original ends the run.
    for _ in range(3):
        body = run_ok(base_url, "import os\n\ndef main():\n    print(os.fork())\n    return 1\n")
        assert body["result"] == 1, body
        printed = sorted(int(line) for line in body["stdout"].splitlines())
        assert printed[-1] > 0 and printed[:-1] in ([], [0]), body


def test_fork_bomb_ends_with_its_own_exception(base_url):
    # As snekbox's suite expects: the pids limit makes os.fork() fail in the original, and
    # that is the answer, whatever its 63 copies did.
    script = "import os\n\ndef main():\n    while True:\n        os.fork()\n"
    body = run_err(base_url, script, "exception")
    assert body["error"] == "BlockingIOError: [Errno 11] Resource temporarily unavailable", body
    assert 'File "<script>", line 5, in main' in body["traceback"]


def test_fork_bomb_caught(base_url):
    script = ("import os\n\ndef main():\n    try:\n        while True:\n            os.fork()\n"
              "    except BlockingIOError as e:\n        return str(e)\n")
    assert run_ok(base_url, script) == {"result": "[Errno 11] Resource temporarily unavailable",
                                        "stdout": ""}


# ============================================================ 1b. tampering with the channel

@pytest.mark.parametrize("write", [
    "os.write(3, b'garbage')",
    "os.write(3, b'R0 0\\n1')",         # a second frame after the runner's
    "os.write(3, b'R0 0\\n')",          # a frame without a value
    "os.write(3, b'E0 0\\n{}')",        # an error frame without its fields
], ids=["garbage", "second_frame", "empty_value", "empty_error"])
def test_tampered_channel_has_its_own_kind(base_url, write):
    script = "import os\n\ndef main():\n    print('x')\n    %s\n    return 2\n" % write
    body = run_err(base_url, script, "channel_tampered")
    assert body == {"error": TAMPERED, "stdout": "x\n", "error_kind": "channel_tampered"}


def test_one_forged_frame_is_accepted_once(base_url):
    # A whole frame written by the script carries a value main() could have returned.
    script = "import os\n\ndef main():\n    os.write(3, b'R0 0\\n\"forged\"')\n    os._exit(0)\n"
    assert run_ok(base_url, script) == {"result": "forged", "stdout": ""}


# ============================================================ 2. the result limit, exactly

def pyexec_run(script, mode, **config):
    """build/pyexec-run on script with these config settings (nothing preloaded)."""
    p = subprocess.run([PYEXEC_RUN, "-c", suite_config(**config), {"warm": "-w", "cold": "-W"}[mode], "-"],
                       input=script.encode(), capture_output=True, timeout=60)
    assert p.returncode == 0, p
    return parse_json_strict(p.stdout)


SMALL_LIMIT = 4096


@pytest.mark.parametrize("mode", ["warm", "cold"])
@pytest.mark.parametrize("extra,ok", [(0, True), (1, False)], ids=["at_limit", "one_over"])
def test_result_limit_is_exact(mode, extra, ok):
    # The JSON text of 'x' * n is n + 2 bytes (the quotes).
    script = "def main():\n    return 'x' * %d\n" % (SMALL_LIMIT - 2 + extra)
    body = pyexec_run(script, mode, result_max_bytes=SMALL_LIMIT)
    if ok:
        assert body == {"result": "x" * (SMALL_LIMIT - 2), "stdout": ""}
    else:
        assert body == {"error": "main() returned more than the %d-byte result limit" % SMALL_LIMIT,
                        "stdout": "", "error_kind": "result_too_large"}


@pytest.mark.parametrize("mode", ["warm", "cold"])
@pytest.mark.parametrize("extra,ok", [(0, True), (1, False)], ids=["at_limit", "one_over"])
def test_forged_frame_result_limit_is_exact(mode, extra, ok):
    # The worker holds a forged frame to the same limit as the runner holds main()'s value.
    n = SMALL_LIMIT - 2 + extra
    script = ("import os\n\ndef main():\n    os.write(3, b'R12 34\\n\"' + b'y' * %d + b'\"')\n"
              "    os._exit(0)\n" % n)
    body = pyexec_run(script, mode, result_max_bytes=SMALL_LIMIT)
    if ok:
        assert body == {"result": "y" * n, "stdout": ""}
    else:
        assert body["error_kind"] == "result_too_large", body


@pytest.mark.parametrize("mode", ["warm", "cold"])
def test_error_frame_fits_under_a_small_result_limit(mode):
    # An error's frame is bounded on its own, not by result_max_bytes.
    body = pyexec_run("def main():\n    raise ValueError('v' * 20000)\n", mode, result_max_bytes=16)
    assert body["error_kind"] == "exception", body
    assert body["error"] == "ValueError: " + "v" * 20000


def test_result_of_exactly_the_default_limit(base_url):
    # The attacker's case: 8,388,604 bytes were refused, under the 8 MiB limit.
    body = run_ok(base_url, "def main():\n    return 'z' * %d\n" % (RESULT_MAX - 2))
    assert len(body["result"]) == RESULT_MAX - 2
    run_err(base_url, "def main():\n    return 'z' * %d\n" % (RESULT_MAX - 1), "result_too_large")


# ============================================================ 3. long error messages

def clipped(text):
    """What the runner makes of a long error text: the first ERROR_TEXT_MAX bytes of UTF-8 (at
    a character boundary) and a marker saying how many bytes were dropped."""
    data = text.encode("utf-8")
    if len(data) <= ERROR_TEXT_MAX:
        return text
    head = data[:ERROR_TEXT_MAX].decode("utf-8", "ignore")
    return "%s… [truncated %d bytes]" % (head, len(data) - len(head.encode("utf-8")))


def test_huge_exception_message_is_truncated(base_url):
    body = run_err(base_url, "def main():\n    raise ValueError('e' * (5 << 20))\n", "exception")
    assert body["error"] == clipped("ValueError: " + "e" * (5 << 20))
    assert body["error"].endswith("… [truncated %d bytes]" % (len("ValueError: ") + (5 << 20) - ERROR_TEXT_MAX))
    tb = body["traceback"]
    assert tb.startswith("Traceback (most recent call last):\n  File \"<script>\", line 2, in main\n"), tb[:300]
    assert len(tb.encode()) <= ERROR_TEXT_MAX + 64 and " [truncated " in tb[-40:], tb[-100:]


def test_truncation_keeps_whole_characters(base_url):
    # 3-byte characters across the cut: no half character, no U+FFFD.
    body = run_err(base_url, "def main():\n    raise KeyError('€' * 30000)\n", "exception")
    assert body["error"] == clipped("KeyError: '%s'" % ("€" * 30000))
    assert "\ufffd" not in body["error"]


def test_message_at_the_bound_is_whole(base_url):
    n = ERROR_TEXT_MAX - len("ValueError: ")
    body = run_err(base_url, "def main():\n    raise ValueError('a' * %d)\n" % n, "exception")
    assert body["error"] == "ValueError: " + "a" * n


def test_huge_not_serializable_message_is_truncated(base_url):
    script = "def main():\n    return type('T' * (1 << 20), (), {})()\n"
    body = run_err(base_url, script, "not_serializable")
    whole = SERIALIZE_PREFIX + "TypeError: Object of type %s is not JSON serializable" % ("T" * (1 << 20))
    assert body["error"] == clipped(whole)


# ============================================================ 4. repeated object names

DUPLICATE = SERIALIZE_PREFIX + 'a dict has keys that become the same JSON name (such as 1 and "1")'


@pytest.mark.parametrize("expr", [
    "{1: 'int', '1': 'str'}",
    "[{'k': {None: 1, 'null': 2}}]",
    "{1.5: 'a', '1.5': 'b'}",
], ids=["int_and_str", "nested_none", "float"])
def test_keys_that_collide_in_json(base_url, expr):
    body = run_err(base_url, "def main():\n    return %s\n" % expr, "not_serializable")
    assert body == {"error": DUPLICATE, "stdout": "", "error_kind": "not_serializable"}


def test_dict_subclass_with_lying_items(base_url):
    script = ("class D(dict):\n    def items(self):\n        return [('a', 1), ('a', 2)]\n\n"
              "def main():\n    return D(x=1)\n")
    body = run_err(base_url, script, "not_serializable")
    assert body["error"] == DUPLICATE


def test_same_names_in_different_objects_are_fine(base_url):
    body = run_ok(base_url, "def main():\n    return [{'a': 1, 'b': {'a': 2}}, {'a': 3}]\n")
    assert body["result"] == [{"a": 1, "b": {"a": 2}}, {"a": 3}]


@pytest.mark.parametrize("value", [b'{"a": 1, "a": 2}', b'{"a": 1, "\\u0061": 2}', b'[{"x": {"k": 1, "k": 1}}]'],
                         ids=["plain", "escaped", "nested"])
def test_forged_frame_with_repeated_names(base_url, value):
    script = "import os\n\ndef main():\n    os.write(3, b'R0 0\\n' + %r)\n    os._exit(0)\n" % value
    body = run_err(base_url, script, "not_serializable")
    assert body["error"] == DUPLICATE


def test_request_with_repeated_names_is_invalid_json(base_url):
    body = b'{"script": "def main():\\n    return 1", "script": "def main():\\n    return 2"}'
    status, _, raw = request(base_url, "POST", "/execute", body=body,
                             headers={"Content-Type": "application/json"})
    assert status == 400, raw
    assert parse_json_strict(raw)["error_kind"] == "invalid_json"


# ============================================================ 5. numbers beyond a double

@pytest.mark.parametrize("value", [b"1e999", b"-1e999", b"[1.5, 1e309]", b'{"x": 2.0E+400}',
                                   b"1797693134862315807937289714053034150799341327100378269361737789804449682927647509466490179775872070963302864166928879109465555478519404026306574886715058206819089020007083836762738548458177115317644757302700698555713669596228429148198608349364752927190741684443655107043427115596995080930428801779041744977919.0"],
                         ids=["1e999", "-1e999", "in_list", "in_object", "long_form"])
def test_forged_number_beyond_a_double(base_url, value):
    script = "import os\n\ndef main():\n    os.write(3, b'R0 0\\n' + %r)\n    os._exit(0)\n" % value
    run_err(base_url, script, "channel_tampered")


def test_largest_double_and_big_integers_pass(base_url):
    body = run_ok(base_url, "import sys\n\ndef main():\n    return [sys.float_info.max, -sys.float_info.max, "
                            "5e-324, 10**400, -(10**400)]\n")
    assert body["result"] == [1.7976931348623157e308, -1.7976931348623157e308, 5e-324, 10 ** 400, -(10 ** 400)]


# ============================================================ 6. real-time signals

@pytest.mark.parametrize("expr,name", [
    ("signal.SIGRTMIN", "SIGRTMIN"),
    ("signal.SIGRTMIN + 3", "SIGRTMIN+3"),
    ("signal.SIGRTMAX - 1", "SIGRTMAX-1"),
    ("signal.SIGRTMAX", "SIGRTMAX"),
], ids=["rtmin", "rtmin_3", "rtmax_1", "rtmax"])
def test_real_time_signal_is_named(base_url, expr, name):
    script = "import os, signal\n\ndef main():\n    os.kill(os.getpid(), %s)\n" % expr
    body = run_err(base_url, script, "killed")
    assert body["error"] == "Script execution error: killed by signal " + name


# ============================================================ 7. a byte-order mark

def test_script_starting_with_a_bom(base_url):
    assert run_ok(base_url, "\ufeffdef main():\n    return 'bom'\n") == {"result": "bom", "stdout": ""}


def test_bom_keeps_line_numbers(base_url):
    body = run_err(base_url, "\ufeffx = 1\n\ndef main():\n    return 1/0\n", "exception")
    assert 'File "<script>", line 4, in main' in body["traceback"], body
    body = run_err(base_url, "\ufeffx = 1\n\ndef main(:\n    pass\n", "syntax_error")
    assert body["error"] == "Syntax error in script: invalid syntax (line 3)"


def test_bom_elsewhere_is_still_an_error(base_url):
    run_err(base_url, "x = 1\n\ufeffdef main():\n    return 1\n", "syntax_error")


# ============================================================ 8. usage after a flooded channel

def test_usage_kept_when_the_channel_overflows(base_url):
    # The script burns CPU, then floods the channel past the frame's room: the usage headers
    # still carry its CPU time (the kernel's report, or the frame's own usage line).
    script = ("import os, resource, time\n\ndef main():\n    t = time.process_time()\n"
              "    while time.process_time() - t < 0.3:\n        pass\n"
              "    r = resource.getrusage(resource.RUSAGE_SELF)\n"
              "    head = b'R%d %d\\n' % ((r.ru_utime + r.ru_stime) * 1000, r.ru_maxrss)\n"
              "    os.write(3, head + b'\"' + b'f' * (9 << 20))\n    os._exit(0)\n")
    headers, body = run(base_url, script)
    assert body["error_kind"] == "result_too_large", str(body)[:300]
    assert int(headers["x-pyexec-cpu-ms"]) >= 250, headers
    assert int(headers["x-pyexec-peak-rss-kb"]) > 0, headers
