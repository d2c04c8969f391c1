"""Classify text with a spamkit bundle through ONNX Runtime. Never imports torch.

    from spamkit.runtime import Classifier
    clf = Classifier.load("runs/demo/bundle")
    clf.predict(["WINNER!! Claim your prize now", "see you at 6?"])  # ['spam', 'ham']
"""

from spamkit.runtime.bundle import BundleError, Manifest
from spamkit.runtime.classifier import Classifier

__all__ = ["BundleError", "Classifier", "Manifest"]
