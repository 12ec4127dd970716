"""POST /mcp: pyexec as a Model Context Protocol server (Streamable HTTP, stateless, JSON answers;
fcgi/mcp.c), end to end through nginx and the pool in warm and cold mode, then with the official
TypeScript SDK as the client (tests/mcp-client: `npm ci` there first when needed; a machine
without npm fails it). Every answer is also held to nginx/openapi.json by helpers.request()."""
import base64
import json
import os
import shutil
import subprocess
import threading
import time

import pytest

from helpers import (JSON_CT, ROOT, ensure_npm_package, openapi_document, parse_json_strict, post_execute, request, start_service,
                     stop_service)

SEED = "def main():\n    print(\"calculating...\")\n    return sum([1,2,3,4,5])"
FAILING = "def main():\n    print(\"before\")\n    return 1/0"
VERSIONS = ["2025-06-18", "2025-03-26"]
CLIENT = os.path.join(ROOT, "tests", "mcp-client")


def mcp_raw(base_url, body, headers=None):
    """POSTs body (bytes, str or a JSON value) to /mcp; returns (status, headers, raw body)."""
    if not isinstance(body, (bytes, str)):
        body = json.dumps(body)
    return request(base_url, "POST", "/mcp", body=body,
                   headers=dict({"Content-Type": JSON_CT, "Accept": "application/json, text/event-stream"},
                                **(headers or {})))


def rpc(base_url, method, params=None, id=1, headers=None):
    """One JSON-RPC request; asserts HTTP 200 and returns the parsed response."""
    message = {"jsonrpc": "2.0", "id": id, "method": method}
    if params is not None:
        message["params"] = params
    status, hdrs, raw = mcp_raw(base_url, message, headers)
    assert status == 200, (status, raw[:2000])
    assert hdrs["content-type"].split(";")[0] == JSON_CT, hdrs
    body = parse_json_strict(raw)
    assert body["jsonrpc"] == "2.0" and body["id"] == id, body
    return body


def call(base_url, arguments, id=7):
    """tools/call of run_python; returns the result."""
    body = rpc(base_url, "tools/call", {"name": "run_python", "arguments": arguments}, id=id)
    assert "result" in body, body
    return body["result"]


def error_of(body, code):
    assert set(body) == {"jsonrpc", "id", "error"}, body
    assert body["error"]["code"] == code, body
    return body["error"]["message"]


def resolved_execute_request():
    """ExecuteRequest of nginx/openapi.json with its $refs in place: what inputSchema must be."""
    schemas = openapi_document()["components"]["schemas"]

    def resolve(node):
        if isinstance(node, dict):
            if "$ref" in node:
                target = resolve(schemas[node["$ref"].rsplit("/", 1)[1]])
                return dict(target, **{k: resolve(v) for k, v in node.items() if k != "$ref"})
            return {k: resolve(v) for k, v in node.items()}
        if isinstance(node, list):
            return [resolve(v) for v in node]
        return node
    return resolve(schemas["ExecuteRequest"])


# ---- the handshake -------------------------------------------------------------------------

@pytest.mark.parametrize("version", VERSIONS)
def test_initialize_takes_the_clients_revision(base_url, version):
    body = rpc(base_url, "initialize", {"protocolVersion": version, "capabilities": {},
                                        "clientInfo": {"name": "pytest", "version": "1"}})
    assert body["result"] == {"protocolVersion": version, "capabilities": {"tools": {}},
                              "serverInfo": {"name": "pyexec", "version": openapi_document()["info"]["version"]}}


@pytest.mark.parametrize("version", ["2024-11-05", "2099-01-01", "latest"])
def test_initialize_offers_the_newest_for_another_revision(base_url, version):
    body = rpc(base_url, "initialize", {"protocolVersion": version, "capabilities": {},
                                        "clientInfo": {"name": "pytest", "version": "1"}}, id="init")
    assert body["result"]["protocolVersion"] == "2025-06-18", body


def test_initialize_without_a_version_is_invalid_params(base_url):
    assert "protocolVersion" in error_of(rpc(base_url, "initialize", {"capabilities": {}}), -32602)


