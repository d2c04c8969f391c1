"""Reading a user's messages exactly: strict CSV (a quote that never closes is an error naming
the file and line, never a silent merge of the rows after it), TSV without quoting (a message
that starts with `"` is just a message), one rule for line ends in `score` and `classify`, and
`classify` answering each line of stdin as it arrives. Real CLI, real SMS messages."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
import threading
import zipfile
from pathlib import Path

import pytest
from conftest import SCORE_FP32, SMS_FILE, assert_clean_failure, spamkit_cli

SMS = [line.rstrip("\r").split("\t", 1) for line in SMS_FILE.read_text("utf-8").split("\n")
       if line]


def nothing_written(out: Path) -> None:
    assert not out.exists() and not out.with_name(out.name + ".partial").exists()


def scored(out: Path) -> list[dict]:
    with open(out, encoding="utf-8", newline="") as f:
        return list(csv.DictReader(f))


@pytest.mark.parametrize("content, line, words", [
    ('text\nhello\n"free prize, call now\nsee you soon\nok\n', 3, "never closed"),
    ('text\nhello\n"free" prize\nok\n', 3, "malformed CSV"),
    ('id,text\n1,hello\n2,"a\nb"\n3,"c"d\n', 5, "malformed CSV"),
], ids=["unclosed-quote", "text-after-quote", "after-a-multiline-field"])
def test_a_malformed_csv_is_refused_naming_the_line(tmp_path, tiny_bundle, content, line, words):
    path = tmp_path / "inbox.csv"
    path.write_text(content, encoding="utf-8")
    out = tmp_path / "scores.csv"

    result = spamkit_cli("score", tiny_bundle, path, "--out", out)

    assert_clean_failure(result, f"inbox.csv, line {line}", words)
    assert result.returncode == 1
    nothing_written(out)


@pytest.mark.parametrize("ident", [None, True, ["a"], {"n": 1}],
                         ids=["null", "true", "list", "object"])
def test_a_json_id_that_is_neither_string_nor_number_is_refused_naming_the_line(
        tmp_path, tiny_bundle, ident):
    path = tmp_path / "inbox.jsonl"
    path.write_text(json.dumps({"id": 7, "text": "hello"}) + "\n"
                    + json.dumps({"id": ident, "text": "free prize"}) + "\n", encoding="utf-8")
    out = tmp_path / "scores.csv"

    result = spamkit_cli("score", tiny_bundle, path, "--out", out, "--id-column", "id")

    assert_clean_failure(result, "inbox.jsonl, line 2", "no string or number field 'id'")
    nothing_written(out)


def test_the_sms_collection_as_a_tsv_scores_every_message(tmp_path, tiny_bundle):
    # 5,574 messages; some start with a quote that a quoting reader would carry to the next
    # line's, merging messages.
    assert sum(text.startswith('"') for _, text in SMS) > 0
    path = tmp_path / "sms.tsv"
    path.write_text("label\ttext\n" + "".join(f"{label}\t{text}\n" for label, text in SMS),
                    encoding="utf-8")
    out = tmp_path / "scores.csv"

    result = spamkit_cli("score", tiny_bundle, path, "--out", out, "--id-column", "label")

    assert result.returncode == 0, result.stderr
    rows = scored(out)
    assert len(rows) == len(SMS) == 5574
    assert [r["id"] for r in rows] == [label for label, _ in SMS]
    data = spamkit_cli("data", "--data", path)  # training reads a TSV the same way
    assert data.returncode == 0, data.stderr
    assert data.stdout.startswith(f"{path}: 5574 messages (4827 ham, 747 spam)")


def test_a_tsv_quote_is_part_of_the_message(tmp_path, tiny_bundle):
    texts = ['"WINNER!! claim your prize', 'call me "now"', 'ok"']
    path = tmp_path / "in.tsv"
    path.write_text("text\n" + "\n".join(texts) + "\n", encoding="utf-8")
    out = tmp_path / "scores.csv"
    assert spamkit_cli("score", tiny_bundle, path, "--out", out, *SCORE_FP32).returncode == 0
    answers = classify_json(tiny_bundle, "\n".join(texts) + "\n")
    assert [a["text"] for a in answers] == texts
    assert [r["p_spam"] for r in scored(out)] == [f"{a['probabilities']['spam']:.6f}"
                                                  for a in answers]


def classify_json(bundle: Path, stdin: str) -> list[dict]:
    result = spamkit_cli("classify", bundle, "--json", "--precision", "fp32", "--threads", "1",
                         stdin=stdin)
    assert result.returncode == 0, result.stderr
    return [json.loads(line) for line in result.stdout.splitlines()]


def test_score_and_classify_end_lines_alike(tmp_path, tiny_bundle):
    """Only LF ends a line; a CRLF's CR goes with it; a lone CR is part of the message."""
    raw = b"free\rprize call now\nsee you\r\nlast\r\r\nno newline\r"
    expected = ["free\rprize call now", "see you", "last\r", "no newline\r"]
    path = tmp_path / "in.txt"
    path.write_bytes(raw)
    out = tmp_path / "scores.csv"
    assert spamkit_cli("score", tiny_bundle, path, "--out", out, *SCORE_FP32).returncode == 0

    result = subprocess.run([sys.executable, "-m", "spamkit", "classify", str(tiny_bundle),
                             "--json", *SCORE_FP32], input=raw, capture_output=True, timeout=300)
    assert result.returncode == 0, result.stderr
    answers = [json.loads(line) for line in result.stdout.splitlines()]
    assert [a["text"] for a in answers] == expected
    assert [r["p_spam"] for r in scored(out)] == [f"{a['probabilities']['spam']:.6f}"
                                                  for a in answers]


