"""Shared fixtures: real SMS data from ../shared, and a tiny model trained on it once per run."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SMS_DIR = ROOT.parent / "shared" / "data" / "sms_spam_collection"
SMS_FILE = SMS_DIR / "SMSSpamCollection"
SMS_ZIP = SMS_DIR / "sms+spam+collection.zip"


@pytest.fixture(autouse=True)
def _offline_cache(tmp_path_factory, monkeypatch):
    """No test may touch the user's cache or the internet: an empty cache and a dead URL."""
    monkeypatch.setenv("SPAMKIT_CACHE", str(tmp_path_factory.mktemp("cache")))
    monkeypatch.setenv("SPAMKIT_DATA_URL", "http://127.0.0.1:9/unreachable.zip")
    monkeypatch.delenv("SPAMKIT_DATA", raising=False)


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory) -> Path:
    """The `tiny` preset trained for a few dozen steps on the real balanced split."""
    from spamkit.config import TrainConfig
    from spamkit.data import DataConfig
    from spamkit.train import train

    out = tmp_path_factory.mktemp("train") / "checkpoint"
    cfg = TrainConfig(preset="tiny", epochs=2, max_steps=60, compile=False, lr=1e-3)
    train(cfg, DataConfig(path=str(SMS_FILE)), str(out))
    return out


@pytest.fixture(scope="session")
def tiny_bundle(tiny_checkpoint, tmp_path_factory) -> Path:
    """fp32 + int8 bundle of the tiny checkpoint."""
    from spamkit.export.bundle import ExportConfig, export_bundle

    out = tmp_path_factory.mktemp("export") / "bundle"
    export_bundle(tiny_checkpoint, out, ExportConfig(int8=True))
    return out


def spamkit_cli(*args: str, stdin: str | None = None, env: dict | None = None,
                cwd: Path | None = None) -> subprocess.CompletedProcess:
    """Run `python -m spamkit ARGS` in a fresh process, as a user's shell would."""
    return subprocess.run(
        [sys.executable, "-m", "spamkit", *map(str, args)],
        input=stdin, capture_output=True, text=True, timeout=600,
        env={**os.environ, **(env or {})}, cwd=cwd,
    )
