"""Test accuracy of a `spamkit train` recipe over several split seeds.

The balanced SMS test set has ~300 messages (one message = 0.33 points), so a single split is
noisy; the accuracy figures in docs/experiments.md are means over seeds from this script.
--tfidf puts the classical baseline (benchmarks/baseline_tfidf.py) on the same splits beside it.
With --pretrain, each seed first runs `spamkit pretrain` with those flags and the same seed (its
unlabelled text leaves out that seed's validation and test messages) and fine-tunes from it.
With --members K, each split also trains K-1 more models (`--init-seed` seed+1 ... seed+K-1) and
scores the mean of the K models' probabilities: what is left once the init's luck averages out.

    python benchmarks/seeds.py --seeds 123 124 125 126 127 -- --preset mini --epochs 5
    python benchmarks/seeds.py --tfidf --pretrain "--preset tiny --epochs 8" -- --preset tiny
    python benchmarks/seeds.py --members 5 -- --preset tiny --char-ngrams 4
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

import numpy as np


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[123, 124, 125, 126, 127])
    parser.add_argument("--pretrain", default=None, metavar="FLAGS",
                        help="spamkit pretrain flags: pretrain each seed, fine-tune from it")
    parser.add_argument("--data", default=None, help="as `spamkit train --data`")
    parser.add_argument("--tfidf", action="store_true",
                        help="the TF-IDF baseline on the same splits (the bench extra)")
    parser.add_argument("--members", type=int, default=1, metavar="K",
                        help="also score the mean of K models per split (--init-seed seed+1...)")
    parser.add_argument("--json", action="store_true", help="print one JSON object at the end")
    parser.add_argument("train_args", nargs=argparse.REMAINDER,
                        help="after --: spamkit train flags")
    args = parser.parse_args()
    train_args = [a for a in args.train_args if a != "--"]
    data = ["--data", args.data] if args.data else []
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for seed in args.seeds:
            results.append(run_seed(seed, Path(tmp), args.pretrain, train_args, data,
                                    args.members))
            r = results[-1]
            if args.tfidf:
                r["tfidf_test_accuracy"] = tfidf_accuracy(args.data, train_args, seed)
            tfidf = f", TF-IDF {r['tfidf_test_accuracy']:.2%}" if args.tfidf else ""
            members = (f", {args.members} models {r['ensemble_test_accuracy']:.2%}"
                       if args.members > 1 else "")
            print(f"seed {seed}: train {r['train_accuracy']:.2%} val {r['val_accuracy']:.2%} "
                  f"test {r['test_accuracy']:.2%}{members}{tfidf} (kept epoch "
                  f"{r['kept_epoch']}, {r['seconds']:.0f}s)", flush=True)
    summarize("test accuracy", [r["test_accuracy"] for r in results])
    if args.members > 1:
        summarize(f"the mean of {args.members} models' test accuracy",
                  [r["ensemble_test_accuracy"] for r in results])
    if args.tfidf:
        summarize("TF-IDF's test accuracy", [r["tfidf_test_accuracy"] for r in results])
    if args.json:
        print(json.dumps({"pretrain_args": args.pretrain, "train_args": train_args,
                          "runs": results, "mean_test_accuracy": statistics.mean(
                              r["test_accuracy"] for r in results)}))


def summarize(what: str, accuracies: list[float]) -> None:
    spread = statistics.stdev(accuracies) if len(accuracies) > 1 else 0.0
    print(f"{what} over {len(accuracies)} seeds: mean {statistics.mean(accuracies):.2%}, "
          f"std {spread:.2%}, min {min(accuracies):.2%}, max {max(accuracies):.2%}")


def run_seed(seed: int, tmp: Path, pretrain_args: str | None, train_args: list[str],
             data: list[str], members: int = 1) -> dict:
    """Pretrain (with `pretrain_args`) and train one split seed on `data` (the --data flag or
    none), and `members` - 1 more models on its split; accuracies and seconds."""
    t0 = time.perf_counter()
    init, run = [], {"seed": seed}
    if pretrain_args is not None:
        init = ["--init", str(tmp / f"pretrained{seed}")]
        spamkit("pretrain", *shlex.split(pretrain_args), *data, "--seed", str(seed),
                "--out", init[1])
        lm = json.loads((Path(init[1]) / "metrics.json").read_text())
        run["held_out_lm_loss"] = lm["history"][-1]["val_loss"]
    outs = [tmp / f"seed{seed}-{m}" for m in range(members)]
    for m, out in enumerate(outs):
        again = ["--init-seed", str(seed + m)] if m else []
        spamkit("train", *init, *train_args, *data, "--seed", str(seed), *again, "--out", str(out))
    metrics = [json.loads((out / "metrics.json").read_text()) for out in outs]
    final = metrics[0]["final"]
    if members > 1:
        run["member_test_accuracies"] = [m["final"]["test"]["accuracy"] for m in metrics]
        run["ensemble_test_accuracy"] = ensemble_accuracy(outs, data[1] if data else None)
    return {**run, "seconds": time.perf_counter() - t0, "kept_epoch": metrics[0]["kept_epoch"],
            **{f"{k}_accuracy": final[k]["accuracy"] for k in final}}


def ensemble_accuracy(checkpoints: list[Path], data: str | None) -> float:
    """Test accuracy of the mean of the checkpoints' probabilities, on their split."""
    from spamkit.jobs.evaluate import examples_for, load_model  # PyTorch

    models = [load_model(path) for path in checkpoints]
    test = examples_for(models[0], data, "test")
    proba = np.mean([model.predict_proba(test.texts) for model in models], axis=0)
    return float((proba.argmax(axis=-1) == np.array(test.labels)).mean())


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
