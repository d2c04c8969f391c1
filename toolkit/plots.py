"""PNG figures, rendered headless: training curves (the book's figures 6.16 and 6.17), the
confusion matrix and the precision-recall curve."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # no display on servers and CI

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from spamkit.atomic import atomic_file  # noqa: E402

MAX_TOP_LABELS = 6  # counts like "15,675" side by side on half of an 11-inch figure


def _save(fig, path: Path) -> None:
    with atomic_file(path) as tmp:
        fig.savefig(tmp, format="png", dpi=120, bbox_inches="tight")
    plt.close(fig)


def training_curves(history: list[dict], path: Path) -> None:
    """Loss and accuracy per epoch, with examples seen on a second x axis (as in the book)."""
    _save(curves_figure(history), path)


def curves_figure(history: list[dict]) -> matplotlib.figure.Figure:
    """The figure of training_curves: a label on every epoch, on the top axis only on every
    few where the counts of examples seen would run into each other."""
    epochs = [h["epoch"] for h in history]
    seen = [h["examples_seen"] for h in history]
    every = -(-len(epochs) // MAX_TOP_LABELS)
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    for ax, metric, title in ((axes[0], "loss", "Loss"), (axes[1], "accuracy", "Accuracy")):
        ax.plot(epochs, [h[f"train_{metric}"] for h in history], "o-", label=f"Training {metric}")
        ax.plot(epochs, [h[f"val_{metric}"] for h in history], "s--", label=f"Validation {metric}")
        ax.set_xlabel("Epochs")
        ax.set_ylabel(title)
        ax.set_xticks(epochs)
        ax.legend()
        top = ax.twiny()  # the same points against examples seen
        top.set_xlim(ax.get_xlim())
        top.set_xticks(epochs[::every], [f"{s:,}" for s in seen[::every]])
        top.set_xlabel("Examples seen")
    fig.tight_layout()
    return fig


def confusion_matrix(labels: list[str], confusion: list[list[int]], path: Path) -> None:
    counts = np.array(confusion)
    fig, ax = plt.subplots(figsize=(1.6 + 1.1 * len(labels), 1.2 + 1.1 * len(labels)))
    ax.imshow(counts, cmap="Blues")
    ax.set_xticks(range(len(labels)), labels)
    ax.set_yticks(range(len(labels)), labels)
    ax.set_xlabel("Predicted")
    ax.set_ylabel("True")
    for (i, j), n in np.ndenumerate(counts):
        color = "white" if n > counts.max() / 2 else "black"
        ax.text(j, i, str(n), ha="center", va="center", color=color)
    ax.set_title("Confusion matrix")
    _save(fig, path)


def precision_recall(curves: dict[str, tuple[np.ndarray, np.ndarray]], path: Path) -> None:
    """`curves`: class name -> (precision, recall) arrays."""
    fig, ax = plt.subplots(figsize=(5.5, 4.5))
    for name, (precision, recall) in curves.items():
        ax.step(recall, precision, where="post", label=name)
    ax.set_xlabel("Recall")
    ax.set_ylabel("Precision")
    ax.set_xlim(0, 1.01)
    ax.set_ylim(0, 1.01)
    ax.set_title("Precision-recall")
    ax.legend(title="positive class")
    _save(fig, path)
