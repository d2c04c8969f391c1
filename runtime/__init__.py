"""Classify text with a spamkit bundle through ONNX Runtime. Never imports torch.

    from spamkit.runtime import Classifier
    clf = Classifier.load("runs/demo/bundle")
    clf.predict(["WINNER!! Claim your prize now", "see you at 6?"])  # ['spam', 'ham']

Pin the bundle to the digest `spamkit export` printed, and any other bundle is refused:

    clf = Classifier.load("runs/demo/bundle", digest="9f86d08...")  # all 64 hex digits

As a transformers pipeline answers, and with scikit-learn's `classes_`:

    clf("WINNER!! Claim your prize now")  # [{'label': 'spam', 'score': 0.98}]
    clf(["a", "b"], top_k=None)  # per text, every class, most probable first
    clf.classes_  # array(['ham', 'spam']): the columns of clf.predict_proba(texts)

Typed for `mypy --strict` (`predict` answers a str for a str, a list for a list), with a batch
size per call, labels yielded as an endless stream goes, a bare Hub id, and pickling as what
loads it again (the bundle's path or reference and digest: Ray and multiprocessing send it so):

    labels = clf.predict(texts, batch_size=64)
    for label in clf.iter_predict(line.rstrip("\n") for line in sys.stdin): ...
    clf = Classifier.load("org/name")  # hf://org/name, where no folder org/name is here

ONNX Runtime's own providers and session options, as given (leave `device` out):

    options = onnxruntime.SessionOptions(); options.intra_op_num_threads = 2
    Classifier.load("runs/demo/bundle", providers=["CoreMLExecutionProvider",
                    "CPUExecutionProvider"], session_options=options)
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from spamkit.runtime.bundle import Manifest
    from spamkit.runtime.classifier import Classifier
    from spamkit.runtime.errors import BundleError

__all__ = ["BundleError", "Classifier", "Manifest"]
# Imported on first use (PEP 562), so that spamkit.runtime.errors and spamkit.runtime.bundle
# load without ONNX Runtime and numpy.
_HOMES = {"BundleError": "errors", "Classifier": "classifier", "Manifest": "bundle"}


def __getattr__(name: str) -> object:
    if name not in _HOMES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{_HOMES[name]}"), name)