@pytest.mark.parametrize("method", ["notifications/initialized", "notifications/cancelled", "anything/else"])
def test_notifications_are_accepted_without_a_body(base_url, method):
    status, headers, raw = mcp_raw(base_url, {"jsonrpc": "2.0", "method": method, "params": {}})
    assert status == 202 and raw == b"", (status, raw)
    assert headers.get("x-request-id"), headers


def test_a_response_from_the_client_is_accepted(base_url):
    status, _, raw = mcp_raw(base_url, {"jsonrpc": "2.0", "id": 9, "result": {}})
    assert status == 202 and raw == b"", (status, raw)


def test_ping(base_url):
    assert rpc(base_url, "ping")["result"] == {}


@pytest.mark.parametrize("version", VERSIONS)
def test_a_supported_protocol_version_header_is_taken(base_url, version):
    assert rpc(base_url, "ping", headers={"MCP-Protocol-Version": version})["result"] == {}


@pytest.mark.parametrize("version", ["2024-11-05", "not-a-version", "2099-01-01"])
def test_an_unsupported_protocol_version_header_is_400(base_url, version):
    status, _, raw = mcp_raw(base_url, {"jsonrpc": "2.0", "id": 2, "method": "tools/list"},
                             {"MCP-Protocol-Version": version})
    assert status == 400, (status, raw)
    body = parse_json_strict(raw)
    assert body["id"] == 2 and version in error_of(body, -32000), body
    # initialize negotiates, so its header is not held against it
    body = rpc(base_url, "initialize", {"protocolVersion": "2025-03-26"}, headers={"MCP-Protocol-Version": version})
    assert body["result"]["protocolVersion"] == "2025-03-26"


def test_the_session_header_is_ignored(base_url):
    assert rpc(base_url, "ping", headers={"Mcp-Session-Id": "abc"})["result"] == {}


# ---- tools/list ----------------------------------------------------------------------------

def test_tools_list_has_run_python_with_the_execute_schema(base_url):
    tools = rpc(base_url, "tools/list", {})["result"]["tools"]
    assert [t["name"] for t in tools] == ["run_python"], tools
    tool = tools[0]
    assert tool["inputSchema"] == resolved_execute_request()
    assert tool["inputSchema"]["type"] == "object" and tool["inputSchema"]["required"] == ["script"]
    assert list(tool["inputSchema"]["properties"]) == ["script", "input", "inputs", "files", "return_files",
                                                       "figures", "limits", "usage"]
    assert "$ref" not in json.dumps(tool["inputSchema"])
    assert tool["annotations"] == {"title": "Run Python", "readOnlyHint": True, "openWorldHint": False}


def test_the_description_tells_the_contract_and_the_limits(base_url):
    text = rpc(base_url, "tools/list")["result"]["tools"][0]["description"]
    for word in ("main()", "main(input)", "standard library", "numpy", "pandas", "scipy", "scikit-learn",
                 "matplotlib", "seaborn", "requests", "no network", "/tmp", "isError"):
        assert word in text, word
    status, _, raw = request(base_url, "GET", "/runtime")
    limits = parse_json_strict(raw)["limits"]
    assert f"{limits['wall_time_s']} s wall clock" in text and f"{limits['memory_mb']} MiB of memory" in text, text
    assert f"{limits['stdout_max_bytes']} bytes of printed output" in text, text


# ---- tools/call ----------------------------------------------------------------------------

def test_call_the_seed_example(base_url):
    result = call(base_url, {"script": SEED})
    assert result == {"content": [{"type": "text", "text": "calculating...\n"}, {"type": "text", "text": "15"}],
                      "structuredContent": {"result": 15, "stdout": "calculating...\n"}, "isError": False}


def test_call_with_many_inputs(base_url):
    result = call(base_url, {"script": "def main(x):\n    return 10 // x", "inputs": [1, 5]})
    assert result["structuredContent"] == {"results": [{"result": 10, "stdout": ""}, {"result": 2, "stdout": ""}],
                                           "stdout": ""}
    assert result["content"] == [{"type": "text", "text": '[{"result": 10, "stdout": ""},{"result": 2, "stdout": ""}]'}]
    assert result["isError"] is False