def test_classify_answers_each_line_as_it_arrives(tiny_bundle):
    proc = subprocess.Popen([sys.executable, "-m", "spamkit", "classify", str(tiny_bundle)],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    answers: list[str] = []
    got = threading.Event()

    def read() -> None:
        for line in proc.stdout:
            answers.append(line)
            got.set()

    threading.Thread(target=read, daemon=True).start()
    try:
        for n, message in enumerate([SMS[0][1], SMS[2][1], "see you at 6?"], 1):
            proc.stdin.write(message + "\n")
            proc.stdin.flush()
            # The answer comes while stdin is still open: nothing waits for the end of input.
            assert got.wait(120), f"no answer to line {n} before stdin closed"
            got.clear()
            assert len(answers) == n and answers[-1].rstrip("\n").endswith(message)
    finally:
        proc.stdin.close()
    assert proc.wait(60) == 0, proc.stderr.read()


def test_deeply_nested_json_is_one_error_line(tmp_path, tiny_bundle):
    path = tmp_path / "in.jsonl"
    path.write_text('{"text": "hi"}\n{"text": "x", "meta": ' + "[" * 100_000 + "]" * 100_000
                    + "}\n", encoding="utf-8")
    out = tmp_path / "scores.csv"
    result = spamkit_cli("score", tiny_bundle, path, "--out", out)
    assert_clean_failure(result, "in.jsonl, line 2", "nested too deeply")
    nothing_written(out)


# -----------------------------------------------------------------------------
# data too large to be what it claims


def test_a_zip_bomb_given_to_data_is_refused_unpacked(tmp_path):
    bomb = tmp_path / "sms+spam+collection.zip"
    with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as zf:
        with zf.open("SMSSpamCollection", "w", force_zip64=True) as member:
            for _ in range(64):
                member.write(b"ham\t" + b"0" * (2**24 - 4))  # 1 GiB in all, ~1 MB packed
    assert bomb.stat().st_size < 2**21
    out = tmp_path / "run"
    for command in (("data",), ("train", "--out", out)):
        result = spamkit_cli(*command, "--data", bomb)
        assert_clean_failure(result, str(bomb), "over 8 MiB", out=out)


def test_an_oversized_download_is_refused(tmp_path, serve):
    url, _ = serve(b"PK" + b"\0" * (9 * 2**20))
    result = spamkit_cli("data", env={"SPAMKIT_DATA_URL": url})
    assert_clean_failure(result, "over 8 MiB")
    assert not (tmp_path / "cache" / "SMSSpamCollection").exists()


def test_a_data_file_over_a_gib_is_refused_unread(tmp_path):
    big = tmp_path / "huge.csv"
    with open(big, "wb") as f:
        f.write(b"text,label\n")
        f.truncate(2**30 + 1)  # sparse: takes no disk
    assert_clean_failure(spamkit_cli("data", "--data", big), str(big), "over 1 GiB")
