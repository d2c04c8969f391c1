"""Shared fixtures: real SMS data from ../shared, and a tiny model trained on it once per run."""

from __future__ import annotations

import http.server
import itertools
import os
import socket
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
SMS_DIR = ROOT.parent / "shared" / "data" / "sms_spam_collection"
SMS_FILE = SMS_DIR / "SMSSpamCollection"
SMS_ZIP = SMS_DIR / "sms+spam+collection.zip"


def cuda_missing() -> str | None:
    """Why the `gpu` tests cannot run here, or None where they can: they need a GPU that PyTorch
    sees and ONNX Runtime's CUDA provider (onnxruntime-gpu)."""
    import onnxruntime as ort
    import torch

    if not torch.cuda.is_available():
        return "no CUDA device visible to PyTorch"
    if "CUDAExecutionProvider" not in ort.get_available_providers():
        return "ONNX Runtime has no CUDAExecutionProvider (install onnxruntime-gpu)"
    return None


def pytest_collection_modifyitems(config, items):
    gpu_tests = [item for item in items if "gpu" in item.keywords]
    reason = cuda_missing() if gpu_tests else None
    if reason:
        for item in gpu_tests:
            item.add_marker(pytest.mark.skip(reason=f"gpu test: {reason}"))


def closed_port_url() -> str:
    """A localhost URL where nothing listens: the download fails at once, as with no network."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/sms.zip"


@pytest.fixture(autouse=True)
def isolated(tmp_path, monkeypatch):
    """No test reads the user's cache or data, or reaches the internet."""
    monkeypatch.setenv("SPAMKIT_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("SPAMKIT_DATA_URL", closed_port_url())
    monkeypatch.delenv("SPAMKIT_DATA", raising=False)


@pytest.fixture
def serve():
    """Serve bytes from a real HTTP server on 127.0.0.1; return its URL and a request log."""
    servers = []

    def start(body: bytes) -> tuple[str, list[str]]:
        requests: list[str] = []

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                requests.append(self.path)
                self.send_response(200)
                self.send_header("Content-Type", "application/zip")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_address[1]}/sms+spam+collection.zip", requests

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


def train_tiny_checkpoint(out: Path) -> None:
    """The `tiny` preset trained for a few dozen steps on the real balanced split."""
    from spamkit.config import TrainConfig
    from spamkit.data import DataConfig
    from spamkit.training.train import train

    # On the CPU wherever the suite runs, so every test sees the same model.
    cfg = TrainConfig(preset="tiny", epochs=2, max_steps=60, compile=False, lr=1e-3, device="cpu")
    train(cfg, DataConfig(path=str(SMS_FILE)), str(out))


def export_tiny_bundle(checkpoint: Path, out: Path) -> None:
    """fp32 + int8 bundle of the tiny checkpoint."""
    from spamkit.export.bundle import ExportConfig, export_bundle

    export_bundle(checkpoint, out, ExportConfig(int8=True, keep_fp32=True))


# `make mutants` builds the two once, unmutated, for the mutants whose file their building never
# imports (tests/mutation/run.py): such a mutant cannot change them, and each copy saves the time.
PREBUILT = os.environ.get("SPAMKIT_TEST_PREBUILT")


def prebuilt_or_built(name: str, tmp_path_factory, build) -> Path:
    """A fresh copy of the prebuilt `name`, or `build(path)` where there is none."""
    import shutil

    out = tmp_path_factory.mktemp(name) / name
    if PREBUILT:
        shutil.copytree(Path(PREBUILT) / name, out)
    else:
        build(out)
    return out


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory) -> Path:
    return prebuilt_or_built("checkpoint", tmp_path_factory, train_tiny_checkpoint)


@pytest.fixture(scope="session")
def tiny_bundle(tiny_checkpoint, tmp_path_factory) -> Path:
    return prebuilt_or_built("bundle", tmp_path_factory,
                             lambda out: export_tiny_bundle(tiny_checkpoint, out))


@pytest.fixture(scope="session")
def tiny_ort_bundle(tiny_checkpoint, tmp_path_factory) -> Path:
    """int8 bundle of the tiny checkpoint with its graph in ORT format too (`--ort`)."""
    out = tmp_path_factory.mktemp("export-ort") / "bundle"
    result = spamkit_cli("export", tiny_checkpoint, "--out", out, "--int8", "--ort")
    assert result.returncode == 0, result.stderr
    return out


