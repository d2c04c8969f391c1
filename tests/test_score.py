"""`spamkit score` with the local engine, as a user runs it on files of their own: every test
runs the real CLI in a fresh process on real SMS messages and the tiny bundle.

Interrupting and resuming a run is in reliability/test_interrupts.py; the Ray engine in
test_score_ray.py.
"""

from __future__ import annotations

import csv
import json
import subprocess
import sys
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
from conftest import (
    SCORE_FP32,
    SMS_FILE,
    assert_clean_failure,
    reference_probabilities,
    spamkit_cli,
)

from spamkit.jobs.score import ScoreConfig, score_file
from spamkit.records import Source
from spamkit.runtime import Classifier

SMS = [line.split("\t", 1)[1] for line in SMS_FILE.read_text(encoding="utf-8").split("\n") if line]


def assert_scores(rows: list[dict], ids: list[str], bundle: Path, texts: list[str]) -> None:
    """One row per message in input order, each with the label and probabilities that the fp32
    graph gives the message on its own (computed without spamkit.runtime)."""
    assert [str(r["id"]) for r in rows] == ids
    expected = reference_probabilities(bundle, texts)
    assert [r["label"] for r in rows] == [["ham", "spam"][i] for i in expected.argmax(axis=1)]
    # Six decimals written; batch-mates move fp32 logits by float rounding (~1e-7) besides.
    got = [[float(r["p_ham"]), float(r["p_spam"])] for r in rows]
    np.testing.assert_allclose(got, expected, atol=2e-6, rtol=0)


def assert_nothing_written(out: Path) -> None:
    assert not out.exists(), f"{out} was written"
    assert not out.with_name(out.name + ".partial").exists(), "a partial file was left"


def test_a_csv_export_with_its_own_ids(tmp_path, tiny_bundle):
    # A spreadsheet export: a BOM, other columns, quoting, a message spanning lines, an empty
    # message, a blank line.
    texts = [SMS[0], 'He said "call me", ok?', "line one\nline two", "", SMS[2], "恭喜您中奖了 🎉"]
    path = tmp_path / "inbox.csv"
    with open(path, "w", encoding="utf-8-sig", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["received", "msg_id", "body"])
        for i, text in enumerate(texts):
            writer.writerow(["2024-05-01", f"m-{i:03d}", text])
            if i == 2:
                f.write("\r\n")
    out = tmp_path / "scores.csv"

    result = spamkit_cli("score", tiny_bundle, path, "--out", out, "--text-column", "body",
                         "--id-column", "msg_id", *SCORE_FP32)

    assert result.returncode == 0, result.stderr
    assert result.stdout == f"{len(texts)} messages scored into {out}\n"
    with open(out, encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0]) == ["id", "label", "p_ham", "p_spam"]
    assert_scores(rows, [f"m-{i:03d}" for i in range(len(texts))], tiny_bundle, texts)
    assert not out.with_name("scores.csv.partial").exists()


def test_one_message_per_line_numbered_from_one(tmp_path, tiny_bundle):
    texts = SMS[:300] + ["", "a Windows line", "🎉 last line, without a newline"]
    raw = "\n".join(texts[:-2]) + "\na Windows line\r\n" + texts[-1]
    path = tmp_path / "messages.txt"
    path.write_bytes(raw.encode("utf-8"))
    out = tmp_path / "scores.jsonl"

    result = spamkit_cli("score", tiny_bundle, path, "--out", out, *SCORE_FP32)

    assert result.returncode == 0, result.stderr
    rows = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert_scores(rows, [str(i) for i in range(1, len(texts) + 1)], tiny_bundle, texts)


def test_json_lines_with_numeric_ids(tmp_path, tiny_bundle):
    texts = SMS[10:40] + ["an escaped lone surrogate \ud800 becomes U+FFFD"]
    path = tmp_path / "messages.jsonl"
    lines = [json.dumps({"n": 1000 + i, "message": t, "meta": {"x": 1}})
             for i, t in enumerate(texts)]
    path.write_text("\n".join(lines[:5]) + "\n\n" + "\n".join(lines[5:]) + "\n", encoding="utf-8")
    out = tmp_path / "scores.csv"

    result = spamkit_cli("score", tiny_bundle, path, "--out", out, "--text-column", "message",
                         "--id-column", "n", *SCORE_FP32)

    assert result.returncode == 0, result.stderr
    with open(out, encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f))
    texts[-1] = texts[-1].replace("\ud800", "\ufffd\ufffd\ufffd")
    assert_scores(rows, [str(1000 + i) for i in range(len(texts))], tiny_bundle, texts)


def test_the_int8_graph_by_default(tmp_path, tiny_bundle):
    texts = SMS[:200]
    path = tmp_path / "messages.txt"
    path.write_text("\n".join(texts) + "\n", encoding="utf-8")
    out = tmp_path / "scores.csv"
    result = spamkit_cli("score", tiny_bundle, path, "--out", out, "--batch-size", "64")
    assert result.returncode == 0, result.stderr
    with open(out, encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f))
    clf = Classifier.load(tiny_bundle)  # int8 on a CPU
    assert clf.precision == "int8"
    # Batch by batch as the command does, so that even float rounding is the same.
    probs = np.concatenate([clf.predict_proba(texts[i : i + 64]) for i in range(0, 200, 64)])
    got = np.array([[float(r["p_ham"]), float(r["p_spam"])] for r in rows])
    np.testing.assert_allclose(got, probs, atol=6e-7)


