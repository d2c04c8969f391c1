"""Chapter 6 of Raschka's *Build a Large Language Model (From Scratch)* on spamkit's Python API:
GPT-2 fine-tuned to tell SMS spam from ham through a 2-class head on the last token.

    6.2      the SMS Spam Collection, balanced and split 70/10/20     spamkit.data
    6.3-6.5  GPT-2's weights, a 2-class head, the last block trained  TrainConfig
    6.6-6.7  loss, accuracy and the training loop                     spamkit.training.train
    6.8      classifying new messages                                 the saved checkpoint

Unlike the book's loaders, each batch is padded to its own longest message and the head reads
each message's last real token, not the padding after it (TrainConfig(pad_to="longest") is the
book's way).

    python examples/ch06_finetune.py                        # the book's run: gpt2, 5 epochs
    python examples/ch06_finetune.py --preset tiny --max-steps 20   # a quick look
"""

from __future__ import annotations

import argparse
import sys

from spamkit.config import INITS, PRESETS, TrainConfig
from spamkit.data import DataConfig, load_splits, resolve_data
from spamkit.errors import SpamkitError
from spamkit.tokenizer import gpt2_tokenizer
from spamkit.training.checkpoint import load_checkpoint
from spamkit.training.model import model_logits
from spamkit.training.pretrained import find_weights
from spamkit.training.train import train

BOOK_MESSAGES = [
    "You are a winner you have been specially selected to receive $1000 cash or a $2000 award.",
    "Hey, just wanted to check if we're still on for dinner tonight? Let me know!",
]


def options() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--preset", default="gpt2", choices=PRESETS, help="model shape (gpt2: 124M)")
    p.add_argument("--weights", help="GPT-2's model.safetensors, or its folder (default: the "
                   "Hugging Face cache or hub)")
    p.add_argument("--epochs", type=int, default=5)
    p.add_argument("--max-steps", type=int, help="stop after this many optimizer steps")
    p.add_argument("--data", help="SMSSpamCollection or the UCI zip (default: download it)")
    p.add_argument("--out", default="runs/ch06", help="the checkpoint (replaced if there)")
    return p.parse_args()


def pretrained(preset: str, weights: str | None) -> bool:
    """Whether GPT-2's weights of this shape are at --weights, or else in the Hugging Face cache
    or hub; without them (and no --weights), the shape trains from random weights."""
    if preset not in INITS:
        return False
    try:
        find_weights(preset, weights)
    except SpamkitError as e:
        if weights:
            raise
        print(f"training {preset} from random weights: {e}")
        return False
    return True


def main() -> None:
    args = options()
    # 6.2: as many ham as spam messages, cut 70/10/20 into train, validation and test
    data = DataConfig(path=str(resolve_data(args.data)), split="balanced")
    splits = load_splits(data)
    print(f"{len(splits.train)} training, {len(splits.val)} validation and {len(splits.test)} "
          f"test messages, labels {splits.labels}")

    # 6.4-6.5: the book trains the last block, the final LayerNorm and the new head
    if pretrained(args.preset, args.weights):
        recipe = dict(init=args.preset, trainable="last-block", lr=5e-5)
    else:  # from random weights every layer has to learn
        recipe = dict(init="random", trainable="all", lr=5e-4)
    cfg = TrainConfig(preset=args.preset, weights=args.weights, epochs=args.epochs,
                      max_steps=args.max_steps, batch_size=8, weight_decay=0.1, keep="last",
                      **recipe)

    # 6.6-6.7: cross-entropy on the last token's logits, AdamW, validation after each epoch
    metrics = train(cfg, data, args.out, force=True)
    for split, name in (("train", "Training"), ("val", "Validation"), ("test", "Test")):
        print(f"{name} accuracy: {metrics['final'][split]['accuracy']:.2%}")

    # 6.8: the book's classify_review: tokenize, run the model, take the larger logit
    ckpt = load_checkpoint(args.out)
    tokenizer = gpt2_tokenizer(ckpt.config.context_length)
    ids = tokenizer.encode_batch(BOOK_MESSAGES)
    logits = model_logits(ckpt.model, ids, tokenizer.pad_id, [list(range(len(ids)))])
    for text, label in zip(BOOK_MESSAGES, logits.argmax(-1), strict=True):
        print(f"{ckpt.labels[label]}: {text}")


if __name__ == "__main__":
    try:
        main()
    except SpamkitError as e:  # bad input: one line, as the spamkit command says it
        sys.exit(f"spamkit: error: {e}")
