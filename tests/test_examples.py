"""examples/ as a reader runs them, from the shell, made small enough for CI by their options."""

from __future__ import annotations

import re
import subprocess
import sys

from conftest import ROOT, SMS_FILE, assert_clean_failure

CH06 = ROOT / "examples" / "ch06_finetune.py"
# The two messages the book's section 6.8 classifies.
BOOK_MESSAGES = [
    "You are a winner you have been specially selected to receive $1000 cash or a $2000 award.",
    "Hey, just wanted to check if we're still on for dinner tonight? Let me know!",
]


def run_ch06(*args: object) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, CH06, *map(str, args)], capture_output=True,
                          text=True, timeout=300)


def test_ch06_splits_trains_evaluates_and_labels_the_books_two_messages(tmp_path):
    out = tmp_path / "ch06"
    result = run_ch06("--preset", "tiny", "--max-steps", "20", "--data", SMS_FILE, "--out", out)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    # The book's balanced split of the collection: 747 spam, as many ham, cut 70/10/20.
    assert "1045 training, 149 validation and 300 test messages, labels ['ham', 'spam']" in lines
    for name in ("Training", "Validation", "Test"):
        assert any(re.fullmatch(rf"{name} accuracy: \d+\.\d\d%", line) for line in lines), name
    labelled = [line.split(": ", 1) for line in lines[-2:]]
    assert [text for _, text in labelled] == BOOK_MESSAGES
    assert {label for label, _ in labelled} <= {"ham", "spam"}
    assert (out / "model.safetensors").is_file()  # the checkpoint, for `spamkit export`


def test_ch06_says_in_one_line_that_the_data_file_is_missing(tmp_path):
    out = tmp_path / "ch06"
    result = run_ch06("--preset", "tiny", "--data", tmp_path / "nowhere.txt", "--out", out)
    assert_clean_failure(result, "no data file at", out=out)
