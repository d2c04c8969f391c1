"""`make demo` trains the recipe docs/experiments.md measured as the best from random weights
that runs in three minutes (its `benchmarks/seeds.py --members 2` command: two models of the
bold recipe and one fine-tuned from a pretrained language model, joined by `spamkit ensemble`),
so that a new user's first model is the project's best, not a weaker default."""

from __future__ import annotations

import argparse
import re
import shlex
import shutil
import subprocess

import pytest
import typer
from conftest import ROOT

from spamkit.cli import app

EXPERIMENTS = ROOT / "docs" / "experiments.md"


def documented_best_recipe() -> list[str]:
    """The `spamkit train` options of docs/experiments.md's bold row."""
    [recipe] = re.findall(r"^\| \*\*`(--preset [^`]+)`\*\* \|", EXPERIMENTS.read_text(),
                          flags=re.MULTILINE)
    return shlex.split(recipe)


def documented_demo_ensemble() -> argparse.Namespace:
    """The flags of the seeds.py command that measured the demo's ensemble."""
    [line] = [line for line in EXPERIMENTS.read_text().splitlines()
              if line.startswith("python benchmarks/seeds.py ") and "--members 2 " in line]
    parser = argparse.ArgumentParser()
    for flag in ("--pretrain", "--finetune", "--members", "--data"):
        parser.add_argument(flag)
    parser.add_argument("--seeds", nargs="+")
    parser.add_argument("--tfidf", action="store_true")
    parser.add_argument("recipe", nargs=argparse.REMAINDER)
    return parser.parse_args(shlex.split(line)[2:])


def spamkit_lines(commands: str, verb: str) -> list[list[str]]:
    """`make -n`'s `spamkit VERB` commands, each split into its arguments after the verb."""
    lines = [shlex.split(line) for line in commands.splitlines() if f" spamkit {verb} " in line]
    return [line[line.index(verb) + 1:] for line in lines]


def option(args: list[str], name: str) -> str:
    return args[args.index(name) + 1]


@pytest.mark.skipif(shutil.which("make") is None, reason="no make on this machine")
def test_make_demo_trains_the_documented_ensemble_and_classifies_its_bundle():
    # make -n prints the commands without running any; -B: pretraining too, though it is cached.
    commands = subprocess.run(["make", "-n", "-B", "demo", "DATA="], cwd=ROOT, capture_output=True,
                              text=True, check=True).stdout.replace("\\\n", " ")
    documented = documented_demo_ensemble()
    recipe = documented_best_recipe()
    assert documented.recipe == ["--", *recipe] and "--char-ngrams" in recipe
    [pretrain] = spamkit_lines(commands, "pretrain")
    assert pretrain[:pretrain.index("--out")] == shlex.split(documented.pretrain)
    plain, plain_2, finetuned = spamkit_lines(commands, "train")
    # seeds.py's members: the recipe with the split's seed as init seed, then seed + 1.
    assert plain[:len(recipe)] == plain_2[:len(recipe)] == recipe
    assert "--init-seed" not in plain and option(plain_2, "--init-seed") == "124"
    assert option(finetuned, "--init") == option(pretrain, "--out")
    assert finetuned[2:finetuned.index("--out")] == shlex.split(documented.finetune)
    [ensemble] = spamkit_lines(commands, "ensemble")
    members = [option(run, "--out") for run in (plain, plain_2, finetuned)]
    assert ensemble[:3] == members and option(ensemble, "--out") == "runs/demo/checkpoint"
    assert all("--force" in run for run in (plain, plain_2, finetuned, ensemble))
    assert "spamkit export runs/demo/checkpoint --out runs/demo/bundle --int8" in commands
    assert "spamkit classify runs/demo/bundle" in commands
    assert "benchmarks/baseline_tfidf.py --against runs/demo/checkpoint" in commands
    # Every option is one the commands take, with the value documented (--init aside: the
    # language model is not there until make demo pretrains it).
    for verb, args in (("train", recipe), ("pretrain", pretrain[:pretrain.index("--out")]),
                       ("train", finetuned[2:])):
        command = typer.main.get_command(app).get_command(None, verb)
        command.make_context(verb, [*args, "--out", "x"] if "--out" not in args else args)
