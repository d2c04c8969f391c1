"""`spamkit serve`: the real server in a subprocess on a free port, spoken to over HTTP.

One server for most of the module (small limits, so each is cheap to reach); the timeout, the
shutdown and the start-up failures start servers of their own."""

from __future__ import annotations

import http.client
import json
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
from conftest import ROOT, SMS_FILE, assert_clean_failure, spamkit_cli

pytest.importorskip("fastapi")
pytest.importorskip("uvicorn")

LIMITS = ("--max-body-bytes", "40000", "--max-messages", "16", "--max-chars", "2000",
          "--max-queue", "128", "--max-wait-ms", "20")


def sms_texts(n: int) -> list[str]:
    lines = SMS_FILE.read_text(encoding="utf-8").splitlines()
    return [line.split("\t", 1)[1] for line in lines[:n]]


class Server:
    """`spamkit serve BUNDLE --port 0 ARGS` running; `.port` is the one it printed."""

    def __init__(self, bundle: Path, log: Path, *args: str) -> None:
        self.log = log
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "spamkit", "serve", str(bundle), "--port", "0", *args],
            stdout=subprocess.DEVNULL, stderr=log.open("w"))
        deadline = time.monotonic() + 120
        while not (m := re.search(r"at http://127\.0\.0\.1:(\d+)", log.read_text())):
            assert self.proc.poll() is None, log.read_text()
            assert time.monotonic() < deadline, "the server did not start"
            time.sleep(0.05)
        self.port = int(m.group(1))
        while self.request("GET", "/healthz", timeout=1)[0] != 200:  # uvicorn is listening
            time.sleep(0.05)

    def request(self, method: str, path: str, body: bytes | None = None,
                headers: dict | None = None, timeout: float = 60, chunked: bool = False
                ) -> tuple[int, dict, bytes]:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            conn.request(method, path, body=iter([body]) if chunked else body,
                         headers=headers or {}, encode_chunked=chunked)
            response = conn.getresponse()
            return response.status, dict(response.getheaders()), response.read()
        except ConnectionRefusedError:
            return 0, {}, b""
        finally:
            conn.close()

    def post(self, payload: object, **kw) -> tuple[int, dict, dict]:
        body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        headers = {"Content-Type": "application/json", **kw.pop("headers", {})}
        status, head, data = self.request("POST", "/v1/classify", body, headers, **kw)
        assert head.get("content-type") == "application/json", (status, data)
        return status, head, json.loads(data)

    def metrics(self) -> dict[str, float]:
        status, _, data = self.request("GET", "/metrics")
        assert status == 200
        return {line.rsplit(" ", 1)[0]: float(line.rsplit(" ", 1)[1])
                for line in data.decode().splitlines() if not line.startswith("#")}

    def stop(self) -> int:
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout=60)


@pytest.fixture(scope="module")
def server(tiny_bundle, tmp_path_factory):
    s = Server(tiny_bundle, tmp_path_factory.mktemp("serve") / "server.log", *LIMITS)
    yield s
    assert s.stop() == 0, s.log.read_text()


@pytest.fixture(scope="module")
def classifier(tiny_bundle):
    from spamkit.runtime import Classifier

    return Classifier.load(tiny_bundle)


def test_answers_from_concurrent_clients_are_the_classifiers_own(server, classifier):
    """Requests of 1 to 16 real messages from 8 clients at once, micro-batched together, each
    answered in order with exactly Classifier.predict's labels and predict_proba's numbers."""
    texts = sms_texts(400)
    requests = [texts[i : i + 1 + i % 16] for i in range(0, 400, 9)]
    before = server.metrics()
    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(server.post, [{"texts": r} for r in requests]))
    for sent, (status, _, body) in zip(requests, answers):
        assert status == 200, body
        proba = np.array([[a["probabilities"][name] for name in classifier.labels]
                          for a in body["results"]], dtype=np.float32)
        np.testing.assert_array_equal(proba, classifier.predict_proba(sent))
        assert [a["label"] for a in body["results"]] == classifier.predict(sent)
    after = server.metrics()
    messages = sum(map(len, requests))
    assert after['spamkit_messages_total{outcome="ok"}'] - \
        before['spamkit_messages_total{outcome="ok"}'] == messages
    batches = after["spamkit_batch_messages_count"] - before["spamkit_batch_messages_count"]
    assert after["spamkit_batch_messages_sum"] - before["spamkit_batch_messages_sum"] == messages
    assert batches < len(requests), "no two requests' messages ever ran together"


def test_an_empty_list_gets_an_empty_answer(server):
    assert server.post({"texts": []})[::2] == (200, {"results": []})


def test_probes_and_schema(server, classifier):
    assert server.request("GET", "/healthz")[0] == 200
    status, _, body = server.request("GET", "/readyz")
    ready = json.loads(body)
    assert status == 200 and ready["digest"] == classifier.digest
    assert ready["labels"] == classifier.labels and ready["precision"] == "int8"
    status, _, body = server.request("GET", "/openapi.json")
    schema = json.loads(body)
    assert status == 200 and "post" in schema["paths"]["/v1/classify"]
    assert {"/healthz", "/readyz", "/metrics"} <= set(schema["paths"])


