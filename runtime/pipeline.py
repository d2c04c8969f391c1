"""`Classifier(...)` answers in the shape of a transformers text-classification pipeline, so
code written for `pipeline("text-classification")` runs on a bundle unchanged.

The shapes are transformers' (TextClassificationPipeline, transformers 4.40 to 5.x):
- top_k not given: one {"label", "score"} dict per text, in a list, a single string included
  (`clf("hi")` -> [{"label": "ham", "score": 0.99}]).
- top_k given (an int, or None for every class): per text, a list of such dicts, most probable
  first; a single string gives that list, a list of texts one list per text.
"""

from __future__ import annotations

import numbers

import numpy as np


class _TopKNotGiven:
    def __repr__(self) -> str:
        return "<top_k not given>"


# transformers tells "top_k not given" (one dict per text) from top_k=None (every class).
TOP_K_NOT_GIVEN = _TopKNotGiven()


def check_top_k(top_k: object) -> None:
    """Unless top_k is not given, None, or an int of at least 1: TypeError for another type,
    ValueError for an int below 1."""
    if top_k is TOP_K_NOT_GIVEN or top_k is None:
        return
    if not isinstance(top_k, numbers.Integral) or isinstance(top_k, bool):
        raise TypeError(f"top_k must be None (every class) or an int, not {top_k!r}")
    if top_k < 1:
        raise ValueError(f"top_k must be at least 1 (or None: every class), not {top_k!r}")


def pipeline_results(labels: list[str], proba: np.ndarray, decided: np.ndarray,
                     top_k: object, single: bool) -> list:
    """transformers' answer for `proba` ([n, classes]); `decided`: each row's class index (what
    Classifier.predict answers), the label given when top_k is not given."""
    if top_k is TOP_K_NOT_GIVEN:
        return [{"label": labels[i], "score": float(p[i])} for i, p in zip(decided, proba)]
    ranked = []
    for p in proba:
        scores = [{"label": name, "score": float(s)} for name, s in zip(labels, p)]
        scores.sort(key=lambda x: x["score"], reverse=True)  # stable: ties keep label order
        ranked.append(scores[:top_k])
    return ranked[0] if single else ranked
