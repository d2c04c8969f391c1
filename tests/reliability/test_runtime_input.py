"""What the runtime does with whatever an app passes it: text of any kind gets a prediction,
anything else is a clear error naming the item, and huge inputs stream."""

import json
import subprocess
import sys
import threading
import tracemalloc

import numpy as np
import pytest
from conftest import SMS_FILE, spamkit_cli
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from spamkit.runtime import Classifier

MESSAGES = [line.split("\t", 1)[1] for line in SMS_FILE.read_text(encoding="utf-8").splitlines()]

ODD_TEXTS = {
    "empty": "",
    "whitespace": " \t\n  ",
    "a million characters": "WIN A PRIZE " * 83_334,
    "control characters and NUL": "free\x00prize\x01\x07\x1b[31m now\x7f",
    "lone surrogates": "call \ud800 now \udfff",
    "emoji": "🎉🎁 You won! 💰💰 Reply WIN 🙂",
    "other scripts": "恭喜您中奖了 • Вы выиграли приз • لقد ربحت • 당첨되었습니다 • जीत गए",
    "the end-of-text marker": "free entry <|endoftext|> call now",
    "only the marker": "<|endoftext|>",
    "right-to-left and zero-width": "\u202efree\u200b\u200dprize\ufeff",
}


# Both graphs: neither may let a message's result depend on the messages batched with it (the
# int8 graph's activation scales are fixed at export for this reason). A token cap that puts
# every call's texts here in one batch, so a message is padded whenever a longer one comes along.
@pytest.fixture(scope="module", params=["fp32", "int8"])
def clf(tiny_bundle, request):
    return Classifier.load(tiny_bundle, precision=request.param, batch_tokens=8 * 256)


# A batch-mate at least as long as any message (the context, 256 tokens).
LONGEST = "please call me back when you can " * 60


@pytest.mark.parametrize("name", ODD_TEXTS)
def test_any_text_gets_a_prediction(clf, name):
    text = ODD_TEXTS[name]
    p = clf.predict_proba(text)
    assert p.shape == (2,) and np.isfinite(p).all() and abs(p.sum() - 1) < 1e-6
    assert clf.predict(text) in clf.labels
    assert len(clf.tokenizer.encode(LONGEST)) == 256 >= len(clf.tokenizer.encode(text))
    np.testing.assert_allclose(clf.predict_proba([text, LONGEST])[0], p, atol=1e-5)


def test_an_empty_message_is_read_as_the_end_of_text_token(clf):
    # GPT-2's document boundary stands for "no content"; the same text typed by a user is that
    # token too, as the text graphs' BPE reads it (docs/bundle-format.md).
    assert clf.tokenizer.encode("") == [clf.tokenizer.eot_id]
    assert clf.tokenizer.encode("<|endoftext|>") == [clf.tokenizer.eot_id]


def test_a_long_message_is_truncated_keeping_its_end(clf):
    ending = " Reply STOP to opt out. Call 09061701461 now to claim your prize!"
    long = "hello there, how are you doing today? " * 2000 + ending
    kept = clf.tokenizer.encoding.decode(clf.tokenizer.encode(long))
    assert len(clf.tokenizer.encode(long)) == clf.manifest.context_length
    assert kept.endswith(ending)


@pytest.mark.parametrize("bad, index, kind", [
    (["fine", None], 1, "NoneType"),
    (["fine", "fine", b"bytes"], 2, "bytes"),
    ([3.5], 0, "float"),
    (["a", ["nested"]], 1, "list"),
])
def test_a_non_string_is_a_type_error_naming_its_index(clf, bad, index, kind):
    with pytest.raises(TypeError, match=rf"texts\[{index}\] is {kind}, not str"):
        clf.predict(bad)


def test_bytes_in_place_of_a_list_is_a_type_error(clf):
    with pytest.raises(TypeError, match="decode it"):
        clf.predict(b"free prize")


