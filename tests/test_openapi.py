"""GET /openapi.json: the OpenAPI 3.1 document of the whole API (nginx/openapi.json), linted by a
real validator (Redocly CLI, pinned in tools/openapi/package.json), served by nginx as it is,
and held to the table of error kinds and the request members the worker takes. (Every answer
the end-to-end suites receive is held to it too: helpers.check_openapi.)"""
import json
import os
import shutil
import subprocess

import pytest

from helpers import (BUILD, JSON_CT, NPM_QUIET, OPENAPI_PATH, ROOT, _pointer, assert_json_content_type,
                     ensure_npm_package, openapi_document, openapi_validator, parse_json_strict, request)

TOOLS = os.path.join(ROOT, "tools", "openapi")


def ensure_redocly():
    ensure_npm_package(TOOLS, "devDependencies", "@redocly/cli")


def redocly_lint(path):
    ensure_redocly()
    assert shutil.which("npx"), "npx is not installed (it comes with npm)"
    return subprocess.run(["npx", "--no-install", "redocly", "lint", "--config", "redocly.yaml", "--format", "stylish",
                           path], cwd=TOOLS, capture_output=True, text=True, timeout=300,
                          env=dict(os.environ, **NPM_QUIET))


def test_redocly_lint_passes_with_warnings_as_errors():
    r = redocly_lint(OPENAPI_PATH)
    assert r.returncode == 0, f"redocly lint:\n{r.stdout[-6000:]}\n{r.stderr[-6000:]}"
    assert "Your API description is valid" in r.stdout + r.stderr, r.stdout + r.stderr


def test_the_lint_catches_a_broken_document(tmp_path):
    """Not a toothless configuration: an example that breaks its schema and an operation without
    an id (a warning in Redocly's "recommended") each fail the lint."""
    doc = json.loads(json.dumps(openapi_document()))
    doc["paths"]["/execute"]["post"]["responses"]["200"]["content"]["application/json"]["examples"]["hello"][
        "value"]["extra"] = 1
    del doc["paths"]["/health"]["get"]["operationId"]
    broken = tmp_path / "openapi.json"
    broken.write_text(json.dumps(doc))
    r = redocly_lint(str(broken))
    assert r.returncode != 0, r.stdout + r.stderr
    assert "no-invalid-media-type-examples" in r.stdout + r.stderr and "operation-operationId" in r.stdout + r.stderr, \
        r.stdout + r.stderr


def test_the_lint_configuration_treats_warnings_as_errors():
    import yaml
    with open(os.path.join(TOOLS, "redocly.yaml")) as f:
        config = yaml.safe_load(f)
    assert config["extends"] == ["recommended-strict"], config
    # (PyYAML reads a bare `off` as YAML 1.1's false; Redocly's parser reads the string.)
    severities = [r.get("severity") if isinstance(r, dict) else r for r in config.get("rules", {}).values()]
    assert all(s in ("error", "off", False) for s in severities), config["rules"]


def test_served_document_is_the_file(service):
    with open(OPENAPI_PATH, "rb") as f:
        want = f.read()
    status, headers, raw = request(service.url, "GET", "/openapi.json")
    assert status == 200 and raw == want, (status, raw[:200])
    assert_json_content_type(headers)
    assert headers.get("x-request-id"), headers
    status, headers, raw = request(service.url, "HEAD", "/openapi.json")
    assert status == 200 and raw == b"" and int(headers["content-length"]) == len(want), (status, headers)


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "OPTIONS", "PATCH"])
def test_other_methods_get_the_json_405(service, method):
    status, headers, raw = request(service.url, method, "/openapi.json", body=b"{}",
                                   headers={"Content-Type": JSON_CT})
    body = parse_json_strict(raw)
    assert status == 405 and body["error_kind"] == "method_not_allowed" and body["stdout"] == "", (status, body)
    assert headers.get("allow") == "GET, HEAD", headers


def test_it_is_openapi_3_1_with_every_endpoint():
    doc = openapi_document()
    assert doc["openapi"] == "3.1.0"
    assert set(doc["paths"]) == {"/execute", "/mcp", "/health", "/healthz", "/runtime", "/metrics", "/openapi.json"}
    assert set(doc["paths"]["/execute"]) == {"post"} and set(doc["paths"]["/mcp"]) == {"post"}
    assert all(set(item) == {"get"} for p, item in doc["paths"].items() if p not in ("/execute", "/mcp"))


def error_kinds():
    out = subprocess.run([os.path.join(BUILD, "pyexec-worker"), "--print-error-kinds"], capture_output=True,
                         text=True, check=True).stdout
    return [(name, int(status)) for name, status in (line.split() for line in out.splitlines())]


