"""docs/bring-your-own.md's transformers `Trainer` code is real: run as written (from a small
GPT-2 in a local folder instead of the Hub's, for fewer steps), it leaves a folder that
`spamkit export` turns into a bundle and `spamkit train --init` trains on."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest
from conftest import ROOT, SMS_FILE, spamkit_cli
from hf_models import build_language_model

from spamkit.runtime import Classifier
from spamkit.training.checkpoint import load_checkpoint

pytestmark = pytest.mark.slow  # `make test-slow`

pytest.importorskip("accelerate", reason="transformers' Trainer needs accelerate (dev extra)")

GUIDE = ROOT / "docs" / "bring-your-own.md"
# What the test changes in the guide's code: the base model, and how long it trains.
BASE = 'base = "gpt2"'
EPOCH = "num_train_epochs=1"


def guide_code() -> str:
    """The guide's one Python block."""
    blocks = re.findall(r"```python\n(.*?)```", GUIDE.read_text(encoding="utf-8"), re.S)
    assert len(blocks) == 1, f"{GUIDE} has {len(blocks)} Python blocks"
    return blocks[0]


def test_the_guides_trainer_code_makes_a_folder_spamkit_exports_and_trains_on(tmp_path):
    base = tmp_path / "small-gpt2"
    build_language_model(base, n_positions=1024)  # GPT-2's context: no SMS is cut
    code = guide_code()
    assert code.count(BASE) == 1 and code.count(EPOCH) == 1, "the guide's code changed"
    code = code.replace(BASE, f"base = {str(base)!r}").replace(EPOCH, "max_steps=30")
    (tmp_path / "SMSSpamCollection").symlink_to(SMS_FILE)  # where the guide reads it from

    offline = {"OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", "HF_HOME": str(tmp_path / "hf")}
    ran = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True,
                         text=True, timeout=300, env=offline)
    assert ran.returncode == 0, ran.stderr

    exported = spamkit_cli("export", "sms-gpt2", "--out", "bundle", "--int8", "--data",
                           "SMSSpamCollection", cwd=tmp_path)
    assert exported.returncode == 0, exported.stderr
    assert "fp32 graph vs transformers" in exported.stdout
    assert Classifier.load(tmp_path / "bundle").labels == ["ham", "spam"]
    trained = spamkit_cli("train", "--init", "sms-gpt2", "--out", "checkpoint", "--epochs", "1",
                          "--max-steps", "3", "--no-compile", "--data", "SMSSpamCollection",
                          cwd=tmp_path)
    assert trained.returncode == 0, trained.stderr
    assert load_checkpoint(tmp_path / "checkpoint").labels == ["ham", "spam"]