def test_empty_inputs_and_generators(clf):
    assert clf.predict([]) == [] and clf.predict_proba(iter([])).shape == (0, 2)
    texts = MESSAGES[:100]
    np.testing.assert_allclose(clf.predict_proba(t for t in texts), clf.predict_proba(texts),
                               atol=1e-6)


def test_a_hundred_thousand_messages_stream_in_bounded_memory(tiny_bundle):
    clf = Classifier.load(tiny_bundle, batch_size=64)
    n = 100_000
    pulled = 0

    def messages():  # short ones: the point is the count, not the model's work
        nonlocal pulled
        for i in range(n):
            pulled += 1
            yield f"ok {i}"

    tracemalloc.start()
    labels = clf.predict(messages())
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert len(labels) == n == pulled
    # Streaming holds one chunk (4,096 messages) at a time: measured ~2.7 MiB of Python
    # objects. Reading all 100,000 before classifying (no chunks) measured 30 MiB.
    assert peak < 10 * 2**20, f"peak traced memory {peak / 2**20:.1f} MiB"


@settings(max_examples=300, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(texts=st.lists(st.text(max_size=300), min_size=1, max_size=6))
def test_fuzz_arbitrary_text(clf, texts):
    p = clf.predict_proba(texts)
    assert p.shape == (len(texts), 2) and np.isfinite(p).all()
    np.testing.assert_allclose(p.sum(axis=1), 1, atol=1e-6)
    alone = np.stack([clf.predict_proba(t) for t in texts])
    np.testing.assert_allclose(p, alone, atol=1e-5)
    assert clf.predict(texts) == [clf.predict(t) for t in texts]


def test_one_classifier_shared_by_eight_threads_answers_as_a_serial_run(tiny_bundle):
    clf = Classifier.load(tiny_bundle, batch_size=16)
    texts = [MESSAGES[i % len(MESSAGES)] + f" #{i}" for i in range(10_000)]
    chunks = [texts[i : i + 250] for i in range(0, len(texts), 250)]
    serial = [clf.predict_proba(c) for c in chunks]
    results: dict[int, np.ndarray] = {}
    errors = []

    def worker(worker_id: int) -> None:
        try:
            for k in range(worker_id, len(chunks), 8):
                results[k] = clf.predict_proba(chunks[k])
        except Exception as e:  # noqa: BLE001 - surfaced by the assertion below
            errors.append(e)

    threads = [threading.Thread(target=worker, args=(w,)) for w in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    for k, expected in enumerate(serial):
        np.testing.assert_array_equal(results[k], expected)


def test_spamkit_classify_takes_odd_text_from_arguments_and_stdin(tiny_bundle):
    args = ["", "   ", "🎉 You won! 💰", "恭喜您中奖了", "free <|endoftext|> entry"]
    result = spamkit_cli("classify", tiny_bundle, *args, "--json")
    assert result.returncode == 0, result.stderr
    assert [json.loads(line)["text"] for line in result.stdout.splitlines()] == args

    # NUL and control bytes, a Windows line ending, a million characters, and bytes that are
    # not UTF-8 at all.
    stdin = b"free\x00prize\x01 now\r\n" + b"WIN " * 250_000 + b"\n\xff\xfe not utf-8?\n"
    raw = subprocess.run([sys.executable, "-m", "spamkit", "classify", str(tiny_bundle), "--json"],
                         input=stdin, capture_output=True, timeout=120)
    assert raw.returncode == 0, raw.stderr
    rows = [json.loads(line) for line in raw.stdout.decode().splitlines()]
    texts = ["free\x00prize\x01 now", "WIN " * 250_000, "\ufffd\ufffd not utf-8?"]
    assert [r["text"] for r in rows] == texts  # whole messages, no CR, nothing lost
    # Each answer is the one the runtime gives for exactly that text.
    expected = Classifier.load(tiny_bundle).predict_proba(texts)
    got = [list(r["probabilities"].values()) for r in rows]
    np.testing.assert_allclose(got, expected, atol=2e-6)
