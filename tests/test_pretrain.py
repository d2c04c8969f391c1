"""`spamkit pretrain` (issue 33): the GPT trained as a next-token language model on unlabelled
SMS text lowers its held-out language-model loss; validation and test messages never enter that
text, even planted in a file of the user's with other line ends; `spamkit train --init` puts a
new class head on the pretrained trunk, and refuses what does not match it; export refuses the
language model itself; an interrupted pretraining resumes to the uninterrupted result.

Every run is the real command in its own process, on the real SMS data, the `tiny` preset on
one CPU thread."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from conftest import SMS_FILE, assert_clean_failure, spamkit_cli
from faults import fault_env, install_fault_hook
from safetensors.torch import load_file

from spamkit.data import DataConfig, load_splits, read_messages
from spamkit.tokenizer import gpt2_tokenizer
from spamkit.unlabelled import unlabelled_text

DATA = DataConfig(path=str(SMS_FILE))
RUN = ("--preset", "tiny", "--no-compile", "--precision", "fp32", "--device", "cpu",
       "--threads", "1", "--data", SMS_FILE)
PRETRAIN = (*RUN, "--seq-len", "32", "--batch-size", "8", "--max-steps", "40", "--lr", "2e-3")
FRESH = "a note of my own that no split holds"


def unique_test_message() -> str:
    """A test message that the data file holds once: planted anywhere, it is a copy."""
    texts = read_messages(SMS_FILE)[0]
    return next(t for t in load_splits(DATA).test.texts if texts.count(t) == 1)


def plant(folder: Path) -> Path:
    """A text file of the user's with CRLF line ends: a test message, then a new one."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "inbox.txt"
    path.write_bytes(f"{unique_test_message()}\r\n{FRESH}\r\n".encode())
    return path


@pytest.fixture(scope="module")
def pretrained(tmp_path_factory) -> tuple[Path, str]:
    """A pretrained tiny language model, with the planted file in its text; and its stdout."""
    root = tmp_path_factory.mktemp("pretrained")
    out = root / "lm"
    result = spamkit_cli("pretrain", "--out", out, *PRETRAIN, "--text", plant(root / "mine"),
                         env={"SPAMKIT_CACHE": str(root / "cache")})
    assert result.returncode == 0, result.stderr
    return out, result.stdout


def test_validation_and_test_messages_never_enter_the_text(tmp_path):
    splits = load_splits(DATA)
    held_out = set(splits.val.texts + splits.test.texts)
    own = unlabelled_text(DATA)
    assert not held_out & set(own.texts)
    # Every message of the file is read, held out by the split, or dropped as a copy of one.
    total = len(read_messages(SMS_FILE)[0])
    assert len(own.texts) + own.dropped + len(splits.val) + len(splits.test) == total
    # A test message planted in a CRLF file is dropped and counted; the new one is read.
    more = unlabelled_text(DATA, [str(plant(tmp_path / "mine"))])
    assert more.dropped == own.dropped + 1
    assert more.texts == [*own.texts, FRESH]
    assert more.files == [str(tmp_path / "mine" / "inbox.txt")]


def test_pretraining_lowers_the_held_out_loss_and_says_what_it_dropped(pretrained):
    out, stdout = pretrained
    dropped = unlabelled_text(DATA, [str(out.parent / "mine")]).dropped
    assert f"{dropped} dropped as equal to a validation or test message" in stdout
    metrics = json.loads((out / "metrics.json").read_text())
    # From random weights the loss is about ln(the text's distinct tokens) = 9.2; 40 steps
    # learn SMS's commonest tokens.
    assert metrics["history"][-1]["val_loss"] < metrics["held_out_loss_before"] - 1.0
    config = json.loads((out / "config.json").read_text())
    assert config["format"] == "spamkit-pretrained-lm" and config["tokenizer"] == "gpt2"
    assert config["dropped"] == dropped and config["messages"] > 4000
    assert not [k for k in load_file(str(out / "model.safetensors")) if k.startswith("head.")]
    assert (out / "curves.png").is_file()


def test_train_from_the_pretrained_trunk_puts_a_new_head_on_it(pretrained, tmp_path):
    lm, _ = pretrained
    out = tmp_path / "checkpoint"
    result = spamkit_cli("train", "--init", lm, "--out", out, *RUN, "--trainable", "head",
                         "--epochs", "1", "--max-steps", "3")
    assert result.returncode == 0, result.stderr
    assert f"language model pretrained in {lm}" in result.stdout
    trunk = load_file(str(lm / "model.safetensors"))
    tuned = load_file(str(out / "model.safetensors"))
    assert set(tuned) - set(trunk) == {"head.weight", "head.bias"}
    for name, weight in trunk.items():  # only the head trained
        torch.testing.assert_close(tuned[name], weight, atol=0, rtol=0)


