"""The Python API as people who know scikit-learn, transformers and ONNX Runtime reach for it:
`classes_`, `clf(texts, top_k=...)` in the pipeline's shapes, a repr that says what was loaded,
and ONNX Runtime's own providers and session options, on a real bundle."""

from __future__ import annotations

import typing

import numpy as np
import onnxruntime as ort
import pytest

from spamkit.runtime import Classifier
from spamkit.runtime.bundle import GRAPH_FILES, RUNTIME_DEVICES
from spamkit.runtime.device import Device, Precision

SPAM = "WINNER!! You have been selected to receive a £900 prize reward! Call 09061701461"
HAM = "Ok lar... Joking wif u oni... see you at 6?"


@pytest.fixture(scope="module")
def clf(tiny_bundle) -> Classifier:
    return Classifier.load(tiny_bundle, threads=1)


def test_classes_are_the_columns_of_predict_proba_as_in_scikit_learn(clf):
    proba = clf.predict_proba([SPAM, HAM])

    assert isinstance(clf.classes_, np.ndarray)
    assert list(clf.classes_) == ["ham", "spam"]
    assert list(clf.classes_[proba.argmax(axis=1)]) == clf.predict([SPAM, HAM])


def shape(x):
    """What a caller indexes into: lists, dicts and their keys, the types of the leaves."""
    if isinstance(x, list):
        return [shape(v) for v in x]
    if isinstance(x, dict):
        return {k: type(v).__name__ for k, v in x.items()}
    return type(x).__name__


@pytest.fixture(scope="module")
def transformers_pipeline():
    """A real transformers text-classification pipeline on a tiny GPT-2 with spamkit's labels:
    the reference for the shapes (its scores mean nothing)."""
    transformers = pytest.importorskip("transformers")
    from tokenizers import Tokenizer, models, pre_tokenizers

    words = Tokenizer(models.WordLevel({"[UNK]": 0, "win": 1, "ok": 2}, unk_token="[UNK]"))
    words.pre_tokenizer = pre_tokenizers.Whitespace()
    tokenizer = transformers.PreTrainedTokenizerFast(tokenizer_object=words, unk_token="[UNK]",
                                                     pad_token="[UNK]")
    config = transformers.GPT2Config(vocab_size=3, n_positions=64, n_embd=8, n_layer=1, n_head=2,
                                     id2label={0: "ham", 1: "spam"}, pad_token_id=0,
                                     bos_token_id=0, eos_token_id=0)
    model = transformers.GPT2ForSequenceClassification(config).eval()
    return transformers.pipeline("text-classification", model=model, tokenizer=tokenizer)


@pytest.mark.parametrize("texts", [SPAM, [SPAM, HAM]], ids=["one string", "a list"])
@pytest.mark.parametrize("top_k", [{}, {"top_k": 1}, {"top_k": None}, {"top_k": 2},
                                   {"top_k": 5}], ids=["not given", "1", "None", "2", "5"])
def test_calling_the_classifier_answers_in_the_shape_of_a_transformers_pipeline(
        clf, transformers_pipeline, texts, top_k):
    ours = clf(texts, **top_k)

    assert shape(ours) == shape(transformers_pipeline(texts, **top_k))
    many = isinstance(texts, list)
    proba = clf.predict_proba(texts if many else [texts])
    if "top_k" not in top_k:  # one dict per text: predict's label, with its probability
        assert [r["label"] for r in ours] == clf.predict(texts if many else [texts])
        assert [r["score"] for r in ours] == pytest.approx(
            [p[clf.labels.index(r["label"])] for r, p in zip(ours, proba)])
        return
    for ranked, p in zip(ours if many else [ours], proba):  # the top_k classes, most probable first
        want = sorted(zip(clf.labels, p.tolist()), key=lambda pair: -pair[1])[: top_k["top_k"]]
        assert [r["label"] for r in ranked] == [label for label, _ in want]
        assert [r["score"] for r in ranked] == pytest.approx([score for _, score in want])


def test_the_label_of_a_call_is_the_calibrated_decision_and_top_k_ranks_by_probability(
        tiny_bundle):
    p_spam = float(Classifier.load(tiny_bundle).predict_proba(HAM)[1])
    assert p_spam < 0.5, "the tiny model thinks this ham is spam"
    # A threshold below the message's spam probability: spam, though ham is more probable.
    strict = Classifier.load(tiny_bundle, threshold=p_spam / 2)

    assert strict(HAM) == [{"label": "spam", "score": pytest.approx(p_spam, abs=1e-7)}]
    assert strict.predict(HAM) == "spam"
    assert [r["label"] for r in strict(HAM, top_k=None)] == ["ham", "spam"]


