"""The recipe measurements of docs/experiments.md: benchmarks/seeds.py pretrains and fine-tunes
each split seed, scores the mean of several models per split, and puts the TF-IDF baseline on
the same split beside it; baseline_tfidf.py
ranks a checkpoint against TF-IDF on the split it was trained on (what `make demo` ends with)."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
from conftest import ROOT, SMS_FILE, spamkit_cli

from spamkit.data import DataConfig, load_splits
from spamkit.jobs.evaluate import examples_for, load_model

sys.path.insert(0, str(ROOT / "benchmarks"))
from baseline_tfidf import test_accuracy as tfidf_accuracy  # noqa: E402

pytestmark = pytest.mark.slow  # `make test-slow`

QUICK = "--preset tiny --no-compile --threads 1 --max-steps 3"


def benchmark(script: str, *args: str) -> str:
    result = subprocess.run([sys.executable, str(ROOT / "benchmarks" / script), *map(str, args)],
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_seeds_pretrains_each_seed_and_sets_tfidf_beside_it():
    stdout = benchmark("seeds.py", "--seeds", "124", "--data", SMS_FILE, "--tfidf", "--json",
                       "--pretrain", f"{QUICK} --seq-len 32", "--", *QUICK.split())
    report = json.loads(stdout.splitlines()[-1])
    [run] = report["runs"]
    assert run["seed"] == 124 and report["pretrain_args"].startswith("--preset tiny")
    assert run["held_out_lm_loss"] < 10  # a language model of the text, pretrained for the seed
    split = DataConfig(path=str(SMS_FILE), seed=124)
    assert run["tfidf_test_accuracy"] == tfidf_accuracy(split)
    assert f"test {run['test_accuracy']:.2%}, TF-IDF {run['tfidf_test_accuracy']:.2%}" in stdout


def test_seeds_scores_the_mean_of_several_models_on_each_split(tmp_path):
    stdout = benchmark("seeds.py", "--seeds", "124", "--data", SMS_FILE, "--members", "2",
                       "--json", "--", *QUICK.split())
    [run] = json.loads(stdout.splitlines()[-1])["runs"]
    assert run["member_test_accuracies"][0] == run["test_accuracy"]
    # The same two models, trained here: their mean probability scores what seeds.py said.
    models = []
    for name, again in (("a", []), ("b", ["--init-seed", "125"])):
        result = spamkit_cli("train", *QUICK.split(), "--seed", "124", *again, "--data", SMS_FILE,
                             "--out", tmp_path / name)
        assert result.returncode == 0, result.stderr
        models.append(load_model(tmp_path / name))
    test = examples_for(models[0], str(SMS_FILE), "test")
    proba = np.mean([model.predict_proba(test.texts) for model in models], axis=0)
    assert run["ensemble_test_accuracy"] == float((proba.argmax(-1) == test.labels).mean())
    assert f", 2 models {run['ensemble_test_accuracy']:.2%}" in stdout


def test_seeds_joins_models_fine_tuned_from_the_pretrained_one_to_the_recipes(tmp_path):
    stdout = benchmark("seeds.py", "--seeds", "124", "--data", SMS_FILE, "--members", "2",
                       "--pretrain", f"{QUICK} --seq-len 32", "--finetune", QUICK,
                       "--finetunes", "2", "--keep", tmp_path, "--json", "--", *QUICK.split())
    [run] = json.loads(stdout.splitlines()[-1])["runs"]
    assert run["members"] == 4 and len(run["member_test_accuracies"]) == 4
    names = ("seed124-0", "seed124-1", "seed124-finetuned", "seed124-finetuned-2")
    trained = [json.loads((tmp_path / name / "config.json").read_text())["training"]
               for name in names]
    pretrained = str(tmp_path / "pretrained124")
    assert [t["init"] for t in trained] == ["random", "random", pretrained, pretrained]
    assert [t["init_seed"] for t in trained] == [None, 125, None, 125]  # None: --seed
    ensemble = json.loads((tmp_path / "seed124-ensemble" / "metrics.json").read_text())
    assert run["ensemble_test_accuracy"] == ensemble["final"]["test"]["accuracy"]
    assert f", 4 models {run['ensemble_test_accuracy']:.2%}" in stdout


def test_a_checkpoint_is_ranked_against_tfidf_on_its_own_split(tiny_checkpoint):
    stdout = benchmark("baseline_tfidf.py", "--against", tiny_checkpoint)
    config = json.loads((tiny_checkpoint / "config.json").read_text())["data"]
    ours = json.loads((tiny_checkpoint / "metrics.json").read_text())["final"]["test"]["accuracy"]
    split = DataConfig(path=config["path"], split=config["split"], seed=config["seed"])
    theirs = tfidf_accuracy(split)
    n = len(load_splits(split).test)
    diff = round((ours - theirs) * n)
    assert f"test accuracy {ours:.2%}, TF-IDF char 2-5-grams + logistic regression " \
           f"{theirs:.2%} on the same {n} test messages" in stdout
    assert (f"{abs(diff)} message(s) {'more' if diff > 0 else 'fewer'} right than TF-IDF"
            if diff else "level with TF-IDF") in stdout
