"""What nginx itself answers: back-pressure (workers + queue_slots requests in flight, the rest a
JSON 503 at once, slow uploads not counted) and every error status it can produce, in JSON.

Malformed requests are sent over raw sockets, since http.client refuses to write most of them.
One small service (one worker, two queue slots) serves the whole module.
"""
import concurrent.futures as cf
import http.client
import json
import socket
import time

import pytest

from helpers import parse_json_strict, start_service, stop_service

WORKERS, QUEUE_SLOTS = 1, 2
SLOW_S = 3
SLOW = f"import time\ndef main():\n    time.sleep({SLOW_S})\n    return 'slept'\n"
HELLO = "def main():\n    return 'hello'\n"
BUSY_BODY = {"error": "All workers are busy and the queue is full; retry later", "stdout": "",
             "error_kind": "busy"}
# "At once": far below the SLOW_S a queued request would wait, generous for a loaded machine.
AT_ONCE_S = 1.0


@pytest.fixture(scope="module")
def svc():
    # queue_timeout_ms well above SLOW_S * (WORKERS + QUEUE_SLOTS): the requests that are let in
    # must all run, so that only nginx's cap can refuse anything.
    s = start_service(workers=WORKERS, queue_slots=QUEUE_SLOTS, queue_timeout_ms=30000)
    yield s
    stop_service(s)


# ---- helpers ------------------------------------------------------------------------------

def post(svc, script, timeout=60, headers=None):
    """POST /execute; returns (status, [(lowercase header, value)], body bytes, seconds taken)."""
    conn = http.client.HTTPConnection("127.0.0.1", svc.port, timeout=timeout)
    t = time.monotonic()
    try:
        conn.request("POST", "/execute", body=json.dumps({"script": script}),
                     headers={"Content-Type": "application/json", **(headers or {})})
        r = conn.getresponse()
        raw = r.read()
        return r.status, [(k.lower(), v) for k, v in r.getheaders()], raw, time.monotonic() - t
    finally:
        conn.close()


def one(headers, name):
    """The value of a header that must appear exactly once."""
    values = [v for k, v in headers if k == name]
    assert len(values) == 1, (name, headers)
    return values[0]


def worker_busy(svc):
    conn = http.client.HTTPConnection("127.0.0.1", svc.port, timeout=5)
    try:
        conn.request("GET", "/metrics")
        text = conn.getresponse().read().decode()
    finally:
        conn.close()
    return any(line.startswith("pyexec_worker_busy") and line.endswith(" 1") for line in text.splitlines())


def wait_until(predicate, timeout=15):
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out waiting"
        time.sleep(0.05)


def raw_exchange(port, data, timeout=10, source=None):
    """Send bytes as they are; return (status, [(header, value)], body) of the first answer.
    The body is read by Content-Length, since nginx may keep the connection open after it."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout,
                                  source_address=(source, 0) if source else None) as s:
        try:
            s.sendall(data)
        except (BrokenPipeError, ConnectionResetError):
            pass  # nginx may answer and close before reading everything
        buf = b""
        while b"\r\n\r\n" not in buf:
            chunk = s.recv(65536)
            assert chunk, f"connection closed before an answer: {buf!r}"
            buf += chunk
        head, body = buf.split(b"\r\n\r\n", 1)
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split()[1])
        headers = [(k.strip().lower(), v.strip()) for k, v in (l.split(":", 1) for l in lines[1:])]
        length = int(one(headers, "content-length"))
        while len(body) < length:
            chunk = s.recv(65536)
            assert chunk, "connection closed inside the body"
            body += chunk
        return status, headers, body[:length]


def assert_json_error(status, headers, body, want_status, want_kind):
    """The README's error shape, exactly: three fields, JSON content type, one request id."""
    assert status == want_status, (status, body[:300])
    assert one(headers, "content-type").split(";")[0] == "application/json", headers
    one(headers, "x-request-id")
    parsed = parse_json_strict(body)
    assert set(parsed) == {"error", "stdout", "error_kind"}, parsed
    assert parsed["error_kind"] == want_kind and parsed["stdout"] == "", parsed
    assert isinstance(parsed["error"], str) and parsed["error"], parsed
    return parsed


