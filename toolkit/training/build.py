"""The model a training run starts from (random, GPT-2's weights, a pretrained language
model's trunk, or a classifier to train further), the data's class ids in its order, and what
of it trains."""

from __future__ import annotations

from dataclasses import replace

from spamkit.config import INITS, TrainConfig, is_pretrained_lm, preset_config
from spamkit.data import DataConfig, Examples, Splits
from spamkit.errors import SpamkitError
from spamkit.training.hf_classifier import open_classifier
from spamkit.training.lm import load_pretrained_lm
from spamkit.training.lora import add_lora
from spamkit.training.model import GPTClassifier
from spamkit.training.pretrained import find_weights, load_pretrained, preset_name


def build_model(cfg: TrainConfig, data: DataConfig, splits: Splits
                ) -> tuple[GPTClassifier, Splits]:
    """The model `cfg.init` starts from, and `splits` (of `data`) with class ids in its order:
    the data's, or (a classifier given to --init) its own."""
    if cfg.init not in INITS and not is_pretrained_lm(cfg.init):
        return continue_classifier(cfg, splits)
    head = dict(num_classes=len(splits.labels), token=cfg.token, dropout=cfg.dropout)
    return start_model(cfg, replace(data, sha256=splits.sha256), **head), splits


def start_model(cfg: TrainConfig, data: DataConfig, **head) -> GPTClassifier:
    """A new class head (`head`: num_classes, token, dropout) on the trunk `cfg.init` names:
    random, GPT-2's weights, or a `spamkit pretrain` folder's (pretrained for the split `data`)."""
    if cfg.init == "random":
        return GPTClassifier(preset_config(cfg.preset or "mini", **head))
    if cfg.init not in INITS:
        model = load_pretrained_lm(cfg.init, data, **head)
        check_preset(cfg, model, f"the weights pretrained in {cfg.init}")
        return model
    path = find_weights(cfg.init, cfg.weights)
    model = load_pretrained(path, **head)
    check_preset(cfg, model, f"the weights at {path}")
    print(f"loaded {preset_name(model.config)} GPT-2 weights from {path}")
    return model


def check_preset(cfg: TrainConfig, model: GPTClassifier, what: str) -> None:
    """Refuse a --preset other than the shape of the weights the model was loaded with."""
    shape = preset_name(model.config)
    if cfg.preset and shape != cfg.preset:
        raise SpamkitError(f"{what} are {shape}-shaped, not {cfg.preset}: leave --preset out "
                           "(the shape comes from the weights)")


def continue_classifier(cfg: TrainConfig, splits: Splits) -> tuple[GPTClassifier, Splits]:
    """The transformers classifier at `cfg.init`, head included, to train further on `splits`
    of the same labels, which keep its class order (id2label)."""
    hf = open_classifier(cfg.init, cfg.dropout)
    model, labels = hf.checkpoint.model, hf.checkpoint.labels
    check_preset(cfg, model, f"the weights of {cfg.init}")
    splits = relabel(splits, labels, f"the classifier at {cfg.init} (its id2label)")
    print(f"loaded the {preset_name(model.config)}-shaped classifier {labels} from {hf.folder}")
    return model, splits


def relabel(splits: Splits, labels: list[str], whose: str) -> Splits:
    """`splits` with its class ids counted in `labels` (the model's class order), refused
    unless `labels` names the data's classes."""
    if sorted(labels) != sorted(splits.labels):
        raise SpamkitError(f"{whose} has the labels {labels} and the data {splits.labels}: "
                           "its training goes on only on data of the same labels")
    ids = [labels.index(name) for name in splits.labels]

    def ordered(examples: Examples) -> Examples:
        return replace(examples, labels=[ids[c] for c in examples.labels])

    return replace(splits, labels=labels, train=ordered(splits.train), val=ordered(splits.val),
                   test=ordered(splits.test))


def set_trainable(model: GPTClassifier, cfg: TrainConfig) -> None:
    """Freeze everything, then unfreeze the scope (the book's default is `last-block`)."""
    if cfg.trainable == "lora":
        add_lora(model, cfg.lora_rank, cfg.lora_alpha)
        return
    model.requires_grad_(cfg.trainable == "all")
    model.head.requires_grad_(True)
    if cfg.trainable == "last-block":
        model.h[-1].requires_grad_(True)
        model.ln_f.requires_grad_(True)
