"""Every curl example and test case from the seed READMEs (/work/shared/seeds), end to end.

Where a seed's expectation cannot be reproduced literally, the pyexec README wins:
  * stdout is the exact bytes printed, so print() output keeps its "\n"
    (seed 002 shows "Starting calculation...\nResult is 50" without it);
  * seed 001's "ERROR: No main() function found" is README's
    "Script must contain a main() function";
  * seed 001's "main() function must return JSON serializable data" and seed 002's
    "TypeError: Object of type MyClass is not JSON serializable" are substrings of
    README's not_serializable message;
  * seed 001 shows stdout equal to the JSON of the result for a script that prints
    nothing; pyexec returns what was printed, i.e. "";
  * seed 001's timeout is 30 s; pyexec's is 10 s (tested in test_e2e_limits.py);
  * seed 002's correlation 0.9745586280878213 was computed by another pandas build;
    Debian's pandas gives 0.9745586289152092, so it is compared to 1e-8.
"""

import json

import pytest

from helpers import assert_json_content_type, parse_json_strict, post_execute, request


def run_ok(base_url, script, result, stdout=""):
    status, headers, body = post_execute(base_url, script)
    assert status == 200, body
    assert_json_content_type(headers)
    assert body == {"result": result, "stdout": stdout}
    return body


def run_err(base_url, script):
    status, headers, body = post_execute(base_url, script)
    assert status == 200, body
    assert_json_content_type(headers)
    assert isinstance(body, dict)
    assert "result" not in body, body
    assert isinstance(body.get("error"), str) and body["error"], body
    assert isinstance(body.get("error_kind"), str), body
    assert isinstance(body.get("stdout"), str), body
    return body


# ---------------------------------------------------------------- health

@pytest.mark.parametrize("path,expected", [
    ("/health", {"status": "healthy"}),   # seeds 001, 002, 003
    ("/healthz", {"status": "ok"}),        # seed 000
])
def test_health(base_url, path, expected):
    status, headers, raw = request(base_url, "GET", path)
    assert status == 200, raw
    assert_json_content_type(headers)
    assert parse_json_strict(raw) == expected


# ---------------------------------------------------------------- pyexec README examples

def test_readme_sum_with_print(base_url):
    run_ok(base_url,
           'def main():\n    print("calculating...")\n    return sum([1,2,3,4,5])',
           15, "calculating...\n")


def test_readme_numpy_item(base_url):
    run_ok(base_url,
           "import numpy as np\ndef main():\n    arr = np.array([1,2,3])\n    return arr.sum().item()",
           6)


def test_readme_pandas_to_dict(base_url):
    run_ok(base_url,
           'import pandas as pd\ndef main():\n    df = pd.DataFrame({"a": [1,2,3]})\n    return df.sum().to_dict()',
           {"a": 6})


# ---------------------------------------------------------------- seed 000

def test_seed000_hello_world(base_url):
    run_ok(base_url, 'def main():\n    return {"message": "hello world"}',
           {"message": "hello world"})


def test_seed000_request_example(base_url):
    run_ok(base_url, "def main():\n    return {'result': 42}", {"result": 42})


def test_seed000_example_with_stdout(base_url):
    run_ok(base_url,
           'def main():\n    print("calculating...")\n    return sum([1,2,3,4,5])',
           15, "calculating...\n")


def test_seed000_numpy(base_url):
    body = run_ok(base_url,
                  "import numpy as np\ndef main():\n    arr = np.array([1,2,3])\n    return arr.sum().item()",
                  6)
    assert type(body["result"]) is int


def test_seed000_pandas(base_url):
    run_ok(base_url,
           'import pandas as pd\ndef main():\n    df = pd.DataFrame({"a": [1,2,3]})\n    return df.sum().to_dict()',
           {"a": 6})


# ---------------------------------------------------------------- seed 001

def test_seed001_missing_main(base_url):
    script = '\ndef some_function():\n    return {"data": "test"}\n'
    body = run_err(base_url, script)
    assert body == {"error": "Script must contain a main() function",
                    "error_kind": "no_main", "stdout": ""}


