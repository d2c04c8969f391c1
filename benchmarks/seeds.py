"""Test accuracy of a `spamkit train` recipe over several split seeds.

The balanced SMS test set has ~300 messages (one message = 0.33 points), so a single split is
noisy; the accuracy figures in docs/experiments.md are means over seeds from this script.
--tfidf puts the classical baseline (benchmarks/baseline_tfidf.py) on the same splits beside it.
With --pretrain, each seed first runs `spamkit pretrain` with those flags and the same seed (its
unlabelled text leaves out that seed's validation and test messages) and fine-tunes from it.
With --members K, each split also trains K-1 more models (`--init-seed` seed+1 ... seed+K-1) and
scores the mean of the K models' probabilities (`spamkit ensemble`): what is left once the init's
luck averages out. With --finetune, only one more model fine-tunes from the pretrained one (with
those train flags) and joins the K trained by the recipe, which then keeps its own --init;
--finetunes J fine-tunes J such models (--init-seed seed ... seed+J-1) from the one pretraining.

    python benchmarks/seeds.py --seeds 123 124 125 126 127 -- --preset mini --epochs 5
    python benchmarks/seeds.py --tfidf --pretrain "--preset tiny --epochs 8" -- --preset tiny
    python benchmarks/seeds.py --members 5 -- --preset tiny --char-ngrams 4
    python benchmarks/seeds.py --pretrain "--preset tiny" --finetune "--lr 3e-4" --members 3 --
"""

from __future__ import annotations

import argparse
import contextlib
import json
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path


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
    parser.add_argument("--finetune", default=None, metavar="FLAGS",
                        help="with --pretrain: spamkit train flags of one more member, "
                        "fine-tuned from it (the recipe's K then keep their own --init)")
    parser.add_argument("--finetunes", type=int, default=1, metavar="J",
                        help="with --finetune: J such models (--init-seed seed ... seed+J-1)")
    parser.add_argument("--json", action="store_true", help="print one JSON object at the end")
    parser.add_argument("--keep", type=Path, default=None, metavar="DIR",
                        help="keep every model in DIR (default: a folder deleted at the end)")
    parser.add_argument("train_args", nargs=argparse.REMAINDER,
                        help="after --: spamkit train flags")
    args = parser.parse_args()
    if args.finetune is not None and args.pretrain is None:
        parser.error("--finetune fine-tunes from --pretrain's model: add --pretrain")
    train_args = [a for a in args.train_args if a != "--"]
    data = ["--data", args.data] if args.data else []
    recipe = Recipe(args.pretrain, train_args, args.members, args.finetune, args.finetunes)
    results = []
    with keep_or_delete(args.keep) as tmp:
        for seed in args.seeds:
            results.append(run_seed(seed, Path(tmp), recipe, data))
            r = results[-1]
            if args.tfidf:
                r["tfidf_test_accuracy"] = tfidf_accuracy(args.data, train_args, seed)
            tfidf = f", TF-IDF {r['tfidf_test_accuracy']:.2%}" if args.tfidf else ""
            members = (f", {r['members']} models {r['ensemble_test_accuracy']:.2%}"
                       if "members" in r else "")
            print(f"seed {seed}: train {r['train_accuracy']:.2%} val {r['val_accuracy']:.2%} "
                  f"test {r['test_accuracy']:.2%}{members}{tfidf} (kept epoch "
                  f"{r['kept_epoch']}, {r['seconds']:.0f}s)", flush=True)
    summarize("test accuracy", [r["test_accuracy"] for r in results])
    if "members" in results[0]:
        summarize(f"the mean of {results[0]['members']} models' test accuracy",
                  [r["ensemble_test_accuracy"] for r in results])
    if args.tfidf:
        summarize("TF-IDF's test accuracy", [r["tfidf_test_accuracy"] for r in results])
    if args.json:
        print(json.dumps({"pretrain_args": args.pretrain, "train_args": train_args,
                          "finetune_args": args.finetune,
                          "runs": results, "mean_test_accuracy": statistics.mean(
                              r["test_accuracy"] for r in results)}))


def keep_or_delete(keep: Path | None) -> contextlib.AbstractContextManager:
    """A folder for the runs: `keep` (made, kept), else a temporary one."""
    if keep is None:
        return tempfile.TemporaryDirectory()
    keep.mkdir(parents=True, exist_ok=True)
    return contextlib.nullcontext(keep)


def summarize(what: str, accuracies: list[float]) -> None:
    spread = statistics.stdev(accuracies) if len(accuracies) > 1 else 0.0
    print(f"{what} over {len(accuracies)} seeds: mean {statistics.mean(accuracies):.2%}, "
          f"std {spread:.2%}, min {min(accuracies):.2%}, max {max(accuracies):.2%}")


@dataclass(frozen=True)
class Recipe:
    pretrain: str | None  # spamkit pretrain flags, or None: no pretraining
    train: list[str]  # spamkit train flags of the recipe's models
    members: int = 1  # how many models the recipe trains per split
    finetune: str | None = None  # train flags of more models, fine-tuned from the pretrained
    finetunes: int = 1  # how many of those


def run_seed(seed: int, tmp: Path, recipe: Recipe, data: list[str]) -> dict:
    """Pretrain and train one split seed of `data` (the --data flag or none) as `recipe` says,
    and join its models into one ensemble when there are several; accuracies and seconds."""
    t0 = time.perf_counter()
    init, run = [], {"seed": seed}
    if recipe.pretrain is not None:
        init = ["--init", str(tmp / f"pretrained{seed}")]
        spamkit("pretrain", *shlex.split(recipe.pretrain), *data, "--seed", str(seed),
                "--out", init[1])
        lm = json.loads((Path(init[1]) / "metrics.json").read_text())
        run["held_out_lm_loss"] = lm["history"][-1]["val_loss"]
    outs = [tmp / f"seed{seed}-{m}" for m in range(recipe.members)]
    for m, out in enumerate(outs):
        spamkit("train", *([] if recipe.finetune else init), *recipe.train, *data,
                "--seed", str(seed), *init_seed(seed, m), "--out", str(out))
    for m in range(recipe.finetunes if recipe.finetune is not None else 0):
        outs.append(tmp / (f"seed{seed}-finetuned-{m + 1}" if m else f"seed{seed}-finetuned"))
        spamkit("train", *init, *shlex.split(recipe.finetune), *data, "--seed", str(seed),
                *init_seed(seed, m), "--out", str(outs[-1]))
    metrics = [json.loads((out / "metrics.json").read_text()) for out in outs]
    final = metrics[0]["final"]
    if len(outs) > 1:
        ensemble = tmp / f"seed{seed}-ensemble"
        spamkit("ensemble", *map(str, outs), *data, "--out", str(ensemble))
        run["members"] = len(outs)
        run["member_test_accuracies"] = [m["final"]["test"]["accuracy"] for m in metrics]
        run["ensemble_test_accuracy"] = json.loads(
            (ensemble / "metrics.json").read_text())["final"]["test"]["accuracy"]
    return {**run, "seconds": time.perf_counter() - t0, "kept_epoch": metrics[0]["kept_epoch"],
            **{f"{k}_accuracy": final[k]["accuracy"] for k in final}}


def init_seed(seed: int, m: int) -> list[str]:
    """The flag that makes model `m` of a split another model: the first keeps the split's seed."""
    return ["--init-seed", str(seed + m)] if m else []


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