def test_call_answers_what_execute_answers(base_url):
    args = {"script": "def main(x):\n    return {\"total\": sum(x[\"values\"]), \"big\": 2**70}",
            "input": {"values": [1, 2, 3.5]}, "usage": True}
    _, _, direct = post_execute(base_url, **args)
    result = call(base_url, args)
    structured = result["structuredContent"]
    assert structured["result"] == direct["result"] == {"total": 6.5, "big": 2 ** 70}
    assert set(structured["usage"]) == {"wall_ms", "cpu_ms", "peak_rss_kb"}
    assert result["content"] == [{"type": "text", "text": '{"total": 6.5, "big": 1180591620717411303424}'}]
    assert result["isError"] is False


def test_call_input_travels_as_written(base_url):
    raw = ('{"jsonrpc": "2.0", "id": 12345678901234567890123, "method": "tools/call", "params": {"name": '
           '"run_python", "arguments": {"script": "def main(x):\\n    return x", "input": 123456789012345678901234567890}}}')
    status, headers, body = mcp_raw(base_url, raw)
    assert status == 200, body
    assert body.startswith(b'{"jsonrpc": "2.0", "id": 12345678901234567890123, "result": '), body
    result = parse_json_strict(body)["result"]
    assert result["structuredContent"] == {"result": 123456789012345678901234567890, "stdout": ""}
    assert int(headers["x-pyexec-wall-ms"]) >= 0 and int(headers["x-pyexec-peak-rss-kb"]) > 0, headers


def test_call_with_figures_gives_images(base_url):
    result = call(base_url, {"script": "import matplotlib.pyplot as plt\ndef main():\n    plt.plot([1, 4, 9])\n"
                                       "    plt.figure()\n    plt.plot([3, 2])\n    return \"plotted\"",
                             "figures": "png"})
    figures = result["structuredContent"]["figures"]
    images = [c for c in result["content"] if c["type"] == "image"]
    assert len(figures) == len(images) == 2, result["content"]
    for figure, image in zip(figures, images):
        assert image == {"type": "image", "data": figure["base64"], "mimeType": "image/png"}
        assert base64.b64decode(image["data"]).startswith(b"\x89PNG\r\n\x1a\n")
    assert result["content"][0] == {"type": "text", "text": '"plotted"'} and result["isError"] is False


def test_call_with_files(base_url):
    result = call(base_url, {"script": "def main():\n    return open(\"data/in.txt\").read()",
                             "files": {"data/in.txt": "hello"}, "return_files": ["data/*"]})
    assert result["structuredContent"]["result"] == "hello"
    assert result["structuredContent"]["files"]["data/in.txt"]["base64"] == "aGVsbG8="


def test_a_failing_script_is_a_tool_error(base_url):
    result = call(base_url, {"script": FAILING})
    assert result["isError"] is True
    structured = result["structuredContent"]
    assert structured["error_kind"] == "exception" and structured["stdout"] == "before\n", structured
    assert result["content"][0] == {"type": "text", "text": "before\n"}
    assert result["content"][1]["text"].startswith("ZeroDivisionError: division by zero\n\nTraceback")
    assert result["content"][1]["text"].endswith(structured["traceback"])


@pytest.mark.parametrize("script,kind", [("x = 1", "no_main"), ("def main(:\n", "syntax_error"),
                                         ("import time\ndef main():\n    time.sleep(5)", "timeout")])
def test_every_script_outcome_is_a_tool_error(base_url, script, kind):
    args = {"script": script, "limits": {"wall_time_s": 1}} if kind == "timeout" else {"script": script}
    result = call(base_url, args)
    assert result["isError"] is True and result["structuredContent"]["error_kind"] == kind, result
    assert result["content"] == [{"type": "text", "text": result["structuredContent"]["error"]}]


@pytest.mark.parametrize("arguments,message", [
    ({}, "Request must contain 'script' field"),
    ({"script": 1}, "'script' must be a string"),
    ({"script": "def main():\n    return 1", "limits": {"memory_mb": 4096}}, "limits.memory_mb: 4096 is above"),
    ({"script": "def main():\n    return 1", "files": {"../x": "y"}}, "files: \"../x\""),
    ({"script": "x" * (1024 * 1024 + 1)}, "Script too large"),
])
def test_arguments_execute_refuses_are_a_tool_error(base_url, arguments, message):
    result = call(base_url, arguments)
    assert result["isError"] is True, result
    structured = result["structuredContent"]
    assert structured["error"].startswith(message) and structured["stdout"] == "", structured
    assert structured["error_kind"] == ("too_large" if "too large" in message else "invalid_request")
    assert result["content"] == [{"type": "text", "text": structured["error"]}]


