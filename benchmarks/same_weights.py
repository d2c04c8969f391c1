"""One set of random GPT-2 weights for every route of benchmarks/compare.py.

    python benchmarks/same_weights.py hf OUT --preset gpt2 --seed 123
        a seeded random transformers GPT2ForSequenceClassification folder (save_pretrained) with
        GPT-2's tokenizer: what compare.py runs every route from (run in spamkit's venv, whose
        transformers writes it)
    python benchmarks/same_weights.py checkpoint OUT --preset gpt2 --seed 123 --data FILE
        the same weights as a spamkit checkpoint (for spamkit's own commands)

Both come from spamkit's GPTClassifier initialised after torch.manual_seed(seed), so a preset and
seed name the same weights in either form. Random weights give near-even logits, so predictions
say nothing about spam; the point is that every route computes the same function on the same
messages, which compare.py checks.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

from spamkit.atomic import atomic_dir

LABELS = ["ham", "spam"]
PAD_ID = 50256  # <|endoftext|>, as the usual transformers recipe pads GPT-2


def seeded_model(preset: str, seed: int):
    """spamkit's classifier of `preset`'s shape, initialised after torch.manual_seed(seed)."""
    from spamkit.config import preset_config
    from spamkit.training.model import GPTClassifier

    torch.manual_seed(seed)
    return GPTClassifier(preset_config(preset, num_classes=len(LABELS))).eval()


def make_checkpoint(out: Path, preset: str, seed: int, data: str) -> None:
    from spamkit.data import DataConfig
    from spamkit.training.checkpoint import Checkpoint, save_checkpoint

    ckpt = Checkpoint(seeded_model(preset, seed), LABELS, preset,
                      DataConfig(path=data, seed=seed),
                      training={"init": "random", "seed": seed,
                                "note": "untrained, for benchmarks"})
    save_checkpoint(out, ckpt, metrics={})


def make_hf(out: Path, preset: str, seed: int) -> None:
    from transformers import GPT2Config, GPT2ForSequenceClassification, GPT2TokenizerFast

    from spamkit.tokenizer import gpt2_bpe_files
    from spamkit.training.pretrained import to_hf_names

    model = seeded_model(preset, seed)
    shape = model.config
    config = GPT2Config(vocab_size=shape.vocab_size, n_positions=shape.context_length,
                        n_layer=shape.n_layer, n_head=shape.n_head, n_embd=shape.n_embd,
                        num_labels=len(LABELS), pad_token_id=PAD_ID,
                        id2label=dict(enumerate(LABELS)),
                        label2id={name: i for i, name in enumerate(LABELS)})
    hf = GPT2ForSequenceClassification(config).eval()
    hf.load_state_dict(to_hf_names(model.state_dict()), strict=True)
    vocab, merges = gpt2_bpe_files()
    with atomic_dir(out) as tmp:
        # OpenAI's files under Hugging Face's names, read back by transformers' tokenizer.
        (tmp / "vocab.json").write_text(json.dumps(vocab))
        (tmp / "merges.txt").write_text("#version: 0.2\n" + "\n".join(merges) + "\n")
        tokenizer = GPT2TokenizerFast.from_pretrained(tmp, model_max_length=shape.context_length)
        tokenizer.pad_token = tokenizer.eos_token
        tokenizer.save_pretrained(tmp)
        hf.save_pretrained(tmp)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="step", required=True)
    steps = {"hf": sub.add_parser("hf"), "checkpoint": sub.add_parser("checkpoint")}
    for step in steps.values():
        step.add_argument("out", type=Path)
        step.add_argument("--preset", default="gpt2")
        step.add_argument("--seed", type=int, default=123)
    steps["checkpoint"].add_argument("--data", required=True)
    args = parser.parse_args()
    if args.step == "checkpoint":
        make_checkpoint(args.out, args.preset, args.seed, args.data)
    else:
        make_hf(args.out, args.preset, args.seed)


if __name__ == "__main__":
    main()
