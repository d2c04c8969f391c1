"""`spamkit ensemble`: models trained on one split join into one checkpoint that answers with
the mean of their probabilities; it is evaluated, exported and run as one model, and members
that would not answer alike, or learnt another split, are refused."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from conftest import SMS_FILE, assert_clean_failure, reference_probabilities, spamkit_cli

from spamkit.jobs.evaluate import examples_for, load_model
from spamkit.runtime import Classifier


@pytest.fixture(scope="module")
def members(tiny_checkpoint, tmp_path_factory) -> list[Path]:
    """The tiny checkpoint and one more trained as it was, from another init."""
    other = tmp_path_factory.mktemp("member") / "other"
    result = spamkit_cli("train", "--preset", "tiny", "--epochs", "2", "--max-steps", "60",
                         "--no-compile", "--lr", "1e-3", "--device", "cpu", "--threads", "1",
                         "--init-seed", "7", "--data", SMS_FILE, "--out", other)
    assert result.returncode == 0, result.stderr
    return [tiny_checkpoint, other]


@pytest.fixture(scope="module")
def ensemble(members, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("ensemble") / "ensemble"
    result = spamkit_cli("ensemble", *members, "--out", out)
    assert result.returncode == 0, result.stderr
    assert f"ensemble of 2 written to {out}" in result.stdout
    return out


def members_mean(members: list[Path], split: str = "test") -> tuple[np.ndarray, list[str]]:
    """The mean of the members' own PyTorch probabilities on a split, and its messages."""
    models = [load_model(path) for path in members]
    texts = examples_for(models[0], None, split).texts
    return np.mean([m.predict_proba(texts) for m in models], axis=0), texts


def test_an_ensemble_answers_with_the_mean_of_its_members_probabilities(members, ensemble):
    want, texts = members_mean(members)
    got = load_model(ensemble).predict_proba(texts)
    np.testing.assert_allclose(got, want, atol=1e-6)
    # Its metrics are that mean's, and it records where each member came from.
    test = examples_for(load_model(ensemble), None, "test")
    accuracy = float((want.argmax(-1) == np.array(test.labels)).mean())
    metrics = json.loads((ensemble / "metrics.json").read_text())
    assert metrics["final"]["test"]["accuracy"] == pytest.approx(accuracy)
    config = json.loads((ensemble / "config.json").read_text())
    assert config["members"] == 2 and config["format_version"] == 2
    assert [m["checkpoint"] for m in config["training"]["members"]] == [str(p) for p in members]


def test_an_ensemble_exports_to_one_bundle_the_runtime_reads_as_one_model(members, ensemble,
                                                                           tmp_path):
    bundle = tmp_path / "bundle"
    result = spamkit_cli("export", ensemble, "--out", bundle, "--int8", "--keep-fp32")
    assert result.returncode == 0, result.stderr
    want, texts = members_mean(members)
    fp32 = Classifier.load(bundle, precision="fp32")
    np.testing.assert_allclose(fp32.predict_proba(texts), want, atol=1e-4)
    np.testing.assert_allclose(reference_probabilities(bundle, texts[:20]), want[:20], atol=1e-4)
    int8 = Classifier.load(bundle, precision="int8")
    agree = np.mean(int8.predict_proba(texts).argmax(-1) == want.argmax(-1))
    assert agree >= 0.97
    manifest = json.loads((bundle / "manifest.json").read_text())
    assert manifest["verification"]["test_int8_label_agreement"] == pytest.approx(agree)


def edited_copy(checkpoint: Path, folder: Path, edit) -> Path:
    copy = folder / "edited"
    shutil.copytree(checkpoint, copy)
    config = json.loads((copy / "config.json").read_text())
    edit(config)
    (copy / "config.json").write_text(json.dumps(config))
    return copy


REFUSALS = {
    "another split": (lambda c: c["data"].update(seed=125), ["another split", "test messages"]),
    "another token": (lambda c: c["model"].update(token="first"),
                      ["is not built as", "token='first'"]),
    "labels in another order": (lambda c: c.update(labels=["spam", "ham"]),
                                ["labels ['spam', 'ham']", "in order"]),
}


@pytest.mark.parametrize("case", list(REFUSALS))
def test_members_that_would_not_answer_alike_are_refused(members, tmp_path, case):
    edit, words = REFUSALS[case]
    odd = edited_copy(members[1], tmp_path, edit)
    out = tmp_path / "ensemble"
    result = spamkit_cli("ensemble", members[0], odd, "--out", out)
    assert_clean_failure(result, odd, *words, out=out)


def test_an_ensemble_of_one_or_of_ensembles_is_refused(members, ensemble, tmp_path):
    out = tmp_path / "ensemble"
    assert_clean_failure(spamkit_cli("ensemble", members[0], "--out", out), "at least two",
                         out=out)
    assert_clean_failure(spamkit_cli("ensemble", ensemble, members[0], "--out", out),
                         "already an ensemble of 2", out=out)
