"""Check an exported graph against the PyTorch model it came from, on real messages."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnxruntime as ort
import torch

from spamkit.model import GPTClassifier
from spamkit.runtime.classifier import pad_batch
from spamkit.runtime.tokenizer import Tokenizer

BATCH_SIZES = (1, 2, 5, 16)


@dataclass(frozen=True)
class LogitCheck:
    max_diff: float  # largest |ONNX - PyTorch| (NaN if either gave NaN)
    max_logit: float  # largest |PyTorch logit|: the scale a rounding error is judged against


def compare_logits(
    model: GPTClassifier, graph: Path, tokenizer: Tokenizer, texts: list[str]
) -> LogitCheck:
    """ONNX (on the CPU) against PyTorch fp32 over the logits of `texts`, run in batches of
    several sizes so that padding and batch shape are exercised too."""
    session = ort.InferenceSession(str(graph), providers=["CPUExecutionProvider"])
    ids = tokenizer.encode_batch(texts)
    worst, scale, start = 0.0, 0.0, 0
    model = model.eval().float()
    for size in BATCH_SIZES * (len(ids) // sum(BATCH_SIZES) + 1):
        batch = ids[start : start + size]
        if not batch:
            break
        start += size
        input_ids, mask = pad_batch(batch, tokenizer.pad_id)
        got = session.run(["logits"], {"input_ids": input_ids, "attention_mask": mask})[0]
        with torch.no_grad():
            want = model(torch.from_numpy(input_ids), torch.from_numpy(mask)).numpy()
        # np.max, unlike max(), keeps a NaN.
        worst = float(np.max([worst, np.abs(got - want).max()]))
        scale = max(scale, float(np.abs(want).max()))
    return LogitCheck(worst, scale)
