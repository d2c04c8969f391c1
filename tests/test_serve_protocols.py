"""`spamkit serve` speaking KServe's Open Inference Protocol (v2) and Hugging Face
text-embeddings-inference's /predict and /info, with the request bodies their own documentation
gives; its metrics (process_* included) and its access log.

One server for most of the module, on a calibrated bundle (its threshold changes labels), so
that each protocol's labels are seen to be Classifier.predict's and not the most probable."""

from __future__ import annotations

import json
import shutil
import socket
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from conftest import assert_clean_failure, spamkit_cli
from test_serve import Server, sms_texts

pytest.importorskip("prometheus_client")

NAME = "sms-spam"
INFER = f"/v2/models/{NAME}/infer"
# --max-queue below --max-messages: a request of 49 to 64 messages always finds the queue full.
LIMITS = ("--max-body-bytes", "40000", "--max-messages", "64", "--max-queue", "48",
          "--max-chars", "2000", "--max-wait-ms", "20", "--model-name", NAME)
# The bodies of the protocols' own documentation, verbatim: KServe's Hugging Face text
# classification example, and text-embeddings-inference's quick tour (one text, then a batch).
KSERVE_DOC = {"inputs": [{"name": "input-0", "shape": [2], "datatype": "BYTES",
                          "data": ["Hello, my dog is cute", "I am feeling sad"]}]}
TEI_DOC_ONE = {"inputs": "I like you."}
TEI_DOC_BATCH = {"inputs": [["I like you."], ["I hate pineapples"]]}


def kserve_body(texts: list[str], **extra: object) -> dict:
    return {**extra, "inputs": [{"name": "input-0", "shape": [len(texts)], "datatype": "BYTES",
                                 "data": texts}]}


def call(server: Server, method: str, path: str, payload: object = None,
         headers: dict | None = None) -> tuple[int, dict, object]:
    """One request, its JSON answer parsed; `payload` is sent as JSON unless it is bytes."""
    body = payload if isinstance(payload, bytes) or payload is None else json.dumps(payload)
    head = {"Content-Type": "application/json", **(headers or {})}
    status, got, data = server.request(method, path, body, head)
    assert got.get("content-type") == "application/json", (status, data)
    return status, got, json.loads(data)