def test_no_arguments_is_no_script(base_url):
    body = rpc(base_url, "tools/call", {"name": "run_python"})
    assert body["result"]["isError"] is True
    assert body["result"]["structuredContent"]["error"] == "Request must contain 'script' field"


@pytest.mark.parametrize("params,message", [
    ({}, "params.name"),
    ({"name": 5}, "params.name"),
    ({"name": "run_ruby", "arguments": {}}, "Unknown tool: run_ruby"),
    ({"name": "run_python", "arguments": "print(1)"}, "params.arguments must be an object"),
    ([1, 2], "\"params\" must be an object"),
])
def test_invalid_params(base_url, params, message):
    assert message in error_of(rpc(base_url, "tools/call", params, id="x"), -32602)


def test_an_unknown_method(base_url):
    body = rpc(base_url, "resources/list", {}, id=42)
    assert error_of(body, -32601) == "Method not found: resources/list"


# ---- what is not one JSON-RPC request ------------------------------------------------------

@pytest.mark.parametrize("raw", [b'{"jsonrpc": "2.0", "id": 1, "method": ', b"not json", b"",
                                 b'{"jsonrpc": "2.0", "id": 1, "method": "ping", "method": "ping"}', b"[1, NaN]"])
def test_malformed_json_is_a_parse_error(base_url, raw):
    status, _, body = mcp_raw(base_url, raw)
    assert status == 400, (status, body)
    body = parse_json_strict(body)
    assert body["id"] is None and error_of(body, -32700).startswith("Parse error: "), body


@pytest.mark.parametrize("message,why", [
    ([{"jsonrpc": "2.0", "id": 1, "method": "ping"}], "batches are not supported"),
    ('"ping"', "a JSON-RPC message is an object"),
    ({"id": 1, "method": "ping"}, '"jsonrpc" must be "2.0"'),
    ({"jsonrpc": "1.0", "id": 1, "method": "ping"}, '"jsonrpc" must be "2.0"'),
    ({"jsonrpc": "2.0", "id": 1, "method": 3}, '"method" must be a string'),
    ({"jsonrpc": "2.0", "id": None, "method": "ping"}, '"id" must be a string or a number'),
    ({"jsonrpc": "2.0", "id": [1], "method": "ping"}, '"id" must be a string or a number'),
    ({"jsonrpc": "2.0", "id": 1}, 'no "method"'),
])
def test_invalid_requests(base_url, message, why):
    status, _, body = mcp_raw(base_url, message)
    assert status == 400, (status, body)
    assert why in error_of(parse_json_strict(body), -32600)


def test_string_ids_come_back_as_sent(base_url):
    status, _, raw = mcp_raw(base_url, '{"jsonrpc": "2.0", "id": "a\\u00e9\\"b", "method": "ping"}')
    assert status == 200 and raw == b'{"jsonrpc": "2.0", "id": "a\\u00e9\\"b", "result": {}}', raw


@pytest.mark.parametrize("method", ["GET", "DELETE", "PUT", "HEAD"])
def test_other_methods_get_the_json_405(base_url, method):
    status, headers, raw = request(base_url, method, "/mcp", headers={"Accept": "text/event-stream"})
    assert status == 405 and headers.get("allow") == "POST", (status, headers)
    if method != "HEAD":
        assert parse_json_strict(raw)["error_kind"] == "method_not_allowed"


def test_the_content_type_must_be_json(base_url):
    status, _, raw = request(base_url, "POST", "/mcp", body=b'{"jsonrpc": "2.0", "id": 1, "method": "ping"}',
                             headers={"Content-Type": "text/plain"})
    assert status == 415 and parse_json_strict(raw)["error_kind"] == "unsupported_media_type", (status, raw)


# ---- the documented examples are real -------------------------------------------------------

