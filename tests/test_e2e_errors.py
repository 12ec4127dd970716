"""Every error in the README (script failures and HTTP-level errors) and output integrity."""

import concurrent.futures
import json
import re
import uuid

import pytest

from helpers import assert_json_content_type, chunked, parse_json_strict, post_execute, request

JSON_HDR = {"Content-Type": "application/json"}
GOOD_BODY = b'{"script": "def main():\\n    return 1"}'


def script_error(base_url, script, kind):
    """Run a failing script; check the common shape of a failure answer; return the body."""
    status, headers, body = post_execute(base_url, script)
    assert status == 200, body
    assert_json_content_type(headers)
    assert isinstance(body, dict), body
    assert "result" not in body, body
    assert body.get("error_kind") == kind, body
    assert isinstance(body.get("error"), str) and body["error"], body
    assert isinstance(body.get("stdout"), str), body
    allowed = {"error", "error_kind", "stdout", "stdout_truncated", "traceback"}
    assert set(body) <= allowed, body
    return body


def run_ok(base_url, script):
    status, headers, body = post_execute(base_url, script)
    assert status == 200, body
    assert_json_content_type(headers)
    assert set(body) == {"result", "stdout"}, body
    return body


def http_error(base_url, method, path, body=None, headers=None, status=None, kind=None):
    st, hdrs, raw = request(base_url, method, path, body=body, headers=headers)
    parsed = parse_json_strict(raw)
    assert st == status, (st, parsed)
    assert_json_content_type(hdrs)
    assert isinstance(parsed, dict), parsed
    assert parsed.get("error_kind") == kind, parsed
    assert isinstance(parsed.get("error"), str) and parsed["error"], parsed
    assert parsed.get("stdout") == "", parsed
    assert "result" not in parsed
    return hdrs, parsed


# ================================================================ no_main

@pytest.mark.parametrize("script", [
    "",
    "x = 1\n",
    "def mian():\n    return 1\n",
    "def some_function():\n    return {'data': 'test'}\n",
    "# def main():\n#     return 1\n",
    "s = 'def main(): return 1'\n",
], ids=["empty", "assignment", "typo", "other_function", "commented_out", "in_string"])
def test_no_main(base_url, script):
    body = script_error(base_url, script, "no_main")
    assert body["error"] == "Script must contain a main() function"
    assert body["stdout"] == ""


# ================================================================ syntax_error

@pytest.mark.parametrize("script,msg,line", [
    ("def main():\n    return {invalid syntax here}", "invalid syntax. Perhaps you forgot a comma?", 2),
    ("def main(:\n    pass\n", "invalid syntax", 1),
    ("x = 1\n\ndef main():\n    return (1,\n", "'(' was never closed", 4),
    ("def main():\nreturn 1\n", "expected an indented block after function definition on line 1", 2),
    ("print('module body ran')\n\n\ndef main():\n    return 1 +\n", "invalid syntax", 5),
], ids=["seed002", "bad_def", "unclosed_paren", "indentation", "late_line"])
def test_syntax_error(base_url, script, msg, line):
    body = script_error(base_url, script, "syntax_error")
    assert body["error"] == "Syntax error in script: %s (line %d)" % (msg, line)
    # The script is compiled before anything runs, so nothing was printed.
    assert body["stdout"] == ""
    # The message must match what this very interpreter says.
    with pytest.raises(SyntaxError) as ei:
        compile(script, "<script>", "exec")
    assert (ei.value.msg, ei.value.lineno) == (msg, line)


# ================================================================ not_serializable

PREFIX = "main() function must return JSON serializable data: "


@pytest.mark.parametrize("expr,typename", [
    ("set([1, 2, 3])", "set"),
    ("b'bytes'", "bytes"),
    ("{'ok': [1, 2, object()]}", "object"),
    ("(lambda: 1)", "function"),
], ids=["set", "bytes", "nested_object", "function"])
def test_not_serializable(base_url, expr, typename):
    body = script_error(base_url, "def main():\n    return %s\n" % expr, "not_serializable")
    assert body["error"] == PREFIX + "TypeError: Object of type %s is not JSON serializable" % typename
    assert body["stdout"] == ""


def test_not_serializable_keeps_stdout(base_url):
    body = script_error(base_url, "def main():\n    print('before')\n    return {1, 2}\n",
                        "not_serializable")
    assert body["stdout"] == "before\n"
    assert body["error"] == PREFIX + "TypeError: Object of type set is not JSON serializable"


