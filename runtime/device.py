"""Choose ONNX Runtime execution providers for a device name."""

from __future__ import annotations

import logging

import onnxruntime as ort

from spamkit.errors import SpamkitError

log = logging.getLogger("spamkit.runtime")

DEVICES = ("cpu", "cuda", "auto")


def providers_for(device: str) -> tuple[list[str], str]:
    """Return (providers, the device that will run). "cuda" never falls back silently."""
    if device not in DEVICES:
        raise ValueError(f"device must be one of {DEVICES}, not {device!r}")
    has_cuda = "CUDAExecutionProvider" in ort.get_available_providers()
    if device == "cuda" and not has_cuda:
        raise SpamkitError(
            "device='cuda' needs ONNX Runtime's CUDA provider, which this install lacks "
            f"(available: {', '.join(ort.get_available_providers())}); install spamkit[gpu] "
            "(onnxruntime-gpu) on a machine with CUDA, or use device='cpu' or 'auto'"
        )
    if device == "cuda" or (device == "auto" and has_cuda):
        return ["CUDAExecutionProvider", "CPUExecutionProvider"], "cuda"
    if device == "auto":
        log.warning("spamkit: no CUDA execution provider available, running on CPU")
    return ["CPUExecutionProvider"], "cpu"