@pytest.mark.parametrize("name", ["initialize", "tools_call", "tools_call_failing"])
def test_the_examples_of_openapi_and_readme_are_real_answers(base_url, name):
    post = openapi_document()["paths"]["/mcp"]["post"]
    sent = post["requestBody"]["content"]["application/json"]["examples"][name]["value"]
    want = post["responses"]["200"]["content"]["application/json"]["examples"][name]["value"]
    status, _, raw = mcp_raw(base_url, sent)
    assert status == 200 and parse_json_strict(raw) == want, raw
    with open(os.path.join(ROOT, "README.md")) as f:
        readme = f.read()
    assert json.dumps(sent) in readme and json.dumps(want) in readme, name


# ---- back-pressure: the same as /execute's ---------------------------------------------------

def test_back_pressure_is_the_same_as_executes():
    """One worker and one queue slot, shared by /execute and /mcp: a tools/call that waited past
    queue_timeout_ms is the JSON-RPC error -32000 (busy), one past the capacity nginx's HTTP 503."""
    svc = start_service(workers=1, queue_slots=1, queue_timeout_ms=500)
    try:
        answers = {}
        slow = "import time\ndef main():\n    time.sleep(2)\n    return 1"

        def execute():
            answers["execute"] = post_execute(svc.url, slow)

        def mcp(name):
            answers[name] = mcp_raw(svc.url, {"jsonrpc": "2.0", "id": name, "method": "tools/call",
                                              "params": {"name": "run_python", "arguments": {"script": slow}}})
        threads = [threading.Thread(target=execute), threading.Thread(target=mcp, args=("queued",)),
                   threading.Thread(target=mcp, args=("over",))]
        for t in threads:
            t.start()
            time.sleep(0.4)
        for t in threads:
            t.join(60)
        assert answers["execute"][0] == 200 and answers["execute"][2]["result"] == 1, answers["execute"]
        status, _, raw = answers["queued"]
        body = parse_json_strict(raw)
        assert status == 200 and body["id"] == "queued", (status, raw)
        assert body["error"]["code"] == -32000 and body["error"]["data"] == {"error_kind": "busy"}, body
        status, headers, raw = answers["over"]
        assert status == 503 and headers.get("retry-after") == "1", (status, headers, raw)
        assert parse_json_strict(raw)["error_kind"] == "busy"
        # and the pool serves /mcp again
        status, _, raw = mcp_raw(svc.url, {"jsonrpc": "2.0", "id": 1, "method": "tools/call",
                                           "params": {"name": "run_python", "arguments": {"script": SEED}}})
        assert status == 200 and parse_json_strict(raw)["result"]["structuredContent"]["result"] == 15, raw
    finally:
        stop_service(svc)


# ---- the official TypeScript SDK as the client ---------------------------------------------

def ensure_sdk():
    ensure_npm_package(CLIENT, "dependencies", "@modelcontextprotocol/sdk")


def test_the_typescript_sdk_lists_and_calls_run_python(service):
    ensure_sdk()
    node = shutil.which("node")
    assert node, "node is not installed"
    r = subprocess.run([node, "client.mjs", service.url + "/mcp"], cwd=CLIENT, capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 0, f"client.mjs exited {r.returncode}:\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}"
    out = json.loads(r.stdout)
    assert out["serverVersion"] == {"name": "pyexec", "version": openapi_document()["info"]["version"]}
    assert out["serverCapabilities"] == {"tools": {}}
    assert out["protocolVersion"] in VERSIONS and out["sessionId"] is None, out
    assert [t["name"] for t in out["tools"]] == ["run_python"]
    assert out["tools"][0]["inputSchema"] == resolved_execute_request()
    assert out["seed"] == {"content": [{"type": "text", "text": "calculating...\n"}, {"type": "text", "text": "15"}],
                           "structuredContent": {"result": 15, "stdout": "calculating...\n"}, "isError": False}
    failing = out["failing"]
    assert failing["isError"] is True and failing["structuredContent"]["error_kind"] == "exception", failing
    assert failing["structuredContent"]["error"] == "ZeroDivisionError: division by zero"
    assert failing["content"][0] == {"type": "text", "text": "before\n"}
