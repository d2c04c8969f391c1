"""`spamkit serve` against clients that send too much or too slowly, malformed HTTP, a graph
that fails on some messages, and a calibrated bundle: a real server in a subprocess, spoken to
over real sockets on 127.0.0.1. Every loop here is bounded in time."""

from __future__ import annotations

import http.client
import itertools
import json
import shutil
import socket
import threading
import time
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from test_serve import Server, sms_texts

from spamkit.runtime import BundleError, Classifier

HEAD_LIMIT = 8192
READ_TIMEOUT = 1.5
SLOW = 0.2  # seconds between a slow client's pieces
GET = b"GET /healthz HTTP/1.1\r\nHost: test\r\n"


@pytest.fixture(scope="module")
def server(tiny_bundle, tmp_path_factory):
    s = Server(tiny_bundle, tmp_path_factory.mktemp("hostile") / "server.log",
               "--max-header-bytes", str(HEAD_LIMIT), "--read-timeout-s", str(READ_TIMEOUT))
    yield s
    assert s.stop() == 0, s.log.read_text()


def talk(port: int, pieces: Iterable[bytes], limit: float = 10) -> tuple[bytes, float | None]:
    """Send `pieces` on one connection, SLOW seconds apart, reading all along: what the server
    answered, and how many seconds after connecting it closed the connection (None: still
    open after `limit` seconds)."""
    answer, pieces = b"", iter(pieces)
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.settimeout(SLOW)
        start = time.monotonic()
        while time.monotonic() - start < limit:
            try:
                sock.sendall(next(pieces, b""))
                chunk = sock.recv(65536)
            except TimeoutError:
                continue
            except OSError:  # reset: the server closed with our bytes unread
                return answer, time.monotonic() - start
            if not chunk:
                return answer, time.monotonic() - start
            answer += chunk
    return answer, None


def status_and_detail(answer: bytes) -> tuple[int, str]:
    head, _, body = answer.partition(b"\r\n\r\n")
    assert b"content-type: application/json" in head.lower(), answer
    return int(head.split()[1]), json.loads(body)["detail"]


