"""Classify messages with spamkit.runtime and print the result as JSON: run by the aarch64
CPython of tests/arm64, whose `arm64` test compares it with the same classification on x86.

    tests/arm64/python tests/arm64/classify.py BUNDLE MESSAGES.json
"""

import json
import platform
import sys

import numpy as np

from spamkit.runtime import Classifier
from spamkit.runtime.bundle import GRAPH_FORMATS


def classify(bundle: str, texts: list[str], graph_format: str) -> dict:
    """The logits of the bundle's default graph in `graph_format`, and the labels `predict`
    gives (from those logits: one pass through the graph, not two, under qemu's emulation)."""
    clf = Classifier.load(bundle, graph_format=graph_format)
    logits = clf.logits(texts)
    e = np.exp(logits - logits.max(axis=-1, keepdims=True))
    return {"graph": clf.manifest.graph_file(clf.precision, graph_format),
            "labels": clf.decide_labels(e / e.sum(axis=-1, keepdims=True)),
            "logits": logits.tolist()}


def main(bundle: str, messages: str) -> None:
    with open(messages, encoding="utf-8") as f:
        texts = json.load(f)
    print(json.dumps({"machine": platform.machine(),
                      **{fmt: classify(bundle, texts, fmt) for fmt in GRAPH_FORMATS}}))


if __name__ == "__main__":
    main(*sys.argv[1:])
