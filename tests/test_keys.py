"""API keys end to end, through the real nginx and pool (issue 16): a keys file gates every way
to run code (401 without a valid key, before any body is read), each key has a rate with a
burst and a number of scripts in flight (429 with Retry-After, never queued), a reload adds
and removes keys under load without a failed request, the key id labels the log lines and
/metrics, and no secret is ever shown. The keys file's parser has unit tests
(tests/unit/unit_tests.c, test_keys_*) and a fuzz harness (tests/fuzz/fuzz_keys.c)."""
import concurrent.futures as cf
import json
import os
import re
import signal
import socket
import subprocess
import tempfile
import time

import pytest

from helpers import BUILD, JSON_CT, Service, config_with, parse_json_strict, request, stop_service

HELLO = "def main():\n    return 'hello'\n"
SLOW = "import time\ndef main():\n    time.sleep(1.5)\n    return 'slept'\n"
# name -> options of its line. alice: the everyday key; slow: a small rate; conc: two scripts
# in flight; gone: removed by the reload test.
KEYS = {"alice": "rps=1000 burst=1000 concurrency=8", "slow": "rps=1 burst=2", "conc": "concurrency=2",
        "gone": ""}


def new_key(name, options=""):
    """(secret, line) from build/pyexec-keys new."""
    out = subprocess.run([os.path.join(BUILD, "pyexec-keys"), "new", name, *options.split()], capture_output=True,
                         text=True, check=True).stdout.splitlines()
    assert len(out) == 2 and out[1].startswith(name + " "), out
    return out[0], out[1]


def write_keys(path, lines):
    with open(path + ".new", "w") as f:
        f.write("# test keys\n" + "\n".join(lines) + "\n")
    os.rename(path + ".new", path)


@pytest.fixture(scope="module")
def keyed():
    """A service with a keys file, listening on every address (so that it would warn if it had
    no keys); reached on 127.0.0.1. Yields (service, {name: secret}, {name: line}, keys path)."""
    d = tempfile.mkdtemp(prefix="pyexec-keys-")
    secrets, lines = {}, {}
    for name, options in KEYS.items():
        secrets[name], lines[name] = new_key(name, options)
    path = os.path.join(d, "keys")
    write_keys(path, lines.values())
    svc = Service(config=config_with(d, api_keys_file=path, warm_preload=""), host="0.0.0.0")
    yield svc, secrets, lines, path
    stop_service(svc)


def post(url, script=HELLO, secret=None, path="/execute", body=None):
    headers = {"Content-Type": JSON_CT}
    if secret is not None:
        headers["Authorization"] = "Bearer " + secret
    raw = body if body is not None else json.dumps({"script": script})
    status, hdrs, raw = request(url, "POST", path, body=raw, headers=headers)
    return status, hdrs, parse_json_strict(raw) if raw else None


def assert_unauthorized(answer):
    status, headers, body = answer
    assert status == 401, (status, body)
    assert headers.get("www-authenticate") == "Bearer", headers
    assert body == {"error": "An API key is required: send Authorization: Bearer <secret>", "stdout": "",
                    "error_kind": "unauthorized"}, body


def test_no_key_or_a_wrong_one_is_401_and_the_right_one_is_served(keyed):
    svc, secrets, _, _ = keyed
    assert_unauthorized(post(svc.url))
    assert_unauthorized(post(svc.url, secret="pyx_" + "A" * 43))
    assert_unauthorized(post(svc.url, secret=secrets["alice"][:-1]))
    status, headers, body = request(svc.url, "POST", "/execute", body=json.dumps({"script": HELLO}),
                                    headers={"Content-Type": JSON_CT, "Authorization": "Basic YWxpY2U6eA=="})
    assert status == 401 and headers["www-authenticate"] == "Bearer"
    status, _, body = post(svc.url, secret=secrets["alice"])
    assert status == 200 and body == {"result": "hello", "stdout": ""}, body


def test_a_client_cannot_name_its_key_itself(keyed):
    """nginx passes the key the authenticator found to the pool in X-Pyexec-Key: a client that
    sends that header itself names no key — not without a secret, and not another key's with its
    own (which would bill its requests, and its logs, to someone else)."""
    svc, secrets, _, _ = keyed
    status, headers, body = request(svc.url, "POST", "/execute", body=json.dumps({"script": HELLO}),
                                    headers={"Content-Type": JSON_CT, "X-Pyexec-Key": "alice"})
    assert status == 401, (status, body)
    status, headers, raw = request(svc.url, "POST", "/execute", body=json.dumps({"script": HELLO}),
                                   headers={"Content-Type": JSON_CT, "X-Pyexec-Key": "alice",
                                            "Authorization": "Bearer " + secrets["conc"]})
    assert status == 200, raw
    rid = headers["x-request-id"]
    deadline = time.monotonic() + 2  # nginx writes its line once the answer has gone
    while not (re.search(rf"id={rid} key=\S+ method=POST", svc.logs()) and re.search(rf"id={rid} key=\S+ client=", svc.logs())):
        assert time.monotonic() < deadline, "no pool or nginx log line for the request"
        time.sleep(0.05)
    assert re.search(rf"id={rid} key=conc method=POST", svc.logs()), "the pool logged another key than the secret's"
    assert re.search(rf"id={rid} key=conc client=", svc.logs()), "nginx logged another key than the secret's"


