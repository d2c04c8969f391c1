"""What an app passes Classifier.load and predict: an argument out of range is a ValueError (a
wrong kind of container a TypeError) that says what is allowed, before any work is done, and
`spamkit classify` says the same in one line."""

import dataclasses
import os
import time

import numpy as np
import pytest

from spamkit.runtime import Classifier
from spamkit.runtime.session import make_session

TEXTS = ["WINNER!! Claim your prize now", "see you at 6?", "ok"]
CPUS = os.cpu_count()


@pytest.fixture(scope="module")
def clf(tiny_bundle):
    return Classifier.load(tiny_bundle, precision="fp32")


@pytest.mark.parametrize("value", [0, -1, 2.5, True, "32", None])
def test_a_batch_size_below_one_or_not_an_int_is_refused(tiny_bundle, value):
    """Before: batch_size=0 answered [] for three messages."""
    with pytest.raises(ValueError, match=rf"batch_size must be an integer of at least 1, not "
                                         rf"{value!r}"):
        Classifier.load(tiny_bundle, batch_size=value)


@pytest.mark.parametrize("value", [0, -5, 1.5, False])
def test_a_batch_token_cap_below_one_or_not_an_int_is_refused(tiny_bundle, value):
    with pytest.raises(ValueError, match="batch_tokens must be an integer of at least 1"):
        Classifier.load(tiny_bundle, batch_tokens=value)


def test_the_smallest_batches_still_answer_every_message(tiny_bundle, clf):
    tiny = Classifier.load(tiny_bundle, precision="fp32", batch_size=1, batch_tokens=1)
    np.testing.assert_allclose(tiny.logits(TEXTS), clf.logits(TEXTS), atol=1e-5)


@pytest.mark.parametrize("value", [0, -1, CPUS + 1, 500, 2.0, True, "2"])
def test_threads_outside_one_to_the_cpu_count_are_refused_at_once(tiny_bundle, value):
    """Before: threads=500 was accepted and spun 500 ONNX Runtime threads (24 s for a message)."""
    started = time.monotonic()
    with pytest.raises(ValueError, match=rf"threads must be an integer from 1 to {CPUS}"):
        Classifier.load(tiny_bundle, threads=value)
    assert time.monotonic() - started < 1  # refused before the bundle is read


def test_threads_up_to_the_cpu_count_are_accepted(tiny_bundle):
    assert Classifier.load(tiny_bundle, threads=CPUS).predict("hello") in ("ham", "spam")


@pytest.mark.parametrize("value", [1.5, -1, 1.0000001, float("nan"), float("inf"), "0.5", True])
def test_a_threshold_that_is_not_a_probability_is_refused(tiny_bundle, value):
    """Before: 1.5, -1 and NaN were accepted (NaN flagged nothing, -1 everything)."""
    with pytest.raises(ValueError, match="threshold must be a probability from 0 to 1"):
        Classifier.load(tiny_bundle, threshold=value)


def test_thresholds_zero_and_one_are_the_ends_of_the_scale(tiny_bundle):
    assert Classifier.load(tiny_bundle, threshold=0).predict(TEXTS) == ["spam"] * 3
    assert Classifier.load(tiny_bundle, threshold=np.float32(0.0)).predict(TEXTS) == ["spam"] * 3


@pytest.mark.parametrize("name, value, words", [
    ("precision", "int4", "precision must be one of fp32, int8, fp16"),
    ("device", "tpu", "device must be one of"),
    ("digest", "not-a-digest", "64 hex digits"),
    ("digest", 12345, "64 hex digits"),
])
def test_other_load_arguments_say_what_is_allowed(tiny_bundle, name, value, words):
    with pytest.raises(ValueError, match=words):
        Classifier.load(tiny_bundle, **{name: value})


def test_a_classifier_built_directly_checks_its_arguments_too(tiny_bundle, clf):
    session = make_session(tiny_bundle / "model.onnx", ["CPUExecutionProvider"])
    with pytest.raises(ValueError, match="batch_size"):
        Classifier(session, clf.tokenizer, clf.manifest, "cpu", "fp32", batch_size=0)


def test_a_threshold_without_a_calibrated_label_needs_two_classes(clf):
    """Which of three labels a bare threshold is for cannot be guessed: not the second one."""
    three = dataclasses.replace(clf.manifest, labels=["ham", "spam", "phishing"])
    with pytest.raises(ValueError, match="threshold= needs a calibrated bundle or a two-class "
                                         "model"):
        Classifier(clf.session, clf.tokenizer, three, "cpu", "fp32", threshold=0.5)
    calibrated = dataclasses.replace(three, threshold={"label": "phishing", "value": 0.9})
    clf3 = Classifier(clf.session, clf.tokenizer, calibrated, "cpu", "fp32", threshold=0.5)
    assert (clf3.threshold_label, clf3.threshold) == ("phishing", 0.5)


def test_a_dict_is_refused_saying_to_pass_its_values(clf):
    """Before: a dict's keys were classified, silently."""
    messages = {"a": "WINNER!! Claim your prize now", "b": "see you at 6?"}
    with pytest.raises(TypeError, match=r"dict.*list\(d\.values\(\)\)"):
        clf.predict(messages)
    assert clf.predict(list(messages.values())) == clf.predict(["WINNER!! Claim your prize now",
                                                                "see you at 6?"])


def test_a_dataframe_is_refused_saying_to_pass_its_text_column(clf):
    """Before: the column names were classified, silently."""
    pd = pytest.importorskip("pandas")
    frame = pd.DataFrame({"text": TEXTS, "id": [1, 2, 3]})
    with pytest.raises(TypeError, match=r"DataFrame.*column.*df\['text'\]"):
        clf.predict(frame)
    with pytest.raises(TypeError, match="DataFrame"):
        clf.predict_proba(frame)
    assert clf.predict(frame["text"]) == clf.predict(TEXTS)  # a Series is its values
