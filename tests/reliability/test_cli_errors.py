"""A mistyped option is a usage error: exit 2 and one `spamkit: error:` line naming the option
and what it accepts, before the command does anything (no traceback, no file written)."""

from __future__ import annotations

import os

import pytest
from conftest import assert_clean_failure, spamkit_cli

CPUS = os.cpu_count()

# Each: the command line (a bundle, input or output that need not exist: parsing fails first),
# then the words the error line must hold.
CASES = {
    "train --device gpu": (["train", "--device", "gpu"],
                           ["'--device'", "'gpu'", "auto, cuda, cpu"]),
    "train --precision fp8": (["train", "--precision", "fp8"], ["'--precision'", "bf16"]),
    "train --init gpt3": (["train", "--init", "gpt3"], ["'--init'", "gpt2-medium"]),
    "train --token middle": (["train", "--token", "middle"], ["'--token'", "last, first"]),
    "train --lr-schedule linear": (["train", "--lr-schedule", "linear"], ["constant, cosine"]),
    "train --keep first": (["train", "--keep", "first"], ["'--keep'", "best, last"]),
    "train --split random": (["train", "--split", "random"], ["'--split'", "balanced, full"]),
    "train --batch-size 0": (["train", "--batch-size", "0"], ["'--batch-size'", "1"]),
    "train --nproc 0": (["train", "--nproc", "0"], ["'--nproc'", "1"]),
    "data --split random": (["data", "--split", "random"], ["'--split'", "balanced, full"]),
    "eval --split dev": (["eval", "m", "--split", "dev"], ["'--split'", "train, val, test, all"]),
    "eval --device gpu": (["eval", "m", "--device", "gpu"], ["'--device'", "cpu, cuda, auto"]),
    "eval --precision fp64": (["eval", "m", "--precision", "fp64"], ["int8, fp16, fp32"]),
    "classify --device gpu": (["classify", "b", "hi", "--device", "gpu"], ["'--device'"]),
    "classify --precision int4": (["classify", "b", "--precision", "int4"], ["'--precision'"]),
    "classify --threads 0": (["classify", "b", "--threads", "0"], ["'--threads'", "1"]),
    "classify --threads too many": (["classify", "b", "--threads", str(CPUS + 1)],
                                    ["'--threads'", str(CPUS)]),
    "bench --device gpu": (["bench", "b", "--device", "gpu"], ["'--device'"]),
    "bench --batch-size 0": (["bench", "b", "--batch-size", "0"], ["'--batch-size'"]),
    "score --engine spark": (["score", "b", "in.txt", "--out", "o.csv", "--engine", "spark"],
                             ["'--engine'", "local, ray"]),
    "score --batch-size 0": (["score", "b", "in.txt", "--out", "o.csv", "--batch-size", "0"],
                             ["'--batch-size'"]),
    "score --actors 0": (["score", "b", "in.txt", "--out", "o.csv", "--actors", "0"],
                         ["'--actors'"]),
    "score --threads -1": (["score", "b", "in.txt", "--out", "o.csv", "--threads", "-1"],
                           ["'--threads'"]),
    "score --precision fp8": (["score", "b", "in.txt", "--out", "o.csv", "--precision", "fp8"],
                              ["'--precision'", "int8"]),
    "score --batch-size ten": (["score", "b", "in.txt", "--out", "o.csv", "--batch-size", "ten"],
                               ["'--batch-size'"]),
    "score without --out": (["score", "b", "in.txt"], ["'--out'"]),
    "unknown command": (["fit"], ["fit"]),
}


@pytest.mark.parametrize("case", list(CASES))
def test_a_bad_option_is_one_usage_line_and_exit_2(tmp_path, case):
    args, words = CASES[case]
    result = spamkit_cli(*args, cwd=tmp_path)
    assert_clean_failure(result, *words)
    assert result.returncode == 2
    assert result.stdout == ""
    assert list(tmp_path.iterdir()) == []  # nothing written


def test_a_line_separator_in_an_argument_is_still_one_error_line(tmp_path):
    """U+2028 is a line break to str.splitlines (and to editors and log viewers) but no
    control character, so click's message keeps it: the error line must not."""
    result = spamkit_cli("data", "free\u2028prize", cwd=tmp_path)
    assert_clean_failure(result, "unexpected extra argument", "free prize")
    assert result.returncode == 2


def test_help_lists_the_choices(tmp_path):
    result = spamkit_cli("train", "--help", env={"COLUMNS": "200"})
    assert result.returncode == 0, result.stderr
    assert "[auto|cuda|cpu]" in result.stdout and "[head|last-block|all|lora]" in result.stdout


def test_no_command_shows_the_help():
    result = spamkit_cli()
    assert result.returncode == 2
    assert "Usage" in result.stdout + result.stderr and "classify" in result.stdout + result.stderr