# ================================================================ exception

def script_frames(tb):
    return re.findall(r'File "([^"]*)", line (\d+), in (\S+)', tb)


def test_exception_readme_example(base_url):
    body = script_error(base_url, 'def main():\n    print("before")\n    return 1/0', "exception")
    assert body == {
        "error": "ZeroDivisionError: division by zero",
        "stdout": "before\n",
        "error_kind": "exception",
        "traceback": "Traceback (most recent call last):\n"
                     "  File \"<script>\", line 3, in main\n"
                     "    return 1/0\n"
                     "            ~^~\n"
                     "ZeroDivisionError: division by zero\n",
    }


def test_exception_message_and_traceback_nested(base_url):
    script = ("def helper(x):\n"
              "    raise ValueError('bad value %d' % x)\n"
              "\n"
              "def main():\n"
              "    print('start')\n"
              "    helper(7)\n"
              "    return 1\n")
    body = script_error(base_url, script, "exception")
    assert body["error"] == "ValueError: bad value 7"
    assert body["stdout"] == "start\n"
    tb = body["traceback"]
    assert isinstance(tb, str)
    assert 'File "<script>", line 6, in main' in tb
    assert 'File "<script>", line 2, in helper' in tb
    assert tb.index("in main") < tb.index("in helper")
    frames = script_frames(tb)
    assert frames == [("<script>", "6", "main"), ("<script>", "2", "helper")], tb
    assert tb.rstrip("\n").endswith("ValueError: bad value 7")
    assert tb.count("Traceback (most recent call last):") == 1


@pytest.mark.parametrize("stmt,error", [
    ("raise KeyError('k')", "KeyError: 'k'"),
    ("[][5]", "IndexError: list index out of range"),
    ("int('abc')", "ValueError: invalid literal for int() with base 10: 'abc'"),
    ("undefined_name + 1", "NameError: name 'undefined_name' is not defined"),
    ("raise RuntimeError('multi\\nline')", "RuntimeError: multi\nline"),
], ids=["KeyError", "IndexError", "ValueError", "NameError", "multiline"])
def test_exception_types(base_url, stmt, error):
    body = script_error(base_url, "import os\n\ndef main():\n    %s\n" % stmt, "exception")
    assert body["error"] == error
    assert body["stdout"] == ""
    frames = script_frames(body["traceback"])
    assert frames == [("<script>", "4", "main")], body["traceback"]


def test_exception_in_module_body(base_url):
    body = script_error(base_url, "print('loading')\nraise ValueError('at import')\n"
                                  "def main():\n    return 1\n", "exception")
    assert body["error"] == "ValueError: at import"
    assert body["stdout"] == "loading\n"
    frames = script_frames(body["traceback"])
    assert frames == [("<script>", "2", "<module>")], body["traceback"]


def test_exception_from_library_keeps_script_frame(base_url):
    script = "import json\n\ndef main():\n    return json.loads('not json')\n"
    body = script_error(base_url, script, "exception")
    assert body["error"].endswith("JSONDecodeError: Expecting value: line 1 column 1 (char 0)")
    assert 'File "<script>", line 4, in main' in body["traceback"]


def test_main_called_with_no_arguments_error(base_url):
    # main() requiring an argument fails as an ordinary exception when called once.
    body = script_error(base_url, "def main(x):\n    return x\n", "exception")
    assert body["error"].startswith("TypeError: ")
    assert "main()" in body["error"]


# ================================================================ exited

@pytest.mark.parametrize("code", [3, 0, 1])
def test_exited_sys_exit_in_module_body(base_url, code):
    script = "import sys\nprint('module body')\nsys.exit(%d)\n\ndef main():\n    return 1\n" % code
    body = script_error(base_url, script, "exited")
    assert body["error"] == "Script exited with status %d before main() returned" % code
    assert body["stdout"] == "module body\n"


def test_exited_os_exit_in_main(base_url):
    script = ("import os, sys\n\ndef main():\n    print('about to exit')\n"
              "    sys.stdout.flush()\n    os._exit(5)\n")
    body = script_error(base_url, script, "exited")
    assert body["error"] == "Script exited with status 5 before main() returned"
    assert body["stdout"] == "about to exit\n"


# ================================================================ killed

