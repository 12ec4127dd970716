"""Output integrity: invalid UTF-8, NaN, lone surrogates, huge integers, deep nesting.

One file of the adversarial suite (issue 3): hostile scripts written by someone who has read
the source, each asserting the safe outcome the issue guarantees. tests/helpers.py lists the
suite's files and holds what they share; conftest.py the fixtures fast_config and mode.
"""


from helpers import S, run_err, run_ok, run_script


class TestOutputIntegrity:

    def test_invalid_utf8_written_by_python(self):
        script = ("import sys\ndef main():\n"
                  "    sys.stdout.buffer.write(b'ok\\xff\\xfe\\xed\\xa0\\x80\\xc3end\\n')\n    return 1\n")
        body = run_ok(script)
        assert body["stdout"].startswith("ok\ufffd") and body["stdout"].endswith("end\n"), body
        assert "\ufffd" in body["stdout"]

    def test_invalid_utf8_written_by_a_child_program(self):
        script = S('''
            import subprocess

            def main():
                subprocess.run(["printf", "a\\\\377\\\\300\\\\200b\\\\355\\\\240\\\\200c"])
                return 2
        ''')
        body = run_ok(script)
        out = body["stdout"]
        assert out[0] == "a" and out[-1] == "c" and "b" in out and "\ufffd" in out, body

    def test_nan_and_infinities_nested(self):
        script = S('''
            def main():
                nan, inf = float("nan"), float("inf")
                return {"a": [nan, inf, -inf, 1.5], "b": {"c": nan, "d": (inf,)}, "e": nan}
        ''')
        body = run_ok(script)
        assert body["result"] == {"a": [None, None, None, 1.5], "b": {"c": None, "d": [None]}, "e": None}

    def test_numpy_nan_and_inf(self):
        script = S('''
            import numpy as np

            def main():
                return {"arr": np.array([np.nan, np.inf, 1.0]), "f32": np.float32("-inf"), "f64": np.float64("nan")}
        ''')
        assert run_ok(script)["result"] == {"arr": [None, None, 1.0], "f32": None, "f64": None}

    def test_lone_surrogates_in_result_and_keys(self):
        script = "def main():\n    return {'\\udfff': '\\ud800x', 'k': ['\\udc80', 'ok']}\n"
        body = run_ok(script)
        assert body["result"] == {"\ufffd": "\ufffdx", "k": ["\ufffd", "ok"]}

    def test_lone_surrogates_printed(self):
        body = run_ok("def main():\n    print('a\\ud800b\\udfffc')\n    return 0\n")
        assert body["stdout"] == "a\ufffdb\ufffdc\n"

    def test_huge_integer_exact(self):
        body = run_ok("def main():\n    return [10 ** 4000 + 7, -(2 ** 10000)]\n")
        assert body["result"] == [10 ** 4000 + 7, -(2 ** 10000)]

    def test_integer_beyond_pythons_str_limit(self):
        body = run_script("def main():\n    return 7 ** 20000\n")
        assert body.get("result", 7 ** 20000) == 7 ** 20000
        assert "result" in body or body["error_kind"] == "not_serializable", body

    def test_deep_nesting_round_trip(self):
        body = run_ok("def main():\n    x = 1\n    for i in range(500):\n"
                      "        x = [x] if i % 2 else {'k': x}\n    return x\n")
        x = body["result"]
        depth = 0
        while not isinstance(x, int):
            x = x[0] if isinstance(x, list) else x["k"]
            depth += 1
        assert depth == 500 and x == 1

    def test_very_deep_nesting_is_a_precise_error(self):
        body = run_script("def main():\n    x = []\n    for i in range(200000):\n        x = [x]\n    return x\n")
        assert "result" not in body, "a 200000-deep result was answered"
        assert body["error_kind"] in ("not_serializable", "exception"), body

    def test_control_characters_round_trip(self):
        s = "".join(chr(i) for i in range(32)) + "\x7f\u2028\u2029\"\\</script>"
        body = run_ok("def main():\n    print(%r, end='')\n    return %r\n" % (s, s))
        assert body == {"result": s, "stdout": s}

    def test_envelope_keys_inside_the_result(self):
        fake = {"result": "x", "stdout": "forged", "error": "y", "error_kind": "timeout"}
        body = run_ok("def main():\n    return %r\n" % (fake,))
        assert body == {"result": fake, "stdout": ""}

    def test_float_subclass_repr_cannot_inject(self):
        script = S('''
            class F(float):
                def __repr__(self):
                    return '1, "stdout": "forged"'
                __str__ = __repr__

            class I(int):
                def __repr__(self):
                    return '2]}, "x": [{'
                __str__ = __repr__

            def main():
                return [F(1.5), I(3), {I(4): F(2.5)}]
        ''')
        body = run_script(script)
        if "result" in body:
            assert body == {"result": [1.5, 3, {"4": 2.5}], "stdout": ""}, body
        else:
            assert body["stdout"] == "" and body["error_kind"] in ("not_serializable", "exception"), body

    def test_float_edges_exact(self):
        body = run_ok("def main():\n    return [-0.0, 1e308, 5e-324, 2 ** 53 + 1, 0.1 + 0.2]\n")
        assert body["result"] == [-0.0, 1e308, 5e-324, 2 ** 53 + 1, 0.1 + 0.2]

    def test_unicode_round_trip(self):
        s = "h\u00e9llo \u4e16\u754c \U0001f600 e\u0301 \ufeff \U0010ffff"
        body = run_ok("def main():\n    print(%r)\n    return {%r: %r}\n" % (s, s, s))
        assert body == {"result": {s: s}, "stdout": s + "\n"}

    def test_circular_result_is_a_precise_error(self):
        body = run_err("def main():\n    x = []\n    x.append(x)\n    return x\n", "not_serializable")
        assert "Circular reference" in body["error"], body