@pytest.mark.parametrize("head", [
    GET + b"X-Long: " + b"a" * HEAD_LIMIT + b"\r\n\r\n",
    GET + b"".join(b"X-%d: 1\r\n" % i for i in range(HEAD_LIMIT // 8)) + b"\r\n",
    b"GET /healthz?" + b"q" * HEAD_LIMIT + b" HTTP/1.1\r\nHost: test\r\n\r\n",
], ids=["one long header", "many headers", "a long URL"])
def test_a_head_over_the_limit_is_431_json(server, head):
    """The whole head in one send, so it reaches the server in one piece."""
    answer, closed = talk(server.port, [head])
    assert closed is not None
    assert status_and_detail(answer) == (
        431, f"the request line and headers are over the {HEAD_LIMIT}-byte limit "
        "(--max-header-bytes)")
    assert server.request("GET", "/healthz", headers={"X-Fits": "a" * 4000})[0] == 200


def rss_mb(pid: int) -> float:
    status = open(f"/proc/{pid}/status").read()
    return int(status.split("VmRSS:")[1].split()[0]) / 1024


ENDLESS = memoryview(GET + b"X-Endless: " + b"a" * (32 << 20))  # more than loopback buffers


def endless_header(port: int) -> tuple[bytes, int]:
    """32 MiB of one header that never ends, sent at once: the answer, and how much was sent
    before the server closed the connection."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sent = 0
        try:
            while sent < len(ENDLESS):
                sent += sock.send(ENDLESS[sent : sent + (1 << 20)])
            return sock.recv(65536), sent
        except OSError:
            return b"", sent


def test_endless_headers_are_cut_off_and_memory_stays_flat(server):
    """Four clients at once, each a 32 MiB header (the audit's four 64 MiB headers took the
    server from 137 to 462 MB): each is refused (431, or reset before it was all sent) before
    the read timeout, and the server's RSS, sampled throughout, grows by under 16 MB."""
    base, peak, done = rss_mb(server.proc.pid), [0.0], threading.Event()

    def sample() -> None:
        while not done.is_set():
            peak[0] = max(peak[0], rss_mb(server.proc.pid))
            time.sleep(0.005)

    sampler = threading.Thread(target=sample)
    sampler.start()
    start = time.monotonic()
    try:
        with ThreadPoolExecutor(4) as pool:
            results = list(pool.map(endless_header, [server.port] * 4))
    finally:
        done.set()
        sampler.join()
    for answer, sent in results:
        assert sent < len(ENDLESS) or answer.startswith(b"HTTP/1.1 431 "), answer[:200]
        assert not answer or status_and_detail(answer)[0] == 431
    assert time.monotonic() - start < READ_TIMEOUT
    assert peak[0] - base < 16, f"RSS {base:.0f} -> {peak[0]:.0f} MB"
    assert server.post({"texts": ["still there?"]})[0] == 200


POST_HEAD = (b"POST /v1/classify HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\n"
             b"Content-Length: 1000\r\n\r\n")
# What a slow client sends first, what it then sends every SLOW seconds, and the answer it gets.
SLOW_CLIENTS = {
    "a connection that sends nothing": ([], b"", 408),
    "a header a line at a time": ([GET], b"X-Slow: 1\r\n", 408),
    "a body a byte at a time": ([POST_HEAD], b" ", None),
    "a second request on a kept-alive connection, a line at a time": (
        [GET + b"\r\n", b"", GET], b"X-Slow: 1\r\n", 408),
}


def slow_client(port: int, name: str) -> tuple[bytes, float | None]:
    first, then, _ = SLOW_CLIENTS[name]
    return talk(port, itertools.chain(first, itertools.repeat(then)))


def assert_timed_out(answer: bytes, code: int | None) -> None:
    if code is None:
        assert answer == b""
    else:
        last = answer[answer.rfind(b"HTTP/1.1 "):]
        assert status_and_detail(last) == (
            code, f"the request did not arrive within {READ_TIMEOUT:g} s (--read-timeout-s)")


@pytest.mark.parametrize("name", SLOW_CLIENTS)
def test_a_slow_client_is_dropped_after_the_read_timeout(server, name):
    """408 when the request has not arrived whole within --read-timeout-s of its first byte
    (or of the connection); once its body has started the app has it, and the connection is
    closed without an answer."""
    answer, closed = slow_client(server.port, name)
    assert closed is not None, "still open after 10 s"
    assert READ_TIMEOUT - 0.1 < closed < READ_TIMEOUT + 1.5
    assert_timed_out(answer, SLOW_CLIENTS[name][2])


def test_fifty_slowloris_connections_are_all_dropped_while_others_are_served(server):
    name = "a header a line at a time"
    with ThreadPoolExecutor(50) as pool:
        slow = [pool.submit(slow_client, server.port, name) for _ in range(50)]
        time.sleep(SLOW)
        status, _, body = server.post({"texts": sms_texts(3)}, timeout=READ_TIMEOUT)
        assert status == 200 and len(body["results"]) == 3
        results = [f.result() for f in slow]
    for answer, closed in results:
        assert closed is not None and READ_TIMEOUT - 0.1 < closed < READ_TIMEOUT + 2
        assert_timed_out(answer, 408)


def test_a_kept_alive_connection_is_timed_per_request_not_per_connection(server):
    """Five requests on one connection, 0.5 s apart: 2 s in all, past the read timeout, and
    each answered."""
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)
    socks = set()
    try:
        for _ in range(5):
            conn.request("GET", "/healthz")
            response = conn.getresponse()
            assert response.status == 200, response.read()
            response.read()
            socks.add(conn.sock)
            time.sleep(0.5)
        assert len(socks) == 1  # one connection throughout
    finally:
        conn.close()


def test_malformed_http_is_a_json_400(server):
    answer, closed = talk(server.port, [b"NOT HTTP AT ALL\r\n\r\n"])
    assert closed is not None
    assert status_and_detail(answer) == (400, "the request is not valid HTTP/1.1")


LONG = "many words " * 400  # past the graph's 256 positions, within what the manifest claims


@pytest.fixture(scope="module")
def failing(tiny_bundle, tmp_path_factory):
    """A bundle whose manifest claims twice its graph's context: a long message reaches ONNX
    Runtime and fails there. Each micro-batch waits 1 s to fill."""
    work = tmp_path_factory.mktemp("failing")
    bundle = shutil.copytree(tiny_bundle, work / "bundle")
    manifest = json.loads((bundle / "manifest.json").read_text())
    manifest["context_length"] *= 2
    (bundle / "manifest.json").write_text(json.dumps(manifest))
    s = Server(bundle, work / "server.log", "--max-wait-ms", "1000")
    yield s, Classifier.load(bundle)
    assert s.stop() == 0, s.log.read_text()


def outcome(clf: Classifier, texts: list[str]) -> tuple[int, dict]:
    """What the server must answer: Classifier.predict_proba on the request alone."""
    try:
        proba = clf.predict_proba(texts)
    except BundleError as e:
        return 500, {"detail": f"classification failed: {e}"}
    labels = clf.decide_labels(proba)
    return 200, {"results": [{"label": label, "probabilities": dict(zip(clf.labels, row))}
                             for label, row in zip(labels, proba.tolist())]}


def tracebacks(s: Server, at_least: int = 0) -> int:
    """Tracebacks in the server's log, once there are `at_least` (or after 5 s) and a moment
    more for any others to come."""
    def count() -> int:
        return s.log.read_text().count("Traceback (most recent call last)")

    deadline = time.monotonic() + 5
    while count() < at_least and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.5)
    return count()