# ---- back-pressure ------------------------------------------------------------------------

@pytest.fixture(scope="module")
def overflow(svc):
    """Fill the cap with slow scripts, then send as many again: (admitted, extra) answers."""
    cap = WORKERS + QUEUE_SLOTS
    with cf.ThreadPoolExecutor(2 * cap + 2) as ex:
        admitted = [ex.submit(post, svc, SLOW) for _ in range(cap)]
        wait_until(lambda: worker_busy(svc))
        time.sleep(0.5)  # the queued ones reach nginx's counter too (they were sent first)
        extra = list(ex.map(lambda _: post(svc, HELLO), range(cap + 2)))
        return [f.result() for f in admitted], extra


def test_past_the_cap_requests_get_503_at_once(overflow):
    admitted, extra = overflow
    assert [(st, round(s, 2)) for st, _, _, s in extra if st != 503 or s > AT_ONCE_S] == []
    # Everything let in ran: nothing was refused by the pool's own queue timeout.
    assert [json.loads(b) for _, _, b, _ in admitted] == [{"result": "slept", "stdout": ""}] * len(admitted)


def test_busy_answer_is_the_documented_json(overflow):
    _, extra = overflow
    for status, headers, body, _ in extra:
        assert assert_json_error(status, headers, body, 503, "busy") == BUSY_BODY
        assert one(headers, "retry-after") == "1"


def stalled_upload(port):
    """A client that sent the headers and a tenth of the body, then stalls."""
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    s.sendall(b"POST /execute HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
              b"Content-Length: 1000\r\n\r\n" + b'{"script": "' + b"#" * 88)
    return s


def test_stalled_uploads_do_not_lock_others_out(svc):
    stalled = []
    try:
        for _ in range(20):
            stalled.append(stalled_upload(svc.port))
        time.sleep(0.3)  # nginx has read what they sent
        status, headers, body, _ = post(svc, HELLO)
        assert (status, json.loads(body)) == (200, {"result": "hello", "stdout": ""})
    finally:
        for s in stalled:
            s.close()


def test_request_id_is_nginx_own_and_logged(svc):
    status, headers, _, _ = post(svc, HELLO, headers={"X-Request-Id": "spoofed"})
    rid = one(headers, "x-request-id")
    assert status == 200 and rid != "spoofed"
    wait_until(lambda: f"id={rid} " in svc.logs(), timeout=5)
    assert "id=spoofed" not in svc.logs()


# ---- every status nginx answers itself, as JSON ----------------------------------------

def req(line, *headers, body=b""):
    return (line + "\r\n" + "".join(h + "\r\n" for h in headers) + "\r\n").encode("latin-1") + body