@pytest.mark.parametrize("stmt,sig", [
    ("os.kill(os.getpid(), signal.SIGSEGV)", "SIGSEGV"),
    ("ctypes.string_at(0)", "SIGSEGV"),
    ("os.kill(os.getpid(), signal.SIGKILL)", "SIGKILL"),
    ("os.abort()", "SIGABRT"),
], ids=["kill_SIGSEGV", "ctypes_null_deref", "kill_SIGKILL", "abort"])
def test_killed(base_url, stmt, sig):
    script = ("import os, signal, ctypes, sys, time\n\ndef main():\n"
              "    print('before crash')\n    sys.stdout.flush()\n    %s\n"
              "    time.sleep(1)\n    return 'survived'\n" % stmt)
    body = script_error(base_url, script, "killed")
    assert body["error"] == "Script execution error: killed by signal %s" % sig
    assert body["stdout"] == "before crash\n"


# ================================================================ HTTP: invalid_json

@pytest.mark.parametrize("raw", [
    b"garbage",
    b'{"script": "def main',
    b'{"script": "def main():\\n    return 1"',
    b'{"script": "def main():\\n    return \'\xff\xfe\'"}',
    b'{"script": "def main():\\n    return \'\xc0\xaf\'"}',          # overlong encoding
    b'{"script": "def main():\\n    return \'\xed\xa0\x80\'"}',      # UTF-8-encoded surrogate
    b"",
    b'{"script": "def main():\\n    return 1"} trailing',
    b'{"script": "def main():\\n    return 1", "x": NaN}',
    b"{'script': 'def main():\\n    return 1'}",
    b'{"script": "def main():\n    return 1"}',                      # raw newline in string
], ids=["garbage", "truncated", "unterminated_object", "invalid_utf8", "overlong_utf8",
        "encoded_surrogate", "empty", "trailing_garbage", "nan", "single_quotes",
        "raw_control_char"])
def test_invalid_json(base_url, raw):
    http_error(base_url, "POST", "/execute", body=raw, headers=JSON_HDR,
               status=400, kind="invalid_json")


# ================================================================ HTTP: invalid_request

@pytest.mark.parametrize("raw", [b"[]", b'["def main(): return 1"]', b"42", b'"script"',
                                 b"null", b"true"],
                         ids=["array", "array_of_string", "number", "string", "null", "true"])
def test_invalid_request_not_object(base_url, raw):
    http_error(base_url, "POST", "/execute", body=raw, headers=JSON_HDR,
               status=400, kind="invalid_request")


@pytest.mark.parametrize("raw", [b"{}", b'{"code": "def main():\\n    return 1"}',
                                 b'{"Script": "def main():\\n    return 1"}'],
                         ids=["empty_object", "other_field", "wrong_case"])
def test_invalid_request_missing_script(base_url, raw):
    _, body = http_error(base_url, "POST", "/execute", body=raw, headers=JSON_HDR,
                         status=400, kind="invalid_request")
    assert body == {"error": "Request must contain 'script' field",
                    "error_kind": "invalid_request", "stdout": ""}


@pytest.mark.parametrize("raw", [b'{"script": 5}', b'{"script": null}', b'{"script": ["x"]}',
                                 b'{"script": {"a": 1}}', b'{"script": true}'],
                         ids=["number", "null", "array", "object", "bool"])
def test_invalid_request_script_not_string(base_url, raw):
    _, body = http_error(base_url, "POST", "/execute", body=raw, headers=JSON_HDR,
                         status=400, kind="invalid_request")
    assert body == {"error": "'script' must be a string",
                    "error_kind": "invalid_request", "stdout": ""}


def test_other_fields_ignored(base_url):
    raw = json.dumps({"timeout": 1000, "script": "def main():\n    return 'ok'",
                      "extra": {"nested": [1, 2, {"x": None}]}}).encode()
    st, hdrs, resp = request(base_url, "POST", "/execute", body=raw, headers=JSON_HDR)
    assert st == 200
    assert parse_json_strict(resp) == {"result": "ok", "stdout": ""}


def test_moderately_deep_ignored_field_is_valid_json(base_url):
    # 100 levels of nesting is valid JSON; the extra field is ignored.
    deep = "[" * 100 + "]" * 100
    raw = ('{"script": "def main():\\n    return 7", "extra": %s}' % deep).encode()
    st, _, resp = request(base_url, "POST", "/execute", body=raw, headers=JSON_HDR)
    assert st == 200, resp
    assert parse_json_strict(resp) == {"result": 7, "stdout": ""}