def test_seed001_set_not_serializable(base_url):
    script = "\ndef main():\n    return set([1, 2, 3])  # Sets are not JSON serializable\n"
    body = run_err(base_url, script)
    assert "main() function must return JSON serializable data" in body["error"]
    assert body == {
        "error": "main() function must return JSON serializable data: "
                 "TypeError: Object of type set is not JSON serializable",
        "error_kind": "not_serializable", "stdout": ""}


def test_seed001_memory_limit(base_url):
    script = ("\ndef main():\n    large_list = list(range(100000000))"
              "  # Tries to allocate too much memory\n    return {\"data\": large_list}\n")
    body = run_err(base_url, script)
    assert body["error"] == "Script execution error: Memory limit exceeded"
    assert body["error_kind"] == "memory_limit"
    assert body["stdout"] == ""


def test_seed001_basic_calculation(base_url):
    script = ("\ndef main():\n    x = 10\n    y = 20\n"
              "    return {\"sum\": x + y, \"product\": x * y}\n")
    run_ok(base_url, script, {"sum": 30, "product": 200})


def test_seed001_pandas_dataframe(base_url):
    script = '''
def main():
    import pandas as pd
    df = pd.DataFrame({
        'A': [1, 2, 3],
        'B': [4, 5, 6]
    })
    return {
        "mean_A": float(df['A'].mean()),
        "sum_B": float(df['B'].sum())
    }
'''
    body = run_ok(base_url, script, {"mean_A": 2.0, "sum_B": 15.0})
    assert type(body["result"]["mean_A"]) is float
    assert type(body["result"]["sum_B"]) is float


def test_seed001_numpy_computations(base_url):
    script = '''
def main():
    import numpy as np
    arr = np.array([1, 2, 3, 4, 5])
    return {
        "mean": float(np.mean(arr)),
        "std": float(np.std(arr))
    }
'''
    run_ok(base_url, script, {"mean": 3.0, "std": 1.4142135623730951})


def test_seed001_api_request_example(base_url):
    # Seed 001 shows stdout as the JSON of the result; nothing is printed, so pyexec says "".
    run_ok(base_url, "def main():\n    return {'message': 'Hello, World!', 'number': 42}",
           {"message": "Hello, World!", "number": 42})


def test_seed001_curl_pandas_numpy(base_url):
    script = ("def main():\n    import pandas as pd\n    import numpy as np\n"
              "    data = {\"values\": np.array([1, 2, 3, 4, 5]).tolist(), "
              "\"mean\": float(np.mean([1, 2, 3, 4, 5]))}\n    return data")
    run_ok(base_url, script, {"values": [1, 2, 3, 4, 5], "mean": 3.0})


def test_seed001_basic_json_return(base_url):
    script = '''def main():
    return {
        "status": "success",
        "data": [1, 2, 3, 4, 5],
        "message": "Script executed successfully"
    }
'''
    run_ok(base_url, script, {"status": "success", "data": [1, 2, 3, 4, 5],
                              "message": "Script executed successfully"})


def test_seed001_pandas_and_numpy_example(base_url):
    script = '''def main():
    import pandas as pd
    import numpy as np
    
    data = {
        'name': ['Alice', 'Bob', 'Charlie'],
        'age': [25, 30, 35],
        'score': [85, 92, 78]
    }
    
    df = pd.DataFrame(data)
    
    result = {
        'total_records': len(df),
        'average_age': float(df['age'].mean()),
        'average_score': float(df['score'].mean()),
        'highest_score': int(df['score'].max()),
        'lowest_score': int(df['score'].min())
    }
    
    return result
'''
    run_ok(base_url, script, {"total_records": 3, "average_age": 30.0, "average_score": 85.0,
                              "highest_score": 92, "lowest_score": 78})


def test_seed001_random_normal_stats(base_url):
    script = '''def main():
    import numpy as np
    
    random_data = np.random.normal(100, 15, 1000)
    
    stats = {
        'mean': float(np.mean(random_data)),
        'std': float(np.std(random_data)),
        'min': float(np.min(random_data)),
        'max': float(np.max(random_data)),
        'median': float(np.median(random_data))
    }
    
    return stats
'''
    status, headers, body = post_execute(base_url, script)
    assert status == 200, body
    assert set(body) == {"result", "stdout"}, body
    assert body["stdout"] == ""
    r = body["result"]
    assert set(r) == {"mean", "std", "min", "max", "median"}
    for v in r.values():
        assert type(v) is float
    # 1000 samples of N(100, 15): the standard error of the mean is ~0.47.
    assert 95 < r["mean"] < 105
    assert 12 < r["std"] < 18
    assert 95 < r["median"] < 105
    assert r["min"] < r["median"] < r["max"]
    assert r["min"] < r["mean"] < r["max"]
    assert r["min"] < 70 and r["max"] > 130


