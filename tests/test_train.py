"""`spamkit train` in Python: what the checkpoint holds, and the training options doing what
they claim."""

import json

import pytest
import torch
from conftest import SMS_FILE
from safetensors.torch import load_file

from spamkit.config import TrainConfig, preset_config
from spamkit.data import DataConfig
from spamkit.errors import SpamkitError
from spamkit.jobs.evaluate import examples_for, load_model, score_examples
from spamkit.tokenizer import gpt2_tokenizer
from spamkit.training.char_ngrams import CharNgramEmbedding
from spamkit.training.checkpoint import load_checkpoint
from spamkit.training.model import GPTClassifier
from spamkit.training.train import learning_rate, train

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


@pytest.mark.parametrize("precision", ["fp16", "bf16"])
def test_half_precision_autocast_takes_the_fp32_steps_up_to_its_rounding(tmp_path, precision):
    common = dict(preset="tiny", epochs=1, max_steps=3, compile=False, device="cpu")
    half = train(TrainConfig(precision=precision, **common), DATA, str(tmp_path / precision))
    full = train(TrainConfig(precision="fp32", **common), DATA, str(tmp_path / "fp32"))
    config = json.loads((tmp_path / precision / "config.json").read_text())
    assert config["training"]["precision"] == precision
    a, b = _weights(tmp_path / precision), _weights(tmp_path / "fp32")
    # The forward pass really ran in half precision: some weights differ from fp32's. Where a
    # gradient is near 0, AdamW turns its rounding into a whole step of either sign, so a few
    # percent of the weights differ (measured 2.6% fp16, 3.2% bf16); the rest are fp32's.
    differ = sum((a[k] != b[k]).sum().item() for k in a) / sum(t.numel() for t in a.values())
    assert 0 < differ < 0.1
    assert all(torch.isfinite(t).all() for t in a.values())
    # Measured: losses within 1e-4 of fp32's.
    assert half["history"][0]["train_loss"] == pytest.approx(full["history"][0]["train_loss"],
                                                             rel=1e-3)
    assert half["final"]["val"]["loss"] == pytest.approx(full["final"]["val"]["loss"], rel=1e-3)


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


def test_tokens_spelled_alike_share_what_they_learn():
    encoding = gpt2_tokenizer(256).encoding
    wte = torch.nn.Embedding(encoding.n_vocab, 16)
    spelled = CharNgramEmbedding(wte, encoding, n_max=4)
    ids = torch.tensor([encoding.encode_single_token(t) for t in ("87", "90", " FREE", "free")])
    # The n-gram vectors start at zero: training starts from exactly the plain embeddings.
    torch.testing.assert_close(spelled(ids), wte(ids), atol=0, rtol=0)
    torch.nn.init.normal_(spelled.ngrams.weight)
    with torch.no_grad():
        spelled.ngrams.weight[0].zero_()  # the padding bucket
    moved = spelled(ids) - wte(ids)
    # Two number tokens have the same shape ("99") and move alike; " FREE" and "free" share
    # their lowercase letters; unrelated tokens do not move together.
    cos = torch.nn.functional.cosine_similarity
    assert cos(moved[0], moved[1], dim=0) > 0.5 and cos(moved[2], moved[3], dim=0) > 0.3
    assert abs(cos(moved[0], moved[2], dim=0)) < 0.3
    # The checkpoint's plain table is what the module computed for every token.
    every = torch.arange(encoding.n_vocab)
    torch.testing.assert_close(spelled.folded()(every), spelled(every), atol=1e-6, rtol=0)


def test_char_ngram_training_writes_a_plain_checkpoint_that_scores_the_same(tmp_path):
    metrics = train(TrainConfig(preset="tiny", char_ngrams=4, epochs=1, max_steps=20, lr=1e-3,
                                compile=False), DATA, str(tmp_path / "ckpt"))
    expected = GPTClassifier(preset_config("tiny")).state_dict()
    assert set(_weights(tmp_path / "ckpt")) == set(expected)
    config = json.loads((tmp_path / "ckpt" / "config.json").read_text())
    assert config["training"]["char_ngrams"] == 4
    # The folded table gives the checkpoint the accuracy the training run measured.
    model = load_model(tmp_path / "ckpt")
    report, _ = score_examples(model, examples_for(model, str(SMS_FILE), "test"))
    assert report.accuracy == pytest.approx(metrics["final"]["test"]["accuracy"])


