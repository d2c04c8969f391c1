"""Training speed of `spamkit train` on this machine: seconds per optimizer step and per epoch.

The routes of docs/performance.md's training-speed table, each a real `spamkit train` run in a
process of its own on the GPT-2 124M shape (random weights: speed does not depend on their
values), batch 8, the book's balanced split (1,045 training messages, 131 steps an epoch):

    python benchmarks/train_speed.py                 # every route, 10 steps each
    python benchmarks/train_speed.py --full          # and spamkit's defaults for 5 whole epochs

A route's steady step time leaves out its first step, which holds torch.compile's compiling
(shown apart); "5 epochs" is an estimate from the steady step time alone. --full runs the real
thing end to end: start-up, the frozen trunk's one pass, validation, saves and all.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

STEPS_PER_EPOCH = 131  # ceil(1045 / 8)
# The book's chapter 6 training loop and the levers measured for it, then spamkit's defaults
# (on a CPU: fp32, eager, each batch padded to its longest message, and with the last block
# training, the frozen trunk computed once).
ROUTES = {
    "book: eager fp32, pad 120": ["--precision", "fp32", "--no-compile", "--pad-to", "120",
                                  "--no-cache-frozen"],
    "compile + bf16, pad 120": ["--precision", "bf16", "--compile", "--pad-to", "120",
                                "--no-cache-frozen"],
    "eager bf16, pad to batch max": ["--precision", "bf16", "--no-compile", "--no-cache-frozen"],
    "spamkit defaults": [],
}
TRAINABLE = ("last-block", "all")


def train(args: list[str], out: Path) -> tuple[dict, float]:
    """Run `spamkit train ARGS --out OUT`; return its metrics.json and its wall time."""
    t0 = time.monotonic()
    subprocess.run([sys.executable, "-m", "spamkit", "train", *args, "--out", str(out)],
                   check=True, stdout=subprocess.DEVNULL)
    return json.loads((out / "metrics.json").read_text()), time.monotonic() - t0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True, help="SMSSpamCollection file")
    parser.add_argument("--steps", type=int, default=10, help="steps per route (default 10)")
    parser.add_argument("--trainable", nargs="+", default=list(TRAINABLE), choices=TRAINABLE)
    parser.add_argument("--routes", nargs="+", default=list(ROUTES), choices=list(ROUTES),
                        metavar="ROUTE")
    parser.add_argument("--full", action="store_true",
                        help="also time spamkit's defaults for 5 whole epochs, end to end")
    args = parser.parse_args()
    if args.steps < 2:
        parser.error("--steps must be at least 2 (the first one is left out)")
    common = ["--preset", "gpt2", "--batch-size", "8", "--device", "cpu", "--data", args.data]

    print(f"{'trainable':<11} {'route':<30} {'first step':>10} {'s/step':>7} {'s/epoch':>8} "
          f"{'5 epochs':>9}")
    with tempfile.TemporaryDirectory() as tmp:
        for trainable in args.trainable:
            for name in args.routes:
                out = Path(tmp) / f"{trainable}-{len(name)}"
                metrics, _ = train([*common, "--trainable", trainable, "--epochs", "1",
                                    "--max-steps", str(args.steps), *ROUTES[name]], out)
                h = metrics["history"][0]
                step = (h["train_seconds"] - h["first_step_seconds"]) / (h["steps"] - 1)
                epoch = step * STEPS_PER_EPOCH
                print(f"{trainable:<11} {name:<30} {h['first_step_seconds']:>9.2f}s "
                      f"{step:>6.3f}s {epoch:>7.1f}s {5 * epoch / 60:>7.1f}min", flush=True)
        if args.full:
            print("\nspamkit defaults, 5 epochs, end to end (process start to checkpoint):")
            for trainable in args.trainable:
                metrics, wall = train([*common, "--trainable", trainable], Path(tmp) / trainable)
                best = max(h["val_accuracy"] for h in metrics["history"])
                print(f"{trainable:<11} {wall / 60:.1f} min, best validation accuracy "
                      f"{best:.2%}, test {metrics['final']['test']['accuracy']:.2%}", flush=True)


if __name__ == "__main__":
    main()