def test_mcp_needs_a_key_too_and_the_service_endpoints_do_not(keyed):
    svc, secrets, _, _ = keyed
    init = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "initialize",
                       "params": {"protocolVersion": "2025-06-18", "capabilities": {},
                                  "clientInfo": {"name": "pytest", "version": "1"}}})
    assert_unauthorized(post(svc.url, path="/mcp", body=init))
    status, _, body = post(svc.url, path="/mcp", body=init, secret=secrets["alice"])
    assert status == 200 and body["result"]["serverInfo"]["name"] == "pyexec", body
    for path in ("/health", "/healthz", "/runtime", "/openapi.json", "/metrics"):
        status, _, raw = request(svc.url, "GET", path)
        assert status == 200, (path, raw[:300])
    # Keys, and so no warning, though it listens beyond loopback.
    assert "warning" not in parse_json_strict(request(svc.url, "GET", "/health?detail=1")[2])


def raw_headers_only(url, secret=None):
    """Sends POST /execute's headers announcing a 1 MB body, and no body: the answer within 2 s,
    or None when the server waits for the body."""
    host, port = url.split("//")[1].split(":")
    auth = f"Authorization: Bearer {secret}\r\n" if secret else ""
    with socket.create_connection((host, int(port)), timeout=2) as s:
        s.sendall(f"POST /execute HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n{auth}"
                  f"Content-Length: 1000000\r\n\r\n".encode())
        try:
            return s.recv(4096)
        except socket.timeout:
            return None


def test_an_unauthenticated_request_is_refused_before_its_body_and_never_reaches_a_worker(keyed):
    svc, secrets, _, _ = keyed
    answer = raw_headers_only(svc.url)
    assert answer is not None and answer.startswith(b"HTTP/1.1 401 "), answer
    rid = re.search(rb"X-Request-Id: ([0-9a-f]{32})", answer).group(1).decode()
    # With a valid key, nginx waits for the body it was promised (the request goes on).
    assert raw_headers_only(svc.url, secrets["alice"]) is None
    time.sleep(0.3)
    pool_lines = [l for l in svc.logs().splitlines() if f"id={rid}" in l and "kind=" in l]
    assert not pool_lines, pool_lines
    deadline = time.monotonic() + 5  # nginx writes its line once the answer has gone
    while not re.search(rf"id={rid} key=- .* status=401 ", svc.logs()):
        assert time.monotonic() < deadline, "no access log line of the 401"
        time.sleep(0.05)


def test_a_keys_rate_and_burst_then_served_again_after_the_wait(keyed):
    svc, secrets, _, _ = keyed
    statuses = [post(svc.url, secret=secrets["slow"])[0] for _ in range(3)]  # 1 + burst 2
    assert statuses == [200, 200, 200], statuses
    status, headers, body = post(svc.url, secret=secrets["slow"])
    assert status == 429 and headers["retry-after"] == "1", (status, headers)
    assert body["error_kind"] == "rate_limited" and body["stdout"] == "", body
    assert body["error"] == "Key 'slow' is over its rate (1 requests/s, bursts of 2 more); retry after 1 s", body
    # Other keys are not slowed by it.
    assert post(svc.url, secret=secrets["alice"])[0] == 200
    time.sleep(int(headers["retry-after"]) + 0.1)
    status, _, body = post(svc.url, secret=secrets["slow"])
    assert status == 200 and body["result"] == "hello", body


def test_a_keys_concurrency_refuses_its_next_script_while_others_are_served(keyed):
    svc, secrets, _, _ = keyed
    with cf.ThreadPoolExecutor(2) as ex:
        slow = [ex.submit(post, svc.url, SLOW, secrets["conc"]) for _ in range(2)]
        time.sleep(0.6)  # both in flight (each sleeps 1.5 s)
        assert not any(f.done() for f in slow)
        started = time.monotonic()
        status, headers, body = post(svc.url, secret=secrets["conc"])
        assert status == 429 and time.monotonic() - started < 0.5, (status, body)  # at once, not queued
        assert headers["retry-after"] == "1" and body["error_kind"] == "rate_limited", (headers, body)
        assert "already has 2 scripts in flight" in body["error"], body
        status, _, body = post(svc.url, secret=secrets["alice"])
        assert status == 200 and body["result"] == "hello", body
        assert not any(f.done() for f in slow)
        answers = [f.result() for f in slow]
    assert all(a[0] == 200 and a[2]["result"] == "slept" for a in answers), answers
    assert post(svc.url, secret=secrets["conc"])[0] == 200  # its slots are free again


