"""A transformers `GPT2ForSequenceClassification` folder (save_pretrained) as a spamkit
Checkpoint: the same weights in spamkit's model, which computes the same function.

Hugging Face's names map onto spamkit's as for GPT-2's published weights (spamkit.training.
pretrained); the class head is `score`, which has no bias. Whatever spamkit's model would
compute otherwise is refused in one line naming the config field: another activation, attention
scaled by layer or upcast, cross-attention, a head that is not single-label, a tokenizer that is
not GPT-2's (spamkit.training.hf_tokenizer). transformers itself is not needed to read a folder.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import torch

from spamkit.data import DataConfig
from spamkit.errors import SpamkitError
from spamkit.extras import require
from spamkit.runtime.hub import fetch_snapshot, is_hub_reference, parse_reference
from spamkit.training.checkpoint import Checkpoint, check_shapes, expected_shapes
from spamkit.training.hf_tokenizer import (
    MERGES_TXT,
    TOKENIZER_CONFIG,
    TOKENIZER_JSON,
    VOCAB_JSON,
    check_gpt2_tokenizer,
)
from spamkit.training.model import GPTClassifier
from spamkit.training.pretrained import (
    WEIGHT_FILES,
    find_weights,
    gpt2_config,
    preset_name,
    read_state_dict,
    to_spamkit_names,
)

CONFIG_FILE = "config.json"
SPAMKIT, TRANSFORMERS = "spamkit", "transformers"  # the kinds of folder export reads
CLASSIFIER = "GPT2ForSequenceClassification"
LANGUAGE_MODELS = ("GPT2LMHeadModel", "GPT2Model", "GPT2DoubleHeadsModel")
# GELU's tanh approximation, which spamkit's MLP computes (gelu_new spells it out by hand).
ACTIVATIONS = ("gelu_new", "gelu_pytorch_tanh")
# Fields whose other values change what GPT-2 computes: GPT-2's value, and what another does.
FIXED = {
    "scale_attn_by_inverse_layer_idx": (False, "divides each layer's attention by its depth"),
    "reorder_and_upcast_attn": (False, "computes attention in another order and precision"),
    "add_cross_attention": (False, "adds cross-attention layers"),
    "scale_attn_weights": (True, "leaves attention unscaled"),
    "layer_norm_epsilon": (1e-5, "normalizes with another epsilon"),
}
SINGLE_LABEL = (None, "single_label_classification")
# What a hf:// reference fetches into the Hugging Face cache: the model and its tokenizer.
MODEL_FILES = [CONFIG_FILE, *WEIGHT_FILES, TOKENIZER_JSON, TOKENIZER_CONFIG, VOCAB_JSON,
               MERGES_TXT]


@dataclass(frozen=True)
class HFClassifier:
    folder: Path  # the folder save_pretrained wrote
    checkpoint: Checkpoint  # its weights in spamkit's model, its labels in id order
    pad_token_id: int | None  # what transformers pads a batch with (None: it cannot batch)


def folder_kind(path: Path) -> str:
    """TRANSFORMERS for a folder that save_pretrained wrote (its config.json names a
    model_type), else SPAMKIT: a checkpoint, or what load_checkpoint refuses in its own words.

    Args:
        path: the folder export was given.

    Returns:
        TRANSFORMERS or SPAMKIT.

    Raises:
        SpamkitError: a folder whose config.json names neither (or that has none).
    """
    config = path / CONFIG_FILE
    if not path.is_dir() or (path / "training-state").is_dir():
        return SPAMKIT
    try:
        data = json.loads(config.read_bytes()) if config.stat().st_size < 2**20 else None
    except FileNotFoundError:
        data = {}
    except (OSError, ValueError):
        return SPAMKIT  # load_checkpoint says what is wrong with it
    if isinstance(data, dict) and "model_type" in data and "format" not in data:
        return TRANSFORMERS
    if not isinstance(data, dict) or "format" in data:
        return SPAMKIT
    has = f"its {CONFIG_FILE} names neither" if config.is_file() else f"it has no {CONFIG_FILE}"
    raise SpamkitError(f"{path} is neither a spamkit checkpoint (`spamkit train`, whose "
                       f"{CONFIG_FILE} names its format) nor a transformers {CLASSIFIER} folder "
                       f"(save_pretrained, whose {CONFIG_FILE} names its model_type): {has}")


def hub_folder(reference: str) -> Path:
    """The Hugging Face cache's snapshot of the model `reference` (hf://org/name[@revision])
    names, fetched first when it is not there (with HF_HUB_OFFLINE=1, from the cache alone).

    Args:
        reference: an hf:// reference, checked before anything is looked up.

    Returns:
        The snapshot folder, inside the repository's snapshots/ in the cache.
    """
    try:
        repo_id, revision = parse_reference(reference)
    except ValueError as e:
        raise SpamkitError(str(e)) from None
    require("huggingface_hub", f"reading {reference}")
    return fetch_snapshot(reference, repo_id, revision=revision, allow_patterns=MODEL_FILES)


def open_classifier(given: str, dropout: float = 0.0) -> HFClassifier:
    """The transformers classifier `spamkit train --init` continues, or one line saying what
    `given` is instead.

    Args:
        given: a folder GPT2ForSequenceClassification.save_pretrained wrote, or an
            hf://org/name[@revision] reference to one.
        dropout: the rate the model trains with (load_hf_classifier).

    Returns:
        The classifier, checked as export checks it.
    """
    folder = hub_folder(given) if is_hub_reference(given) else Path(given).expanduser()
    what = f"not a transformers {CLASSIFIER} folder (save_pretrained)"
    if not (folder / CONFIG_FILE).is_file():
        raise SpamkitError(f"{folder} has no {CONFIG_FILE}: {what}; GPT-2 weights alone start "
                           f"a new classifier with --init gpt2 --weights {folder}")
    if folder_kind(folder) == SPAMKIT:
        raise SpamkitError(f"{folder} is a spamkit checkpoint, {what}: --init continues a "
                           "classifier fine-tuned with transformers")
    return load_hf_classifier(folder, dropout)


def load_hf_classifier(folder: Path, dropout: float = 0.0) -> HFClassifier:
    """The transformers GPT-2 classifier in `folder`, as spamkit's model, checked to compute
    what transformers computes (the config and tokenizer first, then every weight's shape).

    Args:
        folder: a folder GPT2ForSequenceClassification.save_pretrained wrote, with the
            tokenizer's files.
        dropout: the model's dropout rate when it trains further (spamkit's, not the rates in
            its config.json, which transformers trains with).

    Returns:
        The checkpoint (labels from id2label, in id order) and transformers' pad_token_id.
    """
    where = folder / CONFIG_FILE
    config = _read_config(where)
    _check_config(config, where, folder)
    labels = _labels(config, where)
    check_gpt2_tokenizer(folder)
    weights = find_weights(CLASSIFIER, str(folder))
    state = _classifier_state(read_state_dict(weights), weights)
    cfg = gpt2_config(weights, state, num_classes=len(labels), dropout=dropout)
    check_shapes(expected_shapes(cfg), {k: tuple(v.shape) for k, v in state.items()},
                 source=str(weights))
    model = GPTClassifier(cfg)
    model.load_state_dict(state)
    checkpoint = Checkpoint(model.eval(), labels, preset_name(cfg), DataConfig(),
                            training={"init": "transformers", "from": str(folder)})
    return HFClassifier(folder, checkpoint, _pad_token_id(config, where, cfg.vocab_size))


def _read_config(path: Path) -> dict:
    try:
        data = json.loads(path.read_bytes())
    except (OSError, ValueError) as e:
        raise SpamkitError(f"{path} is not readable JSON ({e})") from None
    if not isinstance(data, dict):
        raise SpamkitError(f"{path} is not a JSON object")
    return data


def _check_config(config: dict, where: Path, folder: Path) -> None:
    """Refuse, naming the field, a model spamkit's GPT-2 would not reproduce exactly."""
    if config.get("model_type") != "gpt2":
        raise SpamkitError(f"{where}: model_type is {config.get('model_type')!r}; spamkit "
                           f"exports GPT-2 classifiers (model_type gpt2, {CLASSIFIER})")
    architectures = config.get("architectures") or []
    if CLASSIFIER not in architectures:
        if any(a in LANGUAGE_MODELS for a in architectures):
            raise SpamkitError(f"{where}: architectures is {architectures}, a language model "
                               "with no classification head; train a classifier from it with "
                               f"`spamkit train --init gpt2 --weights {folder}`")
        raise SpamkitError(f"{where}: architectures is {architectures!r}, not [{CLASSIFIER}]")
    activation = config.get("activation_function", ACTIVATIONS[0])
    if activation not in ACTIVATIONS:
        raise SpamkitError(f"{where}: activation_function is {activation!r}; spamkit's GPT-2 "
                           "computes GPT-2's gelu_new (GELU's tanh approximation) only")
    for field, (value, other) in FIXED.items():
        if config.get(field, value) != value:
            raise SpamkitError(f"{where}: {field} is {json.dumps(config[field])}, which "
                               f"{other}; spamkit computes GPT-2's ({json.dumps(value)})")
    if config.get("problem_type") not in SINGLE_LABEL:
        raise SpamkitError(f"{where}: problem_type is {config['problem_type']!r}; a bundle "
                           "gives one label per message (a softmax over the classes), so only "
                           "single_label_classification exports")