LONG = "x" * 2001
REFUSED = [
    ("body over the byte limit", json.dumps({"texts": ["y" * 1999] * 21}).encode(), {}, 413,
     "40000-byte limit"),
    ("too many messages", {"texts": ["hi"] * 17}, {}, 413, "at most 16"),
    ("a message too long", {"texts": ["ok", LONG]}, {}, 422, "texts[1] has 2001 characters"),
    ("not JSON", b'{"texts": ["unclosed"', {}, 400, "not JSON"),
    ("empty body", b"", {}, 400, "not JSON"),
    ("a number among the texts", {"texts": ["a", 3]}, {}, 422, "texts[1]"),
    ("texts not a list", {"texts": "hello"}, {}, 422, "texts: "),
    ("a misspelt key", {"text": ["hello"]}, {}, 422, "text: Extra inputs"),
    ("a list for a body", [["hello"]], {}, 422, "JSON object"),
    ("form encoding", b"texts=hello", {"Content-Type": "application/x-www-form-urlencoded"},
     415, "application/json"),
]


@pytest.mark.parametrize("case", REFUSED, ids=[c[0] for c in REFUSED])
def test_every_refusal_is_one_json_line_and_the_server_goes_on(server, case):
    _, payload, headers, code, words = case
    status, _, body = server.post(payload, headers=headers)
    assert status == code and words in body["detail"], body
    assert list(body) == ["detail"] and "\n" not in body["detail"]
    assert server.post({"texts": ["still there?"]})[0] == 200


def test_a_chunked_body_over_the_limit_is_refused_as_it_arrives(server):
    body = json.dumps({"texts": ["z" * 1999] * 25}).encode()
    status, _, data = server.request("POST", "/v1/classify", body, chunked=True,
                                     headers={"Content-Type": "application/json"})
    assert status == 413 and b"40000-byte limit" in data


def test_a_declared_length_over_the_limit_is_refused_before_the_body_comes(server):
    """Content-Length says 1 GB and no byte of the body is sent: the 413 comes at once."""
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)
    try:
        conn.putrequest("POST", "/v1/classify")
        conn.putheader("Content-Type", "application/json")
        conn.putheader("Content-Length", str(10**9))
        conn.endheaders()
        response = conn.getresponse()
        assert response.status == 413 and b"40000-byte limit" in response.read()
    finally:
        conn.close()


def test_a_request_at_every_limit_is_answered(server, classifier):
    """16 messages (--max-messages), one of exactly 2000 characters (--max-chars)."""
    texts = [*sms_texts(15), "y" * 2000]
    status, _, body = server.post({"texts": texts})
    assert status == 200, body
    assert [a["label"] for a in body["results"]] == classifier.predict(texts)


@pytest.mark.parametrize("method", ["OPTIONS", "GET", "PUT"])
def test_other_methods_on_classify_are_405_naming_post(server, method):
    """No CORS: OPTIONS is told what the path allows, as any other method but POST is."""
    status, head, body = server.request(method, "/v1/classify")
    assert status == 405 and head["allow"] == "POST", (status, head, body)
    assert json.loads(body) == {"detail": "Method Not Allowed"}


def test_metrics_count_outcomes_messages_and_latency(server):
    before = server.metrics()
    server.post({"texts": sms_texts(3)})
    server.post({"texts": ["one"]})
    server.post({"texts": ["hi"] * 17})
    server.post(b"nope")
    after = server.metrics()

    def delta(name: str) -> float:
        return after[name] - before.get(name, 0)

    assert delta('spamkit_requests_total{outcome="ok"}') == 2
    assert delta('spamkit_messages_total{outcome="ok"}') == 4
    assert delta('spamkit_requests_total{outcome="too_large"}') == 1
    assert delta('spamkit_messages_total{outcome="too_large"}') == 17
    assert delta('spamkit_requests_total{outcome="bad_json"}') == 1
    assert delta("spamkit_request_duration_seconds_count") == 4
    assert delta('spamkit_request_duration_seconds_bucket{le="+Inf"}') == 4
    assert after["spamkit_queue_depth"] == 0


def test_a_full_queue_is_503_with_retry_after_and_the_rest_are_answered(server, classifier):
    """24 requests of 16 long messages at once against a queue of 128 messages."""
    texts = [t * 12 for t in sms_texts(16)]
    texts = [t[:2000] for t in texts]
    before = server.metrics()
    with ThreadPoolExecutor(24) as pool:
        answers = list(pool.map(lambda _: server.post({"texts": texts}), range(24)))
    statuses = [status for status, _, _ in answers]
    assert set(statuses) == {200, 503}, statuses
    for status, head, body in answers:
        if status == 503:
            assert head["retry-after"] == "1" and "no room for 16 more" in body["detail"]
    expected = classifier.predict(texts)
    assert all(b["results"] and [a["label"] for a in b["results"]] == expected
               for s, _, b in answers if s == 200)
    after = server.metrics()
    full = 'spamkit_requests_total{outcome="queue_full"}'
    assert after[full] - before[full] == statuses.count(503)