def test_train_refuses_a_preset_the_trunk_is_not(pretrained, tmp_path):
    lm, _ = pretrained
    out = tmp_path / "checkpoint"
    result = spamkit_cli("train", "--init", lm, "--out", out, *RUN[2:], "--preset", "mini",
                         "--max-steps", "1")
    assert_clean_failure(result, "tiny-shaped, not mini", out=out)


def test_train_refuses_gpt2_weights_beside_a_pretrained_trunk(pretrained, tmp_path):
    lm, _ = pretrained
    out = tmp_path / "checkpoint"
    result = spamkit_cli("train", "--init", lm, "--weights", lm / "model.safetensors",
                         "--out", out, *RUN, "--max-steps", "1")
    assert_clean_failure(result, "--weights", "starts from the trunk pretrained there", out=out)


def test_train_refuses_a_trunk_of_another_tokenizer(pretrained, tmp_path):
    lm, _ = pretrained
    other = tmp_path / "other"
    shutil.copytree(lm, other)
    config = json.loads((other / "config.json").read_text())
    (other / "config.json").write_text(json.dumps({**config, "tokenizer": "cl100k_base"}))
    out = tmp_path / "checkpoint"
    result = spamkit_cli("train", "--init", other, "--out", out, *RUN, "--max-steps", "1")
    assert_clean_failure(result, "cl100k_base", "GPT-2's", out=out)


@pytest.mark.parametrize("other", [("--seed", "124"), ("--split", "full")])
def test_train_refuses_a_trunk_whose_text_may_hold_its_test_messages(pretrained, tmp_path,
                                                                     other):
    # The language model left out seed 123's balanced validation and test messages, not these.
    lm, _ = pretrained
    out = tmp_path / "checkpoint"
    result = spamkit_cli("train", "--init", lm, "--out", out, *RUN, *other, "--max-steps", "1")
    assert_clean_failure(result, "another split", "pretrain for this split", out=out)


def test_export_says_to_fine_tune_a_language_model_first(pretrained, tmp_path):
    lm, _ = pretrained
    out = tmp_path / "bundle"
    assert_clean_failure(spamkit_cli("export", lm, "--out", out), "fine-tune it first", out=out)


@pytest.mark.parametrize("option, words", [
    (("--seq-len", "300"), ("--seq-len 300", "256")),  # beyond the tiny model's context
    (("--held-out", "1.5"), ("--held-out",)),
    (("--no-data-text",), ("no unlabelled text", "give --text")),
])
def test_pretrain_refuses_what_cannot_run(tmp_path, option, words):
    out = tmp_path / "lm"
    result = spamkit_cli("pretrain", "--out", out, *RUN, *option)
    assert_clean_failure(result, *words, out=out)


def interrupt_in_second_epoch(folder: Path, *args) -> str:
    """Run `spamkit ARGS` and press Ctrl-C as it saves epoch 2's resume point (its third save,
    after the start's and epoch 1's), so it resumes after epoch 1; its stderr. The signal is
    sent at that call, not timed off the output: tiny epochs can all end before a late one."""
    hook = install_fault_hook(folder / "fault-hook")
    proc = subprocess.run(
        [sys.executable, "-m", "spamkit", *map(str, args)], capture_output=True, text=True,
        timeout=600, env={**os.environ, **fault_env(hook, "write:state.json:SIGINT:3")},
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))  # as a terminal's
    assert proc.returncode == 130, proc.stderr
    return proc.stderr


def small_run(folder: Path, epochs: int) -> tuple[Path, tuple]:
    """A file of 150 training messages, and options that pretrain on it alone: a few steps an
    epoch."""
    inbox = folder / "inbox.txt"
    inbox.write_text("\n".join(load_splits(DATA).train.texts[:150]) + "\n")
    return inbox, (*RUN, "--no-data-text", "--text", inbox, "--seq-len", "32", "--batch-size",
                   "16", "--epochs", str(epochs))


