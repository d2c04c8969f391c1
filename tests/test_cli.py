"""The `spamkit` command as a user meets it in a shell: every test runs the real CLI in a fresh
process (`python -m spamkit ...`), on the real SMS Spam Collection, with no mocks.

A good session trains, exports and classifies; a bad input fails with one `spamkit: error:` line
that names the problem, no traceback, and no half-written output directory.
"""

from __future__ import annotations

import io
import json
import os
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
from conftest import (
    SMS_FILE,
    SMS_ZIP,
    assert_clean_failure,
    closed_port_url,
    reference_probabilities,
    spamkit_cli,
)

# The cheapest real training run: enough to exercise every stage of `spamkit train`.
TINY = ("--preset", "tiny", "--no-compile", "--max-steps", "5", "--epochs", "1")


def assert_cache_holds_no_data() -> None:
    """Nothing that failed its checks may land in the cache (not even a temporary file)."""
    cache = Path(os.environ["SPAMKIT_CACHE"])
    left = sorted(p.name for p in cache.iterdir()) if cache.exists() else []
    assert left == [], f"the cache holds {left}"


# -----------------------------------------------------------------------------
# the happy path: data -> train -> export -> classify


@pytest.mark.parametrize("source", [SMS_FILE, SMS_ZIP], ids=["file", "zip"])
def test_data_shows_the_messages_and_the_balanced_split(source):
    result = spamkit_cli("data", "--data", source)

    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert "5574 messages (4827 ham, 747 spam)" in lines[0]
    assert lines[1] == "balanced split (seed 123): train 1045, val 149, test 300"


@pytest.fixture(scope="module")
def workdir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("session")


@pytest.fixture(scope="module")
def module_env(tmp_path_factory) -> dict:
    # Module-scoped fixtures run before the autouse offline fixture: isolate them by hand.
    return {"SPAMKIT_CACHE": str(tmp_path_factory.mktemp("cache")),
            "SPAMKIT_DATA_URL": closed_port_url(), "SPAMKIT_DATA": ""}


@pytest.fixture(scope="module")
def trained(workdir, module_env):
    """$ spamkit train --preset tiny ... --out run/checkpoint --data SMSSpamCollection"""
    out = workdir / "run" / "checkpoint"
    result = spamkit_cli("train", *TINY, "--out", out, "--data", SMS_FILE, env=module_env)
    return result, out


@pytest.fixture(scope="module")
def exported(trained, workdir, module_env):
    """$ spamkit export run/checkpoint --out run/bundle --int8 --data SMSSpamCollection"""
    _, checkpoint = trained
    out = workdir / "run" / "bundle"
    result = spamkit_cli("export", checkpoint, "--out", out, "--int8", "--data", SMS_FILE,
                         env=module_env)
    return result, out


def test_train_writes_a_checkpoint(trained):
    result, out = trained

    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    assert sorted(p.name for p in out.iterdir()) == [
        "config.json", "curves.png", "metrics.json", "model.safetensors"]
    assert f"checkpoint written to {out}" in result.stdout
    config = json.loads((out / "config.json").read_text())
    assert config["preset"] == "tiny"
    assert config["labels"] == ["ham", "spam"]
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["split_sizes"] == {"train": 1045, "val": 149, "test": 300}
    assert [h["step"] for h in metrics["history"]] == [5]  # --max-steps 5, --epochs 1
    # No temporary directory is left beside it.
    assert {p.name for p in out.parent.iterdir()} <= {"checkpoint", "bundle"}


def test_export_writes_a_verified_int8_bundle(exported):
    result, out = exported

    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    # The fp32 graph is built and checked, then left out: the bundle ships what runs.
    assert sorted(p.name for p in out.iterdir()) == [
        "manifest.json", "model.int8.onnx", "model.int8.onnx.data", "tokenizer.json"]

    fp32 = re.search(r"fp32 graph vs PyTorch on (\d+) validation messages: "
                     r"max \|logit diff\| (\S+)", result.stdout)
    assert fp32, result.stdout
    assert int(fp32[1]) == 64
    assert float(fp32[2]) <= 1e-4

    # One line per split: fp32 and int8 accuracy, and how often their labels agree.
    manifest = json.loads((out / "manifest.json").read_text())
    for split, size in (("val", 149), ("test", 300)):
        int8 = re.search(rf"{split} split \((\d+) messages\): accuracy fp32 ([\d.]+)%, "
                         rf"int8 ([\d.]+)%; int8 labels agree with fp32 on ([\d.]+)%",
                         result.stdout)
        assert int8, result.stdout
        assert int(int8[1]) == size
        agreement = manifest["verification"][f"{split}_int8_label_agreement"]
        assert float(int8[4]) == pytest.approx(100 * agreement, abs=0.005)
    assert manifest["labels"] == ["ham", "spam"]
    assert set(manifest["files"]) == {"model.int8.onnx", "model.int8.onnx.data", "tokenizer.json"}
    assert f"bundle written to {out}" in result.stdout