@pytest.fixture(scope="session")
def sms_20k(tmp_path_factory) -> Path:
    """20,000 real SMS messages, one per line: the collection's 5,574 repeated."""
    texts = [line.split("\t", 1)[1].rstrip("\r")
             for line in SMS_FILE.read_text(encoding="utf-8").split("\n") if line]
    path = tmp_path_factory.mktemp("score") / "sms20k.txt"
    lines = itertools.islice(itertools.cycle(texts), 20_000)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


# Runs that batch the same messages differently are compared byte for byte: with the fp32 graph
# and one thread a message's logits move with its batch-mates by float rounding alone (~1e-7),
# below the six decimals written.
SCORE_FP32 = ("--precision", "fp32", "--threads", "1")


@pytest.fixture(scope="session")
def sms_20k_scored(sms_20k, tiny_bundle, tmp_path_factory) -> Path:
    """`spamkit score` of sms_20k by the local engine, uninterrupted: the reference output."""
    out = tmp_path_factory.mktemp("scored") / "scores.csv"
    result = spamkit_cli("score", tiny_bundle, sms_20k, "--out", out, *SCORE_FP32)
    assert result.returncode == 0, result.stderr
    return out


def spamkit_cli(*args: str, stdin: str | None = None, env: dict | None = None,
                cwd: Path | None = None) -> subprocess.CompletedProcess:
    """Run `python -m spamkit ARGS` in a fresh process, as a user's shell would."""
    return subprocess.run(
        [sys.executable, "-m", "spamkit", *map(str, args)],
        input=stdin, capture_output=True, text=True, timeout=600,
        env={**os.environ, **(env or {})}, cwd=cwd,
    )


def reference_probabilities(bundle: Path, texts: list[str],
                            graph: str = "model.onnx") -> np.ndarray:
    """Class probabilities by a route that shares nothing with spamkit.runtime but the graph:
    GPT-2's tokenizer as spamkit.tokenizer builds it (checked against tiktoken's own loader),
    ONNX Runtime's session run on each message alone (no padding, a mask of ones), and a softmax
    here. For messages within the context (asserted); an empty one is `<|endoftext|>`, and so is
    that text inside a message (docs/bundle-format.md)."""
    import onnxruntime as ort

    from spamkit.tokenizer import gpt2_encoding

    encoding = gpt2_encoding()
    session = ort.InferenceSession(str(bundle / graph), providers=["CPUExecutionProvider"])
    rows = []
    for text in texts:
        ids = encoding.encode(text, allowed_special={"<|endoftext|>"}, disallowed_special=())
        ids = ids or [encoding.eot_token]
        assert len(ids) <= 256, "a message beyond the tiny model's context"
        feed = {"input_ids": np.array([ids], dtype=np.int64),
                "attention_mask": np.ones((1, len(ids)), dtype=np.int64)}
        logits = session.run(["logits"], feed)[0][0].astype(np.float64)
        e = np.exp(logits - logits.max())
        rows.append(e / e.sum())
    return np.array(rows)


def assert_clean_failure(result, *words, out: Path | None = None) -> str:
    """Non-zero exit, exactly one `spamkit: error:` line naming the problem, no traceback, and
    neither the output directory nor a temporary leftover beside it."""
    assert result.returncode != 0, f"expected a failure\nstdout:\n{result.stdout}"
    assert "Traceback" not in result.stderr, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, f"expected one line on stderr, got:\n{result.stderr}"
    line = lines[0]
    assert line.startswith("spamkit: error: "), line
    assert line.removeprefix("spamkit: error: ").strip(), line
    for word in words:
        assert str(word) in line, f"{word!r} not in {line!r}"
    if out is not None:
        assert not out.exists(), f"{out} was left behind"
        if out.parent.exists():
            leftovers = [p.name for p in out.parent.iterdir()
                         if ".tmp-" in p.name or ".old-" in p.name]
            assert not leftovers, f"temporary leftovers in {out.parent}: {leftovers}"
    return line
