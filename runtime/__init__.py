"""Classify text with a spamkit bundle through ONNX Runtime. Never imports torch.

    from spamkit.runtime import Classifier
    clf = Classifier.load("runs/demo/bundle")
    clf.predict(["WINNER!! Claim your prize now", "see you at 6?"])  # ['spam', 'ham']

Pin the bundle to the digest `spamkit export` printed, and any other bundle is refused:

    clf = Classifier.load("runs/demo/bundle", digest="9f86d08...")  # all 64 hex digits
"""

from spamkit.runtime.bundle import BundleError, Manifest
from spamkit.runtime.classifier import Classifier

__all__ = ["BundleError", "Classifier", "Manifest"]
