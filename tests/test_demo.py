"""`make demo` trains the best recipe from random weights that docs/experiments.md measured (its
row in bold), so that a new user's first model is the project's best, not a weaker default."""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess

import pytest
import typer
from conftest import ROOT

from spamkit.cli import app


def documented_best_recipe() -> list[str]:
    """The `spamkit train` options of docs/experiments.md's bold row."""
    text = (ROOT / "docs" / "experiments.md").read_text()
    [recipe] = re.findall(r"^\| \*\*`(--preset [^`]+)`\*\* \|", text, flags=re.MULTILINE)
    return shlex.split(recipe)


@pytest.mark.skipif(shutil.which("make") is None, reason="no make on this machine")
def test_make_demo_trains_the_documented_best_recipe_and_classifies_its_bundle():
    # make -n prints the commands without running any (setup included).
    commands = subprocess.run(["make", "-n", "demo", "DATA="], cwd=ROOT, capture_output=True,
                              text=True, check=True).stdout.replace("\\\n", " ")
    [train] = [shlex.split(line) for line in commands.splitlines() if " spamkit train " in line]
    recipe = documented_best_recipe()
    assert "--char-ngrams" in recipe and "--preset" in recipe
    at = train.index("train") + 1
    assert train[at : at + len(recipe)] == recipe
    assert "--force" in train and train[train.index("--out") + 1] == "runs/demo/checkpoint"
    assert "spamkit export runs/demo/checkpoint --out runs/demo/bundle --int8" in commands
    assert "spamkit classify runs/demo/bundle" in commands
    assert "benchmarks/baseline_tfidf.py --against runs/demo/checkpoint" in commands
    # Every option of the recipe is one `spamkit train` takes, with the value documented.
    command = typer.main.get_command(app).get_command(None, "train")
    params = command.make_context("train", [*recipe, "--out", "x"]).params
    assert params["char_ngrams"] > 0
