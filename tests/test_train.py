"""`spamkit train` in Python: what the checkpoint holds, and the training options doing what
they claim."""

import json

import pytest
import torch
from conftest import SMS_FILE
from safetensors.torch import load_file

from spamkit.checkpoint import load_checkpoint
from spamkit.config import TrainConfig, preset_config
from spamkit.data import DataConfig
from spamkit.errors import SpamkitError
from spamkit.model import GPTClassifier
from spamkit.train import train

DATA = DataConfig(path=str(SMS_FILE))


def _weights(path):
    return load_file(str(path / "model.safetensors"))


def test_checkpoint_records_what_export_and_users_need(tiny_checkpoint):
    config = json.loads((tiny_checkpoint / "config.json").read_text())
    assert config["format"] == "spamkit-checkpoint"
    assert config["labels"] == ["ham", "spam"] and config["preset"] == "tiny"
    assert config["model"]["num_classes"] == 2 and config["model"]["token"] == "last"
    assert config["training"]["trainable"] == "all" and config["data"]["split"] == "balanced"
    metrics = json.loads((tiny_checkpoint / "metrics.json").read_text())
    assert metrics["split_sizes"] == {"train": 1045, "val": 149, "test": 300}
    assert set(metrics["final"]) == {"train", "val", "test"}
    for record in metrics["history"]:
        assert {"train_loss", "train_accuracy", "val_loss", "val_accuracy"} <= set(record)
    # 60 steps of the tiny model already beat always answering "ham" (50% on a balanced split)
    assert metrics["final"]["test"]["accuracy"] > 0.6
    ckpt = load_checkpoint(tiny_checkpoint)
    assert ckpt.model.head.out_features == 2 and not ckpt.model.training


def test_gradient_accumulation_equals_the_large_batch(tmp_path):
    common = dict(preset="tiny", epochs=1, max_steps=1, compile=False, precision="fp32",
                  device="cpu")
    train(TrainConfig(batch_size=8, **common), DATA, str(tmp_path / "a"))
    train(TrainConfig(batch_size=4, grad_accum=2, **common), DATA, str(tmp_path / "b"))
    a, b = _weights(tmp_path / "a"), _weights(tmp_path / "b")
    # One AdamW step moves every weight by about lr (5e-4); the runs agree to float rounding.
    for name in a:
        torch.testing.assert_close(a[name], b[name], atol=2e-5, rtol=0)


@pytest.mark.parametrize("scope, frozen, trained", [
    ("head", "h.1.mlp.c_fc.weight", "head.weight"),
    ("last-block", "h.0.mlp.c_fc.weight", "h.1.mlp.c_fc.weight"),
])
def test_trainable_scope_freezes_the_rest(tmp_path, scope, frozen, trained):
    common = dict(preset="tiny", epochs=1, max_steps=3, compile=False)
    train(TrainConfig(trainable=scope, **common), DATA, str(tmp_path / scope))
    train(TrainConfig(trainable="all", **common), DATA, str(tmp_path / "all"))
    mine, everything = _weights(tmp_path / scope), _weights(tmp_path / "all")
    # Same seed, same init: a frozen tensor keeps its initial value, which the "all" run moved.
    torch.manual_seed(TrainConfig().seed)
    fresh = GPTClassifier(preset_config("tiny")).state_dict()
    torch.testing.assert_close(mine[frozen], fresh[frozen], atol=0, rtol=0)
    assert not torch.equal(mine[trained], fresh[trained])
    assert not torch.equal(everything[frozen], fresh[frozen])


@pytest.mark.parametrize("pad_to", [None, "120"])
def test_a_frozen_trunk_computed_once_trains_as_if_run_every_step(tmp_path, capsys, pad_to):
    common = dict(preset="tiny", trainable="last-block", pad_to=pad_to, epochs=2, lr=1e-3,
                  compile=False, precision="fp32", device="cpu")
    reused = train(TrainConfig(**common), DATA, str(tmp_path / "reused"))
    assert "frozen trunk computed once" in capsys.readouterr().out
    fresh = train(TrainConfig(cache_frozen=False, **common), DATA, str(tmp_path / "fresh"))
    assert "frozen trunk" not in capsys.readouterr().out
    # The same batches through the same weights: only float rounding differs (the trunk sees
    # other batch-mates and widths when it runs once, sorted by length).
    for a, b in zip(reused["history"], fresh["history"], strict=True):
        assert a["val_accuracy"] == b["val_accuracy"]
        assert a["train_loss"] == pytest.approx(b["train_loss"], abs=1e-5)
    assert reused["final"]["test"]["accuracy"] == fresh["final"]["test"]["accuracy"]
    a, b = _weights(tmp_path / "reused"), _weights(tmp_path / "fresh")
    # Except the key bias: softmax ignores it, so its true gradient is 0 and AdamW turns the
    # rounding noise in its place into full-size steps of either sign.
    n_embd = a["head.weight"].shape[1]
    a["h.1.attn.c_attn.bias"][n_embd : 2 * n_embd] = b["h.1.attn.c_attn.bias"][n_embd : 2 * n_embd]
    for name in a:
        torch.testing.assert_close(a[name], b[name], atol=1e-5, rtol=0)


def test_compiled_training_matches_eager(tmp_path):
    common = dict(preset="tiny", epochs=1, max_steps=3, precision="fp32", device="cpu")
    train(TrainConfig(compile=True, **common), DATA, str(tmp_path / "compiled"))
    train(TrainConfig(compile=False, **common), DATA, str(tmp_path / "eager"))
    a, b = _weights(tmp_path / "compiled"), _weights(tmp_path / "eager")
    for name in a:
        torch.testing.assert_close(a[name], b[name], atol=1e-4, rtol=1e-3)


@pytest.mark.parametrize("precision", ["fp32", "fp16"])
def test_other_precisions_train(tmp_path, precision):
    train(TrainConfig(preset="tiny", epochs=1, max_steps=3, compile=False, precision=precision),
          DATA, str(tmp_path / "ckpt"))
    assert all(torch.isfinite(t).all() for t in _weights(tmp_path / "ckpt").values())


def test_a_users_own_csv_with_three_labels(tmp_path):
    rows = ["text,label"]
    for line in SMS_FILE.read_text(encoding="utf-8").splitlines()[:600]:
        label, text = line.split("\t", 1)
        label = "short" if label == "ham" and len(text) < 30 else label
        rows.append('"' + text.replace('"', '""') + '",' + label)
    (tmp_path / "mine.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    train(TrainConfig(preset="tiny", epochs=1, max_steps=2, compile=False),
          DataConfig(path=str(tmp_path / "mine.csv")), str(tmp_path / "ckpt"))
    ckpt = load_checkpoint(tmp_path / "ckpt")
    assert ckpt.labels == ["ham", "short", "spam"] and ckpt.model.head.out_features == 3


def test_bad_options_are_refused_before_any_work(tmp_path):
    with pytest.raises(SpamkitError, match="unknown --precision"):
        train(TrainConfig(precision="fp8"), DATA, str(tmp_path / "x"))
    assert not (tmp_path / "x").exists()