MESSAGES = [
    "WINNER!! You have won a 1000 GBP prize. Call 09061701461 now to claim",
    "Ok lar... see you at 6 then",
]


def parse_lines(stdout: str) -> list[tuple[str, float, str]]:
    rows = []
    for line in stdout.splitlines():
        label, prob, text = line.split("\t", 2)
        rows.append((label, float(prob), text))
    return rows


def test_classify_messages_given_as_arguments(exported):
    _, bundle = exported

    result = spamkit_cli("classify", bundle, *MESSAGES)

    assert result.returncode == 0, result.stderr
    # Each message's label and winning probability (three decimals) as the bundle's int8 graph
    # gives them, run here without spamkit.runtime.
    expected = reference_probabilities(bundle, MESSAGES, "model.int8.onnx")
    rows = parse_lines(result.stdout)
    assert [text for _, _, text in rows] == MESSAGES
    assert [label for label, _, _ in rows] == [["ham", "spam"][i] for i in expected.argmax(1)]
    np.testing.assert_allclose([prob for _, prob, _ in rows], expected.max(axis=1), atol=6e-4)


def test_classify_reads_one_message_per_line_of_stdin(exported):
    _, bundle = exported

    piped = spamkit_cli("classify", bundle, stdin="".join(m + "\n" for m in MESSAGES))
    given = spamkit_cli("classify", bundle, *MESSAGES)

    assert piped.returncode == 0, piped.stderr
    assert [text for _, _, text in parse_lines(piped.stdout)] == MESSAGES
    assert piped.stdout == given.stdout


def test_classify_json_gives_labels_and_probabilities(exported):
    _, bundle = exported

    result = spamkit_cli("classify", bundle, "--json", *MESSAGES)

    assert result.returncode == 0, result.stderr
    records = [json.loads(line) for line in result.stdout.splitlines()]
    assert [r["text"] for r in records] == MESSAGES
    expected = reference_probabilities(bundle, MESSAGES, "model.int8.onnx")
    for r, p in zip(records, expected, strict=True):
        assert r["label"] == ["ham", "spam"][p.argmax()]
        probs = r["probabilities"]
        assert list(probs) == ["ham", "spam"]
        np.testing.assert_allclose(list(probs.values()), p, atol=2e-6)  # six decimals


# -----------------------------------------------------------------------------
# bad data


@pytest.mark.parametrize("name, content", [
    ("empty.tsv", ""),
    ("SMSSpamCollection", ""),
])
def test_train_on_an_empty_data_file_fails_cleanly(tmp_path, name, content):
    data = tmp_path / name
    data.write_text(content)
    out = tmp_path / "checkpoint"

    result = spamkit_cli("train", *TINY, "--out", out, "--data", data)

    assert_clean_failure(result, "no messages", data, out=out)


@pytest.mark.parametrize("name, content", [
    ("empty.csv", ""),
    ("header-only.csv", "text,label\n"),
    ("blank-lines.txt", "\n\n\r\n"),
])
def test_data_on_a_file_without_messages_fails_cleanly(tmp_path, name, content):
    data = tmp_path / name
    data.write_text(content)

    result = spamkit_cli("data", "--data", data)

    assert_clean_failure(result, "no messages", data)


def test_train_on_a_csv_without_the_label_column_names_it(tmp_path):
    data = tmp_path / "mine.csv"
    data.write_text("text,category\nhello,ham\nwin now,spam\n")
    out = tmp_path / "checkpoint"

    result = spamkit_cli("train", *TINY, "--out", out, "--data", data)

    line = assert_clean_failure(result, data, "no column 'label'", out=out)
    assert "'text', 'category'" in line  # and says which columns there are


