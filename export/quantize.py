"""int8 weights for the CPU graph, with ONNX Runtime's dynamic quantization."""

from __future__ import annotations

from pathlib import Path

from onnxruntime.quantization import QuantType, quantize_dynamic

from spamkit.export.quiet import quiet


def quantize_int8(fp32: Path, int8: Path) -> None:
    # Per-channel weight scales keep the int8 logits close to fp32; activations are quantized
    # at run time from each batch's range.
    with quiet(""):  # the quantizer logs advice on the root logger
        quantize_dynamic(fp32, int8, weight_type=QuantType.QInt8, per_channel=True)
