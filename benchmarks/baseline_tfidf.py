"""The classical baseline on spamkit's own splits: TF-IDF over character 2-5-grams and logistic
regression (scikit-learn, `pip install -e ".[bench]"`). It shows what the transformer buys on
your data.

    python benchmarks/baseline_tfidf.py --data ../shared/data/sms_spam_collection/SMSSpamCollection
    python benchmarks/baseline_tfidf.py --against runs/demo/checkpoint   # on its own split
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline

from spamkit.data import DataConfig, load_splits


def test_accuracy(cfg: DataConfig) -> float:
    splits = load_splits(cfg)
    model = make_pipeline(
        TfidfVectorizer(analyzer="char", ngram_range=(2, 5)),
        LogisticRegression(max_iter=1000),  # scikit-learn's defaults otherwise: no tuning
    )
    model.fit(splits.train.texts, splits.train.labels)
    return float(model.score(splits.test.texts, splits.test.labels))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=None, help="as `spamkit train --data`")
    parser.add_argument("--split", default="balanced")
    parser.add_argument("--seeds", type=int, nargs="+", default=[123, 124, 125, 126, 127])
    parser.add_argument("--against", type=Path, metavar="CHECKPOINT",
                        help="a `spamkit train` checkpoint: rank it against TF-IDF on its split")
    args = parser.parse_args()
    if args.against:
        rank(args.against)
        return
    accs = []
    for seed in args.seeds:
        accs.append(test_accuracy(DataConfig(path=args.data, split=args.split, seed=seed)))
        print(f"seed {seed}: test accuracy {accs[-1]:.2%}")
    print(f"TF-IDF char 2-5-grams + logistic regression, {args.split} split, "
          f"{len(accs)} seeds: mean test accuracy {statistics.mean(accs):.2%}")


def rank(checkpoint: Path) -> None:
    """Print the checkpoint's test accuracy beside TF-IDF's on the split it was trained on."""
    data = json.loads((checkpoint / "config.json").read_text())["data"]
    test = json.loads((checkpoint / "metrics.json").read_text())["final"]["test"]["accuracy"]
    cfg = DataConfig(**data)  # with its sha256: the file it was trained on, or a refusal
    n = len(load_splits(cfg).test)
    baseline = test_accuracy(cfg)
    diff = round((test - baseline) * n)
    verdict = (f"{abs(diff)} message(s) {'more' if diff > 0 else 'fewer'} right than TF-IDF"
               if diff else "level with TF-IDF")
    print(f"{checkpoint}: test accuracy {test:.2%}, TF-IDF char 2-5-grams + logistic regression "
          f"{baseline:.2%} on the same {n} test messages ({cfg.split} split, seed {cfg.seed}): "
          f"{verdict}")

if __name__ == "__main__":
    main()
