"""The classical baseline on spamkit's own splits: TF-IDF over character 2-5-grams and logistic
regression (scikit-learn, `pip install -e ".[bench]"`). It shows what the transformer buys on
your data.

    python benchmarks/baseline_tfidf.py --data ../shared/data/sms_spam_collection/SMSSpamCollection
"""

from __future__ import annotations

import argparse
import statistics

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
    args = parser.parse_args()
    accs = []
    for seed in args.seeds:
        accs.append(test_accuracy(DataConfig(path=args.data, split=args.split, seed=seed)))
        print(f"seed {seed}: test accuracy {accs[-1]:.2%}")
    print(f"TF-IDF char 2-5-grams + logistic regression, {args.split} split, "
          f"{len(accs)} seeds: mean test accuracy {statistics.mean(accs):.2%}")


if __name__ == "__main__":
    main()
