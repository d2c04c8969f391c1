"""`spamkit eval` and `spamkit calibrate`: score a checkpoint or a bundle on a data split.

A bundle is scored through `spamkit.runtime`, so the figures are what an app gets; a checkpoint
through PyTorch."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from spamkit.config import SPLIT_NAMES
from spamkit.data import DataConfig, Examples, data_file, load_splits, read_messages
from spamkit.errors import SpamkitError
from spamkit.export.manifest import write_manifest
from spamkit.metrics import Report, precision_recall_curve, report
from spamkit.runtime.bundle import MANIFEST_FILE, read_manifest
from spamkit.runtime.hub import refuse_hub_bundle

CHECKPOINT_BATCH_SIZE = 32  # messages per PyTorch batch when a checkpoint is scored


def _argmax(proba: np.ndarray) -> np.ndarray:
    return proba.argmax(axis=-1)


@dataclass
class LoadedModel:
    """A bundle (through the runtime) or a checkpoint (through PyTorch), ready to score."""

    labels: list[str]
    predict_proba: Callable[[list[str]], np.ndarray]
    data: DataConfig  # how the model's training data was split
    decide: Callable[[np.ndarray], np.ndarray] = _argmax  # probabilities -> class ids
    isa: dict = field(default_factory=dict)  # a bundle's: this host's ISA, the graph's target


def load_model(path: str | Path, precision: str | None = None, device: str = "cpu",
               digest: str | None = None) -> LoadedModel:
    """A bundle or a checkpoint, ready to score.

    Args:
        path: a bundle (Classifier.load) or a spamkit checkpoint (PyTorch, on the CPU).
        precision: a bundle's graph (default: the smallest meant for `device`).
        device: a bundle's device: cpu, cuda or auto.
        digest: refuse any bundle but the one with this digest.

    Returns:
        The model's labels, probabilities, data split and decision rule.

    Raises:
        SpamkitError: neither a bundle nor a checkpoint, a bundle that fails its checks
            (BundleError), or a bundle's options given with a checkpoint.
    """
    path = Path(path)
    if (path / MANIFEST_FILE).is_file():
        from spamkit.runtime import BundleError, Classifier

        clf = Classifier.load(path, device=device, precision=precision, digest=digest)
        try:
            data = DataConfig(**clf.manifest.data)
        except TypeError:
            raise BundleError(f"{path / MANIFEST_FILE} records a data split spamkit does not "
                              f"know: {sorted(clf.manifest.data)}") from None
        # clf.decide applies a calibrated threshold, as clf.predict does in an app.
        from spamkit.runtime.isa import isa_facts

        return LoadedModel(clf.labels, clf.predict_proba, data, clf.decide,
                           isa_facts(clf.precision, clf.manifest.int8_target))
    if precision is not None or device != "cpu" or digest is not None:
        raise SpamkitError("--precision, --device and --digest are for a bundle; a checkpoint "
                           "runs in PyTorch on the CPU")
    from spamkit.training.checkpoint import load_checkpoint

    ckpt = load_checkpoint(path)  # names the problem if `path` is neither
    return LoadedModel(ckpt.labels, _torch_predict_proba(ckpt), ckpt.data)


def _torch_predict_proba(ckpt) -> Callable[[list[str]], np.ndarray]:
    import torch

    from spamkit.runtime.batching import length_sorted_batches
    from spamkit.tokenizer import gpt2_tokenizer
    from spamkit.training.model import model_logits

    tokenizer = gpt2_tokenizer(ckpt.config.context_length)

    def predict_proba(texts: list[str]) -> np.ndarray:
        ids = tokenizer.encode_batch(texts)
        batches = length_sorted_batches([len(x) for x in ids], CHECKPOINT_BATCH_SIZE)
        logits = model_logits(ckpt.model, ids, tokenizer.pad_id, batches)
        return torch.softmax(torch.from_numpy(logits), dim=-1).numpy()

    return predict_proba


def examples_for(model: LoadedModel, data: str | None, split: str) -> Examples:
    """The messages of `split`, split the way the model's training data was.

    Args:
        model: the model, whose recorded data split is used.
        data: another data file to split the same way (default: the model's own, which must
            have the sha256 it recorded).
        split: train, val, test, or all (the whole file).

    Returns:
        The messages and their class ids in the model's order.

    Raises:
        SpamkitError: an unknown split, data that cannot be read or is not the model's,
            labels the model does not know, or an empty split.
    """
    if split not in SPLIT_NAMES:
        raise SpamkitError(f"unknown --split {split!r}; choose from {', '.join(SPLIT_NAMES)}")
    cfg = model.data.with_path(data)
    if split == "all":
        texts, names = read_messages(data_file(cfg)[0], cfg.text_column, cfg.label_column)
        labels = sorted(set(names))
    else:
        splits = load_splits(cfg)
        labels, part = splits.labels, getattr(splits, split)
        texts, names = part.texts, [splits.labels[y] for y in part.labels]
    unknown = sorted(set(labels) - set(model.labels))
    if unknown:
        raise SpamkitError(f"the data's labels {labels} differ from the model's {model.labels}"
                           f" ({', '.join(unknown)} unknown to the model)")
    if not texts:
        raise SpamkitError(f"the {split} split is empty")
    index = {name: i for i, name in enumerate(model.labels)}
    return Examples(texts, [index[n] for n in names])


def score_examples(model: LoadedModel, examples: Examples) -> tuple[Report, np.ndarray]:
    """The model's report on `examples`, and its class probabilities for each.

    Args:
        model: the model to run (load_model).
        examples: the messages and their true class ids (examples_for).

    Returns:
        The report (accuracy, per-class precision and recall, confusion matrix) and the
        probabilities [messages, classes].
    """
    probs = model.predict_proba(examples.texts)
    return report(model.labels, np.array(examples.labels), model.decide(probs)), probs


def pr_curves(labels: list[str], truth: np.ndarray, probs: np.ndarray) -> dict:
    """One-vs-rest precision-recall per class; for two classes only the second ("spam")."""
    classes = [1] if len(labels) == 2 else range(len(labels))
    curves = {}
    for c in classes:
        _, precision, recall = precision_recall_curve(truth == c, probs[:, c])
        curves[labels[c]] = (precision, recall)
    return curves


@dataclass(frozen=True)
class Calibration:
    label: str
    threshold: float
    precision: float
    recall: float
    target_precision: float
    messages: int
    digest: str  # the bundle's new digest: storing the threshold rewrote its manifest


def calibrate_bundle(bundle: str | Path, data: str | None, target: float,
                     label: str | None = None) -> Calibration:
    """Store in the bundle the smallest probability threshold for `label` whose precision on
    the validation split reaches `target`: the one that keeps the most recall.

    Args:
        bundle: a local bundle; its manifest is rewritten, which changes its digest.
        data: the data file to split (default: the model's training data).
        target: the precision to reach, in (0, 1].
        label: the class to calibrate (default: the second of two, "spam").

    Returns:
        The threshold, its validation precision and recall, and the bundle's new digest.

    Raises:
        SpamkitError: a target outside (0, 1], a Hub bundle, not a bundle, an unknown or
            unnamed label, or no threshold that reaches the target.
    """
    if not 0 < target <= 1:
        raise SpamkitError(f"--target-precision must be in (0, 1], not {target}")
    refuse_hub_bundle(bundle, "spamkit calibrate")  # its files are a Hub commit's
    read_manifest(bundle)  # only a bundle is updated: anything else is refused before scoring
    model = load_model(bundle)
    if label is None:
        if len(model.labels) != 2:
            raise SpamkitError(f"name the class to calibrate with --label ({model.labels})")
        label = model.labels[1]
    if label not in model.labels:
        raise SpamkitError(f"--label {label!r} is not one of the model's labels {model.labels}")
    c = model.labels.index(label)
    val = examples_for(model, data, "val")
    truth = np.array(val.labels) == c
    if not truth.any():
        raise SpamkitError(f"the validation split has no {label!r} messages to calibrate on")
    scores = model.predict_proba(val.texts)[:, c]
    thresholds, precision, recall = precision_recall_curve(truth, scores)
    ok = np.flatnonzero(precision >= target)
    if len(ok) == 0:
        best = int(np.argmax(precision))
        raise SpamkitError(
            f"no threshold reaches {label} precision {target:.2%} on the {len(val)} validation "
            f"messages (best {precision[best]:.2%} at threshold {thresholds[best]:.4f})"
        )
    i = ok[0]
    stored = {"label": label, "value": float(thresholds[i]), "target_precision": target,
              "val_precision": float(precision[i]), "val_recall": float(recall[i])}
    digest = write_manifest(bundle, replace(read_manifest(bundle), threshold=stored))
    return Calibration(label, stored["value"], stored["val_precision"], stored["val_recall"],
                       target, len(val), digest)
