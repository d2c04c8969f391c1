"""One set of random GPT-2 weights for every route of benchmarks/compare.py.

    python benchmarks/same_weights.py checkpoint OUT --preset gpt2 --seed 123 --data FILE
        a seeded random spamkit checkpoint (run in spamkit's venv; export it with spamkit export)
    python benchmarks/same_weights.py hf CHECKPOINT OUT --bpe-dir DIR
        the same weights as a Hugging Face GPT2ForSequenceClassification directory with GPT-2's
        tokenizer (run in the peers' venv, whose transformers optimum reads)

Random weights give near-even logits, so predictions say nothing about spam; the point is that
every route computes the same function on the same messages, which compare.py checks.
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

import torch

from spamkit.atomic import atomic_dir

LABELS = ["ham", "spam"]


def make_checkpoint(out: Path, preset: str, seed: int, data: str) -> None:
    from spamkit.config import preset_config
    from spamkit.data import DataConfig
    from spamkit.training.checkpoint import Checkpoint, save_checkpoint
    from spamkit.training.model import GPTClassifier

    torch.manual_seed(seed)
    model = GPTClassifier(preset_config(preset, num_classes=len(LABELS))).eval()
    ckpt = Checkpoint(model, LABELS, preset, DataConfig(path=data, seed=seed),
                      training={"init": "random", "seed": seed,
                                "note": "untrained, for benchmarks"})
    save_checkpoint(out, ckpt, metrics={})


def make_hf(checkpoint: Path, out: Path, bpe_dir: Path) -> None:
    from transformers import GPT2Config, GPT2ForSequenceClassification, GPT2TokenizerFast

    from spamkit.training.checkpoint import load_checkpoint
    from spamkit.training.pretrained import to_hf_names

    ckpt = load_checkpoint(checkpoint)
    shape = ckpt.config
    config = GPT2Config(vocab_size=shape.vocab_size, n_positions=shape.context_length,
                        n_layer=shape.n_layer, n_head=shape.n_head, n_embd=shape.n_embd,
                        num_labels=shape.num_classes, pad_token_id=50256,
                        id2label=dict(enumerate(ckpt.labels)),
                        label2id={name: i for i, name in enumerate(ckpt.labels)})
    model = GPT2ForSequenceClassification(config).eval()
    model.load_state_dict(to_hf_names(ckpt.model.state_dict()), strict=True)
    with atomic_dir(out) as tmp:
        # OpenAI's files under Hugging Face's names: encoder.json is vocab.json, vocab.bpe is
        # merges.txt.
        shutil.copy(bpe_dir / "encoder.json", tmp / "vocab.json")
        shutil.copy(bpe_dir / "vocab.bpe", tmp / "merges.txt")
        tokenizer = GPT2TokenizerFast(vocab_file=str(tmp / "vocab.json"),
                                      merges_file=str(tmp / "merges.txt"),
                                      model_max_length=shape.context_length)
        tokenizer.pad_token = tokenizer.eos_token
        tokenizer.save_pretrained(tmp)
        model.save_pretrained(tmp)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="step", required=True)
    ck = sub.add_parser("checkpoint")
    ck.add_argument("out", type=Path)
    ck.add_argument("--preset", default="gpt2")
    ck.add_argument("--seed", type=int, default=123)
    ck.add_argument("--data", required=True)
    hf = sub.add_parser("hf")
    hf.add_argument("checkpoint", type=Path)
    hf.add_argument("out", type=Path)
    hf.add_argument("--bpe-dir", type=Path, required=True)
    args = parser.parse_args()
    if args.step == "checkpoint":
        make_checkpoint(args.out, args.preset, args.seed, args.data)
    else:
        make_hf(args.checkpoint, args.out, args.bpe_dir)


if __name__ == "__main__":
    main()