def test_very_deep_request_body_answers_json(base_url):
    # 200000 levels: accepted or rejected as invalid_json, but never a crash.
    deep = "[" * 200000 + "]" * 200000
    raw = ('{"script": "def main():\\n    return 7", "extra": %s}' % deep).encode()
    st, _, resp = request(base_url, "POST", "/execute", body=raw, headers=JSON_HDR)
    body = parse_json_strict(resp)
    if st == 200:
        assert body == {"result": 7, "stdout": ""}
    else:
        assert st == 400 and body["error_kind"] == "invalid_json", (st, body)
    # and the service is still fine
    assert run_ok(base_url, "def main():\n    return 1")["result"] == 1


def test_chunked_request_body(base_url):
    raw = json.dumps({"script": "def main():\n    print('chunked')\n    return [1, 2]"}).encode()
    st, hdrs, resp = request(base_url, "POST", "/execute", body=chunked(raw, 7),
                             headers={"Content-Type": "application/json",
                                      "Transfer-Encoding": "chunked"})
    assert st == 200, resp
    assert parse_json_strict(resp) == {"result": [1, 2], "stdout": "chunked\n"}


def test_chunked_request_body_over_8mib(base_url):
    raw = json.dumps({"script": "def main():\n    return 1\n" + "#" * (9 * 1024 * 1024)}).encode()
    http_error(base_url, "POST", "/execute", body=chunked(raw),
               headers={"Content-Type": "application/json", "Transfer-Encoding": "chunked"},
               status=413, kind="too_large")


def test_query_string_is_ignored(base_url):
    st, _, resp = request(base_url, "POST", "/execute?debug=1", body=GOOD_BODY, headers=JSON_HDR)
    assert st == 200, resp
    assert parse_json_strict(resp) == {"result": 1, "stdout": ""}


# ================================================================ HTTP: 404 / 405

@pytest.mark.parametrize("method,path", [
    ("GET", "/nope"), ("POST", "/execute/extra"), ("GET", "/"), ("POST", "/executes"),
    ("POST", "/Execute"), ("GET", "/health/x"),
])
def test_not_found(base_url, method, path):
    body = b'{"script": "def main():\\n    return 1"}' if method == "POST" else None
    hdrs = JSON_HDR if method == "POST" else None
    http_error(base_url, method, path, body=body, headers=hdrs, status=404, kind="not_found")


@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE", "PATCH"])
def test_method_not_allowed_execute(base_url, method):
    body = b'{"script": "def main():\\n    return 1"}' if method in ("PUT", "PATCH") else None
    hdrs, _ = http_error(base_url, method, "/execute", body=body,
                         headers=JSON_HDR if body else None,
                         status=405, kind="method_not_allowed")
    assert "POST" in [m.strip() for m in hdrs.get("allow", "").split(",")], hdrs


@pytest.mark.parametrize("path", ["/health", "/healthz"])
@pytest.mark.parametrize("method", ["POST", "DELETE"])
def test_method_not_allowed_health(base_url, method, path):
    body = b"{}" if method == "POST" else None
    hdrs, _ = http_error(base_url, method, path, body=body,
                         headers=JSON_HDR if body else None,
                         status=405, kind="method_not_allowed")
    allow = [m.strip() for m in hdrs.get("allow", "").split(",")]
    assert "GET" in allow, hdrs


def test_head_health(base_url):
    st, _, raw = request(base_url, "HEAD", "/health")
    assert st == 200
    assert raw == b""
    st, _, raw = request(base_url, "GET", "/health")
    assert parse_json_strict(raw) == {"status": "healthy"}


# ================================================================ HTTP: 413

def test_body_over_8mib(base_url):
    script = "def main():\n    return 1\n" + "#" * (9 * 1024 * 1024)
    raw = json.dumps({"script": script}).encode()
    assert len(raw) > 8 * 1024 * 1024
    _, body = http_error(base_url, "POST", "/execute", body=raw, headers=JSON_HDR,
                         status=413, kind="too_large")


def test_body_over_8mib_in_ignored_field(base_url):
    raw = json.dumps({"script": "def main():\n    return 1",
                      "padding": "p" * (8 * 1024 * 1024 + 100)}).encode()
    http_error(base_url, "POST", "/execute", body=raw, headers=JSON_HDR,
               status=413, kind="too_large")