CLOSE = "Connection: close"
NGINX_ERRORS = {
    # 400 (nginx's 494): header section over large_client_header_buffers
    "header_64k": (req("GET / HTTP/1.1", "Host: x", "X-Big: " + "a" * 65536, CLOSE), 400, "headers_too_large"),
    "300_headers": (req("GET / HTTP/1.1", "Host: x", *(f"X-H{i}: {'v' * 120}" for i in range(300)), CLOSE),
                    400, "headers_too_large"),
    "uri_20k": (req("GET /" + "a" * 20000 + " HTTP/1.1", "Host: x", CLOSE), 414, "uri_too_long"),
    "trace": (req("TRACE /execute HTTP/1.1", "Host: x", CLOSE), 405, "method_not_allowed"),
    "te_gzip": (req("POST /execute HTTP/1.1", "Host: x", "Transfer-Encoding: gzip", CLOSE),
                501, "unsupported_transfer_encoding"),
    "http_2_0": (req("GET /execute HTTP/2.0", "Host: x", CLOSE), 505, "http_version_not_supported"),
    "http_3_0": (req("GET /execute HTTP/3.0", "Host: x", CLOSE), 505, "http_version_not_supported"),
    # 400: the request line or a header cannot be parsed (some before nginx knows any URI)
    "garbage_line": (b"GARBAGE\r\n\r\n", 400, "invalid_request"),
    "tls_hello": (b"\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03" + b"\x00" * 64, 400, "invalid_request"),
    "h2_preface": (b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", 400, "invalid_request"),
    "lowercase_method": (req("post /execute HTTP/1.1", "Host: x", CLOSE), 400, "invalid_request"),
    "options_star": (req("OPTIONS * HTTP/1.1", "Host: x", CLOSE), 400, "invalid_request"),
    "connect": (req("CONNECT a:443 HTTP/1.1", "Host: a:443", CLOSE), 400, "invalid_request"),
    "dotdot": (req("GET /../execute HTTP/1.1", "Host: x", CLOSE), 400, "invalid_request"),
    "no_host": (req("GET /health HTTP/1.1", CLOSE), 400, "invalid_request"),
    "two_hosts": (req("GET /health HTTP/1.1", "Host: a", "Host: b", CLOSE), 400, "invalid_request"),
    "bad_host": (req("GET /health HTTP/1.1", "Host: a/b", CLOSE), 400, "invalid_request"),
    "space_in_name": (req("GET /health HTTP/1.1", "Host: x", "Bad Name: y", CLOSE), 400, "invalid_request"),
    "nul_in_value": (req("GET /health HTTP/1.1", "Host: x", "X: a\0b", CLOSE), 400, "invalid_request"),
    "bad_content_length": (req("POST /execute HTTP/1.1", "Host: x", "Content-Length: 1x", CLOSE),
                           400, "invalid_request"),
    "cl_and_te": (req("POST /execute HTTP/1.1", "Host: x", "Content-Length: 5", "Transfer-Encoding: chunked",
                      CLOSE, body=b"0\r\n\r\n"), 400, "invalid_request"),
    "te_in_http_1_0": (req("POST /execute HTTP/1.0", "Host: x", "Transfer-Encoding: chunked", body=b"0\r\n\r\n"),
                       400, "invalid_request"),
    "bad_chunk": (req("POST /execute HTTP/1.1", "Host: x", "Content-Type: application/json",
                      "Transfer-Encoding: chunked", CLOSE, body=b"zz\r\n"), 400, "invalid_request"),
    # 413 from the announced length, before any of the body is read
    "body_over_limit": (req("POST /execute HTTP/1.1", "Host: x", "Content-Length: 99999999", CLOSE),
                        413, "too_large"),
    # 404 whatever the extension (nginx's built-in types would say text/html, image/jpeg)
    "html_404": (req("GET /index.html HTTP/1.1", "Host: x", CLOSE), 404, "not_found"),
    "jpg_404": (req("GET /x.jpg HTTP/1.1", "Host: x", "Range: bytes=5-9", CLOSE), 404, "not_found"),
    "error_page_uri": (req("GET /_pyexec_error/busy HTTP/1.1", "Host: x", CLOSE), 404, "not_found"),
}


@pytest.mark.parametrize("name", NGINX_ERRORS)
def test_nginx_errors_are_json(svc, name):
    data, status, kind = NGINX_ERRORS[name]
    assert_json_error(*raw_exchange(svc.port, data), status, kind)


@pytest.mark.parametrize("path,allow", [("/execute", "POST"), ("/health", "GET, HEAD"), ("/runtime", "GET, HEAD"),
                                        ("/openapi.json", "GET, HEAD")])
def test_trace_answer_says_what_is_allowed(svc, path, allow):
    status, headers, _ = raw_exchange(svc.port, req(f"TRACE {path} HTTP/1.1", "Host: x", CLOSE))
    assert status == 405 and one(headers, "allow") == allow


def test_metrics_from_outside_loopback_is_json_403(svc):
    data = req("GET /metrics HTTP/1.1", "Host: x", CLOSE)
    assert_json_error(*raw_exchange(svc.port, data, source="127.0.0.2"), 403, "forbidden")


def test_http_0_9_body_is_still_json(svc):
    # HTTP/0.9 has no status line and no headers: the body alone is the answer.
    with socket.create_connection(("127.0.0.1", svc.port), timeout=10) as s:
        s.sendall(b"GET /nope\r\n")
        body = b""
        while chunk := s.recv(65536):
            body += chunk
    assert parse_json_strict(body)["error_kind"] == "not_found"


def test_service_is_fine_after_the_abuse(svc):
    status, _, body, _ = post(svc, HELLO)
    assert (status, json.loads(body)) == (200, {"result": "hello", "stdout": ""})