def test_a_call_on_an_empty_list_answers_an_empty_list(clf):
    assert clf([]) == [] and clf([], top_k=None) == []


@pytest.mark.parametrize("top_k, error", [(0, ValueError), (-1, ValueError), ("2", TypeError),
                                          (True, TypeError), (1.0, TypeError)])
def test_a_bad_top_k_is_refused_before_anything_runs(clf, top_k, error):
    with pytest.raises(error, match="top_k"):
        clf(SPAM, top_k=top_k)


def test_the_repr_says_what_was_loaded(tiny_bundle):
    clf = Classifier.load(tiny_bundle, threshold=0.9)

    assert repr(clf) == (
        f"Classifier(bundle={str(tiny_bundle)!r}, labels=['ham', 'spam'], precision='int8', "
        f"device='cpu', providers=['CPUExecutionProvider'], threshold=0.9 for 'spam', "
        f"digest='{clf.digest[:12]}...')")


def test_providers_go_to_onnx_runtime_as_given(tiny_bundle):
    clf = Classifier.load(tiny_bundle, providers=[("CPUExecutionProvider", {})])

    assert clf.session.get_providers() == ["CPUExecutionProvider"]
    assert clf.device == "cpu" and clf.precision == "int8"
    assert clf.predict([SPAM, HAM]) == Classifier.load(tiny_bundle).predict([SPAM, HAM])


def test_session_options_go_to_onnx_runtime_as_given(tiny_bundle, tmp_path):
    options = ort.SessionOptions()
    options.optimized_model_filepath = str(tmp_path / "optimized.onnx")  # ORT writes it on load
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
    options.intra_op_num_threads = 1

    clf = Classifier.load(tiny_bundle, precision="fp32", session_options=options)

    assert (tmp_path / "optimized.onnx").is_file()
    assert clf.predict(SPAM) in ("ham", "spam")


@pytest.mark.parametrize("kwargs, error, words", [
    ({"providers": ["NoSuchExecutionProvider"]}, ValueError,
     r"has no NoSuchExecutionProvider \(it has .*CPUExecutionProvider"),
    ({"providers": "CPUExecutionProvider"}, TypeError, "providers must be a list"),
    ({"providers": [("CPUExecutionProvider", "fast")]}, TypeError, "neither a provider name"),
    ({"providers": []}, ValueError, "providers is empty"),
    ({"providers": ["CPUExecutionProvider"], "device": "cuda"}, ValueError,
     "device='cuda' contradicts providers"),
    ({"providers": ["CPUExecutionProvider"], "device": "auto"}, ValueError, "leave device out"),
    ({"session_options": {"intra_op_num_threads": 1}}, TypeError,
     "must be an onnxruntime.SessionOptions"),
    ({"session_options": ort.SessionOptions(), "threads": 1}, ValueError,
     "not both: set session_options.intra_op_num_threads"),
])
def test_providers_and_session_options_that_cannot_work_are_refused_in_one_line(
        tiny_bundle, kwargs, error, words):
    with pytest.raises(error, match=words) as caught:
        Classifier.load(tiny_bundle, **kwargs)
    assert "\n" not in str(caught.value)


def test_the_choices_type_checkers_see_are_the_ones_load_accepts():
    assert typing.get_args(Device) == RUNTIME_DEVICES
    assert set(typing.get_args(Precision)) == set(GRAPH_FILES)


def test_device_cpu_with_cpu_providers_is_consistent(tiny_bundle):
    clf = Classifier.load(tiny_bundle, device="cpu", providers=["CPUExecutionProvider"])
    assert clf.device == "cpu"


@pytest.mark.gpu
def test_cuda_provider_with_its_options_runs_the_bundle_on_the_gpu(tiny_bundle):
    providers = [("CUDAExecutionProvider", {"device_id": 0}), "CPUExecutionProvider"]

    gpu = Classifier.load(tiny_bundle, providers=providers)

    assert gpu.device == "cuda" and gpu.precision == "fp32"  # int8 is meant for CPUs only
    assert gpu.session.get_providers()[0] == "CUDAExecutionProvider"
    assert gpu.session.get_provider_options()["CUDAExecutionProvider"]["device_id"] == "0"
    cpu = Classifier.load(tiny_bundle, precision="fp32")
    np.testing.assert_allclose(gpu.predict_proba([SPAM, HAM]), cpu.predict_proba([SPAM, HAM]),
                               atol=1e-4)