def test_script_over_1mib(base_url):
    script = "def main():\n    return 1\n" + "#" * (1024 * 1024)
    raw = json.dumps({"script": script}).encode()
    assert len(raw) < 8 * 1024 * 1024
    http_error(base_url, "POST", "/execute", body=raw, headers=JSON_HDR,
               status=413, kind="too_large")


def test_script_over_1mib_decoded_from_escapes(base_url):
    # ~6.6 MB body of \u0020 escapes that decodes to 1.1 MB of script.
    script_body = "\\u0020" * (1100 * 1000)
    raw = ('{"script": "def main():\\n    return 1\\n%s"}' % script_body).encode()
    assert len(raw) < 8 * 1024 * 1024
    http_error(base_url, "POST", "/execute", body=raw, headers=JSON_HDR,
               status=413, kind="too_large")


def test_script_exactly_1mib_accepted(base_url):
    head = "def main():\n    return 'fits'\n"
    script = head + "#" * (1024 * 1024 - len(head))
    assert len(script.encode()) == 1024 * 1024
    body = run_ok(base_url, script)
    assert body == {"result": "fits", "stdout": ""}


def test_large_body_small_script_accepted(base_url):
    # 3 MB of escapes in the body, 0.5 MB once decoded: the script limit applies after decoding.
    pad = "\\u0041" * (500 * 1000)
    raw = ('{"script": "def main():\\n    return 42\\n#%s"}' % pad).encode()
    assert len(raw) > 1024 * 1024
    st, _, resp = request(base_url, "POST", "/execute", body=raw, headers=JSON_HDR)
    assert st == 200, resp[:300]
    assert parse_json_strict(resp) == {"result": 42, "stdout": ""}


# ================================================================ HTTP: 415

@pytest.mark.parametrize("ctype", [None, "text/plain", "application/x-www-form-urlencoded",
                                   "application/jsonx", "text/json", "multipart/form-data"],
                         ids=["missing", "text_plain", "form", "jsonx", "text_json", "multipart"])
def test_unsupported_media_type(base_url, ctype):
    hdrs = {"Content-Type": ctype} if ctype else {}
    http_error(base_url, "POST", "/execute", body=GOOD_BODY, headers=hdrs,
               status=415, kind="unsupported_media_type")


@pytest.mark.parametrize("ctype", ["application/json; charset=utf-8", "Application/JSON",
                                   "application/json;charset=UTF-8", "APPLICATION/JSON ; charset=utf-8"])
def test_accepted_media_types(base_url, ctype):
    st, hdrs, raw = request(base_url, "POST", "/execute", body=GOOD_BODY,
                            headers={"Content-Type": ctype})
    assert st == 200, raw
    assert parse_json_strict(raw) == {"result": 1, "stdout": ""}


# ================================================================ output integrity

def test_invalid_utf8_in_stdout(base_url):
    script = ("import sys\n\ndef main():\n    sys.stdout.write('A')\n    sys.stdout.flush()\n"
              "    sys.stdout.buffer.write(b'\\xff\\xfe')\n    sys.stdout.buffer.flush()\n"
              "    print('B')\n    return 1\n")
    body = run_ok(base_url, script)
    assert body == {"result": 1, "stdout": "A\ufffd\ufffdB\n"}


def test_control_chars_round_trip(base_url):
    s = "".join(chr(c) for c in range(0, 32)) + "\x7f\"\\/\u2028\u2029"
    script = ("def main():\n    s = %s\n    print(s)\n    return {'s': s, s: 1}\n" % ascii(s))
    body = run_ok(base_url, script)
    assert body == {"result": {"s": s, s: 1}, "stdout": s + "\n"}


def test_nan_and_infinity_become_null(base_url):
    script = ("import math\nimport numpy as np\n\ndef main():\n"
              "    return {'nan': float('nan'), 'inf': float('inf'), 'ninf': -math.inf,\n"
              "            'list': [1.5, float('nan')], 'npnan': np.float64('nan'),\n"
              "            'arr': np.array([1.0, np.inf, np.nan])}\n")
    body = run_ok(base_url, script)
    assert body == {"result": {"nan": None, "inf": None, "ninf": None, "list": [1.5, None],
                               "npnan": None, "arr": [1.0, None, None]}, "stdout": ""}


def test_top_level_nan_result(base_url):
    body = run_ok(base_url, "def main():\n    return float('nan')\n")
    assert body == {"result": None, "stdout": ""}


