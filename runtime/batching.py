"""Messages into batches: which messages run together, and the graph's padded inputs for them.
numpy only, so that export and the PyTorch side batch exactly as the runtime does."""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence

import numpy as np


def pad_batch(batch: list[list[int]], pad_id: int) -> tuple[np.ndarray, np.ndarray]:
    """Right-pad token ids to the batch's longest: the graph's input_ids and attention_mask."""
    width = max(len(x) for x in batch)
    input_ids = np.full((len(batch), width), pad_id, dtype=np.int64)
    mask = np.zeros((len(batch), width), dtype=np.int64)
    for i, x in enumerate(batch):
        input_ids[i, : len(x)] = x
        mask[i, : len(x)] = 1
    return input_ids, mask


def length_sorted_batches(lengths: Sequence[int], batch_size: int,
                          batch_tokens: float = math.inf) -> Iterator[list[int]]:
    """Indices of the messages whose token counts are `lengths`, shortest first, in runs of at
    most `batch_size` messages and `batch_tokens` padded tokens (a message longer than the cap
    runs alone). Similar lengths waste little compute on padding."""
    rows: list[int] = []
    for i in sorted(range(len(lengths)), key=lengths.__getitem__):
        if rows and (len(rows) == batch_size or (len(rows) + 1) * lengths[i] > batch_tokens):
            yield rows
            rows = []
        rows.append(i)
    if rows:
        yield rows
