"""The Python API as people who know scikit-learn, transformers and ONNX Runtime reach for it:
`classes_`, `clf(texts, top_k=...)` in the pipeline's shapes, a repr that says what was loaded,
ONNX Runtime's own providers and session options, types that `mypy --strict` accepts, a
batch size per call and labels yielded as an endless stream goes, on a real bundle."""

from __future__ import annotations

import itertools
import subprocess
import sys
import textwrap
import typing
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest

from spamkit.runtime import Classifier
from spamkit.runtime.bundle import GRAPH_FILES, INPUT_IDS, RUNTIME_DEVICES
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


ROOT = Path(__file__).resolve().parents[1]
# What a user's app writes, checked by `mypy --strict` against spamkit's own type hints.
USER_CODE = """
    import itertools
    from collections.abc import Iterator
    from typing import Any

    from spamkit.runtime import Classifier

    clf = Classifier.load("bundle", batch_size=8)
    label: str = clf.predict("WINNER!! Claim your prize")
    labels: list[str] = clf.predict(["see you at 6?", "free entry"], batch_size=2)
    stream: Iterator[str] = clf.iter_predict(line for line in open("inbox.txt"))
    first: list[str] = list(itertools.islice(clf.iter_predict(iter(["a", "b"])), 1))
    one: list[dict[str, Any]] = clf("hi")
    each: list[dict[str, Any]] = clf(["hi", "ho"])
    ranked: list[list[dict[str, Any]]] = clf(["hi", "ho"], top_k=None)
    spam_probability: float = float(clf.predict_proba(["hi"], batch_size=1)[0, 1])
"""


def mypy_strict(code: str, tmp_path: Path) -> subprocess.CompletedProcess:
    """`mypy --strict` on `code` as an app beside an installed spamkit sees it: the package
    (py.typed) is found as installed, and only the app's own errors are reported."""
    installed = tmp_path / "site" / "spamkit"  # spamkit's folders as the wheel lays them out
    if not installed.exists():
        installed.mkdir(parents=True)
        for name in ("__init__.py", "py.typed"):
            (installed / name).symlink_to(ROOT / "toolkit" / name)
        (installed / "runtime").symlink_to(ROOT / "runtime")
    app = tmp_path / "app.py"
    app.write_text(textwrap.dedent(code))
    return subprocess.run([sys.executable, "-m", "mypy", "--strict", "--follow-imports=silent",
                           "--cache-dir", str(tmp_path / "cache"), "--no-error-summary",
                           str(app)], capture_output=True, text=True, timeout=300,
                          env={"MYPYPATH": str(tmp_path / "site"), "PATH": ""}, cwd=tmp_path)


def test_mypy_strict_accepts_what_each_call_answers_and_catches_a_wrong_type(tmp_path):
    result = mypy_strict(USER_CODE, tmp_path)
    assert (result.returncode, result.stdout, result.stderr) == (0, "", "")

    wrong = mypy_strict(USER_CODE + "    count: int = clf.predict(\"hi\")\n", tmp_path)
    assert wrong.returncode == 1
    assert 'Incompatible types in assignment (expression has type "str", variable has type ' \
        '"int")' in wrong.stdout


def batch_sizes(clf: Classifier) -> list[int]:
    """Record the batch sizes the session of `clf` is run on from here on (it still runs)."""
    session, seen = clf.session, []

    class Recording:
        def run(self, names, feed):
            seen.append(len(feed[INPUT_IDS]))
            return session.run(names, feed)

    clf.session = Recording()
    return seen


MESSAGES = [SPAM, HAM, "free entry in 2 a wkly comp", "call me when you get this", "ok"] * 2


@pytest.mark.parametrize("method", ["predict", "predict_proba", "logits", "iter_predict"])
def test_a_call_runs_batches_of_its_own_batch_size(tiny_bundle, method):
    clf = Classifier.load(tiny_bundle, threads=1, precision="fp32", batch_tokens=10_000)
    seen = batch_sizes(clf)

    def answer(**kwargs):
        out = getattr(clf, method)(MESSAGES, **kwargs)
        return list(out) if method == "iter_predict" else out

    default = answer()
    assert seen == [len(MESSAGES)]  # one batch: loaded with batch_size=32

    small = answer(batch_size=3)

    assert seen[1:] == [3, 3, 3, 1]
    if method in ("predict", "iter_predict"):
        assert small == default
    else:
        np.testing.assert_allclose(small, default, atol=1e-5)
    answer()
    assert seen[5:] == [len(MESSAGES)]  # the next call's default is still the loaded one


@pytest.mark.parametrize("bad", [0, -1, 2.5, True, "8"])
@pytest.mark.parametrize("method", ["predict", "predict_proba", "logits", "iter_predict"])
def test_a_bad_batch_size_is_refused_as_load_refuses_it_before_a_text_is_read(
        tiny_bundle, clf, method, bad):
    with pytest.raises(ValueError) as at_load:
        Classifier.load(tiny_bundle, batch_size=bad)
    read = []

    def texts():
        read.append(HAM)
        yield HAM

    with pytest.raises(ValueError) as at_call:
        getattr(clf, method)(texts(), batch_size=bad)
    assert str(at_call.value) == str(at_load.value) and read == []


def test_iter_predict_answers_an_endless_stream_as_it_goes(clf):
    read = []

    def endless():  # a queue, a socket's lines: it never ends
        for i in itertools.count():
            assert i < 2 * clf.chunk_size, "iter_predict read on without answering"
            read.append(MESSAGES[i % len(MESSAGES)])
            yield read[-1]

    labels = clf.iter_predict(endless(), batch_size=2)
    first = list(itertools.islice(labels, 5))

    assert first == clf.predict(MESSAGES[:5])
    assert 5 <= len(read) <= clf.chunk_size  # at most a chunk read ahead of the answers
    assert list(itertools.islice(labels, 5)) == clf.predict(MESSAGES[5:10])


def test_iter_predict_refuses_a_single_string_at_once(clf):
    with pytest.raises(TypeError, match=r"texts is one str.*call predict\(text\)"):
        clf.iter_predict("WINNER!! Claim your prize")