def test_an_interrupted_pretrain_resumes_to_the_uninterrupted_result(tmp_path):
    inbox, small = small_run(tmp_path, epochs=3)
    whole = spamkit_cli("pretrain", "--out", tmp_path / "whole", *small)
    assert whole.returncode == 0, whole.stderr
    stopped = tmp_path / "stopped"
    stderr = interrupt_in_second_epoch(tmp_path, "pretrain", "--out", stopped, *small)
    assert f"spamkit pretrain --resume --out {stopped}" in stderr
    assert not (stopped / "config.json").exists()
    # It resumes as a pretraining, with what it started with: another setting, or changed
    # text, is refused.
    assert_clean_failure(spamkit_cli("train", "--resume", "--out", stopped),
                         f"spamkit pretrain --resume --out {stopped}")
    again = ("pretrain", "--resume", "--out", stopped, "--threads", "1")
    assert_clean_failure(spamkit_cli(*again, "--seq-len", "64"), "leave --seq-len out")
    original = inbox.read_text()
    inbox.write_text(original + "one more message\n")
    assert_clean_failure(spamkit_cli(*again), "not what the run", "--force")
    inbox.write_text(original)
    resumed = spamkit_cli(*again)
    assert resumed.returncode == 0, resumed.stderr
    assert f"resuming {stopped} after epoch 1" in resumed.stdout
    a = load_file(str(tmp_path / "whole" / "model.safetensors"))
    b = load_file(str(stopped / "model.safetensors"))
    for name in a:  # one thread, the same operations in the same order: exactly equal
        torch.testing.assert_close(b[name], a[name], atol=0, rtol=0)
    losses = [[r["val_loss"] for r in json.loads((run / "metrics.json").read_text())["history"]]
              for run in (tmp_path / "whole", stopped)]
    assert losses[0] == losses[1] and len(losses[0]) == 3


@pytest.mark.slow
def test_char_ngrams_teach_the_tokens_the_text_never_uses(tmp_path):
    inbox, small = small_run(tmp_path, epochs=1)
    for name, more in (("plain", ()), ("spelled", ("--char-ngrams", "3"))):
        result = spamkit_cli("pretrain", "--out", tmp_path / name, *small, *more)
        assert result.returncode == 0, result.stderr
    plain, spelled = (load_file(str(tmp_path / name / "model.safetensors"))["wte.weight"]
                      for name in ("plain", "spelled"))
    assert plain.shape == spelled.shape  # the n-grams are folded into a plain table
    used = {t for line in inbox.read_text().splitlines() for t in gpt2_tokenizer(256).encode(line)}
    unused = torch.tensor(sorted(set(range(len(plain))) - used - {gpt2_tokenizer(256).eot_id}))
    # Both start from the same random table. Without n-grams an unused token's row gets no
    # gradient: it stays on its starting line (cosine 1). With them it learns what its
    # spelling taught.
    cosine = torch.nn.functional.cosine_similarity(plain[unused], spelled[unused])
    assert cosine.median() < 0.97


def test_pretrain_does_not_resume_a_classifiers_training(tmp_path):
    stopped = tmp_path / "stopped"
    interrupt_in_second_epoch(tmp_path, "train", "--out", stopped, *RUN, "--epochs", "3")
    result = spamkit_cli("pretrain", "--resume", "--out", stopped)
    assert_clean_failure(result, f"spamkit train --resume --out {stopped}")


@pytest.mark.slow
def test_two_processes_pretrain_as_one(tmp_path):
    _, small = small_run(tmp_path, epochs=2)
    one = spamkit_cli("pretrain", "--out", tmp_path / "one", *small)
    two = spamkit_cli("pretrain", "--out", tmp_path / "two", *small, "--nproc", "2")
    assert one.returncode == 0, one.stderr
    assert two.returncode == 0, two.stderr
    # Rank 0 alone reports and writes.
    assert [line[:7] for line in two.stdout.splitlines() if line.startswith("epoch ")] == [
        "epoch 1", "epoch 2"]
    assert sorted(p.name for p in (tmp_path / "two").iterdir()) == sorted(
        p.name for p in (tmp_path / "one").iterdir())
    # Global batch k of the two is batch k of the one: the same steps, and the same losses
    # but for the rounding of two half batches.
    a, b = (json.loads((tmp_path / d / "metrics.json").read_text())["history"]
            for d in ("one", "two"))
    assert [h["step"] for h in a] == [h["step"] for h in b]
    for ha, hb in zip(a, b, strict=True):
        assert hb["val_loss"] == pytest.approx(ha["val_loss"], rel=1e-3)


def test_a_second_pretrain_into_the_same_out_needs_force_and_then_replaces_it(tmp_path):
    out = tmp_path / "lm"
    short = (*PRETRAIN[:-4], "--max-steps", "2")
    assert spamkit_cli("pretrain", "--out", out, *short).returncode == 0
    assert_clean_failure(spamkit_cli("pretrain", "--out", out, *short), "--force")
    again = spamkit_cli("pretrain", "--out", out, *short, "--force")
    assert again.returncode == 0, again.stderr
