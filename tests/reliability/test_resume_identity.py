"""`spamkit score --resume` continues only the run it started: a partial file left by a run on
another input (even one with as many rows, whose ids are row numbers too), with another bundle,
or with other options is refused in one line that says what differs, and left as it was. The
same input under another name or with a newer mtime resumes to the uninterrupted result.

The interrupted run is real: `spamkit score` on 20,000 SMS messages, stopped with SIGINT."""

from __future__ import annotations

import dataclasses
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import SCORE_FP32, assert_clean_failure, spamkit_cli

from spamkit.export.manifest import write_manifest
from spamkit.runtime.bundle import read_manifest

SCORE = ("--batch-size", "256")


def _rows(partial: Path) -> int:
    return max(partial.read_bytes().count(b"\r\n") - 1, 0) if partial.exists() else 0


@pytest.fixture(scope="module")
def interrupted(tiny_bundle, sms_20k, tmp_path_factory) -> Path:
    """The folder of a `spamkit score` stopped by Ctrl-C after at least 1,000 rows."""
    folder = tmp_path_factory.mktemp("interrupted")
    out, partial = folder / "scores.csv", folder / "scores.csv.partial"
    proc = subprocess.Popen([sys.executable, "-m", "spamkit", "score", str(tiny_bundle),
                             str(sms_20k), "--out", str(out), *SCORE_FP32, *SCORE],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.monotonic() + 300
    while _rows(partial) < 1000 and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    proc.send_signal(signal.SIGINT)
    assert proc.wait(300) == 130, proc.stderr.read()
    assert 1000 <= _rows(partial) < 20_000 and not out.exists()
    return folder


@pytest.fixture
def run(interrupted, tmp_path) -> Path:
    """A copy of the interrupted run's folder (the partial rows and their record)."""
    for name in ("scores.csv.partial", "scores.csv.partial.json"):
        shutil.copy2(interrupted / name, tmp_path / name)
    return tmp_path


def resume(run: Path, bundle: Path, messages: Path, *options: str):
    return spamkit_cli("score", bundle, messages, "--out", run / "scores.csv", *SCORE,
                       "--resume", *options)


def assert_left_alone(run: Path, interrupted: Path) -> None:
    for name in ("scores.csv.partial", "scores.csv.partial.json"):
        assert (run / name).read_bytes() == (interrupted / name).read_bytes()
    assert not (run / "scores.csv").exists()


def test_another_input_with_as_many_rows_is_refused(run, interrupted, tiny_bundle, sms_20k):
    # Ids are row numbers in both files: only the content tells them apart.
    other = run / "other.txt"
    lines = sms_20k.read_text(encoding="utf-8").split("\n")
    other.write_text("\n".join(["WINNER!! claim your prize now", *lines[1:]]), encoding="utf-8")

    result = resume(run, tiny_bundle, other, *SCORE_FP32)

    line = assert_clean_failure(result, "scores.csv.partial was scoring something else",
                                "delete it to start over")
    assert result.returncode == 1
    differs = line.split("something else: ")[1].split("; resume")[0]
    assert differs.startswith("input ") and " then, " in differs
    assert "bundle" not in differs and "--" not in differs  # only what differs is named
    assert_left_alone(run, interrupted)


def test_another_bundle_is_refused(run, interrupted, tiny_bundle, sms_20k):
    # The same graphs with a calibrated threshold: the labels it writes differ.
    other = run / "calibrated"
    shutil.copytree(tiny_bundle, other)
    manifest = read_manifest(other)
    write_manifest(other, dataclasses.replace(manifest, threshold={"label": "spam", "value": 0.2}))

    result = resume(run, other, sms_20k, *SCORE_FP32)

    assert_clean_failure(result, "bundle digest")
    assert_left_alone(run, interrupted)


@pytest.mark.parametrize("options, words", [
    ((), ["--precision fp32 then, int8 now"]),
    (("--precision", "fp32", "--id-column", "n"), ["--id-column (row numbers) then, n now"]),
], ids=["precision", "id-column"])
def test_other_options_are_refused(run, interrupted, tiny_bundle, sms_20k, options, words):
    result = resume(run, tiny_bundle, sms_20k, *options)
    assert_clean_failure(result, *words)
    assert_left_alone(run, interrupted)


def test_a_damaged_record_is_refused(run, tiny_bundle, sms_20k):
    (run / "scores.csv.partial.json").write_text('["not a record"]')
    result = resume(run, tiny_bundle, sms_20k, *SCORE_FP32)
    assert_clean_failure(result, "scores.csv.partial.json is damaged")


def test_the_same_input_moved_and_touched_resumes_to_the_uninterrupted_file(
        run, tiny_bundle, sms_20k, sms_20k_scored):
    moved = run / "renamed.txt"
    shutil.copy(sms_20k, moved)
    os.utime(moved, (time.time() + 60, time.time() + 60))

    result = resume(run, tiny_bundle, moved, *SCORE_FP32)

    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("resuming ")
    assert (run / "scores.csv").read_bytes() == sms_20k_scored.read_bytes()
    assert sorted(p.name for p in run.iterdir()) == ["renamed.txt", "scores.csv"]