def test_a_failing_message_fails_only_its_own_request(failing):
    """Three requests in one micro-batch, the second with a message the graph fails on: the
    others are answered, and the second gets the error it gets alone (texts[2], not the
    batch's texts[4]), with one traceback in the log."""
    s, clf = failing
    requests = [sms_texts(2), ["fine", "more fine", LONG], ["see you at 6?"]]
    before, logged = s.metrics(), tracebacks(s)
    with ThreadPoolExecutor(3) as pool:
        answers = list(pool.map(lambda texts: s.post({"texts": texts}), requests))
    after = s.metrics()
    assert after["spamkit_batch_messages_count"] - before["spamkit_batch_messages_count"] == 1
    assert after["spamkit_batch_messages_sum"] - before["spamkit_batch_messages_sum"] == 6
    assert [status for status, _, _ in answers] == [200, 500, 200]
    for texts, (status, _, body) in zip(requests, answers):
        assert (status, body) == outcome(clf, texts)
    assert "texts[2]" in answers[1][2]["detail"]
    assert tracebacks(s, logged + 1) == logged + 1


def test_a_500_says_one_line_and_logs_one_traceback(failing):
    s, clf = failing
    logged = tracebacks(s)
    status, _, body = s.post({"texts": [LONG]})
    assert (status, body) == outcome(clf, [LONG])
    assert "\n" not in body["detail"] and "Traceback" not in body["detail"]
    assert tracebacks(s, logged + 1) == logged + 1


def test_the_served_label_follows_the_calibrated_threshold(tiny_bundle, tmp_path):
    """A manifest threshold for "spam" at the median spam probability of the messages the
    model calls ham: half of those turn spam, as Classifier.predict says."""
    texts = sms_texts(60)
    plain = Classifier.load(tiny_bundle)
    spam = plain.predict_proba(texts)[:, plain.labels.index("spam")]
    hams = np.sort(spam[spam < 0.5])
    bundle = shutil.copytree(tiny_bundle, tmp_path / "bundle")
    manifest = json.loads((bundle / "manifest.json").read_text())
    manifest["threshold"] = {"label": "spam", "value": float(hams[len(hams) // 2])}
    (bundle / "manifest.json").write_text(json.dumps(manifest))
    expected = Classifier.load(bundle).predict(texts)
    assert expected != plain.predict(texts)  # the threshold changes labels
    s = Server(bundle, tmp_path / "server.log")
    try:
        status, _, body = s.post({"texts": texts})
        assert status == 200 and [a["label"] for a in body["results"]] == expected
    finally:
        assert s.stop() == 0
