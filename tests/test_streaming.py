"""POST /execute with "Accept: text/event-stream" (issue 15): the output as it happens, then
the answer, through the real nginx and pool, warm and cold (base_url). Timings are measured
here, not assumed: the first event must come long before the script ends."""
import http.client
import json
import time
import urllib.request

import pytest

from helpers import post_execute


def stream(base_url, body, read_events=None):
    """(status, headers, [(ms since the request, event, data)]) of a streamed request."""
    host, port = base_url.split("//")[1].split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=60)
    start = time.perf_counter()
    conn.request("POST", "/execute", json.dumps(body),
                 {"Content-Type": "application/json", "Accept": "text/event-stream"})
    resp = conn.getresponse()
    headers = {k.lower(): v for k, v in resp.getheaders()}
    if resp.status != 200 or not headers.get("content-type", "").startswith("text/event-stream"):
        return resp.status, headers, json.loads(resp.read())
    events, buf = [], b""
    while read_events is None or len(events) < read_events:
        chunk = resp.read1(65536)
        if not chunk:
            break
        buf += chunk
        while b"\n\n" in buf:
            raw, buf = buf.split(b"\n\n", 1)
            lines = dict(line.split(": ", 1) for line in raw.decode().split("\n"))
            events.append(((time.perf_counter() - start) * 1000, lines["event"], json.loads(lines["data"])))
    conn.close()
    return resp.status, headers, events


def test_output_arrives_as_it_is_printed(base_url):
    script = ("import time\ndef main():\n    print('first', flush=True)\n    time.sleep(2)\n"
              "    print('second')\n    return 42\n")
    status, headers, events = stream(base_url, {"script": script})
    assert status == 200 and headers["content-type"].startswith("text/event-stream"), (status, headers)
    assert [(e, d) for _, e, d in events] == [("stdout", "first\n"), ("stdout", "second\n"),
                                             ("result", {"result": 42, "stdout": "first\nsecond\n"})]
    first_ms, result_ms = events[0][0], events[-1][0]
    print(f"first event after {first_ms:.1f} ms, result after {result_ms:.1f} ms")
    # Not buffered anywhere: the first line is out while the script still sleeps its 2 s.
    assert first_ms < 1000 and result_ms - first_ms > 1500, (first_ms, result_ms)


def test_the_last_event_is_the_plain_answer(base_url):
    script = "def main():\n    print('x' * 70000)\n    return {'a': [1, 2.5, None]}\n"
    _, _, plain = post_execute(base_url, script)
    status, _, events = stream(base_url, {"script": script, "usage": False})
    assert status == 200 and events[-1][1:] == ("result", plain)
    assert "".join(d for _, e, d in events if e == "stdout") == plain["stdout"]


def test_a_failing_script_ends_with_an_error_event(base_url):
    _, _, events = stream(base_url, {"script": "print('before')\nraise ValueError('no')\n"})
    assert events[0][1:] == ("stdout", "before\n")
    assert events[-1][1] == "error" and events[-1][2]["error_kind"] == "exception", events[-1]


def test_no_event_ends_inside_a_character(base_url):
    script = ("import sys, time\ndef main():\n    for b in (b'\\xc3', b'\\xa9', b'\\xe2\\x82', b'\\xac\\n', b'\\xff'):\n"
              "        sys.stdout.buffer.write(b)\n        sys.stdout.flush()\n        time.sleep(0.1)\n")
    _, _, events = stream(base_url, {"script": script})
    pieces = [d for _, e, d in events if e == "stdout"]
    assert "".join(pieces) == "\u00e9\u20ac\n\ufffd" == events[-1][2]["stdout"], pieces
    assert all("\ufffd" not in p for p in pieces[:-1]), pieces


def test_the_output_limit_holds(base_url):
    script = "def main():\n    for i in range(50):\n        print('y' * 10, flush=True)\n    return 1\n"
    _, _, events = stream(base_url, {"script": script, "limits": {"stdout_max_bytes": 25}})
    assert "".join(d for _, e, d in events if e == "stdout") == "yyyyyyyyyy\nyyyyyyyyyy\nyyy"
    assert events[-1][2]["stdout_truncated"] is True


@pytest.mark.parametrize("body,status,kind", [
    ({"scrip": "x"}, 400, "invalid_request"),
    ({"script": "def main(): pass", "figures": "gif"}, 400, "invalid_request"),
], ids=["no_script", "bad_field"])
def test_request_errors_stay_plain_json(base_url, body, status, kind):
    got, headers, answer = stream(base_url, body)
    assert got == status and headers["content-type"].startswith("application/json"), (got, headers)
    assert answer["error_kind"] == kind


def metric(base_url, name):
    text = urllib.request.urlopen(base_url + "/metrics", timeout=10).read().decode()
    return sum(float(l.split()[-1]) for l in text.splitlines() if l.startswith(name))


def test_a_client_that_goes_away_frees_the_worker(base_url):
    before = metric(base_url, "pyexec_stream_aborts_total")
    script = "import time\ndef main():\n    print('go', flush=True)\n    time.sleep(30)\n"
    start = time.perf_counter()
    status, _, events = stream(base_url, {"script": script}, read_events=1)  # then the connection closes
    assert status == 200 and events[0][1:] == ("stdout", "go\n")
    deadline = time.monotonic() + 5
    while metric(base_url, "pyexec_stream_aborts_total") == before and time.monotonic() < deadline:
        time.sleep(0.05)
    freed_ms = (time.perf_counter() - start) * 1000
    assert metric(base_url, "pyexec_stream_aborts_total") == before + 1
    while metric(base_url, 'pyexec_workers{state="busy"}') > 0 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert metric(base_url, 'pyexec_workers{state="busy"}') == 0
    print(f"worker free {freed_ms:.0f} ms after the request started (the script would have slept 30 s)")
    assert freed_ms < 3000