def test_seed001_invalid_request_format(base_url):
    status, headers, raw = request(base_url, "POST", "/execute", body=b'{"code": "x"}',
                                   headers={"Content-Type": "application/json"})
    assert status == 400
    assert_json_content_type(headers)
    assert parse_json_strict(raw) == {"error": "Request must contain 'script' field",
                                      "error_kind": "invalid_request", "stdout": ""}


def test_seed001_test_success(base_url):
    run_ok(base_url, 'def main():\n    return {"test": "success"}', {"test": "success"})


# ---------------------------------------------------------------- seed 002

def test_seed002_basic_return_value(base_url):
    run_ok(base_url, 'def main():\n    return {"message": "Hello, World!", "value": 42}',
           {"message": "Hello, World!", "value": 42})


def test_seed002_request_body_example(base_url):
    run_ok(base_url, "def main():\n    return {'message': 'Hello, World!'}",
           {"message": "Hello, World!"})


def test_seed002_with_print_statements(base_url):
    script = ('def main():\n    print("Starting calculation...")\n    result = 10 * 5\n'
              '    print(f"Result is {result}")\n    return {"answer": result}')
    run_ok(base_url, script, {"answer": 50}, "Starting calculation...\nResult is 50\n")


def test_seed002_numpy(base_url):
    script = ('import numpy as np\n\ndef main():\n    arr = np.array([1, 2, 3, 4, 5])\n'
              '    return {\n        "sum": int(np.sum(arr)),\n        "mean": float(np.mean(arr)),\n'
              '        "max": int(np.max(arr))\n    }')
    run_ok(base_url, script, {"sum": 15, "mean": 3.0, "max": 5})


def test_seed002_pandas(base_url):
    script = ('import pandas as pd\n\ndef main():\n    df = pd.DataFrame({\n'
              '        "name": ["Alice", "Bob", "Charlie"],\n        "age": [25, 30, 35]\n    })\n'
              '    return {\n        "rows": len(df),\n        "columns": list(df.columns),\n'
              '        "mean_age": float(df["age"].mean())\n    }')
    run_ok(base_url, script, {"rows": 3, "columns": ["name", "age"], "mean_age": 30.0})


def test_seed002_pandas_and_numpy_together(base_url):
    script = ('import pandas as pd\nimport numpy as np\n\ndef main():\n'
              '    print("Creating dataset...")\n    data = pd.DataFrame({\n'
              '        "x": np.arange(1, 11),\n        "y": np.arange(1, 11) ** 2\n    })\n'
              '    print(f"Dataset has {len(data)} rows")\n    \n    return {\n'
              '        "x_sum": int(data["x"].sum()),\n        "y_sum": int(data["y"].sum()),\n'
              '        "correlation": float(data["x"].corr(data["y"]))\n    }')
    status, headers, body = post_execute(base_url, script)
    assert status == 200, body
    assert set(body) == {"result", "stdout"}, body
    assert body["stdout"] == "Creating dataset...\nDataset has 10 rows\n"
    r = body["result"]
    assert set(r) == {"x_sum", "y_sum", "correlation"}
    assert r["x_sum"] == 55 and type(r["x_sum"]) is int
    assert r["y_sum"] == 385 and type(r["y_sum"]) is int
    assert type(r["correlation"]) is float
    assert r["correlation"] == pytest.approx(0.9745586280878213, abs=1e-8)


def test_seed002_complex_calculation(base_url):
    script = ('import math\n\ndef main():\n    print("Calculating fibonacci...")\n'
              '    def fib(n):\n        if n <= 1:\n            return n\n'
              '        return fib(n-1) + fib(n-2)\n    \n    result = fib(10)\n'
              '    print(f"Fibonacci(10) = {result}")\n    return {"fibonacci_10": result}')
    run_ok(base_url, script, {"fibonacci_10": 55},
           "Calculating fibonacci...\nFibonacci(10) = 55\n")


