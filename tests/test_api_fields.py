"""The /execute request fields of issue 13 (input, limits, usage) and the answer's member
order, end to end in both modes (base_url). The spec is the issue's (README's API section once
merged); files and return_files are in test_api_files.py, figures in test_api_figures.py.

A request with only `script` keeps today's answer exactly; every new field is optional, and a
wrong one is refused with 400 invalid_request before anything runs."""

import json
import os
import time

import pytest

from helpers import served_err as run_err, served_ok as run_ok
from helpers import ROOT, assert_refused, parse_json_strict, post_execute, request

TIMEOUT_1S = "Script execution timed out (1 seconds)"
MEMORY_MSG = "Script execution error: Memory limit exceeded"
LIMIT_KEYS = ("wall_time_s", "cpu_time_s", "memory_mb", "max_processes", "max_open_files", "stdout_max_bytes")


def configured():
    """config/pyexec.conf's values (the service under test runs with them): the maxima a
    request's limits may not exceed."""
    values = {}
    with open(os.path.join(ROOT, "config", "pyexec.conf")) as f:
        for line in f:
            line = line.split("#")[0].strip()
            if "=" in line:
                k, v = (x.strip() for x in line.split("=", 1))
                values[k] = v
    return values


CONF = configured()
LIMIT_MAX = {k: int(CONF[k]) for k in LIMIT_KEYS}


# ============================================================ a request with only `script`

def test_only_script_answers_exactly_result_and_stdout(base_url):
    body = run_ok(base_url, "def main():\n    print('hi')\n    return [1, 2]\n")
    assert body == {"result": [1, 2], "stdout": "hi\n"}
    assert list(body) == ["result", "stdout"]


def test_only_script_error_shape_unchanged(base_url):
    body = run_err(base_url, "def main():\n    print('before')\n    return 1/0\n", "exception")
    assert list(body) == ["error", "stdout", "error_kind", "traceback"], list(body)
    assert body["error"] == "ZeroDivisionError: division by zero"
    assert body["stdout"] == "before\n"


def test_unknown_top_level_members_still_ignored(base_url):
    body = run_ok(base_url, "def main():\n    return 3\n", foo=1, bar={"files": "nonsense"}, Input=[1])
    assert body == {"result": 3, "stdout": ""}


# ============================================================ input

ECHO = "def main(x):\n    return x\n"
TYPED = "def main(x):\n    return {'type': type(x).__name__, 'repr': repr(x)}\n"


@pytest.mark.parametrize("value", [
    {"a": 1, "b": [1, 2, {"c": None}], "d": "e"},
    [1, "two", 3.5, None, True, False, {"k": []}],
    "plain",
    0,
    -17,
    2.5,
    True,
    False,
    {},
    [],
    "",
], ids=["dict", "list", "str", "zero", "negative", "float", "true", "false", "empty_dict", "empty_list",
        "empty_str"])
def test_input_is_passed_to_main(base_url, value):
    body = run_ok(base_url, ECHO, input=value)
    assert body == {"result": value, "stdout": ""}


def test_input_types_as_python_sees_them(base_url):
    cases = [
        ({"a": 1}, "dict", "{'a': 1}"),
        ([1, 2], "list", "[1, 2]"),
        (True, "bool", "True"),
        (3, "int", "3"),
        (0.1, "float", "0.1"),
        (1e300, "float", "1e+300"),
        (2 ** 70, "int", str(2 ** 70)),          # beyond 64 bits: still exact
        (-(2 ** 63) - 1, "int", str(-(2 ** 63) - 1)),
    ]
    for value, typename, rep in cases:
        body = run_ok(base_url, TYPED, input=value)
        assert body["result"] == {"type": typename, "repr": rep}, (value, body)


def test_input_null_calls_main_with_none(base_url):
    script = "def main(x='absent'):\n    return {'is_none': x is None, 'x': x}\n"
    assert run_ok(base_url, script, input=None) == {"result": {"is_none": True, "x": None}, "stdout": ""}


def test_input_absent_calls_main_without_argument(base_url):
    script = "def main(x='absent'):\n    return x\n"
    assert run_ok(base_url, script) == {"result": "absent", "stdout": ""}
    # and a main() without a parameter works as before
    assert run_ok(base_url, "def main():\n    return 'no arg'\n") == {"result": "no arg", "stdout": ""}


