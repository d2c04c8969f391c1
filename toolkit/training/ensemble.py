"""`spamkit ensemble`: classifiers trained on one split, saved as one checkpoint that answers
with the mean of their probabilities (spamkit.training.model.Ensemble). export, eval and
calibrate take it as they take one model, and its bundle is one graph: the runtime, the web page
and the servers never know it is several.

Its members must read the same tokens the same way (model shape, labels in the same order, the
token the head reads) and come from the same data split: the ensemble records that split, and a
member trained on another would have seen the ensemble's test messages.
"""

from __future__ import annotations

import json
import os
from dataclasses import replace
from pathlib import Path

import torch

from spamkit.config import TrainConfig
from spamkit.data import load_splits
from spamkit.errors import SpamkitError
from spamkit.outputs import CHECKPOINT, check_output, exclusive_output
from spamkit.tokenizer import gpt2_tokenizer
from spamkit.training.build import relabel
from spamkit.training.checkpoint import (
    METRICS_FILE,
    Checkpoint,
    load_checkpoint,
    save_checkpoint,
)
from spamkit.training.distributed import Ranks
from spamkit.training.model import Ensemble
from spamkit.training.train import Encoded, evaluate_split

PathLike = str | os.PathLike[str]


def ensemble_checkpoints(members: list[PathLike], out: PathLike, data: str | None = None,
                         force: bool = False) -> dict:
    """Join the checkpoints `members` into one ensemble checkpoint at `out`, scored on their
    split.

    Args:
        members: two or more spamkit checkpoints of one shape, labels and data split.
        out: the checkpoint folder to write (atomically).
        data: their data file, when not where they were trained (as `spamkit eval --data`).
        force: replace a checkpoint already at `out` (never anything else).

    Returns:
        The ensemble's metrics (loss and accuracy per split), as written to its metrics.json.

    Raises:
        SpamkitError: fewer than two members, one that is not a classifier checkpoint, members
            that differ in shape, labels or split, or an `out` that is not this run's to write.
    """
    if len(members) < 2:
        raise SpamkitError("an ensemble needs at least two checkpoints")
    with exclusive_output(out):
        check_output(out, CHECKPOINT, force=force, inputs=[*members, data])
        ckpts = [_load_member(path) for path in members]
        for path, ckpt in zip(members[1:], ckpts[1:]):
            _check_alike(members[0], ckpts[0], path, ckpt)
        ensemble = join(ckpts, [str(path) for path in members])
        metrics = {"final": score_splits(ensemble, data),
                   "member_test_accuracies": [_test_accuracy(path) for path in members]}
        save_checkpoint(out, ensemble, metrics)
    return metrics


def _load_member(path: PathLike) -> Checkpoint:
    ckpt = load_checkpoint(path)
    if ckpt.members > 1:
        raise SpamkitError(f"{path} is already an ensemble of {ckpt.members} models: join its "
                           "members' own checkpoints instead")
    if ckpt.training.get("pad_to"):
        raise SpamkitError(f"{path} was trained with --pad-to; the runtime reads the last real "
                           "token, so retrain it without --pad-to")
    return ckpt


def _check_alike(first_path: PathLike, first: Checkpoint, path: PathLike, ckpt: Checkpoint
                 ) -> None:
    """Refuse a member that reads tokens otherwise than the first, or learnt another split."""
    shape, other = replace(first.config, dropout=0.0), replace(ckpt.config, dropout=0.0)
    if shape != other:
        raise SpamkitError(f"{path} is not built as {first_path} ({other} vs {shape}): an "
                           "ensemble's members share one shape and token")
    if ckpt.labels != first.labels:
        raise SpamkitError(f"{path} has the labels {ckpt.labels} and {first_path} "
                           f"{first.labels}: an ensemble's members share their labels, in order")
    split, other_split = first.data.split_fields(), ckpt.data.split_fields()
    if split != other_split:
        raise SpamkitError(f"{path} was trained on another split than {first_path} "
                           f"({other_split} vs {split}): it may have learnt the ensemble's "
                           "test messages")


def join(ckpts: list[Checkpoint], sources: list[str]) -> Checkpoint:
    """One checkpoint whose model is the ensemble of `ckpts` (alike, as checked), recording
    where each member came from and how it was trained."""
    first = ckpts[0]
    model = Ensemble(replace(first.config, dropout=0.0), len(ckpts))
    for member, ckpt in zip(model.members, ckpts, strict=True):
        member.load_state_dict(ckpt.model.state_dict())
    training = {"members": [{"checkpoint": src, **ckpt.training}
                            for src, ckpt in zip(sources, ckpts, strict=True)]}
    return Checkpoint(model.eval(), first.labels, first.preset, first.data, training)


def score_splits(ckpt: Checkpoint, data: str | None) -> dict[str, dict[str, float]]:
    """Loss and accuracy of the checkpoint's model on each split of its data (or of `data`,
    split the same way), in PyTorch on the CPU in fp32, as train scores its kept epoch."""
    splits = relabel(load_splits(ckpt.data.with_path(data)), ckpt.labels, "the ensemble")
    tokenizer = gpt2_tokenizer(ckpt.config.context_length)
    cfg = TrainConfig(device="cpu", precision="fp32")
    final = {}
    with torch.no_grad():
        for name in ("train", "val", "test"):
            part = getattr(splits, name)
            final[name] = evaluate_split(ckpt.model, Encoded.of(part, tokenizer), cfg, Ranks())
    return final


def _test_accuracy(checkpoint: PathLike) -> float | None:
    """A member's own test accuracy, as its training recorded it."""
    try:
        metrics = json.loads((Path(checkpoint) / METRICS_FILE).read_text())
        return metrics["final"]["test"]["accuracy"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
