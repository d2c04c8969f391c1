"""The README's Quickstart, run as written, top to bottom, in an empty folder of a fresh machine:
a new home and cache, no data but what `spamkit data` downloads. UCI is out of reach here, so a
local server hands out the real archive's SMSSpamCollection at the URL the download is pointed
at ($SPAMKIT_DATA_URL); everything else is the user's shell running the user's lines."""

from __future__ import annotations

import csv
import io
import json
import os
import re
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from conftest import ROOT, SMS_FILE

pytestmark = pytest.mark.quickstart

TIMEOUT_S = 1200  # a 2-core machine: training and export take most of it


def quickstart_blocks() -> list[str]:
    """The bash blocks of the README's Quickstart section, in order."""
    readme = (ROOT / "README.md").read_text()
    section = readme.split("\n## Quickstart\n", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```bash\n(.*?)```", section, flags=re.DOTALL)


def uci_archive() -> bytes:
    """A zip as UCI's, holding the collection under the name the download looks for."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        zf.writestr("SMSSpamCollection", SMS_FILE.read_bytes())
        zf.writestr("readme", "SMS Spam Collection v.1\n")
    return buffer.getvalue()


def fresh_machine(tmp_path: Path, data_url: str) -> dict[str, str]:
    """The environment of a user who installed spamkit and has run nothing yet."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("SPAMKIT_", "XDG_", "HF_"))}
    home = tmp_path / "home"
    home.mkdir()
    return {**env, "HOME": str(home), "SPAMKIT_DATA_URL": data_url,
            "PATH": f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}"}


def run_block(block: str, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess:
    result = subprocess.run(["bash", "-euo", "pipefail", "-c", block], cwd=cwd, env=env,
                            capture_output=True, text=True, timeout=TIMEOUT_S)
    assert result.returncode == 0, f"stdout:\n{result.stdout}\nstderr:\n{result.stderr}"
    return result


@pytest.fixture
def machine(tmp_path, serve):
    url, requests = serve(uci_archive())
    work = tmp_path / "work"
    work.mkdir()
    return work, fresh_machine(tmp_path, url), requests


def test_the_quickstart_runs_top_to_bottom_as_written(machine):
    work, env, requests = machine
    result = run_block(quickstart_blocks()[0], work, env)

    assert len(requests) == 1  # downloaded by `spamkit data`, then found by every command
    assert (Path(env["HOME"]) / ".cache" / "spamkit" / "SMSSpamCollection").is_file()
    lines = result.stdout.splitlines()
    assert any(re.match(r"spam\t[01]\.\d+\tWINNER!! Claim your prize$", x) for x in lines)
    assert any(re.match(r"ham\t[01]\.\d+\tsee you at 6\?$", x) for x in lines)
    assert json.loads(next(x for x in lines if x.startswith('{"format"')))["label"] == "spam"
    served = json.loads(next(x for x in lines if x.startswith('{"results"')))
    assert [r["label"] for r in served["results"]] == ["ham"]
    with open(work / "scores.csv", newline="") as f:
        assert [row["label"] for row in csv.DictReader(f)] == ["ham", "spam"]
    manifest = json.loads((work / "runs" / "bundle" / "manifest.json").read_text())
    assert manifest["threshold"]["label"] == "spam"  # calibrate stored it
    assert {"int8", "fp16"} <= set(manifest["graphs"])
    assert (work / "runs" / "site" / "index.html").is_file()
    assert any((work / "runs" / "plots").glob("*.png"))


def test_a_transformers_classifier_exports_and_classifies_in_two_lines(machine):
    from hf_models import SMALL, Case, build

    work, env, _ = machine
    build(Case(SMALL, ("ham", "spam"), "eos", "safetensors", "tokenizer.json"),
          work / "my-gpt2-classifier")
    result = run_block(quickstart_blocks()[1], work, env)

    assert re.search(r"^(ham|spam)\t[01]\.\d+\tsee you at 6\?$", result.stdout, re.MULTILINE)
    manifest = json.loads((work / "runs" / "hf-bundle" / "manifest.json").read_text())
    assert manifest["labels"] == ["ham", "spam"] and "int8" in manifest["graphs"]
