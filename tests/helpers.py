"""The test suite's shared helpers (stdlib, and python3-jsonschema for the API's contract);
conftest.py holds the fixtures, and no test file imports another (nor conftest.py). In five
parts:

  paths and JSON        the checkout and the build under test, sanitizer reports, strict
                        RFC 8259 parsing of every answer
  the API's contract    every answer request() receives is checked against nginx/openapi.json
  HTTP                  one request exactly as given, POST /execute
  the service           scripts/serve.sh started and stopped as `make run` does, and the
                        checks that nothing of it is left afterwards
  the sandbox directly  build/pyexec-run: config files (suite_config), a script's run and
                        its answer's shape, host processes by marker; mostly the adversarial
                        suite's (tests/test_adversarial_*.py, listed there)
"""

import decimal
import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import textwrap
import time
import urllib.parse
import urllib.request
import uuid

JSON_CT = "application/json"


# ==================================================================== paths and JSON

# The build under test: build/, or the directory PYEXEC_BUILD names (relative to the
# checkout), e.g. build-san for `make test SANITIZE=1`. scripts/serve.sh honours it too.
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BUILD = os.path.join(ROOT, os.environ.get("PYEXEC_BUILD", "build"))
PYEXEC_RUN = os.path.join(BUILD, "pyexec-run")

# How ASan, LSan and UBSan reports begin (their warnings are not failures).
SANITIZER_MARKS = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:")


def sanitizer_reports(text):
    """The lines of text that start a sanitizer report."""
    return [line for line in text.splitlines() if any(m in line for m in SANITIZER_MARKS)]


def _parse_int(s):
    try:
        return int(s)
    except ValueError:
        # Python refuses str -> int conversions above 4300 digits; a huge
        # integer is still valid JSON, so convert without that limit.
        return int(decimal.Decimal(s))


def _reject_constant(name):
    raise AssertionError("body is not RFC 8259 JSON: contains bare %s" % name)


def _no_duplicate_keys(pairs):
    obj = {}
    for k, v in pairs:
        assert k not in obj, "body is not sane JSON: duplicate key %r" % (k,)
        obj[k] = v
    return obj


def _check_strings(value):
    """Every string must be encodable as UTF-8 (no lone surrogates via \\ud800 escapes)."""
    stack = [value]
    while stack:
        v = stack.pop()
        if isinstance(v, str):
            try:
                v.encode("utf-8", "strict")
            except UnicodeEncodeError as e:
                raise AssertionError("JSON string contains a lone surrogate: %r" % (v[:200],)) from e
        elif isinstance(v, dict):
            for k, x in v.items():
                stack.append(k)
                stack.append(x)
        elif isinstance(v, list):
            stack.extend(v)


def parse_json_strict(raw_bytes):
    """Assert that raw_bytes is valid RFC 8259 JSON encoded as UTF-8 and return it parsed."""
    assert isinstance(raw_bytes, (bytes, bytearray)), type(raw_bytes)
    assert len(raw_bytes) > 0, "empty body where JSON was expected"
    assert not raw_bytes.startswith(b"\xef\xbb\xbf"), "body starts with a UTF-8 BOM"
    try:
        text = bytes(raw_bytes).decode("utf-8", "strict")
    except UnicodeDecodeError as e:
        raise AssertionError("body is not valid UTF-8: %s; body starts %r" % (e, bytes(raw_bytes[:200]))) from e
    try:
        value = json.loads(
            text,
            parse_constant=_reject_constant,
            parse_int=_parse_int,
            object_pairs_hook=_no_duplicate_keys,
            strict=True,  # no raw control characters inside strings
        )
    except json.JSONDecodeError as e:
        raise AssertionError("body is not valid JSON: %s; body starts %r" % (e, text[:300])) from e
    _check_strings(value)
    return value


# ================================================================ the API's contract
#
# Every answer request() (and so post_execute()) receives is held to the OpenAPI document that
# GET /openapi.json serves: its status must be documented for its path, its headers marked
# required must be there and match, and a JSON body must match the response's schema. So every
# end-to-end test checks the document too, and a body that does not match fails the test that
# received it, naming where.

OPENAPI_PATH = os.path.join(ROOT, "nginx", "openapi.json")
_openapi_doc = None
_validators = {}