@pytest.fixture(scope="module")
def calibrated(tiny_bundle, tmp_path_factory):
    """The tiny bundle with a threshold for "spam" at the median spam probability of the SMS
    messages the model calls ham: half of those turn spam."""
    from spamkit.runtime import Classifier

    plain = Classifier.load(tiny_bundle)
    spam = plain.predict_proba(sms_texts(48))[:, plain.labels.index("spam")]
    hams = np.sort(spam[spam < 0.5])
    bundle = shutil.copytree(tiny_bundle, tmp_path_factory.mktemp("calibrated") / "bundle")
    manifest = json.loads((bundle / "manifest.json").read_text())
    manifest["threshold"] = {"label": "spam", "value": float(hams[len(hams) // 2])}
    (bundle / "manifest.json").write_text(json.dumps(manifest))
    classifier = Classifier.load(bundle)
    assert classifier.predict(sms_texts(48)) != plain.predict(sms_texts(48))
    return bundle, classifier


@pytest.fixture(scope="module")
def server(calibrated, tmp_path_factory):
    s = Server(calibrated[0], tmp_path_factory.mktemp("protocols") / "server.log", *LIMITS)
    yield s
    assert s.stop() == 0, s.log.read_text()


@pytest.fixture(scope="module")
def classifier(calibrated):
    return calibrated[1]


def kserve_answer(classifier, texts: list[str]) -> list[dict]:
    """The outputs the protocol must give: Classifier.predict's labels, predict_proba's
    numbers row-major."""
    proba = classifier.predict_proba(texts)
    return [{"name": "label", "datatype": "BYTES", "shape": [len(texts)],
             "data": classifier.predict(texts)},
            {"name": "probabilities", "datatype": "FP32", "shape": [len(texts), 2],
             "data": proba.ravel().tolist()}]


def tei_answer(classifier, texts: list[str], raw: bool = False) -> list[list[dict]]:
    """Each text's labels and scores, Classifier.predict's label first, then by score."""
    scores = classifier.logits(texts) if raw else classifier.predict_proba(texts)
    answers = []
    for label, row in zip(classifier.predict(texts), scores.tolist()):
        others = sorted((s, n) for n, s in zip(classifier.labels, row) if n != label)[::-1]
        answers.append([{"score": row[classifier.labels.index(label)], "label": label},
                        *({"score": s, "label": n} for s, n in others)])
    return answers


def test_kserve_inference_answers_the_documented_request_as_the_classifier(server, classifier):
    status, _, body = call(server, "POST", INFER, KSERVE_DOC)
    assert status == 200, body
    assert body["model_name"] == NAME and body["id"]
    assert body["outputs"] == kserve_answer(classifier, KSERVE_DOC["inputs"][0]["data"])


def test_kserve_labels_follow_the_calibrated_threshold(server, classifier):
    """60 SMS messages, with the protocol's optional id (echoed) and outputs (only those)."""
    texts = sms_texts(48)  # --max-queue 48
    labels, proba = kserve_answer(classifier, texts)
    status, _, body = call(server, "POST", INFER,
                           kserve_body(texts, id="42", outputs=[{"name": "label"}]))
    assert (status, body) == (200, {"model_name": NAME, "id": "42", "outputs": [labels]})
    assert labels["data"] != [classifier.labels[i] for i in np.argmax(
        classifier.predict_proba(texts), axis=1)], "the threshold changes no label here"
    status, _, body = call(server, "POST", INFER, kserve_body(texts, outputs=[
        {"name": "probabilities"}]))
    assert status == 200 and body["outputs"] == [proba]


def test_kserve_health_and_metadata(server):
    assert call(server, "GET", "/v2/health/live")[::2] == (200, {"live": True})
    assert call(server, "GET", "/v2/health/ready")[::2] == (200, {"ready": True})
    assert call(server, "GET", f"/v2/models/{NAME}/ready")[::2] == (200, {"name": NAME,
                                                                          "ready": True})
    status, _, meta = call(server, "GET", "/v2")
    assert status == 200 and meta["name"] == "spamkit" and meta["extensions"] == []
    status, _, meta = call(server, "GET", f"/v2/models/{NAME}")
    assert (status, meta) == (200, {
        "name": NAME, "platform": "onnx_onnxv1",
        "inputs": [{"name": "input-0", "datatype": "BYTES", "shape": [-1]}],
        "outputs": [{"name": "label", "datatype": "BYTES", "shape": [-1]},
                    {"name": "probabilities", "datatype": "FP32", "shape": [-1, 2]}]})
    status, _, body = call(server, "GET", "/v2/models/spamkit")
    assert (status, body) == (404, {"error": f"no model 'spamkit' here: this server serves "
                                             f"'{NAME}'"})


def test_tei_predict_answers_the_documented_requests_as_the_classifier(server, classifier):
    status, _, body = call(server, "POST", "/predict", TEI_DOC_ONE)
    assert (status, body) == (200, tei_answer(classifier, [TEI_DOC_ONE["inputs"]])[0])
    texts = [pair[0] for pair in TEI_DOC_BATCH["inputs"]]
    status, _, body = call(server, "POST", "/predict", TEI_DOC_BATCH)
    assert (status, body) == (200, tei_answer(classifier, texts))
    status, _, body = call(server, "POST", "/predict", {**TEI_DOC_BATCH, "raw_scores": True})
    assert (status, body) == (200, tei_answer(classifier, texts, raw=True))
    assert call(server, "POST", "/predict", {"inputs": ["I like you."]})[2] == \
        tei_answer(classifier, ["I like you."])[0]


def test_tei_puts_the_calibrated_label_first(server, classifier):
    texts = sms_texts(48)
    status, _, body = call(server, "POST", "/predict", {"inputs": [[t] for t in texts]})
    assert (status, body) == (200, tei_answer(classifier, texts))
    assert [p[0]["label"] for p in body] == classifier.predict(texts)
    assert any(p[0]["score"] < p[1]["score"] for p in body), "the threshold changes no label"


def test_tei_info_describes_the_model_and_the_limits(server, classifier):
    status, _, info = call(server, "GET", "/info")
    assert status == 200
    assert info["model_id"] == NAME and info["model_sha"] == classifier.digest
    assert info["model_type"] == {"classifier": {"id2label": {"0": "ham", "1": "spam"},
                                                 "label2id": {"ham": 0, "spam": 1}}}
    assert info["max_client_batch_size"] == 64 and info["max_concurrent_requests"] == 48
    assert info["max_input_length"] == classifier.manifest.context_length
    assert info["auto_truncate"] is True and info["model_dtype"] == "int8"


def test_every_route_shares_one_micro_batcher(server, classifier):
    """4 clients at once, each request by another protocol: micro-batches mix them, and each
    answer is still the Classifier's for that request alone."""
    texts = sms_texts(120)
    requests = [texts[i : i + 1 + i % 4] for i in range(0, 120, 5)]
    kinds = ["v1", "kserve", "tei"] * len(requests)

    def send(job: tuple[str, list[str]]) -> bool:
        kind, sent = job
        if kind == "v1":
            status, _, body = call(server, "POST", "/v1/classify", {"texts": sent})
            return status == 200 and [a["label"] for a in body["results"]] == \
                classifier.predict(sent)
        if kind == "kserve":
            status, _, body = call(server, "POST", INFER, kserve_body(sent))
            return status == 200 and body["outputs"] == kserve_answer(classifier, sent)
        status, _, body = call(server, "POST", "/predict", {"inputs": [[t] for t in sent]})
        return status == 200 and body == tei_answer(classifier, sent)

    before = server.metrics()
    with ThreadPoolExecutor(4) as pool:
        assert all(pool.map(send, zip(kinds, requests)))
    after = server.metrics()
    batches = after["spamkit_batch_messages_count"] - before["spamkit_batch_messages_count"]
    assert batches < len(requests), "no two requests' messages ever ran together"
    ok = 'spamkit_requests_total{outcome="ok"}'
    assert after[ok] - before[ok] == len(requests)


LONG = "x" * 2001
KSERVE_REFUSED = [
    ("a datatype other than BYTES", {"inputs": [{**KSERVE_DOC["inputs"][0], "datatype": "FP32"}]},
     400, "not FP32"),
    ("an unknown input", {"inputs": [{**KSERVE_DOC["inputs"][0], "name": "text"}]}, 400,
     "got 'text'"),
    ("a shape that is not the data's", kserve_body(["a", "b", "c"]) | {"inputs": [
        {**kserve_body(["a", "b", "c"])["inputs"][0], "shape": [1, 3]}]}, 400,
     "shape [1, 3] does not match its 3 messages"),
    ("a number among the messages", kserve_body(["a", 3]), 400, "inputs[0].data[1]"),
    ("an unknown output", {**KSERVE_DOC, "outputs": [{"name": "output-0"}]}, 400,
     "no output 'output-0'"),
    ("no inputs", {"id": "1"}, 400, "inputs: Field required"),
    ("a message too long", kserve_body(["ok", LONG]), 400, "inputs[0].data[1] has 2001"),
    ("too many messages", kserve_body(["hi"] * 65), 413, "at most 64"),
    ("a full queue", kserve_body(["hi"] * 49), 503, "no room for 49 more"),
    ("not JSON", b'{"inputs": [', 400, "not JSON"),
    ("a body over the byte limit", kserve_body(["y" * 1999] * 21), 413, "40000-byte limit"),
]
TEI_REFUSED = [
    ("a pair of texts", {"inputs": ["I like you.", "I hate pineapples"]}, 422, "Validation",
     "list of 2 texts"),
    ("a pair in a batch", {"inputs": [["a"], ["b", "c"]]}, 422, "Validation", "inputs[1]"),
    ("no texts", {"inputs": []}, 422, "Validation", "a text, [text] or a batch"),
    ("raw_scores not a boolean", {"inputs": "hi", "raw_scores": "yes"}, 422, "Validation",
     "raw_scores"),
    ("a message too long", {"inputs": [["ok"], [LONG]]}, 422, "Validation",
     "inputs[1] has 2001"),
    ("too many messages", {"inputs": [["hi"]] * 65}, 413, "Validation", "at most 64"),
    ("a full queue", {"inputs": [["hi"]] * 49}, 429, "Overloaded", "no room for 49 more"),
    ("not JSON", b"nope", 400, "Validation", "not JSON"),
]


@pytest.mark.parametrize("case", KSERVE_REFUSED, ids=[c[0] for c in KSERVE_REFUSED])
def test_kserve_refusals_are_the_protocols_error_object(server, case):
    _, payload, code, words = case
    status, head, body = call(server, "POST", INFER, payload)
    assert status == code and list(body) == ["error"] and words in body["error"], body
    assert "\n" not in body["error"]
    if code == 503:
        assert head["retry-after"] == "1"
    assert call(server, "POST", INFER, KSERVE_DOC)[0] == 200


@pytest.mark.parametrize("case", TEI_REFUSED, ids=[c[0] for c in TEI_REFUSED])
def test_tei_refusals_are_its_error_response(server, case):
    _, payload, code, kind, words = case
    status, head, body = call(server, "POST", "/predict", payload)
    assert status == code and list(body) == ["error", "error_type"], body
    assert body["error_type"] == kind and words in body["error"] and "\n" not in body["error"]
    if code == 429:
        assert head["retry-after"] == "1"
    assert call(server, "POST", "/predict", TEI_DOC_ONE)[0] == 200


def test_a_form_body_is_415_in_each_protocols_shape(server):
    form = {"Content-Type": "application/x-www-form-urlencoded"}
    assert call(server, "POST", INFER, b"x=1", form)[::2] == (
        415, {"error": "send the body as Content-Type: application/json"})
    assert call(server, "POST", "/predict", b"x=1", form)[::2] == (
        415, {"error": "send the body as Content-Type: application/json",
              "error_type": "Validation"})


def test_metrics_come_from_prometheus_client_with_the_process_series(server):
    """Refusals in another protocol's status are counted by what they mean: TEI's 429 is a
    full queue. The process_* series are the server's own."""
    before = server.metrics()
    call(server, "POST", "/predict", {"inputs": [["hi"]] * 49})
    call(server, "POST", INFER, kserve_body(["hi"] * 49))
    call(server, "POST", INFER, kserve_body(["one", "two"]))
    after = server.metrics()
    full = 'spamkit_requests_total{outcome="queue_full"}'
    ok = 'spamkit_requests_total{outcome="ok"}'
    assert after[full] - before[full] == 2 and after[ok] - before[ok] == 1
    assert after['spamkit_messages_total{outcome="ok"}'] - \
        before['spamkit_messages_total{outcome="ok"}'] == 2
    assert after["process_resident_memory_bytes"] > 10e6
    assert after["process_cpu_seconds_total"] > 0 and after["process_open_fds"] > 0
    status, head, _ = server.request("GET", "/metrics")
    assert status == 200 and head["content-type"].startswith("text/plain; version=")


def test_the_schema_lists_every_protocols_routes(server):
    schema = json.loads(server.request("GET", "/openapi.json")[2])
    assert {"/v2/health/live", "/v2/health/ready", "/v2/models/{model}",
            "/v2/models/{model}/infer", "/predict", "/info"} <= set(schema["paths"])


@pytest.mark.parametrize("level, logged", [("info", True), ("warning", False)])
def test_the_access_log_follows_the_log_level(tiny_bundle, tmp_path, level, logged):
    """--access-log: a JSON line per request at info; at warning, neither it nor uvicorn's
    start-up lines."""
    s = Server(tiny_bundle, tmp_path / "server.log", "--access-log", "--log-level", level)
    try:
        assert call(s, "GET", "/v2/health/live")[0] == 200
        time.sleep(0.2)
        lines = [json.loads(line) for line in s.log.read_text().splitlines()
                 if line.startswith("{")]
        live = [line for line in lines if line["path"] == "/v2/health/live"]
        assert bool(live) == logged, s.log.read_text()
        if logged:
            assert live[0]["method"] == "GET" and live[0]["status"] == 200
            assert 0 <= live[0]["seconds"] < 60 and live[0]["client"].startswith("127.0.0.1:")
        assert ("Application startup complete" in s.log.read_text()) == logged
    finally:
        assert s.stop() == 0


def test_a_model_name_that_is_not_one_path_segment_is_refused(tiny_bundle):
    """Refused as the options are read, before the port (taken here) is tried."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        result = spamkit_cli("serve", tiny_bundle, "--port", taken.getsockname()[1],
                             "--model-name", "org/model")
    assert_clean_failure(result, "--model-name 'org/model' is not one path segment")