def test_seed002_missing_main(base_url):
    body = run_err(base_url, 'def other_function():\n    return {"value": 42}')
    assert body == {"error": "Script must contain a main() function",
                    "error_kind": "no_main", "stdout": ""}


def test_seed002_syntax_error(base_url):
    body = run_err(base_url, "def main():\n    return {invalid syntax here}")
    assert body["error"].startswith("Syntax error in script: ")
    assert body["error"] == ("Syntax error in script: "
                             "invalid syntax. Perhaps you forgot a comma? (line 2)")
    assert body["error_kind"] == "syntax_error"
    assert body["stdout"] == ""


def test_seed002_non_serializable_return(base_url):
    body = run_err(base_url, "class MyClass:\n    pass\n\ndef main():\n    return MyClass()")
    assert "TypeError: Object of type MyClass is not JSON serializable" in body["error"]
    assert body["error"] == ("main() function must return JSON serializable data: "
                             "TypeError: Object of type MyClass is not JSON serializable")
    assert body["error_kind"] == "not_serializable"
    assert body["stdout"] == ""


# ---------------------------------------------------------------- seed 003

def test_seed003_request_example(base_url):
    run_ok(base_url, "def main():\n    return {'result': 42}", {"result": 42})


def test_seed003_basic(base_url):
    run_ok(base_url, 'def main():\n    return {"message": "Hello from Cloud Run!", "value": 42}',
           {"message": "Hello from Cloud Run!", "value": 42})


def test_seed003_numpy(base_url):
    script = ('import numpy as np\n\ndef main():\n    arr = np.array([1,2,3,4,5])\n'
              '    return {"mean": float(np.mean(arr)), "sum": int(np.sum(arr)), '
              '"std": float(np.std(arr))}')
    run_ok(base_url, script, {"mean": 3.0, "sum": 15, "std": 1.4142135623730951})


def test_seed003_pandas(base_url):
    script = ('import pandas as pd\n\ndef main():\n    df = pd.DataFrame({"name": ["Alice", "Bob", '
              '"Charlie"], "age": [25, 30, 35]})\n    return {"shape": list(df.shape), '
              '"mean_age": float(df.age.mean()), "names": df.name.tolist()}')
    run_ok(base_url, script, {"shape": [3, 2], "mean_age": 30.0,
                              "names": ["Alice", "Bob", "Charlie"]})


def test_seed003_stdout_capture(base_url):
    script = ('def main():\n    print("Starting calculation...")\n    result = sum(range(100))\n'
              '    print(f"Sum of 0-99: {result}")\n    print("Calculation complete!")\n'
              '    return {"sum": result, "count": 100}')
    run_ok(base_url, script, {"sum": 4950, "count": 100},
           "Starting calculation...\nSum of 0-99: 4950\nCalculation complete!\n")


def test_seed003_example_success_response(base_url):
    # Seed 003 shows this response without its script; this script produces it.
    script = ('def main():\n    print("Processing data...")\n    total = sum(range(100))\n'
              '    print("Calculation complete!")\n'
              '    return {"calculation": total, "message": "success"}')
    run_ok(base_url, script, {"calculation": 4950, "message": "success"},
           "Processing data...\nCalculation complete!\n")


def test_seed003_scipy(base_url):
    script = '''import scipy
from scipy import stats, optimize

def main():
    m = optimize.minimize_scalar(lambda x: (x - 3.0) ** 2)
    return {"cdf0": float(stats.norm.cdf(0.0)), "argmin": float(m.x),
            "version": scipy.__version__}
'''
    status, _, body = post_execute(base_url, script)
    assert status == 200, body
    assert set(body) == {"result", "stdout"} and body["stdout"] == ""
    r = body["result"]
    assert r["cdf0"] == 0.5
    assert r["argmin"] == pytest.approx(3.0, abs=1e-5)
    assert isinstance(r["version"], str) and r["version"]