@pytest.mark.parametrize("name, content, options, words", [
    ("in.csv", "id,message\n1,hello\n", (), ["in.csv", "no column 'text'", "'id', 'message'"]),
    ("in.csv", "text\nhello\n", ("--id-column", "key"), ["no column 'key'"]),
    ("in.tsv", "key\ttext\n1\thello\n2\n", ("--id-column", "key"),
     ["in.tsv, line 3", "1 fields"]),
    ("in.jsonl", '{"text": "a"}\n{"text": "b"}\n{"text": "c"\n', (),
     ["in.jsonl, line 3", "not valid JSON"]),
    ("in.jsonl", '{"text": "a"}\n{"body": "b"}\n', (), ["in.jsonl, line 2", "'text'"]),
    ("in.jsonl", '["a"]\n', (), ["in.jsonl, line 1", "JSON object"]),
    ("in.csv", "", (), ["in.csv is empty"]),
], ids=["no-text-column", "no-id-column", "short-row", "bad-json", "no-text-field", "not-object",
        "empty-csv"])
def test_bad_input_is_one_error_line_naming_file_and_line(tmp_path, tiny_bundle, name, content,
                                                         options, words):
    path = tmp_path / name
    path.write_text(content, encoding="utf-8")
    out = tmp_path / "scores.csv"
    result = spamkit_cli("score", tiny_bundle, path, "--out", out, *options)
    assert_clean_failure(result, *words)
    assert_nothing_written(out)


def test_missing_files_and_a_bad_output_name(tmp_path, tiny_bundle):
    texts = tmp_path / "in.txt"
    texts.write_text("hello\n", encoding="utf-8")
    out = tmp_path / "scores.csv"
    assert_clean_failure(spamkit_cli("score", tiny_bundle, tmp_path / "nope.txt", "--out", out),
                         "no input file", "nope.txt")
    assert_clean_failure(spamkit_cli("score", tmp_path / "nobundle", texts, "--out", out),
                         "bundle not found")
    assert_nothing_written(out)
    xlsx = tmp_path / "scores.xlsx"
    assert_clean_failure(spamkit_cli("score", tiny_bundle, texts, "--out", xlsx), ".csv or .jsonl")
    assert not xlsx.exists()
    assert_clean_failure(spamkit_cli("score", tiny_bundle, texts, "--out", out, "--actors", "2"),
                         "--engine ray")


def test_a_partial_file_is_never_overwritten_or_mistaken(tmp_path, tiny_bundle):
    texts = tmp_path / "in.txt"
    texts.write_text("\n".join(SMS[:50]) + "\n", encoding="utf-8")
    out = tmp_path / "scores.csv"

    result = spamkit_cli("score", tiny_bundle, texts, "--out", out, "--resume")
    assert_clean_failure(result, "nothing to resume", "scores.csv.partial")

    # Rows with no record of the run that wrote them: refused, not continued or replaced
    # (runs interrupted on another input or bundle are in reliability/test_resume_identity.py).
    partial = out.with_name("scores.csv.partial")
    partial.write_text("id,label,p_ham,p_spam\r\n1,ham,0.9,0.1\r\n2,ham,0.9,0.1\r\n"
                       "x,ham,0.9,0.1\r\n")
    before = partial.read_bytes()
    assert_clean_failure(spamkit_cli("score", tiny_bundle, texts, "--out", out),
                         "scores.csv.partial", "--resume")
    assert_clean_failure(spamkit_cli("score", tiny_bundle, texts, "--out", out, "--resume"),
                         "scores.csv.partial.json", "delete it")
    assert partial.read_bytes() == before and not out.exists()


def test_scoring_never_needs_torch(tmp_path, tiny_bundle):
    path = tmp_path / "in.txt"
    path.write_text("\n".join(SMS[:20]) + "\n", encoding="utf-8")
    out = tmp_path / "scores.csv"
    code = ("import sys; sys.modules['torch'] = None  # any `import torch` now raises\n"
            "from spamkit.cli import main\n"
            f"sys.argv = ['spamkit', 'score', {str(tiny_bundle)!r}, {str(path)!r}, "
            f"'--out', {str(out)!r}]\n"
            "main()")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            timeout=120, check=False)
    assert result.returncode == 0, result.stderr
    assert len(out.read_text().splitlines()) == 21


def test_memory_stays_flat_however_large_the_file(tmp_path, tiny_bundle):
    """A 40 MB export (a 4 KB column beside every short message) scored in a few MiB: the
    file is read and scored one batch at a time, never held whole."""
    path = tmp_path / "export.csv"
    blob = "x" * 4000
    with open(path, "w", encoding="utf-8", newline="") as f:
        f.write("text,attachment\n")
        f.writelines(f"ok {i},{blob}\n" for i in range(10_000))
    assert path.stat().st_size > 40e6
    tracemalloc.start()
    n = score_file(tiny_bundle, Source.of(path), tmp_path / "scores.csv",
                   ScoreConfig(batch_size=256, threads=1))
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert n == 10_000
    # Measured: ~12 MiB, most of it loading the tokenizer; holding the file would take 40+.
    assert peak < 24 * 2**20, f"peak traced memory {peak / 2**20:.1f} MiB"