def openapi_document():
    """nginx/openapi.json, parsed once."""
    global _openapi_doc
    if _openapi_doc is None:
        with open(OPENAPI_PATH, encoding="utf-8") as f:
            _openapi_doc = json.load(f)
    return _openapi_doc


def _pointer(parts):
    """JSON pointer parts -> "#/a/b" (RFC 6901 escapes: "/execute" is "~1execute")."""
    return "#/" + "/".join(str(p).replace("~", "~0").replace("/", "~1") for p in parts)


def _parts(pointer):
    return [p.replace("~1", "/").replace("~0", "~") for p in pointer[2:].split("/")]


def _at(parts):
    node = openapi_document()
    for p in parts:
        node = node[p]
    return node


def _follow(parts):
    """The parts of what parts name, through OpenAPI Reference Objects ({"$ref": "#/..."})."""
    while "$ref" in _at(parts):
        parts = _parts(_at(parts)["$ref"])
    return parts


def openapi_validator(pointer):
    """A compiled JSON Schema 2020-12 validator for the schema at pointer ("#/components/...") in
    the document, cached. Its root schema is the whole document with a $ref to the pointer, so
    that every "#/components/schemas/..." inside resolves against the document itself, with any
    jsonschema version (4.10's resolver, or the referencing library of later ones); OpenAPI's
    own members (openapi, info, paths, ...) are not JSON Schema keywords and are ignored."""
    if pointer not in _validators:
        import jsonschema  # only the tests that talk HTTP need it
        _validators[pointer] = jsonschema.Draft202012Validator(dict(openapi_document(), **{"$ref": pointer}))
    return _validators[pointer]