def test_seed003_sklearn(base_url):
    script = '''import numpy as np
from sklearn.linear_model import LinearRegression

def main():
    X = np.arange(10, dtype=float).reshape(-1, 1)
    y = 2.0 * X.ravel() + 1.0
    model = LinearRegression().fit(X, y)
    return {"coef": float(model.coef_[0]), "intercept": float(model.intercept_),
            "pred": model.predict(np.array([[20.0]])).tolist()}
'''
    status, _, body = post_execute(base_url, script)
    assert status == 200, body
    assert set(body) == {"result", "stdout"} and body["stdout"] == ""
    r = body["result"]
    assert r["coef"] == pytest.approx(2.0, abs=1e-9)
    assert r["intercept"] == pytest.approx(1.0, abs=1e-9)
    assert r["pred"] == [pytest.approx(41.0, abs=1e-9)]


def test_seed003_matplotlib_agg_png(base_url):
    script = '''import io
import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt

def main():
    fig, ax = plt.subplots()
    ax.plot([1, 2, 3], [4, 1, 9])
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    data = buf.getvalue()
    return {"magic": data[:8].hex(), "size": len(data), "backend": matplotlib.get_backend()}
'''
    status, _, body = post_execute(base_url, script)
    assert status == 200, body
    assert set(body) == {"result", "stdout"} and body["stdout"] == ""
    r = body["result"]
    assert r["magic"] == "89504e470d0a1a0a"
    assert r["size"] > 1000
    assert r["backend"].lower() == "agg"


def test_seed003_matplotlib_headless_by_default(base_url):
    # README: matplotlib is headless (Agg) -- pyplot must work without matplotlib.use().
    script = '''import io
import matplotlib.pyplot as plt

def main():
    import matplotlib
    fig = plt.figure()
    plt.bar(["a", "b"], [1, 2])
    buf = io.BytesIO()
    plt.savefig(buf, format="png")
    return {"backend": matplotlib.get_backend().lower(), "png": buf.getvalue()[:4].hex()}
'''
    status, _, body = post_execute(base_url, script)
    assert status == 200, body
    assert body == {"result": {"backend": "agg", "png": "89504e47"}, "stdout": ""}


def test_seed003_seaborn(base_url):
    script = '''import io
import matplotlib
matplotlib.use("Agg")
import pandas as pd
import seaborn as sns

def main():
    df = pd.DataFrame({"x": ["a", "b", "c"], "y": [1, 3, 2]})
    ax = sns.barplot(data=df, x="x", y="y")
    buf = io.BytesIO()
    ax.figure.savefig(buf, format="png")
    return {"version": sns.__version__, "bars": len(ax.patches), "magic": buf.getvalue()[:8].hex()}
'''
    status, _, body = post_execute(base_url, script)
    assert status == 200, body
    assert set(body) == {"result", "stdout"} and body["stdout"] == ""
    r = body["result"]
    assert isinstance(r["version"], str) and r["version"]
    assert r["bars"] == 3
    assert r["magic"] == "89504e470d0a1a0a"


def test_seed003_requests_importable(base_url):
    script = ("import requests\n\ndef main():\n"
              "    return {'version': requests.__version__, 'has_get': callable(requests.get)}")
    status, _, body = post_execute(base_url, script)
    assert status == 200, body
    assert set(body) == {"result", "stdout"} and body["stdout"] == ""
    assert isinstance(body["result"]["version"], str) and body["result"]["version"]
    assert body["result"]["has_get"] is True


def test_seed003_requests_no_network(base_url):
    script = ("import requests\n\ndef main():\n"
              "    print('fetching')\n"
              "    r = requests.get('http://example.com', timeout=5)\n"
              "    return r.status_code\n")
    body = run_err(base_url, script)
    assert body["error_kind"] == "exception", body
    assert "ConnectionError" in body["error"], body["error"]
    assert body["stdout"] == "fetching\n"
    assert 'File "<script>", line 5, in main' in body["traceback"]


# ---------------------------------------------------------------- seed 004

def test_seed004_hello_world(base_url):
    run_ok(base_url, 'def main():\n    print("Hello, World!")\n    return {"message": "Success"}',
           {"message": "Success"}, "Hello, World!\n")


def test_seed004_numpy_and_pandas(base_url):
    script = ('import numpy as np\nimport pandas as pd\n\ndef main():\n'
              '    print("Using NumPy and Pandas")\n    arr = np.array([1, 2, 3])\n'
              '    df = pd.DataFrame({"A": arr})\n'
              '    return {"sum": int(np.sum(arr)), "shape": df.shape[0]}')
    run_ok(base_url, script, {"sum": 6, "shape": 3}, "Using NumPy and Pandas\n")
