"""Classification metrics from predicted probabilities (NumPy only, so the runtime's output and
PyTorch's go through the same code)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Report:
    labels: list[str]
    accuracy: float
    precision: list[float]  # per class
    recall: list[float]
    f1: list[float]
    support: list[int]
    confusion: list[list[int]]  # rows: true class, columns: predicted class

    def to_json(self) -> dict:
        per_class = {
            name: {"precision": p, "recall": r, "f1": f, "support": n}
            for name, p, r, f, n in zip(self.labels, self.precision, self.recall, self.f1,
                                        self.support)
        }
        return {"accuracy": self.accuracy, "classes": per_class, "confusion_matrix": {
            "labels": self.labels, "rows_true_columns_predicted": self.confusion}}

    def table(self) -> str:
        width = max(len(n) for n in [*self.labels, "class"]) + 2
        lines = [f"accuracy {self.accuracy:.2%} on {sum(self.support)} messages", "",
                 f"{'class':<{width}}{'precision':>10}{'recall':>10}{'f1':>10}{'support':>10}"]
        for name, p, r, f, n in zip(self.labels, self.precision, self.recall, self.f1,
                                    self.support):
            lines.append(f"{name:<{width}}{p:>10.2%}{r:>10.2%}{f:>10.2%}{n:>10}")
        lines += ["", "confusion matrix (rows: true, columns: predicted)",
                  " " * width + "".join(f"{n:>10}" for n in self.labels)]
        for name, row in zip(self.labels, self.confusion):
            lines.append(f"{name:<{width}}" + "".join(f"{c:>10}" for c in row))
        return "\n".join(lines)


def _ratio(a: float, b: float) -> float:
    return float(a / b) if b else 0.0


def report(labels: list[str], truth: np.ndarray, predicted: np.ndarray) -> Report:
    k = len(labels)
    confusion = np.zeros((k, k), dtype=np.int64)
    np.add.at(confusion, (truth, predicted), 1)
    tp = np.diag(confusion)
    precision = [_ratio(tp[c], confusion[:, c].sum()) for c in range(k)]
    recall = [_ratio(tp[c], confusion[c].sum()) for c in range(k)]
    f1 = [_ratio(2 * p * r, p + r) for p, r in zip(precision, recall)]
    return Report(labels, _ratio(tp.sum(), confusion.sum()), precision, recall, f1,
                  confusion.sum(axis=1).tolist(), confusion.tolist())


def precision_recall_curve(is_positive: np.ndarray, score: np.ndarray):
    """Precision and recall when "positive" means score >= t, for every distinct score t
    (ascending). Recall falls as t rises; precision need not move monotonically."""
    order = np.argsort(-score, kind="stable")
    score, is_positive = score[order], is_positive[order].astype(np.int64)
    # The last index of each run of equal scores: a threshold takes all of them at once.
    last = np.r_[np.flatnonzero(np.diff(score)), len(score) - 1]
    tp = np.cumsum(is_positive)[last]
    predicted = last + 1
    precision = tp / predicted
    recall = tp / max(is_positive.sum(), 1)
    return score[last][::-1], precision[::-1], recall[::-1]
