"""The int8 graph's labels on every ISA its target is meant for, checked from this host with the
kernel references (spamkit.export.kernel_reference), against the fp32 graph's labels."""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np

from spamkit.export.kernel_reference import (
    pairs_can_saturate,
    reference_graph,
    reference_logits,
)
from spamkit.export.targets import PORTABLE
from spamkit.runtime.isa import ARM64, EXACT, KERNELS, PAIRS16, X86_AVX2, X86_VNNI

# The kernels each target must be correct on: its own host class's, and for portable all.
TARGET_KERNELS = {X86_VNNI: (EXACT,), ARM64: (EXACT,), X86_AVX2: (PAIRS16,),
                  PORTABLE: tuple(sorted(set(KERNELS.values())))}


def reference_agreement(int8: Path, fp32_labels: np.ndarray, messages: list[list[int]],
                        pad_id: int, kernels: tuple[str, ...]) -> dict[str, float]:
    """For each kernel, the fraction of `messages` whose int8 label, as that kernel computes it,
    is the fp32 graph's label (`fp32_labels`, class indices)."""
    # Pair-safe weights: the pairs16 reference is the exact one, so it is not run twice.
    same = EXACT in kernels and PAIRS16 in kernels and not pairs_can_saturate(int8)
    agreement = {}
    with tempfile.TemporaryDirectory(dir=int8.parent) as tmp:
        for kernel in kernels:
            if same and kernel == PAIRS16:
                continue
            graph = Path(tmp) / f"reference.{kernel}.onnx"
            reference_graph(int8, graph, kernel)
            labels = reference_logits(graph, messages, pad_id).argmax(axis=1)
            agreement[kernel] = float(np.mean(labels == fp32_labels))
    if same:
        agreement[PAIRS16] = agreement[EXACT]
    return {kernel: agreement[kernel] for kernel in kernels}