def test_input_star_args_receives_exactly_one(base_url):
    script = "def main(*args, **kw):\n    return [list(args), kw]\n"
    assert run_ok(base_url, script, input={"k": 1})["result"] == [[{"k": 1}], {}]
    assert run_ok(base_url, script)["result"] == [[], {}]


def test_input_to_main_without_parameter_is_a_type_error(base_url):
    body = run_err(base_url, "def main():\n    print('unreached?')\n    return 1\n", "exception", input=[1])
    assert body["error"] == "TypeError: main() takes 0 positional arguments but 1 was given"
    assert body["stdout"] == ""
    assert list(body)[:3] == ["error", "stdout", "error_kind"], list(body)


def test_input_null_to_main_without_parameter_is_a_type_error(base_url):
    body = run_err(base_url, "def main():\n    return 1\n", "exception", input=None)
    assert body["error"] == "TypeError: main() takes 0 positional arguments but 1 was given"


def test_input_unicode_string(base_url):
    value = "h\u00e9llo \u2713 \u65e5\u672c\u8a9e \U0001F600 tab\t nl\n nul\x00 quote\" back\\ end"
    script = ("def main(s):\n    print(s)\n"
              "    return {'s': s, 'chars': len(s), 'utf8': len(s.encode('utf-8'))}\n")
    expected = {"s": value, "chars": len(value), "utf8": len(value.encode("utf-8"))}
    body = run_ok(base_url, script, input=value)    # \u escapes in the request
    assert body == {"result": expected, "stdout": value + "\n"}
    # the same as raw UTF-8 in the body
    raw = json.dumps({"script": script, "input": value}, ensure_ascii=False).encode("utf-8")
    status, _, out = request(base_url, "POST", "/execute", body=raw, headers={"Content-Type": "application/json"})
    assert status == 200, out
    assert parse_json_strict(out) == {"result": expected, "stdout": value + "\n"}


def nested(depth):
    v = "bottom"
    for i in range(depth):
        v = [v] if i % 2 else {"k%d" % i: v}
    return v


def test_input_big_nested_value(base_url):
    value = {
        "deep": nested(100),                       # the request parser nests 128 levels
        "wide": list(range(20000)),
        "text": "\u00fc" * 200000,
        "map": {"key%d" % i: [i, str(i), i / 4] for i in range(3000)},
    }
    script = ("def main(x):\n    d, depth = x['deep'], 0\n"
              "    while not isinstance(d, str):\n"
              "        d = d[0] if isinstance(d, list) else next(iter(d.values()))\n        depth += 1\n"
              "    return {'depth': depth, 'wide': sum(x['wide']), 'text': len(x['text']),\n"
              "            'map': len(x['map']), 'echo': x}\n")
    body = run_ok(base_url, script, input=value)
    r = body["result"]
    assert r["depth"] == 100 and r["wide"] == sum(range(20000)) and r["text"] == 200000 and r["map"] == 3000, \
        {k: v for k, v in r.items() if k != "echo"}
    assert r["echo"] == value


# ============================================================ limits: each one lowers its limit

def test_limits_wall_time(base_url):
    script = "import time\ndef main():\n    print('start', flush=True)\n    time.sleep(8)\n    return 1\n"
    t0 = time.monotonic()
    body = run_err(base_url, script, "timeout", limits={"wall_time_s": 1})
    elapsed = time.monotonic() - t0
    assert body["error"] == TIMEOUT_1S
    assert body["stdout"] == "start\n"
    assert 0.9 <= elapsed < 5, elapsed


def test_limits_wall_time_not_too_low(base_url):
    # 2 seconds is 2 seconds (not ms, not rounded down)
    body = run_ok(base_url, "import time\ndef main():\n    time.sleep(1.2)\n    return 'slept'\n",
                  limits={"wall_time_s": 2})
    assert body == {"result": "slept", "stdout": ""}


