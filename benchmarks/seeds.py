"""Test accuracy of a `spamkit train` recipe over several split seeds.

The balanced SMS test set has ~300 messages (one message = 0.33 points), so a single split is
noisy; the accuracy figures in docs/experiments.md are means over five seeds from this script.

    python benchmarks/seeds.py --seeds 123 124 125 126 127 -- --preset mini --epochs 5
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[123, 124, 125, 126, 127])
    parser.add_argument("--json", action="store_true", help="print one JSON object at the end")
    parser.add_argument("train_args", nargs=argparse.REMAINDER,
                        help="after --: spamkit train flags")
    args = parser.parse_args()
    train_args = [a for a in args.train_args if a != "--"]
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for seed in args.seeds:
            out = Path(tmp) / f"seed{seed}"
            t0 = time.perf_counter()
            subprocess.run([sys.executable, "-m", "spamkit", "train", *train_args,
                            "--seed", str(seed), "--out", str(out)], check=True,
                           stdout=subprocess.DEVNULL)
            metrics = json.loads((out / "metrics.json").read_text())
            final = metrics["final"]
            results.append({"seed": seed, "seconds": time.perf_counter() - t0,
                            "kept_epoch": metrics["kept_epoch"],
                            **{f"{k}_accuracy": final[k]["accuracy"] for k in final}})
            r = results[-1]
            print(f"seed {seed}: train {r['train_accuracy']:.2%} val {r['val_accuracy']:.2%} "
                  f"test {r['test_accuracy']:.2%} (kept epoch {r['kept_epoch']}, "
                  f"{r['seconds']:.0f}s)", flush=True)
    tests = [r["test_accuracy"] for r in results]
    spread = statistics.stdev(tests) if len(tests) > 1 else 0.0
    print(f"test accuracy over {len(tests)} seeds: mean {statistics.mean(tests):.2%}, "
          f"std {spread:.2%}, min {min(tests):.2%}, max {max(tests):.2%}")
    if args.json:
        print(json.dumps({"train_args": train_args, "runs": results,
                          "mean_test_accuracy": statistics.mean(tests)}))


if __name__ == "__main__":
    main()