def test_a_request_past_its_timeout_is_504(tiny_bundle, tmp_path):
    """The worker waits 3 s for a micro-batch to fill; the request gives up after 0.3 s."""
    s = Server(tiny_bundle, tmp_path / "server.log", "--max-wait-ms", "3000",
               "--request-timeout-s", "0.3")
    try:
        start = time.monotonic()
        status, _, body = s.post({"texts": ["anyone there?"]})
        assert status == 504 and "0.3 s" in body["detail"], body
        assert time.monotonic() - start < 2.5
        assert s.metrics()['spamkit_requests_total{outcome="timeout"}'] == 1
    finally:
        assert s.stop() == 0


def test_sigterm_answers_what_is_in_flight_then_exits_0(tiny_bundle, tmp_path):
    """8 clients keep requests in flight (each waits ~1 s for its micro-batch to fill); SIGTERM
    arrives while they wait: each is answered 200, new connections are refused, and the
    process exits 0 within the bound the README gives (request timeout + 1 s, plus start-up
    of the stop)."""
    s = Server(tiny_bundle, tmp_path / "server.log", "--max-wait-ms", "1000",
               "--request-timeout-s", "5")
    texts = sms_texts(4)
    stop, answers = threading.Event(), []

    def client() -> None:
        while not stop.is_set():
            answers.append((*s.post({"texts": texts})[::2], time.monotonic()))

    threads = [threading.Thread(target=client) for _ in range(8)]
    for t in threads:
        t.start()
    time.sleep(1.5)
    stop.set()  # no request starts after this; those already sent are in flight
    time.sleep(0.2)
    signalled = time.monotonic()
    s.proc.send_signal(signal.SIGTERM)
    for t in threads:
        t.join(timeout=30)
    assert s.proc.wait(timeout=5 + 1 + 3) == 0, s.log.read_text()
    assert time.monotonic() - signalled < 5 + 1 + 3
    assert all(status == 200 and len(body["results"]) == 4 for status, body, _ in answers)
    assert sum(done > signalled for _, _, done in answers) == 8, "not all 8 were in flight"
    assert s.request("GET", "/healthz")[0] == 0  # refused: nobody listens any more
    assert "Traceback" not in s.log.read_text()


def test_start_up_failures_are_one_line(tiny_bundle, tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = spamkit_cli("serve", tiny_bundle, "--port", port)
        assert_clean_failure(result, f"cannot listen on 127.0.0.1:{port}")
        # The pin is checked as the bundle loads, before the port is bound (a pin ignored
        # would fail on the port instead, not serve on).
        result = spamkit_cli("serve", tiny_bundle, "--port", port, "--digest", "0" * 64)
        assert_clean_failure(result, "is not the pinned bundle", "0" * 64)
    assert_clean_failure(spamkit_cli("serve", tmp_path / "nothing"), "nothing")


@pytest.mark.parametrize("module", ["fastapi", "httptools"])
def test_without_the_serve_extra_the_command_says_how_to_get_it(tiny_bundle, module):
    """A module of the extra made unimportable, as in an install without `spamkit[serve]`."""
    code = (f"import sys\nsys.modules[{module!r}] = None\nsys.argv = ['spamkit', 'serve', "
            f"{str(tiny_bundle)!r}]\nfrom spamkit.cli import main\nmain()\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            timeout=120, check=False)
    line = assert_clean_failure(result)
    assert line == f'spamkit: error: this needs {module} (for spamkit serve), which is not ' \
                   'installed: pip install "spamkit[serve]"'


def test_the_load_test_reports_both_modes_beside_offline_figures(tiny_bundle, tmp_path):
    """benchmarks/serve_load.py, cut down: two levels, one round, a few requests."""
    out = tmp_path / "load.json"
    result = subprocess.run(
        [sys.executable, ROOT / "benchmarks" / "serve_load.py", tiny_bundle, "--data", SMS_FILE,
         "--concurrency", "1", "4", "--requests", "12", "--rounds", "1", "--messages", "20",
         "--threads", "1", "--json", out], capture_output=True, text=True, timeout=300,
        check=False)
    assert result.returncode == 0, result.stderr[-2000:]
    modes = json.loads(out.read_text())["modes"]
    assert set(modes) == {"batching on", "batching off"}
    for mode in modes.values():
        assert mode["exit_code"] == 0
        assert [lv["concurrency"] for lv in mode["levels"]] == [1, 4]
        for level in mode["levels"]:
            assert level["requests"] == 12 and level["errors"] == 0
            assert level["msgs_per_s"] > 0 and level["offline_msgs_per_s"] > 0
    assert max(lv["mean_batch"] for lv in modes["batching off"]["levels"]) == 1.0
    assert "| batching on | 4 | 12 | 0 |" in result.stdout