def test_lone_surrogate_in_result(base_url):
    script = "def main():\n    return {'k\\ud800': 'a\\udfffb', 'list': ['\\ud83d']}\n"
    body = run_ok(base_url, script)
    assert body == {"result": {"k\ufffd": "a\ufffdb", "list": ["\ufffd"]}, "stdout": ""}


def test_lone_surrogate_in_print(base_url):
    body = run_ok(base_url, "def main():\n    print('x\\ud800y')\n    return 2\n")
    assert body == {"result": 2, "stdout": "x\ufffdy\n"}


def test_valid_surrogate_pair_is_not_mangled(base_url):
    body = run_ok(base_url, "def main():\n    print('\\U0001F600')\n    return '\\U0001F600'\n")
    assert body == {"result": "\U0001F600", "stdout": "\U0001F600\n"}


def test_huge_int_exact(base_url):
    body = run_ok(base_url, "def main():\n    return [10**1000, -(2**3000) + 1]\n")
    assert body["result"] == [10 ** 1000, -(2 ** 3000) + 1]
    assert body["stdout"] == ""


def test_int_over_str_limit_is_valid_json(base_url):
    status, headers, body = post_execute(base_url, "def main():\n    return 10**5000\n")
    assert status == 200, body
    assert_json_content_type(headers)
    if "error" in body:
        assert isinstance(body["error_kind"], str) and body["error_kind"]
        assert "result" not in body
    else:
        assert body == {"result": 10 ** 5000, "stdout": ""}


def test_deep_nesting_round_trip(base_url):
    script = ("def main():\n    x = 'leaf'\n    for i in range(200):\n"
              "        x = [x] if i % 2 else {'k': x}\n    return x\n")
    body = run_ok(base_url, script)
    expected = "leaf"
    for i in range(200):
        expected = [expected] if i % 2 else {"k": expected}
    assert body["result"] == expected


def test_too_deep_result_is_an_error(base_url):
    script = "def main():\n    x = []\n    for _ in range(100000):\n        x = [x]\n    return x\n"
    status, headers, body = post_execute(base_url, script)
    assert status == 200, body
    assert "result" not in body
    assert isinstance(body.get("error"), str) and body["error"]
    assert body.get("error_kind") in ("not_serializable", "exception"), body
    assert body["stdout"] == ""


def test_non_ascii_round_trip(base_url):
    text = "héllo wörld ✓ 日本語 🎉 Ωμέγα"
    script = ("# -*- comment: %s -*-\ndef main():\n    s = '%s'\n    print(s)\n"
              "    return {s: s, 'len': len(s)}\n" % (text, text))
    body = run_ok(base_url, script)
    assert body == {"result": {text: text, "len": len(text)}, "stdout": text + "\n"}


def test_numpy_values_in_result(base_url):
    script = ("import numpy as np\n\ndef main():\n"
              "    return {'i64': np.int64(6), 'i32': np.int32(-3), 'u8': np.uint8(255),\n"
              "            'f64': np.float64(1.5), 'f32': np.float32(0.5), 'b': np.bool_(True),\n"
              "            'arr': np.arange(6).reshape(2, 3), 'farr': np.array([0.25, 2.0]),\n"
              "            'empty': np.array([]), 'list_of_np': [np.int64(1), np.float64(2.5)]}\n")
    body = run_ok(base_url, script)
    r = body["result"]
    assert r == {"i64": 6, "i32": -3, "u8": 255, "f64": 1.5, "f32": 0.5, "b": True,
                 "arr": [[0, 1, 2], [3, 4, 5]], "farr": [0.25, 2.0], "empty": [],
                 "list_of_np": [1, 2.5]}
    assert type(r["i64"]) is int and type(r["i32"]) is int and type(r["u8"]) is int
    assert type(r["arr"][1][2]) is int
    assert type(r["f64"]) is float and type(r["b"]) is bool
    assert body["stdout"] == ""


def test_pandas_sum_to_dict_int_types(base_url):
    script = ("import pandas as pd\ndef main():\n"
              "    df = pd.DataFrame({'a': [1, 2, 3], 'b': [0.5, 0.5, 1.0]})\n"
              "    return df.sum().to_dict()\n")
    body = run_ok(base_url, script)
    assert body == {"result": {"a": 6, "b": 2.0}, "stdout": ""}