def test_the_cosine_schedule_decays_to_zero_and_last_keeps_the_final_epoch(tmp_path):
    cfg = TrainConfig(lr=1e-3, lr_schedule="cosine")
    assert [learning_rate(cfg, s, 100) for s in (0, 50, 100)] == pytest.approx([1e-3, 5e-4, 0])
    assert learning_rate(TrainConfig(lr=1e-3), 99, 100) == 1e-3
    # --warmup-steps 10: up linearly to --lr, then the cosine over the 90 steps left.
    warm = TrainConfig(lr=1e-3, lr_schedule="cosine", warmup_steps=10)
    assert [learning_rate(warm, s, 100) for s in (0, 4, 9, 10, 55, 100)] == pytest.approx(
        [1e-4, 5e-4, 1e-3, 1e-3, 5e-4, 0])
    assert learning_rate(TrainConfig(lr=1e-3, warmup_steps=10), 50, 100) == 1e-3
    metrics = train(TrainConfig(preset="tiny", epochs=2, batch_size=64, lr_schedule="cosine",
                                keep="last", compile=False), DATA, str(tmp_path / "ckpt"))
    last = metrics["history"][-1]
    assert metrics["kept_epoch"] == 2
    assert metrics["final"]["val"]["loss"] == pytest.approx(last["val_loss"], abs=1e-6)


def test_another_init_seed_trains_another_model_on_the_same_split(tmp_path):
    common = dict(preset="tiny", epochs=1, max_steps=2, compile=False, precision="fp32",
                  device="cpu", dropout=0.1)
    runs = {name: train(TrainConfig(init_seed=init_seed, **common), DATA, str(tmp_path / name))
            for name, init_seed in (("plain", None), ("same", 123), ("other", 7), ("again", 7))}
    weights = {name: _weights(tmp_path / name) for name in runs}
    for name in weights["plain"]:  # --init-seed 123 is --seed 123's own run
        assert torch.equal(weights["same"][name], weights["plain"][name])
        assert torch.equal(weights["again"][name], weights["other"][name])
    assert not torch.equal(weights["other"]["head.weight"], weights["plain"]["head.weight"])
    # Not only the shuffling and dropout: the initial weights too (at lr 0 a step keeps them).
    for name, init_seed in (("plain-init", None), ("other-init", 7)):
        train(TrainConfig(init_seed=init_seed, lr=0.0, **common), DATA, str(tmp_path / name))
    plain, other = _weights(tmp_path / "plain-init"), _weights(tmp_path / "other-init")
    assert not torch.equal(plain["h.0.attn.c_attn.weight"], other["h.0.attn.c_attn.weight"])
    configs = {name: json.loads((tmp_path / name / "config.json").read_text()) for name in runs}
    assert configs["other"]["training"]["init_seed"] == 7
    assert configs["other"]["data"] == configs["plain"]["data"]  # the split of seed 123
    assert runs["other"]["split_sizes"] == runs["plain"]["split_sizes"]


def test_bad_options_are_refused_before_any_work(tmp_path):
    with pytest.raises(SpamkitError, match="unknown --precision"):
        train(TrainConfig(precision="fp8"), DATA, str(tmp_path / "x"))
    with pytest.raises(SpamkitError, match="unknown --lr-schedule"):
        train(TrainConfig(lr_schedule="linear"), DATA, str(tmp_path / "x"))
    with pytest.raises(SpamkitError, match="unknown --keep"):
        train(TrainConfig(keep="first"), DATA, str(tmp_path / "x"))
    with pytest.raises(SpamkitError, match="--char-ngrams trains the token embeddings"):
        train(TrainConfig(char_ngrams=4, trainable="last-block"), DATA, str(tmp_path / "x"))
    assert not (tmp_path / "x").exists()