def test_data_with_a_label_column_the_table_lacks_names_it(tmp_path):
    data = tmp_path / "mine.tsv"
    data.write_text("text\tlabel\nhello\tham\nwin now\tspam\n")

    result = spamkit_cli("data", "--data", data, "--label-column", "kind")

    assert_clean_failure(result, data, "no column 'kind'", "'text', 'label'")


def _truncated(zip_bytes: bytes) -> bytes:
    return zip_bytes[: len(zip_bytes) // 2]


def _flipped(zip_bytes: bytes) -> bytes:
    damaged = bytearray(zip_bytes)
    for i in range(5000, 5100):  # inside SMSSpamCollection's compressed data
        damaged[i] ^= 0xFF
    return bytes(damaged)


def test_train_on_a_corrupt_zip_fails_cleanly(tmp_path):
    data = tmp_path / "sms+spam+collection.zip"
    data.write_bytes(_truncated(SMS_ZIP.read_bytes()))
    out = tmp_path / "checkpoint"

    result = spamkit_cli("train", *TINY, "--out", out, "--data", data)

    assert_clean_failure(result, data, "not a valid zip", out=out)
    assert_cache_holds_no_data()


@pytest.mark.parametrize("damage", [
    lambda b: b"this is not a zip archive\n",
    lambda b: b"",
    _truncated,
    _flipped,
], ids=["not-a-zip", "empty", "truncated", "flipped-bytes"])
def test_data_on_a_corrupt_zip_fails_cleanly(tmp_path, damage):
    data = tmp_path / "download.zip"
    data.write_bytes(damage(SMS_ZIP.read_bytes()))

    result = spamkit_cli("data", "--data", data)

    assert_clean_failure(result, data, "not a valid zip")
    assert_cache_holds_no_data()


def altered_uci_zip() -> bytes:
    """The UCI archive, repacked with one message of SMSSpamCollection changed."""
    buf = io.BytesIO()
    with zipfile.ZipFile(SMS_ZIP) as src, zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            data = src.read(info)
            if info.filename == "SMSSpamCollection":
                data = data.replace(b"Ok lar", b"OK LAR", 1)
                assert data != src.read(info)
            dst.writestr(info, data)
    return buf.getvalue()


def test_a_download_with_the_wrong_checksum_is_refused(tmp_path, serve, monkeypatch):
    url, requests = serve(altered_uci_zip())
    monkeypatch.setenv("SPAMKIT_DATA_URL", url)
    out = tmp_path / "checkpoint"

    result = spamkit_cli("train", *TINY, "--out", out)  # no --data: download

    assert requests == ["/sms+spam+collection.zip"]
    assert_clean_failure(result, "sha256", url, out=out)
    assert_cache_holds_no_data()


@pytest.mark.parametrize("command", ["data", "train"])
def test_no_network_and_no_local_copy_says_how_to_give_one(tmp_path, command):
    out = tmp_path / "checkpoint"
    args = [*TINY, "--out", out] if command == "train" else []

    result = spamkit_cli(command, *args)

    assert_clean_failure(result, os.environ["SPAMKIT_DATA_URL"], "--data", "SPAMKIT_DATA",
                         out=out if command == "train" else None)
    assert_cache_holds_no_data()


# -----------------------------------------------------------------------------
# bad checkpoints


def test_export_of_a_checkpoint_whose_weights_do_not_match_its_config(
        tiny_checkpoint, tmp_path):
    checkpoint = tmp_path / "checkpoint"
    shutil.copytree(tiny_checkpoint, checkpoint)
    config = json.loads((checkpoint / "config.json").read_text())
    assert config["model"]["n_embd"] == 64
    config["model"]["n_embd"] = 32
    (checkpoint / "config.json").write_text(json.dumps(config))
    out = tmp_path / "bundle"

    result = spamkit_cli("export", checkpoint, "--out", out, "--int8", "--data", SMS_FILE)

    assert_clean_failure(result, "model.safetensors", "does not match its config", out=out)


def test_export_of_a_checkpoint_whose_config_cannot_build_a_model(tiny_checkpoint, tmp_path):
    checkpoint = tmp_path / "checkpoint"
    shutil.copytree(tiny_checkpoint, checkpoint)
    config = json.loads((checkpoint / "config.json").read_text())
    config["model"]["n_embd"] = 65  # 2 heads cannot split 65 channels
    (checkpoint / "config.json").write_text(json.dumps(config))
    out = tmp_path / "bundle"

    result = spamkit_cli("export", checkpoint, "--out", out, "--data", SMS_FILE)

    assert_clean_failure(result, checkpoint, out=out)


def test_export_of_a_checkpoint_with_more_labels_than_classes_names_both(
        tiny_checkpoint, tmp_path):
    checkpoint = tmp_path / "checkpoint"
    shutil.copytree(tiny_checkpoint, checkpoint)
    config = json.loads((checkpoint / "config.json").read_text())
    config["labels"] = ["ham", "spam", "phishing"]  # the model has two classes
    (checkpoint / "config.json").write_text(json.dumps(config))
    out = tmp_path / "bundle"

    result = spamkit_cli("export", checkpoint, "--out", out, "--data", SMS_FILE)

    assert_clean_failure(result, "config.json lists 3 labels for 2 classes", out=out)


def test_export_of_a_missing_checkpoint_names_it(tmp_path):
    checkpoint = tmp_path / "runs" / "no-such-checkpoint"
    out = tmp_path / "bundle"

    result = spamkit_cli("export", checkpoint, "--out", out, "--data", SMS_FILE)

    assert_clean_failure(result, "checkpoint not found", checkpoint, out=out)


# -----------------------------------------------------------------------------
# bad bundles


@pytest.mark.parametrize("missing, words", [
    ("model.int8.onnx", ["incomplete", "model.int8.onnx is missing"]),
    ("tokenizer.json", ["incomplete", "tokenizer.json is missing"]),
    ("manifest.json", ["not a spamkit bundle", "manifest.json"]),
])
def test_classify_with_a_file_missing_from_the_bundle_names_it(
        tiny_bundle, tmp_path, missing, words):
    bundle = tmp_path / "bundle"
    shutil.copytree(tiny_bundle, bundle)
    (bundle / missing).unlink()

    result = spamkit_cli("classify", bundle, "hello")

    assert_clean_failure(result, bundle, *words)
    assert result.stdout == ""


@pytest.mark.parametrize("name", ["tokenizer.json", "model.int8.onnx", "model.int8.onnx.data"])
def test_classify_with_an_altered_bundle_file_is_refused(tiny_bundle, tmp_path, name):
    bundle = tmp_path / "bundle"
    shutil.copytree(tiny_bundle, bundle)
    data = bytearray((bundle / name).read_bytes())
    middle = len(data) // 2
    data[middle : middle + 8] = bytes(b ^ 0xFF for b in data[middle : middle + 8])
    (bundle / name).write_bytes(bytes(data))

    result = spamkit_cli("classify", bundle, "hello")

    assert_clean_failure(result, bundle / name, "checksum")
    assert result.stdout == ""


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs /dev/full (Linux)")
def test_answers_that_cannot_be_written_are_one_error_line(tiny_bundle):
    """stdout on a full disk: the write's OSError, said in one line, not a traceback."""
    with open("/dev/full", "w") as full:
        result = subprocess.run([sys.executable, "-m", "spamkit", "classify", str(tiny_bundle),
                                 "hello"], stdout=full, stderr=subprocess.PIPE, text=True,
                                timeout=600)

    assert_clean_failure(result, "No space left on device")


# -----------------------------------------------------------------------------
# bad options


@pytest.mark.parametrize("option, value, words", [
    ("--preset", "gpt5", ["'--preset'", "'gpt5' is not one of", "tiny"]),
    ("--trainable", "everything", ["'--trainable'", "'everything' is not one of", "last-block"]),
])
def test_train_with_an_unknown_choice_lists_the_valid_ones(tmp_path, option, value, words):
    out = tmp_path / "checkpoint"

    result = spamkit_cli("train", *TINY, option, value, "--out", out, "--data", SMS_FILE)

    assert_clean_failure(result, *words, out=out)


# -----------------------------------------------------------------------------
# help


@pytest.mark.parametrize("command", [None, "data", "train", "export", "classify"])
def test_help_of_each_command(command):
    args = [command, "--help"] if command else ["--help"]

    result = spamkit_cli(*args)

    assert result.returncode == 0, result.stderr
    assert "Usage" in result.stdout
    if command is None:
        for name in ("data", "train", "export", "classify"):
            assert name in result.stdout