def test_limits_cpu_time(base_url):
    # A few times: the verdict must be a timeout every time (a SIGXCPU is not a crash).
    for _ in range(5):
        t0 = time.monotonic()
        body = run_err(base_url, "def main():\n    while True:\n        pass\n", "timeout",
                       limits={"cpu_time_s": 1}, usage=True)
        elapsed = time.monotonic() - t0
        assert body["error"] == TIMEOUT_1S
        assert elapsed < 6, elapsed


ALLOC = "def main(mb):\n    b = bytearray(mb << 20)\n    return len(b) >> 20\n"


def test_limits_memory(base_url):
    assert run_ok(base_url, ALLOC, input=200)["result"] == 200     # fine under the default
    body = run_err(base_url, ALLOC, "memory_limit", input=200, limits={"memory_mb": 100})
    assert body["error"] == MEMORY_MSG
    assert run_ok(base_url, ALLOC, input=20, limits={"memory_mb": 100})["result"] == 20


FORKS = '''import os
def main(n):
    r, w = os.pipe()
    pids, err = [], None
    for _ in range(n):
        try:
            pid = os.fork()
        except OSError as e:
            err = type(e).__name__
            break
        if pid == 0:
            os.close(w)
            os.read(r, 1)
            os._exit(0)
        pids.append(pid)
    os.close(w)
    for p in pids:
        os.waitpid(p, 0)
    return {"forked": len(pids), "error": err}
'''


def test_limits_max_processes(base_url):
    assert run_ok(base_url, FORKS, input=12)["result"] == {"forked": 12, "error": None}
    r = run_ok(base_url, FORKS, input=12, limits={"max_processes": 4})["result"]
    assert r["error"] == "BlockingIOError" and r["forked"] < 4, r


OPEN_FILES = '''def main(n):
    fs = []
    try:
        for i in range(n):
            fs.append(open("f%d" % i, "w"))
    except OSError as e:
        return {"opened": len(fs), "errno": e.errno, "error": str(e)}
    return {"opened": len(fs), "errno": None}
'''


def test_limits_max_open_files(base_url):
    assert run_ok(base_url, OPEN_FILES, input=64)["result"] == {"opened": 64, "errno": None}
    r = run_ok(base_url, OPEN_FILES, input=64, limits={"max_open_files": 32})["result"]
    assert r["errno"] == 24 and r["opened"] < 32, r
    assert "Too many open files" in r["error"], r


def test_limits_stdout_max_bytes(base_url):
    script = "def main():\n    print('x' * 1000)\n    print('after')\n    return 'done'\n"
    body = run_ok(base_url, script, limits={"stdout_max_bytes": 100})
    assert body == {"result": "done", "stdout": "x" * 100, "stdout_truncated": True}
    assert list(body) == ["result", "stdout", "stdout_truncated"]


def test_limits_stdout_max_bytes_edge(base_url):
    script = "import sys\ndef main(n):\n    sys.stdout.write('y' * n)\n    return n\n"
    assert run_ok(base_url, script, input=100, limits={"stdout_max_bytes": 100}) == {"result": 100, "stdout": "y" * 100}
    body = run_ok(base_url, script, input=101, limits={"stdout_max_bytes": 100})
    assert body == {"result": 101, "stdout": "y" * 100, "stdout_truncated": True}


def test_limits_stdout_max_bytes_on_error(base_url):
    script = "def main():\n    print('z' * 50)\n    raise ValueError('boom')\n"
    body = run_err(base_url, script, "exception", limits={"stdout_max_bytes": 10})
    assert body["stdout"] == "z" * 10 and body["stdout_truncated"] is True, body
    # Today's order (the seeds' services' answers end with stdout_truncated).
    assert list(body) == ["error", "stdout", "error_kind", "traceback", "stdout_truncated"], list(body)


def test_limits_at_the_maximum_and_empty_are_accepted(base_url):
    assert run_ok(base_url, "def main():\n    return 1\n", limits=dict(LIMIT_MAX)) == {"result": 1, "stdout": ""}
    assert run_ok(base_url, "def main():\n    return 2\n", limits={}) == {"result": 2, "stdout": ""}


