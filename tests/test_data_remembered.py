"""The data file is given once: `spamkit data --data FILE` records it for every later command,
and a model remembers which file it was trained on (its sha256), so "as trained" is that file."""

from __future__ import annotations

import hashlib
import json
import os

from conftest import SMS_FILE, assert_clean_failure, spamkit_cli


def other_data(tmp_path):
    """The collection with one message changed: the same labels, another file."""
    lines = SMS_FILE.read_text(encoding="utf-8").split("\n")
    lines[0] = "ham\tsee you at 6?"
    path = tmp_path / "other.txt"
    path.write_text("\n".join(lines), encoding="utf-8")
    return path


def test_a_file_given_once_is_used_by_every_later_command(tiny_bundle, tmp_path):
    recorded = spamkit_cli("data", "--data", SMS_FILE)
    assert recorded.returncode == 0, recorded.stderr
    assert "recorded" in recorded.stdout

    shown = spamkit_cli("data")  # no --data, no $SPAMKIT_DATA, and no network here
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout.startswith(f"{SMS_FILE}:")
    evaluated = spamkit_cli("eval", tiny_bundle, "--json")
    assert evaluated.returncode == 0, evaluated.stderr
    support = json.loads(evaluated.stdout)["classes"]
    assert sum(c["support"] for c in support.values()) == 300  # the test split, as trained

    forgot = spamkit_cli("data", "--forget")
    assert forgot.returncode == 0 and "forgot" in forgot.stdout
    assert_clean_failure(spamkit_cli("data"), "could not download")


def test_a_bundle_records_the_sha256_of_its_training_data(tiny_bundle):
    manifest = json.loads((tiny_bundle / "manifest.json").read_text())
    assert manifest["data"]["sha256"] == hashlib.sha256(SMS_FILE.read_bytes()).hexdigest()
    assert "path" not in manifest["data"]  # where it was on the trainer's machine stays there


def test_eval_as_trained_refuses_another_file_and_takes_it_when_named(tiny_bundle, tmp_path):
    other = other_data(tmp_path)
    assert spamkit_cli("data", "--data", other).returncode == 0
    for command in ("eval", "calibrate"):
        extra = ("--target-precision", "0.9") if command == "calibrate" else ()
        result = spamkit_cli(command, tiny_bundle, *extra)
        assert_clean_failure(result, str(other), "not the data file the model was trained on",
                             "--data")

    named = spamkit_cli("eval", tiny_bundle, "--data", other, "--json")
    assert named.returncode == 0, named.stderr


def test_environment_variable_is_recorded_too_and_a_missing_file_is_named(tmp_path):
    copy = tmp_path / "sms.txt"
    copy.write_bytes(SMS_FILE.read_bytes())
    env = {**os.environ, "SPAMKIT_DATA": str(copy)}
    assert spamkit_cli("data", env=env).returncode == 0
    copy.unlink()
    assert_clean_failure(spamkit_cli("data"), str(copy), "spamkit data --data")


def test_a_damaged_record_is_one_line(tmp_path):
    (tmp_path / "cache").mkdir(exist_ok=True)
    (tmp_path / "cache" / "data-file.json").write_text("{not json")
    assert_clean_failure(spamkit_cli("data"), "data-file.json", "spamkit data --forget")
    assert_clean_failure(spamkit_cli("data", "--forget", "--data", SMS_FILE), "--forget")
