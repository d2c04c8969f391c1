"""The classifier's GPT as a next-token language model, and the folder `spamkit pretrain`
writes: its trunk for `spamkit train --init` to put a new class head on.

    config.json        format "spamkit-pretrained-lm", model shape, tokenizer, what it read
    model.safetensors  every weight but the class head (the LM head is the token embeddings)
    metrics.json       per-epoch training and held-out loss
    curves.png         the same, drawn (with the plots extra)

The folder is written under a temporary name and renamed when complete (spamkit.atomic).
"""

from __future__ import annotations

import json
from dataclasses import asdict, replace
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from spamkit import __version__
from spamkit.atomic import atomic_dir
from spamkit.config import SIZES, GPTConfig
from spamkit.data import DataConfig
from spamkit.errors import SpamkitError
from spamkit.jsonfile import read_format_json
from spamkit.outputs import PRETRAINED_FORMAT
from spamkit.tokenizer import GPT2_EOT_ID
from spamkit.training.checkpoint import (
    CONFIG_FILE,
    METRICS_FILE,
    WEIGHTS_FILE,
    check_shapes,
    expected_shapes,
    file_shapes,
)
from spamkit.training.model import GPTClassifier
from spamkit.training.pretrained import preset_name

TOKENIZER = "gpt2"  # the only one spamkit trains with: GPT-2's byte-level BPE
HEAD = "head."  # the class head's weights: no part of a language model


class LanguageModel(nn.Module):
    """Next-token logits [batch, seq, len(vocab)] from a GPTClassifier's blocks: GPT-2's LM head,
    tied to the token embeddings, in place of the class head (which it leaves untouched).

    The softmax runs over `vocab`, the token ids the text uses (its targets are their positions
    in it): a tokenizer's other tokens never occur as targets, and SMS text uses a small share of
    GPT-2's 50,257, so the head that dominates a small model's step shrinks as much. The head is
    what the embedding module computes for them (character n-grams included, when it has them).
    """

    def __init__(self, model: GPTClassifier, vocab: torch.Tensor) -> None:
        super().__init__()
        self.model = model
        self.register_buffer("vocab", vocab, persistent=False)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None
                ) -> torch.Tensor:
        # Blocks are packed text with no padding: the mask (all ones) changes nothing.
        m = self.model
        x = m.ln_f(m.h[-1](m.trunk(input_ids)))
        return F.linear(x, m.wte(self.vocab))


def save_pretrained_lm(path: str | Path, model: GPTClassifier, record: dict,
                       metrics: dict) -> None:
    """Write the pretrained trunk to `path` (atomically); `record` goes into its config: what
    it was trained on and how."""
    config = {"format": PRETRAINED_FORMAT, "format_version": 1, "spamkit_version": __version__,
              "preset": preset_name(model.config), "model": asdict(model.config),
              "tokenizer": TOKENIZER, **record}
    state = {k: v.detach().float().contiguous() for k, v in model.state_dict().items()
             if not k.startswith(HEAD)}
    with atomic_dir(path) as tmp:
        save_file(state, str(tmp / WEIGHTS_FILE), metadata={"format": PRETRAINED_FORMAT})
        (tmp / METRICS_FILE).write_text(json.dumps(metrics, indent=2) + "\n")
        # Last: a folder without its config is not a pretrained model to load_pretrained_lm.
        (tmp / CONFIG_FILE).write_text(json.dumps(config, indent=2) + "\n")


def load_pretrained_lm(path: str | Path, split: DataConfig, **head) -> GPTClassifier:
    """A classifier with the pretrained trunk at `path` and a new class head.

    Args:
        path: a folder `spamkit pretrain` wrote.
        split: the split the classifier trains on (its data file's sha256 included).
        head: the classifier's own fields (num_classes, token, dropout).

    Returns:
        The model; its head as this process's random generator draws it.

    Raises:
        SpamkitError: not such a folder, another tokenizer, text that did not leave out
            `split`'s validation and test messages, or weights that do not match the config
            (checked before anything is allocated).
    """
    path = Path(path).expanduser()
    config = read_format_json(path / CONFIG_FILE, PRETRAINED_FORMAT, 1, "spamkit pretrain config")
    cfg = _model_config(path / CONFIG_FILE, config, head)
    _check_held_out(path, config, split)
    weights = path / WEIGHTS_FILE
    expected = {k: v for k, v in expected_shapes(cfg).items() if not k.startswith(HEAD)}
    check_shapes(expected, file_shapes(weights), source=str(weights))
    model = GPTClassifier(cfg)
    try:
        model.load_state_dict(load_file(str(weights)), strict=False)  # all but the new head
    except SafetensorError as e:
        raise SpamkitError(f"{weights} is damaged: {e}") from None
    print(f"loaded the {preset_name(cfg)} language model pretrained in {path}")
    return model


def _check_held_out(path: Path, config: dict, split: DataConfig) -> None:
    """Refuse a language model whose text left out another split's validation and test
    messages than `split`'s: it may have read the classifier's own test messages."""
    ours = split.split_fields()
    data = config.get("data") if isinstance(config.get("data"), dict) else {}
    theirs = {k: data.get(k) for k in ours}
    if theirs != ours:
        said = ", ".join(f"{k} {v}" for k, v in theirs.items())
        this = ", ".join(f"{k} {v}" for k, v in ours.items())
        raise SpamkitError(f"{path} was pretrained leaving out the validation and test messages "
                           f"of another split ({said}; this run: {this}), so it may have read "
                           "this run's: pretrain for this split (same --data, --split, --seed)")


def _model_config(source: Path, config: dict, head: dict) -> GPTConfig:
    """The model's shape from a pretrain config, with the classifier's `head` fields; refused
    unless its tokenizer is the one spamkit tokenizes with."""
    if config.get("tokenizer") != TOKENIZER:
        raise SpamkitError(f"{source} was pretrained with the tokenizer "
                           f"{config.get('tokenizer')!r}; spamkit trains with GPT-2's")
    model = config.get("model")
    missing = [k for k in SIZES if not isinstance(model, dict) or k not in model]
    if missing:
        raise SpamkitError(f"{source} is malformed: its model has no {missing[0]}")
    try:
        cfg = replace(GPTConfig(**model), **head)
    except (TypeError, SpamkitError) as e:
        raise SpamkitError(f"{source} is malformed: {e}") from None
    if cfg.vocab_size != GPT2_EOT_ID + 1:
        raise SpamkitError(f"{source} has {cfg.vocab_size} token embeddings; GPT-2's tokenizer "
                           f"has {GPT2_EOT_ID + 1}")
    return cfg