def test_limits_do_not_outlive_their_request(base_url):
    # Every worker serves a few requests with low limits, then requests without limits get
    # the defaults again (a prepared sandbox or a warm interpreter must not keep them).
    sleep = "import time\ndef main():\n    time.sleep(1.3)\n    return 'slept'\n"
    for _ in range(6):
        run_ok(base_url, OPEN_FILES, input=64, limits={"max_open_files": 32, "wall_time_s": 1, "max_processes": 4,
                                                       "memory_mb": 100, "stdout_max_bytes": 1})
    for _ in range(6):
        assert run_ok(base_url, OPEN_FILES, input=64)["result"] == {"opened": 64, "errno": None}
        assert run_ok(base_url, FORKS, input=12)["result"] == {"forked": 12, "error": None}
        assert run_ok(base_url, ALLOC, input=150)["result"] == 150
        assert run_ok(base_url, "def main():\n    print('w' * 500)\n    return 0\n") == {"result": 0, "stdout": "w" * 500 + "\n"}
    assert run_ok(base_url, sleep) == {"result": "slept", "stdout": ""}


# ============================================================ limits: refusals

@pytest.mark.parametrize("key", LIMIT_KEYS)
def test_limits_above_maximum_refused(base_url, key):
    mx = LIMIT_MAX[key]
    msg = assert_refused(base_url, "limits.%s: " % key, limits={key: mx + 1})
    assert msg == "limits.%s: %d is above the server's maximum of %d" % (key, mx + 1, mx)


def test_limits_memory_example_message(base_url):
    if LIMIT_MAX["memory_mb"] != 512:
        pytest.skip("the spec's example assumes the default memory_mb = 512")
    msg = assert_refused(base_url, "limits.memory_mb: ", limits={"memory_mb": 1024})
    assert msg == "limits.memory_mb: 1024 is above the server's maximum of 512"


@pytest.mark.parametrize("key", LIMIT_KEYS)
@pytest.mark.parametrize("value", [0, -1, 1.5, "3", True, False, None, [1], {"v": 1}, 10 ** 30, -(10 ** 30)],
                         ids=["zero", "negative", "fraction", "string", "true", "false", "null", "array", "object",
                              "huge", "huge_negative"])
def test_limits_bad_value_refused(base_url, key, value):
    assert_refused(base_url, "limits.%s: " % key, limits={key: value})


def test_limits_bad_value_among_good_ones(base_url):
    assert_refused(base_url, "limits.memory_mb: ", limits={"wall_time_s": 2, "memory_mb": 0})


@pytest.mark.parametrize("key", ["foo", "tmp_size_mb", "result_max_bytes", "script_max_bytes", "workers",
                                 "WALL_TIME_S", ""])
def test_limits_unknown_key_refused(base_url, key):
    # The spec: the message starts "limits.<key>: "; its example is "limits.foo: unknown limit".
    assert_refused(base_url, "limits.%s: unknown limit" % key, limits={key: 1})


@pytest.mark.parametrize("value", [[], [{"wall_time_s": 1}], 1, "wall_time_s=1", None, True],
                         ids=["array", "array_of_object", "number", "string", "null", "true"])
def test_limits_not_an_object_refused(base_url, value):
    assert assert_refused(base_url, "limits: ", limits=value) == "limits: must be an object"


def test_refused_request_runs_nothing(base_url):
    # A refusal comes before the script runs: no output, no side effect visible.
    script = "def main():\n    print('ran')\n    return 1\n"
    assert_refused(base_url, "limits.", script=script, limits={"wall_time_s": 0})


# ============================================================ usage

def check_usage(u):
    assert isinstance(u, dict) and set(u) == {"wall_ms", "cpu_ms", "peak_rss_kb"}, u
    for k, v in u.items():
        assert type(v) is int and v >= 0, (k, u)
    assert u["peak_rss_kb"] > 0, u


def test_usage_true_on_success(base_url):
    script = "import time\ndef main():\n    time.sleep(0.3)\n    t = time.process_time()\n" \
             "    while time.process_time() - t < 0.3:\n        pass\n    return 'ok'\n"
    status, headers, body = post_execute(base_url, script, usage=True)
    assert status == 200, body
    assert list(body) == ["result", "stdout", "usage"], list(body)
    check_usage(body["usage"])
    assert body["usage"]["wall_ms"] >= 550, body["usage"]
    assert body["usage"]["cpu_ms"] >= 250, body["usage"]
    for h in ("x-pyexec-wall-ms", "x-pyexec-cpu-ms", "x-pyexec-peak-rss-kb"):
        assert h in headers, headers


