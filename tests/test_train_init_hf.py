"""`spamkit train --init DIR_OR_HF_REF` (issue 30): a GPT-2 classifier fine-tuned with
transformers goes on training where it stopped, its head and labels included, when new data of
the same labels arrived; the result is a spamkit checkpoint that exports as usual. What would
quietly start over instead (other labels, another shape, another token read) is refused.

The classifier is a small one built with transformers (tests/hf_models.py), whose id2label
puts spam first: not the data's order, so a class read in the wrong order shows."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import SMS_FILE, assert_clean_failure, spamkit_cli
from hf_models import EOS, SMALL, SPLITS, TOKENIZER, Case, build, build_language_model
from hf_models import transformers_logits as hf_logits
from hub_server import Repo, StandInHub
from test_hub import hub_env, python

from spamkit.runtime import Classifier
from spamkit.training.checkpoint import load_checkpoint
from spamkit.training.model import model_logits

pytestmark = pytest.mark.slow  # `make test-slow`

SPAM_FIRST = Case(SMALL, ("spam", "ham"), "eos", "safetensors", "tokenizer.json")
TRAIN = ("--epochs", "1", "--no-compile", "--device", "cpu", "--data", SMS_FILE)
# AdamW with a learning rate of 0 moves no weight: the checkpoint holds what was loaded.
UNTRAINED = ("--lr", "0", "--max-steps", "1")
TEXTS = SPLITS.test.texts[:100]


@pytest.fixture(scope="module")
def classifier(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("classifier") / "sms-gpt2"
    build(SPAM_FIRST, folder)
    return folder


@pytest.fixture(scope="module")
def untrained(classifier, tmp_path_factory) -> tuple[Path, str]:
    """The checkpoint of a run from the classifier that changed nothing, and its stdout."""
    out = tmp_path_factory.mktemp("untrained") / "checkpoint"
    result = train(classifier, out, *UNTRAINED)
    assert result.returncode == 0, result.stderr
    return out, result.stdout


def train(init: Path | str, out: Path, *options: str, env: dict | None = None):
    return spamkit_cli("train", "--init", init, "--out", out, *TRAIN, *options, env=env)


def checkpoint_logits(out: Path, texts: list[str]) -> np.ndarray:
    """The checkpoint's PyTorch model on each message alone."""
    ids = TOKENIZER.encode_batch(texts)
    return model_logits(load_checkpoint(out).model, ids, EOS, [[i] for i in range(len(ids))])


def test_the_checkpoint_starts_from_the_classifier_head_and_labels_included(
        classifier, untrained):
    out, stdout = untrained
    checkpoint = load_checkpoint(out)

    assert "loaded the custom-shaped classifier ['spam', 'ham']" in stdout
    assert checkpoint.labels == ["spam", "ham"]  # id2label, in id order
    assert checkpoint.training["init"] == str(classifier)
    np.testing.assert_allclose(checkpoint_logits(out, TEXTS), hf_logits(classifier, TEXTS),
                               atol=1e-5, rtol=0)
    # Scored with the data's classes in the classifier's order: what transformers' own labels
    # get right on the test split.
    texts, truth = SPLITS.test.texts, [SPLITS.labels[c] for c in SPLITS.test.labels]
    said = [SPAM_FIRST.labels[i] for i in hf_logits(classifier, texts).argmax(1)]
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["final"]["test"]["accuracy"] == pytest.approx(
        np.mean([a == b for a, b in zip(said, truth, strict=True)]), abs=1e-9)


def test_it_trains_on_and_exports_as_any_checkpoint(classifier, tmp_path):
    out, bundle = tmp_path / "checkpoint", tmp_path / "bundle"
    trained = train(classifier, out, "--lr", "1e-3", "--max-steps", "20")
    assert trained.returncode == 0, trained.stderr
    exported = spamkit_cli("export", out, "--out", bundle, "--int8", "--keep-fp32", "--data",
                           SMS_FILE)
    assert exported.returncode == 0, exported.stderr

    assert np.abs(checkpoint_logits(out, TEXTS) - hf_logits(classifier, TEXTS)).max() > 1e-3
    fp32 = Classifier.load(bundle, precision="fp32")
    assert fp32.labels == ["spam", "ham"]
    np.testing.assert_allclose(fp32.logits(TEXTS), checkpoint_logits(out, TEXTS), atol=1e-4)
    truth = [SPLITS.labels[c] for c in SPLITS.test.labels]
    assert np.mean([a == b for a, b in zip(fp32.predict(SPLITS.test.texts), truth,
                                           strict=True)]) > 0.8


