"""Check an exported graph against the model it came from (spamkit's PyTorch model, or
transformers' own for a transformers classifier), on real messages."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnxruntime as ort

from spamkit.runtime.batching import pad_batch
from spamkit.runtime.bundle import ATTENTION_MASK, INPUT_IDS, LOGITS
from spamkit.runtime.tokenizer import Tokenizer
from spamkit.training.model import GPTClassifier, model_logits

BATCH_SIZES = (1, 2, 5, 16)


@dataclass(frozen=True)
class LogitCheck:
    max_diff: float  # largest |ONNX - reference| (NaN if either gave NaN)
    max_logit: float  # largest |reference logit|: the scale a rounding error is judged against


@dataclass(frozen=True)
class Reference:
    """What a graph's logits are checked against: `name`, for messages, and `logits(ids,
    batches, pad_id)`, which gives the [messages, classes] logits of `ids` once for each way
    the reference computes them (`batches` and `pad_id`: how the graph is run)."""

    name: str
    logits: Callable[[list[list[int]], list[list[int]], int], list[np.ndarray]]


def torch_reference(model: GPTClassifier) -> Reference:
    """spamkit's PyTorch model in fp32, run on the very batches the graph is.

    Args:
        model: the model the graph was exported from.

    Returns:
        The reference export checks the graphs of `model` against.
    """
    def logits(ids: list[list[int]], batches: list[list[int]], pad_id: int) -> list[np.ndarray]:
        return [model_logits(model.eval().float(), ids, pad_id, batches)]

    return Reference("PyTorch", logits)


def compare_logits(
    reference: Reference, graph: Path, tokenizer: Tokenizer, texts: list[str]
) -> LogitCheck:
    """ONNX (on the CPU) against `reference` over the logits of `texts`, run in batches of
    several sizes so that padding and batch shape are exercised too."""
    session = ort.InferenceSession(str(graph), providers=["CPUExecutionProvider"])
    ids = tokenizer.encode_batch(texts)
    batches = list(mixed_batches(len(ids)))
    want = np.stack(reference.logits(ids, batches, tokenizer.pad_id))  # [ways, messages, classes]
    got = np.empty_like(want[0])
    for rows in batches:
        input_ids, mask = pad_batch([ids[i] for i in rows], tokenizer.pad_id)
        got[rows] = session.run([LOGITS], {INPUT_IDS: input_ids, ATTENTION_MASK: mask})[0]
    # np.max, unlike max(), keeps a NaN.
    worst = float(np.max(np.abs(got - want), initial=0.0))
    return LogitCheck(worst, float(np.abs(want).max(initial=0.0)))


def mixed_batches(n: int) -> Iterator[list[int]]:
    """Indices 0..n-1 in order, in batches of BATCH_SIZES' sizes in turn."""
    start = 0
    for size in itertools.cycle(BATCH_SIZES):
        if start >= n:
            return
        yield list(range(start, min(start + size, n)))
        start += size