def test_usage_peak_rss_sees_memory(base_url):
    script = "def main():\n    b = bytearray(80 << 20)\n    b[::4096] = b'x' * len(b[::4096])\n    return len(b)\n"
    body = run_ok(base_url, script, usage=True)
    assert body["usage"]["peak_rss_kb"] >= 80 * 1024, body["usage"]


def test_usage_true_on_script_error(base_url):
    body = run_err(base_url, "def main():\n    print('p')\n    raise KeyError('k')\n", "exception", usage=True)
    assert list(body) == ["error", "stdout", "error_kind", "traceback", "usage"], list(body)
    check_usage(body["usage"])


@pytest.mark.parametrize("script,kind", [
    ("def main(:\n", "syntax_error"),
    ("x = 1\n", "no_main"),
    ("def main():\n    return {1}\n", "not_serializable"),
    ("import os\ndef main():\n    os._exit(3)\n", "exited"),
], ids=["syntax_error", "no_main", "not_serializable", "exited"])
def test_usage_true_on_other_errors(base_url, script, kind):
    body = run_err(base_url, script, kind, usage=True)
    assert list(body)[-1] == "usage", list(body)
    check_usage(body["usage"])


def test_usage_on_timeout(base_url):
    body = run_err(base_url, "import time\ndef main():\n    time.sleep(5)\n", "timeout",
                   usage=True, limits={"wall_time_s": 1})
    assert body["error"] == TIMEOUT_1S
    assert list(body) == ["error", "stdout", "error_kind", "usage"], list(body)
    check_usage(body["usage"])
    assert body["usage"]["wall_ms"] >= 900, body["usage"]


def test_usage_false_adds_nothing(base_url):
    status, headers, body = post_execute(base_url, "def main():\n    return 5\n", usage=False)
    assert status == 200 and body == {"result": 5, "stdout": ""}, body
    assert "x-pyexec-wall-ms" in headers, headers
    body = run_err(base_url, "def main():\n    return 1/0\n", "exception", usage=False)
    assert "usage" not in body, body


@pytest.mark.parametrize("value", ["yes", "true", 1, 0, None, [], {}],
                         ids=["yes", "true_string", "one", "zero", "null", "array", "object"])
def test_usage_invalid_refused(base_url, value):
    msg = assert_refused(base_url, "", usage=value)
    assert "usage" in msg, msg


# ============================================================ answer member order

def test_order_success_with_everything_but_files(base_url):
    script = ("import matplotlib.pyplot as plt\ndef main(x):\n    print('o' * 50)\n"
              "    plt.plot([x])\n    return x\n")
    body = run_ok(base_url, script, input=7, figures="svg", usage=True, limits={"stdout_max_bytes": 20})
    assert list(body) == ["result", "stdout", "stdout_truncated", "figures", "usage"], list(body)
    assert body["result"] == 7 and body["stdout"] == "o" * 20 and body["stdout_truncated"] is True


def test_order_success_with_files_and_figures(base_url):
    script = ("import matplotlib.pyplot as plt\ndef main():\n    open('out.txt', 'w').write('hi')\n"
              "    plt.plot([1])\n    return 1\n")
    body = run_ok(base_url, script, usage=True, figures="png", return_files=["*.txt"])
    assert list(body) == ["result", "stdout", "files", "figures", "usage"], list(body)
    assert list(body["files"]) == ["out.txt"]


def test_order_error_with_usage_and_fields(base_url):
    script = "def main(x):\n    print('e' * 30)\n    raise RuntimeError(x)\n"
    body = run_err(base_url, script, "exception", input="why", usage=True, return_files=["*"],
                   limits={"stdout_max_bytes": 5})
    assert list(body) == ["error", "stdout", "error_kind", "traceback", "stdout_truncated", "usage"], list(body)
    assert body["error"] == "RuntimeError: why"
    assert body["stdout"] == "eeeee"