def documented_kinds(response):
    """The error_kinds a response of the document allows, $refs followed."""
    doc = openapi_document()
    if "$ref" in response:
        response = doc["components"]["responses"][response["$ref"].rsplit("/", 1)[1]]
    schema = (response.get("content") or {}).get("application/json", {}).get("schema", {})
    if schema.get("$ref") == "#/components/schemas/ExecuteAnswer":  # the 200 of /execute
        return set(doc["components"]["schemas"]["ScriptErrorKind"]["enum"])
    if schema.get("allOf", [{}])[0].get("$ref") == "#/components/schemas/RequestError":
        narrowed = schema["allOf"][1]["properties"]["error_kind"]
        return set(narrowed.get("enum", [narrowed.get("const")]))
    return set()


def test_every_error_kind_is_documented_with_its_status():
    """Each kind of the table (sandbox/errors.c) is in the document under its own status, on
    some path, and the document has no kind the table lacks."""
    doc = openapi_document()
    by_status = {}
    for item in doc["paths"].values():
        for op in item.values():
            for code, response in op["responses"].items():
                by_status.setdefault(int(code), set()).update(documented_kinds(response))
    table = [(k, s) for k, s in error_kinds() if k != "ok"]
    # not_found is the answer of the paths the document does not list, so it has no path of
    # its own there; the info's description says so (and helpers.check_openapi holds those
    # answers to RequestError).
    assert "404 `not_found`" in doc["info"]["description"]
    missing = [(k, s) for k, s in table if k not in by_status.get(s, set()) and k != "not_found"]
    assert not missing, missing
    extra = [(k, s) for s, kinds in by_status.items() for k in kinds if (k, s) not in table]
    assert not extra, extra
    schemas = doc["components"]["schemas"]
    assert set(schemas["ScriptErrorKind"]["enum"]) | set(schemas["RequestErrorKind"]["enum"]) == {k for k, _ in table}
    assert set(schemas["ScriptErrorKind"]["enum"]) == {k for k, s in table if s == 200}


def test_every_status_of_execute_in_the_table_is_documented_there():
    responses = openapi_document()["paths"]["/execute"]["post"]["responses"]
    # 403 and 404 are never answered for POST /execute (other paths, /metrics).
    statuses = {s for k, s in error_kinds()} - {403, 404}
    assert statuses <= {int(code) for code in responses}, sorted(statuses - {int(c) for c in responses})


def test_request_members_are_the_specs():
    schemas = openapi_document()["components"]["schemas"]
    assert list(schemas["ExecuteRequest"]["properties"]) == ["script", "input", "inputs", "files", "return_files",
                                                             "figures", "limits", "usage"]
    assert schemas["ExecuteRequest"]["required"] == ["script"]
    limits = ["wall_time_s", "cpu_time_s", "memory_mb", "max_processes", "max_open_files", "stdout_max_bytes"]
    assert list(schemas["RequestLimits"]["properties"]) == limits
    # The server's maxima in /runtime use the same names.
    assert list(schemas["RuntimeLimits"]["properties"])[:6] == limits
    assert schemas["Feature"]["enum"] == ["input", "inputs", "files", "return_files", "figures", "limits", "usage"]


def media_types_with_examples():
    """(pointer of the schema, example name, value) of every example in the document."""
    doc = openapi_document()
    found = []

    def walk(node, parts):
        if isinstance(node, dict):
            if "schema" in node and "examples" in node:
                for name, example in node["examples"].items():
                    found.append((_pointer(parts + ["schema"]), name, example["value"]))
            for k, v in node.items():
                walk(v, parts + [k])
    walk(doc, [])
    return found


def test_every_example_matches_its_schema_with_jsonschema_too():
    """The same check as Redocly's no-invalid-media-type-examples, with the validator the
    end-to-end suites use on real answers: both must read the schemas alike."""
    examples = media_types_with_examples()
    assert len(examples) > 30, len(examples)
    wrong = []
    for pointer, name, value in examples:
        errors = list(openapi_validator(pointer).iter_errors(value))
        if errors:
            wrong.append((pointer, name, errors[0].message))
    assert not wrong, wrong


def test_readme_examples_are_the_documents():
    """The curl examples of the README are the document's examples, with their answers."""
    examples = openapi_document()["paths"]["/execute"]["post"]
    requests = examples["requestBody"]["content"]["application/json"]["examples"]
    answers = examples["responses"]["200"]["content"]["application/json"]["examples"]
    with open(os.path.join(ROOT, "README.md")) as f:
        readme = f.read()
    for name in ("hello", "numpy", "pandas", "exception"):
        assert json.dumps(requests[name]["value"]) in readme, name
        assert json.dumps(answers[name]["value"]) in readme, name
