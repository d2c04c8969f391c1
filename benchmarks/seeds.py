"""Test accuracy of a `spamkit train` recipe over several split seeds.

The balanced SMS test set has ~300 messages (one message = 0.33 points), so a single split is
noisy; the accuracy figures in docs/experiments.md are means over seeds from this script.
--tfidf puts the classical baseline (benchmarks/baseline_tfidf.py) on the same splits beside it.
With --pretrain, each seed first runs `spamkit pretrain` with those flags and the same seed (its
unlabelled text leaves out that seed's validation and test messages) and fine-tunes from it.

    python benchmarks/seeds.py --seeds 123 124 125 126 127 -- --preset mini --epochs 5
    python benchmarks/seeds.py --tfidf --pretrain "--preset tiny --epochs 8" -- --preset tiny
"""

from __future__ import annotations

import argparse
import json
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[123, 124, 125, 126, 127])
    parser.add_argument("--pretrain", default=None, metavar="FLAGS",
                        help="spamkit pretrain flags: pretrain each seed, fine-tune from it")
    parser.add_argument("--data", default=None, help="as `spamkit train --data`")
    parser.add_argument("--tfidf", action="store_true",
                        help="the TF-IDF baseline on the same splits (the bench extra)")
    parser.add_argument("--json", action="store_true", help="print one JSON object at the end")
    parser.add_argument("train_args", nargs=argparse.REMAINDER,
                        help="after --: spamkit train flags")
    args = parser.parse_args()
    train_args = [a for a in args.train_args if a != "--"]
    data = ["--data", args.data] if args.data else []
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for seed in args.seeds:
            results.append(run_seed(seed, Path(tmp), args.pretrain, train_args, data))
            r = results[-1]
            if args.tfidf:
                r["tfidf_test_accuracy"] = tfidf_accuracy(args.data, train_args, seed)
            tfidf = f", TF-IDF {r['tfidf_test_accuracy']:.2%}" if args.tfidf else ""
            print(f"seed {seed}: train {r['train_accuracy']:.2%} val {r['val_accuracy']:.2%} "
                  f"test {r['test_accuracy']:.2%}{tfidf} (kept epoch {r['kept_epoch']}, "
                  f"{r['seconds']:.0f}s)", flush=True)
    tests = [r["test_accuracy"] for r in results]
    spread = statistics.stdev(tests) if len(tests) > 1 else 0.0
    print(f"test accuracy over {len(tests)} seeds: mean {statistics.mean(tests):.2%}, "
          f"std {spread:.2%}, min {min(tests):.2%}, max {max(tests):.2%}")
    if args.tfidf:
        tfidf = [r["tfidf_test_accuracy"] for r in results]
        print(f"TF-IDF on the same splits: mean {statistics.mean(tfidf):.2%}, std "
              f"{statistics.stdev(tfidf) if len(tfidf) > 1 else 0.0:.2%}")
    if args.json:
        print(json.dumps({"pretrain_args": args.pretrain, "train_args": train_args,
                          "runs": results,
                          "mean_test_accuracy": statistics.mean(tests)}))


def run_seed(seed: int, tmp: Path, pretrain_args: str | None, train_args: list[str],
             data: list[str]) -> dict:
    """Pretrain (with `pretrain_args`) and train one split seed on `data` (the --data flag or
    none); its accuracies and seconds."""
    t0 = time.perf_counter()
    init, run = [], {"seed": seed}
    if pretrain_args is not None:
        init = ["--init", str(tmp / f"pretrained{seed}")]
        spamkit("pretrain", *shlex.split(pretrain_args), *data, "--seed", str(seed),
                "--out", init[1])
        lm = json.loads((Path(init[1]) / "metrics.json").read_text())
        run["held_out_lm_loss"] = lm["history"][-1]["val_loss"]
    out = tmp / f"seed{seed}"
    spamkit("train", *init, *train_args, *data, "--seed", str(seed), "--out", str(out))
    metrics = json.loads((out / "metrics.json").read_text())
    final = metrics["final"]
    return {**run, "seconds": time.perf_counter() - t0, "kept_epoch": metrics["kept_epoch"],
            **{f"{k}_accuracy": final[k]["accuracy"] for k in final}}


def tfidf_accuracy(data: str | None, train_args: list[str], seed: int) -> float:
    """The TF-IDF baseline's test accuracy on the split the run trained on."""
    from baseline_tfidf import test_accuracy  # beside this script; scikit-learn

    from spamkit.data import DataConfig

    split = train_args[train_args.index("--split") + 1] if "--split" in train_args else "balanced"
    return test_accuracy(DataConfig(path=data, split=split, seed=seed))


def spamkit(*args: str) -> None:
    subprocess.run([sys.executable, "-m", "spamkit", *args], check=True, stdout=subprocess.DEVNULL)


if __name__ == "__main__":
    main()
