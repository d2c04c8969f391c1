"""What the CLI prints while it works and when it is done: `export` says each stage as it
starts; `--quiet` leaves only the result (and errors); every `--json` output carries its
`"format"`, rounds alike, and docs/cli-json.md describes its fields; help shows `spamkit[extra]`
as written. Every test runs the real CLI."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import ROOT, SMS_FILE, assert_clean_failure, spamkit_cli

MESSAGES = ["Free entry in 2 a wkly comp to win FA Cup final tkts", "Ok lar... Joking wif u oni"]
BENCH = ("--messages", "3", "--throughput-messages", "4", "--warmup", "1")


def digest_of(bundle: Path) -> str:
    return hashlib.sha256((bundle / "manifest.json").read_bytes()).hexdigest()


# -----------------------------------------------------------------------------
# export's stages


def test_export_says_each_stage_as_it_starts(tiny_checkpoint, tmp_path):
    out = tmp_path / "bundle"
    env = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}  # a pipe's buffering
    proc = subprocess.Popen([sys.executable, "-m", "spamkit", "export", str(tiny_checkpoint),
                             "--out", str(out), "--int8", "--data", str(SMS_FILE)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    first = proc.stdout.readline()
    bundle_then = out.exists()
    rest, err = proc.communicate(timeout=600)

    assert proc.returncode == 0, err
    assert first == "exporting the fp32 graph...\n"
    assert not bundle_then  # said when the stage began, not when export was done
    stages = [line for line in [first, *rest.splitlines()] if line.rstrip().endswith("...")]
    assert [s.rstrip() for s in stages] == [
        "exporting the fp32 graph...", "quantizing to int8 for portable CPUs...",
        "checking each graph's labels on the val and test splits...",
        "checking the int8 graph's labels with the kernels of each CPU portable is for..."]
    assert rest.splitlines()[-1].startswith("digest ")


# -----------------------------------------------------------------------------
# --quiet


def test_quiet_export_prints_the_digest_alone(tiny_checkpoint, tmp_path):
    out = tmp_path / "bundle"

    result = spamkit_cli("export", tiny_checkpoint, "--out", out, "--int8", "--data", SMS_FILE,
                         "--quiet")

    assert result.returncode == 0, result.stderr
    assert result.stdout == digest_of(out) + "\n"
    assert result.stderr == ""


def test_quiet_train_prints_nothing_and_writes_the_checkpoint(tmp_path):
    out = tmp_path / "ckpt"

    result = spamkit_cli("train", "--preset", "tiny", "--no-compile", "--device", "cpu",
                         "--epochs", "1", "--max-steps", "2", "--data", SMS_FILE, "--out", out,
                         "--quiet")

    assert result.returncode == 0, result.stderr
    assert (result.stdout, result.stderr) == ("", "")
    assert (out / "model.safetensors").is_file()


def test_quiet_score_and_calibrate_print_only_their_result(tiny_bundle, tmp_path):
    messages = tmp_path / "inbox.txt"
    messages.write_text("\n".join(MESSAGES) + "\n", encoding="utf-8")
    bundle = tmp_path / "bundle"
    shutil.copytree(tiny_bundle, bundle)

    scored = spamkit_cli("score", bundle, messages, "--out", tmp_path / "s.csv", "--quiet")
    calibrated = spamkit_cli("calibrate", bundle, "--target-precision", "0.9", "--data",
                             SMS_FILE, "--quiet")

    assert scored.returncode == 0, scored.stderr
    assert (scored.stdout, scored.stderr) == ("", "")
    assert len((tmp_path / "s.csv").read_text().splitlines()) == 1 + len(MESSAGES)
    assert calibrated.returncode == 0, calibrated.stderr
    assert (calibrated.stdout, calibrated.stderr) == (digest_of(bundle) + "\n", "")


def test_quiet_still_shows_errors(tiny_bundle, tmp_path):
    result = spamkit_cli("score", tiny_bundle, tmp_path / "absent.txt", "--out",
                         tmp_path / "s.csv", "--quiet")

    assert_clean_failure(result, "absent.txt")


def test_quiet_eval_and_bench_print_their_report(tiny_bundle):
    for command, options in (("eval", ()), ("bench", BENCH)):
        result = spamkit_cli(command, tiny_bundle, "--data", SMS_FILE, *options, "--json",
                             "--quiet")
        assert result.returncode == 0, result.stderr
        assert json.loads(result.stdout)["format"] == 1


# -----------------------------------------------------------------------------
# --json


def floats(value: object) -> list[float]:
    if isinstance(value, float):
        return [value]
    if isinstance(value, dict):
        value = list(value.values())
    return [x for v in value for x in floats(v)] if isinstance(value, list) else []


def fields(obj: dict) -> list[str]:
    """The output's field names, nested ones too; not those that are the model's classes."""
    names = []
    for key, value in obj.items():
        names.append(key)
        if isinstance(value, dict) and key not in ("classes", "probabilities"):
            names += fields(value)
    return names


@pytest.fixture(scope="module")
def json_outputs(tiny_bundle) -> dict[str, list[dict]]:
    """Each --json output of the CLI: eval's, bench's, and classify's rows."""
    printed = {"eval": spamkit_cli("eval", tiny_bundle, "--data", SMS_FILE, "--json"),
               "bench": spamkit_cli("bench", tiny_bundle, "--data", SMS_FILE, *BENCH, "--json"),
               "classify": spamkit_cli("classify", tiny_bundle, "--json", *MESSAGES)}
    for result in printed.values():
        assert result.returncode == 0, result.stderr
    return {"eval": [json.loads(printed["eval"].stdout)],
            "bench": [json.loads(printed["bench"].stdout)],
            "classify": [json.loads(line) for line in printed["classify"].stdout.splitlines()]}


@pytest.mark.parametrize("command", ["eval", "bench", "classify"])
def test_every_json_output_starts_with_its_format_and_rounds_to_six_decimals(json_outputs,
                                                                             command):
    for obj in json_outputs[command]:
        assert list(obj)[0] == "format" and obj["format"] == 1
        long = [x for x in floats(obj) if round(x, 6) != x]
        assert not long, long


@pytest.mark.parametrize("command", ["eval", "bench", "classify"])
def test_docs_describe_every_field_of_each_json_output(json_outputs, command):
    doc = (ROOT / "docs" / "cli-json.md").read_text(encoding="utf-8")
    assert f"## `spamkit {command} " in doc
    undescribed = {name for obj in json_outputs[command] for name in fields(obj)
                   if f"`{name}`" not in doc}
    assert not undescribed


# -----------------------------------------------------------------------------
# help


@pytest.mark.parametrize("command, shown", [
    ("export", "needs spamkit[text]"), ("eval", "needs spamkit[plots]"),
    ("score", "needs spamkit[ray]"), ("push", "needs spamkit[hub]"),
], ids=["export", "eval", "score", "push"])
def test_help_shows_the_extra_to_install_as_written(command, shown):
    result = spamkit_cli(command, "--help", env={"COLUMNS": "250"})

    assert result.returncode == 0, result.stderr
    assert shown in " ".join(result.stdout.replace("│", " ").split())