def test_printed_fake_json_is_not_the_result(base_url):
    fake = json.dumps({"result": "hacked", "stdout": "hacked", "error": "hacked"})
    script = ("def main():\n    print(%r)\n    return 'real'\n" % fake)
    body = run_ok(base_url, script)
    assert body == {"result": "real", "stdout": fake + "\n"}


def test_fake_result_on_other_fds_is_not_the_result(base_url):
    script = ("import os\n\ndef main():\n"
              "    msg = b'{\"result\": \"hacked\", \"stdout\": \"hacked\"}\\n'\n"
              "    for fd in range(3, 64):\n"
              "        try:\n            os.write(fd, msg)\n"
              "        except OSError:\n            pass\n"
              "    return 'real'\n")
    status, _, body = post_execute(base_url, script)
    assert status == 200, body
    # Either the real result, or an error -- never the forged one.
    assert body.get("result", "real") == "real", body


@pytest.mark.parametrize("frame", [
    # Python expressions evaluated inside the script
    r"""b'R{"a": NaN}'""",
    r"""b'R"\xff"'""",
    r"""b'R[1, 2'""",
    r"""b'Rnull garbage'""",
    r"""b'R1R2'""",
    r"""b'X123'""",
    r"""b'E{"kind": "timeout", "message": "fake", "traceback": ""}'""",
    r"""b'R"' + b'x' * 9000000 + b'"'""",
], ids=["nan", "invalid_utf8", "truncated", "trailing_garbage", "two_frames", "bad_tag",
        "fake_timeout", "oversized"])
def test_forged_result_frames_never_pass_through(base_url, frame):
    # fd 3 is the runner's result channel (see sandbox/runner.py). Whatever a script writes
    # there, the answer stays valid JSON and can only carry a value main() could have returned.
    script = ("import os\n\ndef main():\n    print('x', flush=True)\n"
              "    os.write(3, %s)\n    os._exit(0)\n" % frame)
    status, headers, body = post_execute(base_url, script)
    assert status == 200, body
    assert_json_content_type(headers)
    assert "result" not in body, str(body)[:300]
    assert isinstance(body.get("error"), str) and body["error"], body
    assert body.get("error_kind") != "timeout", body
    if "x' * 9000000" in frame:
        assert body["error_kind"] == "result_too_large", body
    assert body["stdout"] == "x\n"


def test_os_write_fd1_is_stdout(base_url):
    script = ("import os, sys\n\ndef main():\n    print('a')\n    sys.stdout.flush()\n"
              "    os.write(1, b'raw\\n')\n    print('b')\n    return None\n")
    body = run_ok(base_url, script)
    assert body == {"result": None, "stdout": "a\nraw\nb\n"}


def test_stderr_not_in_answer(base_url):
    marker = "STDERR_" + uuid.uuid4().hex
    script = ("import sys\n\ndef main():\n    print(%r, file=sys.stderr)\n"
              "    sys.stderr.flush()\n    return 'ok'\n" % marker)
    status, _, raw = request(base_url, "POST", "/execute",
                             body=json.dumps({"script": script}).encode(), headers=JSON_HDR)
    assert status == 200
    assert parse_json_strict(raw) == {"result": "ok", "stdout": ""}
    assert marker.encode() not in raw


def test_print_without_newline_and_module_level_print(base_url):
    script = ("print('module', end='|')\n\ndef main():\n    print('main', end='')\n    return 0\n")
    body = run_ok(base_url, script)
    assert body == {"result": 0, "stdout": "module|main"}


def test_name_is_script_and_main_runs_once(base_url):
    script = ("def main():\n    print('main ran')\n    return __name__\n\n"
              "if __name__ == '__main__':\n    main()\n")
    body = run_ok(base_url, script)
    assert body == {"result": "script", "stdout": "main ran\n"}


def test_none_result(base_url):
    body = run_ok(base_url, "def main():\n    pass\n")
    assert body == {"result": None, "stdout": ""}


def test_concurrent_requests_do_not_mix(base_url):
    tokens = [uuid.uuid4().hex for _ in range(12)]

    def one(tok):
        script = ("import time\n\ndef main():\n    print(%r)\n    time.sleep(0.3)\n"
                  "    return %r\n" % (tok, tok))
        return post_execute(base_url, script)

    with concurrent.futures.ThreadPoolExecutor(max_workers=12) as ex:
        results = list(ex.map(one, tokens))
    for tok, (status, _, body) in zip(tokens, results):
        assert status == 200, body
        assert body == {"result": tok, "stdout": tok + "\n"}