def _labels(config: dict, where: Path) -> list[str]:
    """The class names of id2label, in id order (0, 1, ...)."""
    id2label = config.get("id2label")
    if not isinstance(id2label, dict) or not id2label:
        raise SpamkitError(f"{where} has no id2label naming the classes")
    by_id = {int(k): v for k, v in id2label.items() if str(k).isdigit()}
    if sorted(by_id) != list(range(len(id2label))) or not all(
            isinstance(v, str) and v for v in by_id.values()):
        raise SpamkitError(f"{where}: id2label must name each class 0 to {len(id2label) - 1} "
                           f"once, with text: {json.dumps(id2label)[:120]}")
    return [by_id[i] for i in range(len(by_id))]


def _classifier_state(hf: dict[str, torch.Tensor], weights: Path) -> dict[str, torch.Tensor]:
    """spamkit's names for the weights of a GPT2ForSequenceClassification: GPT-2's, and the
    class head `score` as `head`, with the zero bias it does not have."""
    state = to_spamkit_names(hf)
    missing = [k for k in ("wte.weight", "wpe.weight", "score.weight") if k not in state]
    if missing:
        raise SpamkitError(f"{weights} has no {missing[0]}: not the weights of a {CLASSIFIER}")
    head = state.pop("score.weight")
    return {**state, "head.weight": head,
            "head.bias": torch.zeros(head.shape[:1], dtype=torch.float32)}


def _pad_token_id(config: dict, where: Path, vocab_size: int) -> int | None:
    pad = config.get("pad_token_id")
    if pad is not None and (not isinstance(pad, int) or isinstance(pad, bool)
                            or not 0 <= pad < vocab_size):
        raise SpamkitError(f"{where}: pad_token_id {pad!r} is no token of the model's "
                           f"{vocab_size}")
    return pad