def test_a_classifier_on_the_hub_continues_from_the_cache_offline(classifier, tmp_path):
    commit = "cd" * 20
    hub = StandInHub({"someone/sms-gpt2": Repo(classifier, commit)}, root=tmp_path)
    hub.start()
    try:  # what an earlier session online left in the cache
        fetched = python("import huggingface_hub; huggingface_hub.snapshot_download("
                         "'someone/sms-gpt2')", env=hub_env(tmp_path, hub))
    finally:
        hub.stop()
    assert fetched.returncode == 0, fetched.stderr
    out = tmp_path / "checkpoint"

    result = train(f"hf://someone/sms-gpt2@{commit}", out, *UNTRAINED,
                   env=hub_env(tmp_path, offline=True))

    assert result.returncode == 0, result.stderr
    assert load_checkpoint(out).labels == ["spam", "ham"]
    np.testing.assert_allclose(checkpoint_logits(out, TEXTS), hf_logits(classifier, TEXTS),
                               atol=1e-5, rtol=0)


def test_an_interrupted_run_resumes_in_the_classifiers_label_order(classifier, tmp_path):
    out = tmp_path / "run"
    args = [sys.executable, "-m", "spamkit", "train", "--init", str(classifier), "--out",
            str(out), *map(str, TRAIN), "--epochs", "3", "--batch-size", "64"]
    # A user's Ctrl-C once the first epoch is reported (SIGINT as the default action: a child
    # of a shell job may inherit it ignored).
    run = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                           env={**os.environ, "OMP_NUM_THREADS": "1"},
                           preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    for line in run.stdout:
        if line.startswith("epoch 1:"):
            run.send_signal(signal.SIGINT)
            break
    _, stderr = run.communicate(timeout=300)
    assert run.returncode == 130, stderr
    resumed = spamkit_cli("train", "--resume", "--out", out, "--init", classifier)

    assert resumed.returncode == 0, resumed.stderr
    assert "resuming" in resumed.stdout
    assert load_checkpoint(out).labels == ["spam", "ham"]


def set_id2label(*labels: str):
    def edit(folder: Path) -> None:
        config = json.loads((folder / "config.json").read_text())
        config["id2label"] = dict(enumerate(labels))
        (folder / "config.json").write_text(json.dumps(config))
    return edit


def weights_alone(folder: Path) -> None:
    (folder / "config.json").unlink()


def language_model(folder: Path) -> None:
    shutil.rmtree(folder)
    build_language_model(folder)


# Each: how the folder given to --init differs from the classifier, other options, the words.
REFUSALS = {
    "other labels": (set_id2label("spam", "promo"), (), [
        "the classifier at", "(its id2label) has the labels ['spam', 'promo']",
        "the data ['ham', 'spam']"]),
    "another preset": (None, ("--preset", "tiny"), [
        "are custom-shaped, not tiny", "leave --preset out"]),
    "the first token": (None, ("--token", "first"), [
        "--token first", "reads the last token"]),
    "--weights besides": (None, ("--weights", SMS_FILE), [
        "--weights starts a new classifier", "continues one that has its own"]),
    "no config.json": (weights_alone, (), [
        "has no config.json", "not a transformers GPT2ForSequenceClassification folder",
        "--init gpt2 --weights"]),
    "a language model": (language_model, (), [
        "GPT2LMHeadModel", "no classification head", "spamkit train --init gpt2 --weights"]),
}


@pytest.mark.parametrize("case", list(REFUSALS))
def test_what_would_start_over_is_refused_in_one_line(classifier, tmp_path, case):
    edit, options, words = REFUSALS[case]
    folder = tmp_path / "sms-gpt2"
    shutil.copytree(classifier, folder)
    if edit:
        edit(folder)
    out = tmp_path / "checkpoint"

    assert_clean_failure(train(folder, out, *options), *words, out=out)


def test_a_spamkit_checkpoint_is_not_taken_for_a_transformers_classifier(untrained, tmp_path):
    out = tmp_path / "checkpoint"
    assert_clean_failure(train(untrained[0], out), "is a spamkit checkpoint",
                         "continues a classifier fine-tuned with transformers", out=out)