def _response_parts(method, path, status):
    """Where the document's response object for this answer is (pointer parts), or None for a
    path it does not list. Another method than the documented one (a 405, TRACE) is answered as
    the path's errors are, so every operation of the path is looked at."""
    item = openapi_document()["paths"].get(path)
    if item is None:
        return None
    for m in dict.fromkeys((method.lower(), *item)):
        responses = item[m].get("responses", {}) if isinstance(item.get(m), dict) else {}
        for key in (str(status), "%dXX" % (status // 100), "default"):
            if key in responses:
                return _follow(["paths", path, m, "responses", key])
    raise AssertionError(f"{method} {path} answered {status}, which nginx/openapi.json does not document there")


def _check_openapi_headers(where, parts, headers):
    for name in _at(parts).get("headers", {}):
        header = _follow(parts + ["headers", name])
        value = headers.get(name.lower())
        if value is None:
            assert not _at(header).get("required"), f"{where}: no {name} header, which nginx/openapi.json requires"
            continue
        if _at(header)["schema"].get("type") == "integer":
            assert value.isdigit(), f"{where}: header {name}: {value!r} is not a whole number"
            value = int(value)
        error = _first_error(_pointer(header + ["schema"]), value)
        assert error is None, f"{where}: header {name}: {value!r}: {error.message}"


def _first_error(pointer, value):
    """The most telling way value fails the schema at pointer, or None when it matches."""
    import jsonschema
    return jsonschema.exceptions.best_match(openapi_validator(pointer).iter_errors(value))


def _describe(error):
    """Where and why, shortly (a message quotes the value, which may be megabytes). For a oneOf
    that nothing matched, why each of its schemas did not."""
    import jsonschema
    at = getattr(error, "json_path", None) or "$." + ".".join(map(str, error.absolute_path))
    text = f"at {at}: {error.message[:300]}"
    if error.validator in ("oneOf", "anyOf") and error.context:
        branches = {}
        for e in error.context:
            branches.setdefault(e.schema_path[0], []).append(e)
        for i, errors in sorted(branches.items()):
            name = error.validator_value[i].get("$ref", f"{error.validator}/{i}").rsplit("/", 1)[-1]
            text += f"; not {name}: {_describe(jsonschema.exceptions.best_match(errors))}"
    return text


def check_openapi(method, path, status, headers, raw):
    """Asserts that an answer is what nginx/openapi.json documents (see above)."""
    path = urllib.parse.urlsplit(path).path
    where = f"{method} {path} -> {status}"
    parts = _response_parts(method, path, status)
    if parts is not None:
        _check_openapi_headers(where, parts, headers)
    if method == "HEAD":
        return
    if parts is not None and "content" not in _at(parts):
        # A response without a body (POST /mcp's 202).
        assert raw == b"", f"{where}: a body where nginx/openapi.json documents none: {raw[:300]!r}"
        return
    media = headers.get("content-type", "").split(";")[0].strip().lower()
    if parts is None:
        # A path the document does not list: only errors, in the shape every error has.
        assert media == JSON_CT, f"{where}: Content-Type {media!r}: every error is JSON"
        pointer = "#/components/schemas/RequestError"
    else:
        content = _at(parts).get("content", {})
        types = {k.split(";")[0].strip().lower(): k for k in content}
        assert media in types, f"{where}: Content-Type {media!r}, not one nginx/openapi.json documents: {sorted(types)}"
        if media != JSON_CT:
            return
        pointer = _pointer(parts + ["content", types[media], "schema"])
    error = _first_error(pointer, parse_json_strict(raw))
    if error is not None:
        raise AssertionError(f"{where}: the body does not match nginx/openapi.json {_describe(error)}; "
                             f"body: {raw[:300]!r}")


# ============================================================================== HTTP

def _split(base_url):
    u = urllib.parse.urlsplit(base_url)
    assert u.scheme == "http", base_url
    return u.hostname, u.port or 80, u.path.rstrip("/")


def request(base_url, method, path, body=None, headers=None, timeout=60, source=None):
    """Send one request; return (status, {lowercase header: value}, raw body bytes).

    No header is added except Host and (when a body is given and neither
    Content-Length nor Transfer-Encoding is) Content-Length, so a request
    without Content-Type really has none. With Transfer-Encoding, body is sent
    as given (already chunk-encoded). source: the local address to send from.
    """
    host, port, prefix = _split(base_url)
    if isinstance(body, str):
        body = body.encode("utf-8")
    conn = http.client.HTTPConnection(host, port, timeout=timeout,
                                      source_address=(source, 0) if source else None)
    try:
        conn.putrequest(method, prefix + path, skip_accept_encoding=True)
        hdrs = dict(headers or {})
        framed = any(k.lower() in ("content-length", "transfer-encoding") for k in hdrs)
        if body is not None and not framed:
            hdrs["Content-Length"] = str(len(body))
        for k, v in hdrs.items():
            conn.putheader(k, v)
        conn.endheaders()
        if body:
            # The server may answer early (e.g. 413) and stop reading; keep
            # whatever it already sent us.
            view = memoryview(body)
            try:
                for i in range(0, len(view), 1 << 16):
                    conn.sock.sendall(view[i:i + (1 << 16)])
            except (BrokenPipeError, ConnectionResetError, socket.timeout):
                pass
        resp = conn.getresponse()
        raw = resp.read()
        out = {}
        for k, v in resp.getheaders():
            k = k.lower()
            out[k] = (out[k] + ", " + v) if k in out else v
        check_openapi(method, path, resp.status, out, raw)
        return resp.status, out, raw
    finally:
        conn.close()


def post_execute(base_url, script, timeout=60, **fields):
    """POST {"script": script, **fields} to /execute (fields: the request's other members,
    e.g. input=, files=, limits=); return (status, headers, parsed JSON body). The body's
    members keep the order of the answer (parse_json_strict builds dicts in order)."""
    body = json.dumps(dict({"script": script}, **fields)).encode("utf-8")
    status, headers, raw = request(
        base_url, "POST", "/execute", body=body,
        headers={"Content-Type": JSON_CT}, timeout=timeout)
    return status, headers, parse_json_strict(raw)


def served(base_url, script, **fields):
    """POSTs script with fields; asserts a served answer (200, a "stdout" string); returns it."""
    status, headers, body = post_execute(base_url, script, **fields)
    assert status == 200, (status, str(body)[:2000])
    assert isinstance(body, dict) and isinstance(body.get("stdout"), str), str(body)[:2000]
    return body


def served_ok(base_url, script, **fields):
    body = served(base_url, script, **fields)
    assert "result" in body, str(body)[:3000]
    return body


def served_err(base_url, script, kind, **fields):
    body = served(base_url, script, **fields)
    assert "result" not in body and body.get("error_kind") == kind, str(body)[:3000]
    return body


def assert_refused(base_url, prefix, script="def main():\n    return 1\n", **fields):
    """POSTs script with fields; asserts the request is refused before anything runs (400
    invalid_request, stdout "", nothing else) with a message starting prefix; returns it."""
    status, _, body = post_execute(base_url, script, **fields)
    assert status == 400, (status, str(body)[:2000])
    assert set(body) == {"error", "error_kind", "stdout"}, str(body)[:2000]
    assert body["error_kind"] == "invalid_request" and body["stdout"] == "", str(body)[:2000]
    assert body["error"].startswith(prefix), (prefix, body["error"][:2000])
    return body["error"]


def assert_json_content_type(headers):
    ct = headers.get("content-type", "")
    assert ct.split(";")[0].strip().lower() == JSON_CT, "Content-Type is %r" % (ct,)


def chunked(data, size=65536):
    """data in HTTP/1.1 chunked transfer coding."""
    out = []
    for i in range(0, len(data), size):
        part = data[i:i + size]
        out.append(b"%x\r\n" % len(part) + part + b"\r\n")
    out.append(b"0\r\n\r\n")
    return b"".join(out)


# ======================================================================= the service

def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_healthy(url, proc, timeout=30):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"serve.sh exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(url + "/health", timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.1)
    raise RuntimeError("the service did not become healthy in time")


class Service:
    def __init__(self, workers=None, config=None, host=None, env=None):
        """env: variables added to the environment the service starts with (as an operator's
        credentials would be there)."""
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.run_dir = tempfile.mkdtemp(prefix="pyexec-test-")
        self.log_path = os.path.join(self.run_dir, "serve.log")
        self.config_path = config
        args = [os.path.join(ROOT, "scripts", "serve.sh"), "--port", str(self.port), "--run-dir", self.run_dir]
        if workers:
            args += ["--workers", str(workers)]
        if config:
            args += ["--config", config]
        if host:  # still reached on 127.0.0.1: a wildcard address such as 0.0.0.0
            args += ["--host", host]
        self.log = open(self.log_path, "w")
        # Own process group, so a failing test run can still clean up everything.
        self.proc = subprocess.Popen(args, stdout=self.log, stderr=subprocess.STDOUT,
                                     start_new_session=True, env=dict(os.environ, **(env or {})))
        try:
            wait_healthy(self.url, self.proc)
        except BaseException:
            # A service that never became healthy was left running by the failed test (found:
            # services of a failed run still up half an hour later).
            self.stop()
            raise

    def logs(self):
        with open(self.log_path) as f:
            return f.read()

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
        self.log.close()

    def leftovers(self):
        """Processes still alive from this service: its session (nginx, the pool, workers) or
        anything naming its run directory."""
        out = subprocess.run(["ps", "-eo", "pid=,sid=,args="], capture_output=True, text=True).stdout
        left = []
        for line in out.splitlines():
            pid, sid, args = line.split(None, 2) if len(line.split(None, 2)) == 3 else (0, 0, "")
            if int(pid) == os.getpid() or args.startswith("ps "):
                continue
            if int(sid) == self.proc.pid or self.run_dir in args:
                left.append(line.strip())
        return left


def config_with(run_dir, **overrides):
    """A copy of config/pyexec.conf with some settings replaced; returns its path."""
    lines = []
    with open(os.path.join(ROOT, "config", "pyexec.conf")) as f:
        for line in f:
            key = line.split("=")[0].strip()
            if key in overrides:
                line = f"{key} = {overrides.pop(key)}\n"
            lines.append(line)
    lines += [f"{k} = {v}\n" for k, v in overrides.items()]
    path = os.path.join(run_dir, "test.conf")
    with open(path, "w") as f:
        f.writelines(lines)
    return path


def start_service(**config):
    """A service whose config is config/pyexec.conf with these settings replaced (workers
    included, so that a reload can change the pool size)."""
    conf = config_with(tempfile.mkdtemp(prefix="pyexec-conf-"), **config) if config else None
    return Service(config=conf)


def stale_cgroups():
    """Per-request cgroups whose maker (a worker) is gone: leaks. The pools these tests start
    make theirs below this process's own cgroups, as cgroup.c does."""
    found = []
    with open("/proc/self/cgroup") as f:
        for line in f:
            _, controllers, path = line.rstrip("\n").split(":", 2)
            for c in controllers.split(","):
                if c not in ("memory", "pids"):
                    continue
                parent = os.path.join("/sys/fs/cgroup", c) + (path if path != "/" else "") + "/pyexec"
                for name in os.listdir(parent) if os.path.isdir(parent) else []:
                    pid = name.split("-")[0]
                    if pid.isdigit() and not os.path.exists(f"/proc/{pid}"):
                        found.append(os.path.join(parent, name))
    return found


def stop_service(svc):
    svc.stop()
    time.sleep(0.2)
    left = svc.leftovers()
    # The workers' and zygotes' stderr: a sanitizer build reports there (make test SANITIZE=1).
    reports = sanitizer_reports(svc.logs())
    log_tail = svc.logs()[-20000:]
    shutil.rmtree(svc.run_dir, ignore_errors=True)
    assert not reports, f"sanitizer reports in the service's log: {reports}\n{log_tail}"
    assert not left, f"processes left after SIGTERM: {left}"
    assert not stale_cgroups(), f"cgroups left after SIGTERM: {stale_cgroups()}"


# ========================================================================= the sandbox directly
#
# The adversarial suite (issue 3): a hostile script, written by someone who has read the
# source, on a machine where other users' scripts run at the same time. Every case is a real
# attempt and asserts the safe outcome the issue guarantees, not what the code happens to do
# today. One file per kind of attack:
#
#   test_adversarial_resources.py    TestResourceExhaustion: fork/thread bombs, memory in every
#                                    shape, disk, descriptors, stdout/stderr floods, huge
#                                    results, CPU
#   test_adversarial_fs.py           TestEscapes through the file system: host files, writes
#                                    outside /tmp, mounts, /proc/self/exe, devices, kernel files
#   test_adversarial_net.py          TestEscapes through the network: TCP, UDP, DNS, socket
#                                    families, abstract unix sockets
#   test_adversarial_proc.py         TestEscapes through other processes and privileges:
#                                    signals, ptrace, /proc/1, nested namespaces, x32, terminal
#                                    injection, capabilities, descriptors, environment
#   test_adversarial_syscalls.py     TestSyscallProbe: tests/probe/try_syscall.c run inside the
#                                    sandbox: every blocked system call with bad pointers
#                                    (EFAULT = the filter let it pass)
#   test_adversarial_spoofing.py     TestResultSpoofing: writing to every descriptor, forged
#                                    frames, fake JSON, markers, forged signals
#   test_adversarial_output.py       TestOutputIntegrity: invalid UTF-8, NaN, lone surrogates,
#                                    huge integers, deep nesting
#   test_adversarial_traces.py       TestNoTraces: nothing survives a request: processes,
#                                    mounts, cgroups, files
#   test_adversarial_concurrency.py  TestConcurrency: hostile requests at once over HTTP, and
#                                    the service keeps serving
#
# Most cases run build/pyexec-run (the service's sandbox without HTTP, ~0.1 s a script); the
# concurrency cases go through the real service (the base_url fixture). Timeouts use a private
# config with a 3-second wall clock (the fast_config fixture) so the suite stays fast.

MiB = 1 << 20
MEMORY_MSG = "Script execution error: Memory limit exceeded"
FAST_WALL_S = 3
FAST_CPU_S = 2

SUCCESS_KEYS = {"result", "stdout", "stdout_truncated"}
ERROR_KEYS = {"error", "error_kind", "stdout", "traceback", "stdout_truncated"}
ERROR_KINDS = {"no_main", "syntax_error", "not_serializable", "exception", "timeout", "memory_limit",
               "result_too_large", "exited", "killed", "channel_tampered"}

# pyexec-run starts a zygote of its own for every warm run; preloading numpy and pandas into
# it costs ~0.7 s a run, so the suite's runs are warm (the service's default mode) with nothing
# preloaded, and the cases where the mode could matter also run cold and with the service's
# own config.
_CONFIGS = {}


def suite_config(**overrides):
    """A config file: the defaults, no warm preload, plus overrides. Cached per settings."""
    settings = dict({"warm_preload": ""}, **overrides)
    key = tuple(sorted(settings.items()))
    if key not in _CONFIGS:
        fd, path = tempfile.mkstemp(prefix="pyexec-adv-", suffix=".conf")
        with os.fdopen(fd, "w") as f:
            f.writelines("%s = %s\n" % kv for kv in settings.items())
        _CONFIGS[key] = path
    return _CONFIGS[key]


def remove_suite_configs():
    """Deletes the files suite_config made (conftest.py does, at the end of every module)."""
    for path in _CONFIGS.values():
        os.unlink(path)
    _CONFIGS.clear()


def check_envelope(body):
    """The answer is one of the two documented shapes, nothing more."""
    assert isinstance(body, dict), body
    assert isinstance(body.get("stdout"), str), body
    if "result" in body:
        assert set(body) <= SUCCESS_KEYS, sorted(body)
    else:
        assert set(body) <= ERROR_KEYS, sorted(body)
        assert body.get("error_kind") in ERROR_KINDS, body
        assert isinstance(body.get("error"), str), body
    if "stdout_truncated" in body:
        assert body["stdout_truncated"] is True, body
    return body


def start_script(script, config=None, env=None, pass_fds=(), mode=None, **popen):
    """Starts build/pyexec-run on script (fed on stdin); returns the Popen. mode: "warm" or
    "cold" (-w/-W), else what the config says (warm)."""
    args = [PYEXEC_RUN, "-c", config or suite_config()]
    if mode:
        args.append({"warm": "-w", "cold": "-W"}[mode])
    args.append("-")
    p = subprocess.Popen(args, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         env=env, pass_fds=pass_fds, **popen)
    p.stdin.write(script.encode("utf-8"))
    p.stdin.close()
    return p


def finish_script(p, timeout=90):
    out = p.stdout.read()
    err = p.stderr.read()
    rc = p.wait(timeout=timeout)
    p.stdout.close()
    p.stderr.close()
    assert rc == 0, "pyexec-run exited %d: %r %r" % (rc, out[:2000], err[-2000:])
    return check_envelope(parse_json_strict(out))


def run_script(script, config=None, env=None, pass_fds=(), mode=None, timeout=90, **popen):
    """Runs script in the service's sandbox (build/pyexec-run); returns the parsed answer."""
    return finish_script(start_script(script, config, env, pass_fds, mode, **popen), timeout)


def run_least_privileged(script):
    """Runs script through pyexec-run with only the capabilities a least-privilege container
    grants (CHOWN, SETUID, SETGID: deploy/README.md); returns the parsed answer."""
    p = subprocess.run(["setpriv", "--inh-caps=-all", "--bounding-set=-all,+chown,+setuid,+setgid",
                        PYEXEC_RUN, "-c", suite_config(), "-w", "-"], input=script.encode(),
                       capture_output=True, timeout=90)
    assert p.returncode in (0, 1), p
    return check_envelope(parse_json_strict(p.stdout))


def run_ok(script, **kw):
    body = run_script(script, **kw)
    assert "result" in body, body
    return body


def run_err(script, kind, **kw):
    body = run_script(script, **kw)
    assert "result" not in body and body.get("error_kind") == kind, body
    return body


def S(text):
    return textwrap.dedent(text).lstrip("\n")


def memory_spread_script(mib, processes=4):
    """A script whose processes each touch mib MiB, all at once (each sleeps 2 s holding it), then
    end: each stays under RLIMIT_AS, only a cgroup sees them together. main() returns their wait
    statuses."""
    return S('''
        import os, time

        def main():
            pids = []
            for _ in range(%d):
                pid = os.fork()
                if pid == 0:
                    b = bytearray(%d << 20)
                    for off in range(0, len(b), 4096):
                        b[off] = 1
                    time.sleep(2)
                    os._exit(0)
                pids.append(pid)
            return [os.waitpid(p, 0)[1] for p in pids]
    ''') % (processes, mib)


def new_marker():
    """15 characters: fits a process's comm, so children made by plain fork() can carry it."""
    return "adv" + uuid.uuid4().hex[:12]


def procs_with(marker):
    """Host PIDs whose command line or comm holds marker (other than this process)."""
    found = []
    me = os.getpid()
    needle = marker.encode()
    for d in os.listdir("/proc"):
        if not d.isdigit() or int(d) == me:
            continue
        try:
            with open("/proc/%s/comm" % d, "rb") as f:
                comm = f.read()
            with open("/proc/%s/cmdline" % d, "rb") as f:
                cmd = f.read()
        except OSError:
            continue
        if needle in comm or needle in cmd:
            found.append(int(d))
    return found


def wait_gone(marker, within=3.0):
    deadline = time.monotonic() + within
    left = procs_with(marker)
    while left and time.monotonic() < deadline:
        time.sleep(0.05)
        left = procs_with(marker)
    return left


def wait_seen(marker, proc=None, within=10.0):
    """Polls the host for marker while proc (a Popen or a future) is still running."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        seen = procs_with(marker)
        if seen:
            return seen
        if proc is not None and (proc.poll() is not None if hasattr(proc, "poll") else proc.done()):
            return procs_with(marker)
        time.sleep(0.02)
    return []


# Python code for a sandbox script: set_name(tag) renames the calling process (its comm, what
# the host sees in /proc/PID/comm) with prctl(PR_SET_NAME), which works even when the process
# is not dumpable and its /proc/self files are not its own.
NAME_SNIPPET = S('''
    import ctypes as _ctypes
    _prctl = _ctypes.CDLL(None, use_errno=True).prctl
    def set_name(tag):
        if _prctl(15, _ctypes.c_char_p(tag.encode()), 0, 0, 0) != 0:
            raise OSError(_ctypes.get_errno(), "prctl(PR_SET_NAME)")
''')

# ctypes access to raw system calls, for the scripts that need them.
SYSCALL_SNIPPET = S('''
    import ctypes
    _libc = ctypes.CDLL(None, use_errno=True)
    _libc.syscall.restype = ctypes.c_long
    def sc(nr, *args):
        ctypes.set_errno(0)
        r = _libc.syscall(ctypes.c_long(nr), *[ctypes.c_long(a) if isinstance(a, int) else a for a in args])
        return (r, ctypes.get_errno()) if r == -1 else (r, 0)
''')


def cgroups_v1_available():
    return (os.path.exists("/sys/fs/cgroup/memory/memory.limit_in_bytes")
            and os.path.exists("/sys/fs/cgroup/pids/cgroup.procs"))


# ---- npm tools the tests use (Redocly's lint, the MCP SDK) ---------------------------------

# npm and Redocly ask the network for newer versions and send usage data unless told not to;
# the tests must not depend on either (or leak anything).
NPM_QUIET = {"REDOCLY_TELEMETRY": "off", "REDOCLY_SUPPRESS_UPDATE_NOTICE": "true", "NO_UPDATE_NOTIFIER": "1",
             "npm_config_update_notifier": "false", "npm_config_fund": "false", "npm_config_audit": "false"}


def ensure_npm_package(directory, section, package):
    """directory/node_modules as its package-lock.json has it: `npm ci` when the package is
    missing or at another version than package.json's section pins. Fails (never skips) when
    npm is missing or cannot install."""
    def version(path, *keys):
        try:
            with open(path) as f:
                value = json.load(f)
        except OSError:
            return None
        for k in keys:
            value = value[k]
        return value

    pinned = version(os.path.join(directory, "package.json"), section, package)
    installed = os.path.join(directory, "node_modules", *package.split("/"), "package.json")
    if version(installed, "version") == pinned:
        return
    npm = shutil.which("npm")
    assert npm, f"npm is not installed: {package} needs Node.js 20 and npm"
    r = subprocess.run([npm, "ci", "--no-audit", "--no-fund"], cwd=directory, capture_output=True, text=True,
                       timeout=600, env=dict(os.environ, **NPM_QUIET))
    where = os.path.relpath(directory, ROOT)
    assert r.returncode == 0, f"npm ci in {where} failed ({r.returncode}):\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}"
    assert version(installed, "version") == pinned, (version(installed, "version"), pinned)
