"""A checkpoint or a set of pretrained weights is a file from anywhere: every size and shape is
checked against the config before the model is built, so an absurd or inconsistent one is a
one-line error within seconds, never a hang, a traceback or a machine out of memory.

Checkpoints are damaged copies of the tiny one, loaded by `spamkit export`; pretrained weights
are a tiny GPT-2 in the Hugging Face layout (names, Conv1D transposes) given to
`spamkit train --init gpt2 --weights`."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from conftest import SMS_FILE, assert_clean_failure
from safetensors.torch import load_file, save_file

from spamkit.config import PRESETS
from spamkit.training.model import GPTClassifier
from spamkit.training.pretrained import CONV1D

QUICK_S = 120  # far longer than any refusal takes; a build of a million blocks takes hours


def spamkit_quick(*args) -> subprocess.CompletedProcess:
    """The CLI in its own process; it must finish within QUICK_S (a hang fails the test)."""
    return subprocess.run([sys.executable, "-m", "spamkit", *map(str, args)],
                          capture_output=True, text=True, timeout=QUICK_S)


# -----------------------------------------------------------------------------
# checkpoints


def edit_config(ckpt: Path, edit) -> None:
    config = json.loads((ckpt / "config.json").read_text())
    (ckpt / "config.json").write_text(json.dumps(edit(config)))


def with_model(**sizes):
    def edit(config):
        config["model"].update(sizes)
        return config
    return edit


def without_model_entry(name):
    def edit(config):
        del config["model"][name]
        return config
    return edit


CHECKPOINT_CASES = {
    "a million layers": (with_model(n_layer=10**6), ["1000000 layers", "256 layers"]),
    "a width of 1e9": (with_model(n_embd=10**9, n_head=1), ["parameters", "beyond"]),
    "a vocabulary of 1e12": (with_model(vocab_size=10**12), ["parameters", "beyond"]),
    "config.json is a list": (lambda c: [c], ["not a spamkit checkpoint config"]),
    "no n_head": (without_model_entry("n_head"), ["no n_head"]),
    "n_layer as text": (with_model(n_layer="2"), ["n_layer must be a whole number"]),
    "n_layer 2.5": (with_model(n_layer=2.5), ["n_layer must be a whole number"]),
    "dropout NaN": (with_model(dropout=float("nan")), ["dropout must be a rate", "nan"]),
    "dropout 5": (with_model(dropout=5), ["dropout must be a rate", "5"]),
    "labels not a list": (lambda c: {**c, "labels": "ham,spam"}, ["labels are not a list"]),
    "one layer more than the weights": (with_model(n_layer=3), ["model.safetensors does not "
                                                                "match", "missing h.2."]),
    "a million members": (lambda c: {**c, "members": 10**6}, ["1000000 members", "64"]),
    "members as text": (lambda c: {**c, "members": "2"}, ["'2' members"]),
    "two members, weights of one": (lambda c: {**c, "members": 2},
                                    ["model.safetensors does not match", "missing members.0."]),
}


@pytest.mark.parametrize("case", list(CHECKPOINT_CASES))
def test_a_damaged_checkpoint_config_is_refused_before_building(tmp_path, tiny_checkpoint, case):
    ckpt = tmp_path / "ckpt"
    shutil.copytree(tiny_checkpoint, ckpt)
    edit, words = CHECKPOINT_CASES[case]
    edit_config(ckpt, edit)
    bundle = tmp_path / "bundle"

    result = spamkit_quick("export", ckpt, "--out", bundle)

    line = assert_clean_failure(result, *words, out=bundle)
    assert "config.json" in line or "model.safetensors" in line  # names the file at fault


def test_weights_with_a_block_the_config_lacks_are_refused(tmp_path, tiny_checkpoint):
    ckpt = tmp_path / "ckpt"
    shutil.copytree(tiny_checkpoint, ckpt)
    state = load_file(str(ckpt / "model.safetensors"))
    state["h.999999.ln_1.weight"] = torch.ones(64)
    save_file(state, str(ckpt / "model.safetensors"))

    result = spamkit_quick("export", ckpt, "--out", tmp_path / "bundle")

    assert_clean_failure(result, "model.safetensors does not match its config",
                         "unexpected h.999999.ln_1.weight", out=tmp_path / "bundle")


def test_weights_that_are_not_safetensors_are_refused(tmp_path, tiny_checkpoint):
    ckpt = tmp_path / "ckpt"
    shutil.copytree(tiny_checkpoint, ckpt)
    (ckpt / "model.safetensors").write_bytes(b"\xff" * 64)
    result = spamkit_quick("export", ckpt, "--out", tmp_path / "bundle")
    assert_clean_failure(result, "model.safetensors is damaged", out=tmp_path / "bundle")


def test_the_cap_is_above_gpt2_xl():
    from spamkit.config import MAX_PARAMETERS

    assert PRESETS["gpt2-xl"].parameters < MAX_PARAMETERS  # the largest published GPT-2 loads
    tiny = GPTClassifier(PRESETS["tiny"])
    assert PRESETS["tiny"].parameters == sum(p.numel() for p in tiny.parameters())


# -----------------------------------------------------------------------------
# pretrained weights


def hf_state() -> dict[str, torch.Tensor]:
    """A tiny GPT-2's weights as Hugging Face's GPT2LMHeadModel names and stores them."""
    torch.manual_seed(0)
    model = GPTClassifier(PRESETS["tiny"])
    return {f"transformer.{k}": v.t().contiguous() if k.endswith(CONV1D) else v
            for k, v in model.state_dict().items() if not k.startswith("head.")}


def train_from(weights: Path, out: Path) -> subprocess.CompletedProcess:
    return spamkit_quick("train", "--init", "gpt2", "--weights", weights, "--out", out,
                         "--device", "cpu", "--no-compile", "--max-steps", "1", "--data",
                         SMS_FILE)


def save_hf(folder: Path, state: dict, config) -> Path:
    folder.mkdir()
    save_file(state, str(folder / "model.safetensors"))
    if config is not None:
        (folder / "config.json").write_text(json.dumps(config))
    return folder


def test_tiny_hf_weights_train(tmp_path):
    """The baseline the cases below damage: these weights load and train."""
    weights = save_hf(tmp_path / "hf", hf_state(), {"n_head": 2})
    result = train_from(weights, tmp_path / "run")
    assert result.returncode == 0, result.stderr
    assert "loaded tiny GPT-2 weights" in result.stdout


def _extra_block(state):
    return {**state, "transformer.h.999999.ln_1.weight": torch.ones(64)}


def _named_block(state):
    return {**state, "transformer.h.x.ln_1.weight": torch.ones(64)}


def _flat_wte(state):
    return {**state, "transformer.wte.weight": torch.ones(64)}


PRETRAINED_CASES = {
    "a block numbered 999999": (_extra_block, {"n_head": 2}, ["h.0 to h.2", "h.999999"]),
    "a block named x": (_named_block, {"n_head": 2}, ["h.x"]),
    "a one-dimensional wte": (_flat_wte, {"n_head": 2}, ["GPT-2 embeddings"]),
    "config.json a list": (None, [{"n_head": 2}], ["config.json gives no number of heads"]),
    "config.json without n_head": (None, {"n_layer": 2}, ["config.json gives no number of heads"]),
    "heads that do not divide the width": (None, {"n_head": 3}, ["not divisible by n_head 3"]),
}


@pytest.mark.parametrize("case", list(PRETRAINED_CASES))
def test_damaged_pretrained_weights_are_refused_before_building(tmp_path, case):
    damage, config, words = PRETRAINED_CASES[case]
    state = hf_state()
    weights = save_hf(tmp_path / "hf", damage(state) if damage else state, config)
    out = tmp_path / "run"

    result = train_from(weights, out)

    assert_clean_failure(result, *words, out=out)


def test_a_bin_file_holding_a_list_is_refused(tmp_path):
    weights = tmp_path / "hf"
    weights.mkdir()
    torch.save([torch.ones(2)], weights / "pytorch_model.bin")
    out = tmp_path / "run"
    assert_clean_failure(train_from(weights, out), "pytorch_model.bin does not hold named "
                         "tensors", out=out)