def test_the_key_id_labels_the_log_lines_and_the_metrics(keyed):
    svc, secrets, _, _ = keyed
    status, headers, _ = post(svc.url, secret=secrets["alice"])
    assert status == 200
    rid = headers["x-request-id"]
    # Each log line is written after the answer went out, nginx's last: wait for both.
    deadline = time.monotonic() + 5
    while not re.search(rf"id={rid} key=alice method=POST .*kind=ok", svc.logs()):
        assert time.monotonic() < deadline, "no pool log line with the key"
        time.sleep(0.05)
    while not re.search(rf"id={rid} key=alice client=", svc.logs()):
        assert time.monotonic() < deadline, "no nginx log line with the key"
        time.sleep(0.05)
    metrics = request(svc.url, "GET", "/metrics")[2].decode()
    counts = {m.group(1, 2): int(m.group(3)) for m in
              re.finditer(r'^pyexec_requests_total\{key="([^"]+)",outcome="([a-z_]+)"\} (\d+)$', metrics, re.M)}
    assert counts[("alice", "ok")] >= 3, counts
    assert counts[("slow", "rate_limited")] >= 1 and counts[("conc", "rate_limited")] >= 1, counts
    unkeyed = re.search(r'^pyexec_requests_total\{outcome="unauthorized"\} (\d+)$', metrics, re.M)
    assert unkeyed and int(unkeyed.group(1)) >= 4, metrics


def test_reload_adds_and_removes_a_key_under_load_without_a_failed_request(keyed):
    svc, secrets, lines, path = keyed
    new_secret, new_line = new_key("newkey")
    assert_unauthorized(post(svc.url, secret=new_secret))
    assert post(svc.url, secret=secrets["gone"])[0] == 200
    results = []
    stop = time.monotonic() + 5

    def load():
        while time.monotonic() < stop:
            results.append(post(svc.url, secret=secrets["alice"])[0])

    with cf.ThreadPoolExecutor(2) as ex:
        loaders = [ex.submit(load) for _ in range(2)]
        time.sleep(1)
        write_keys(path, [lines[n] for n in ("alice", "slow", "conc")] + [new_line])
        os.kill(svc.proc.pid, signal.SIGHUP)
        deadline = time.monotonic() + 10
        while post(svc.url, secret=new_secret)[0] != 200:
            assert time.monotonic() < deadline, "the added key was never accepted"
            time.sleep(0.1)
        for f in loaders:
            f.result()
    assert len(results) > 20 and all(s == 200 for s in results), [s for s in results if s != 200]
    assert_unauthorized(post(svc.url, secret=secrets["gone"]))
    secrets["newkey"] = new_secret


def test_an_invalid_keys_file_is_refused_at_reload_and_at_start(keyed):
    svc, secrets, lines, path = keyed
    with open(path) as f:
        good = f.read()
    with open(path, "a") as f:
        f.write("broken zz\n")
    os.kill(svc.proc.pid, signal.SIGHUP)
    deadline = time.monotonic() + 5
    while "event=reload_rejected" not in svc.logs():
        assert time.monotonic() < deadline, "the broken keys file was not refused"
        time.sleep(0.1)
    assert "keys:" in svc.logs().split("event=reload_rejected")[-1].splitlines()[0]
    assert post(svc.url, secret=secrets["alice"])[0] == 200  # the keys in force still are
    r = subprocess.run([os.path.join(BUILD, "pyexec-worker"), "-c", svc.config_path, "--print-config"],
                       capture_output=True, text=True)
    assert r.returncode == 1 and f"{path}:{good.count(chr(10)) + 1}: key 'broken': expected the secret's SHA-256" \
        in r.stderr, r.stderr
    with open(path, "w") as f:
        f.write(good)


def test_no_secret_in_the_logs_or_the_metrics_or_nginxs_files(keyed):
    svc, secrets, _, _ = keyed
    shown = svc.logs() + request(svc.url, "GET", "/metrics")[2].decode()
    nginx_dir = os.path.join(svc.run_dir, "nginx")
    for name in os.listdir(nginx_dir):
        p = os.path.join(nginx_dir, name)
        if os.path.isfile(p):
            with open(p, errors="replace") as f:
                shown += f.read()
    leaked = [n for n, s in secrets.items() if s in shown or s[4:20] in shown]
    assert not leaked, leaked


def test_an_open_service_beyond_loopback_warns_at_start_and_in_health():
    d = tempfile.mkdtemp(prefix="pyexec-open-")
    svc = Service(config=config_with(d, warm_preload="", workers=1), host="0.0.0.0")
    try:
        for path in ("/health", "/healthz"):
            status, _, raw = request(svc.url, "GET", path + "?detail=1")
            body = parse_json_strict(raw)
            assert status == 200 and "anyone who can reach this service runs code" in body["warning"], body
            # Without ?detail, exactly the seeds' answer: their probes may compare it whole.
            status, _, raw = request(svc.url, "GET", path)
            assert status == 200 and parse_json_strict(raw) == {"status": "healthy" if path == "/health" else "ok"}
        logs = svc.logs()
        assert "WARNING: listening on 0.0.0.0" in logs and "event=warning" in logs, logs[-3000:]
        # As before otherwise: no key needed.
        status, _, body = post(svc.url)
        assert status == 200 and body["result"] == "hello"
    finally:
        stop_service(svc)
