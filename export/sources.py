"""What `spamkit export` reads, told apart here and only here: a spamkit checkpoint, or a
transformers GPT2ForSequenceClassification (a save_pretrained folder, or hf://org/name[@revision]
through the Hugging Face cache); and what its graphs' logits are checked against: spamkit's own
PyTorch model for a checkpoint, transformers' own model for a transformers folder.

transformers is imported only on that path (it comes with the `train` extra).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from spamkit.export.verify import Reference, torch_reference
from spamkit.extras import require
from spamkit.runtime.batching import pad_batch
from spamkit.runtime.hub import is_hub_reference
from spamkit.training.checkpoint import Checkpoint, load_checkpoint
from spamkit.training.hf_classifier import (
    TRANSFORMERS,
    HFClassifier,
    folder_kind,
    hub_folder,
    load_hf_classifier,
)


@dataclass(frozen=True)
class Source:
    checkpoint: Checkpoint  # the model in spamkit's form, which the graphs are exported from
    reference: Reference  # what the exported graphs' logits must match


def open_source(given: str | os.PathLike[str]) -> Source:
    """The model `given` names, and the reference its graphs are checked against.

    Args:
        given: a checkpoint folder, a transformers GPT2ForSequenceClassification folder, or an
            hf://org/name[@revision] reference to one.

    Returns:
        The model as a Checkpoint, with its reference.
    """
    folder = hub_folder(str(given)) if is_hub_reference(str(given)) else Path(given)
    if folder_kind(folder) != TRANSFORMERS:
        checkpoint = load_checkpoint(folder)
        return Source(checkpoint, torch_reference(checkpoint.model))
    require("transformers", f"exporting {given}, a transformers model,")
    hf = load_hf_classifier(folder)
    return Source(hf.checkpoint, transformers_reference(hf))


def transformers_reference(hf: HFClassifier) -> Reference:
    """transformers' GPT2ForSequenceClassification, loaded from the folder by transformers
    itself, in fp32 and eval mode.

    Args:
        hf: the classifier, as spamkit read it.

    Returns:
        The reference: each message alone, and in padded batches when transformers can pad.
    """
    import transformers

    transformers.logging.set_verbosity_error()  # its load report is not the user's concern
    transformers.logging.disable_progress_bar()
    # In fp32 whatever the weights were saved in, as spamkit's graph computes.
    model = transformers.GPT2ForSequenceClassification.from_pretrained(hf.folder).float().eval()

    def logits(ids: list[list[int]], batches: list[list[int]], _: int) -> list[np.ndarray]:
        return _transformers_logits(model, ids, batches, hf.pad_token_id)

    return Reference("transformers", logits)


@torch.no_grad()
def _transformers_logits(model, ids: list[list[int]], batches: list[list[int]],
                         pad: int | None) -> list[np.ndarray]:
    """transformers' logits of each message alone, and (when it can batch: it needs a
    pad_token_id) in `batches`, right-padded with its pad_token_id under an attention mask."""
    alone = np.stack([model(input_ids=torch.tensor([x])).logits[0].numpy() for x in ids])
    if pad is None:
        return [alone]
    batched = np.empty_like(alone)
    for rows in batches:
        input_ids, mask = pad_batch([ids[i] for i in rows], pad)
        batched[rows] = model(input_ids=torch.from_numpy(input_ids),
                              attention_mask=torch.from_numpy(mask)).logits.numpy()
    return [alone, batched]
