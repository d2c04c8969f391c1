"""The GPU path on a real GPU: train on CUDA (autocast, torch.compile), export --fp16, classify
through ONNX Runtime's CUDA provider. Marked `gpu`: skipped where PyTorch sees no GPU or ONNX
Runtime lacks its CUDA provider (see conftest.py); tests/test_devices.py covers the rest."""

import json
import re
import signal
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
import torch
from conftest import SMS_FILE, spamkit_cli
from safetensors.torch import load_file

from spamkit.config import TrainConfig
from spamkit.data import DataConfig
from spamkit.export.bundle import FP16_TOLERANCE
from spamkit.runtime import BundleError, Classifier
from spamkit.training.checkpoint import load_checkpoint
from spamkit.training.train import train

pytestmark = pytest.mark.gpu

MESSAGES = [line.split("\t", 1)[1] for line in SMS_FILE.read_text(encoding="utf-8").splitlines()]
TEXTS = MESSAGES[:300]
# fp16 logits (and fp32 ones, which ONNX Runtime's CUDA provider multiplies in TF32, with
# fp16's 10-bit mantissa) are held, element by element, to the bound export holds the fp16
# graph to on the CPU.
ATOL, RTOL = FP16_TOLERANCE


@pytest.fixture(scope="module")
def cuda_run(tmp_path_factory):
    """`spamkit train --device cuda` with its defaults: bf16 autocast (fp16 where the GPU has no
    bf16) and torch.compile."""
    out = tmp_path_factory.mktemp("cuda") / "checkpoint"
    result = spamkit_cli("train", "--device", "cuda", "--preset", "tiny", "--epochs", "2",
                         "--max-steps", "60", "--lr", "1e-3", "--data", SMS_FILE, "--out", out)
    assert result.returncode == 0, result.stderr
    return result, out


@pytest.fixture(scope="module")
def cuda_bundle(cuda_run, tmp_path_factory):
    out = tmp_path_factory.mktemp("cuda") / "bundle"
    # --keep-fp32: the fp32 graph too, to compare the two providers on one graph.
    result = spamkit_cli("export", cuda_run[1], "--out", out, "--int8", "--fp16", "--keep-fp32")
    assert result.returncode == 0, result.stderr
    return out


def test_training_on_cuda_autocasts_compiles_and_writes_a_cpu_checkpoint(cuda_run):
    result, out = cuda_run
    precision = "bf16" if torch.cuda.is_bf16_supported(including_emulation=False) else "fp16"
    assert re.search(rf", on cuda \(.+\), precision {precision}, compile on", result.stdout)
    training = json.loads((out / "config.json").read_text())["training"]
    assert (training["device"], training["precision"]) == ("cuda", precision)
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["final"]["test"]["accuracy"] > 0.6
    # Device-independent: the weights load on a machine without a GPU.
    model = load_checkpoint(out).model
    assert all(p.device.type == "cpu" and p.dtype == torch.float32 for p in model.parameters())


def test_fp16_training_uses_a_gradient_scaler_on_cuda(tmp_path):
    cfg = TrainConfig(preset="tiny", epochs=1, max_steps=5, compile=False, precision="fp16",
                      device="cuda")
    train(cfg, DataConfig(path=str(SMS_FILE)), str(tmp_path / "ckpt"))
    assert all(torch.isfinite(t).all() for t in load_file(tmp_path / "ckpt" / "model.safetensors")
               .values())


def test_cuda_runs_the_fp16_graph_and_agrees_with_cpu_fp32(cuda_bundle):
    gpu = Classifier.load(cuda_bundle, device="cuda")
    assert (gpu.device, gpu.precision) == ("cuda", "fp16")
    assert gpu.session.get_providers()[0] == "CUDAExecutionProvider"
    cpu = Classifier.load(cuda_bundle, precision="fp32")
    got, want = gpu.logits(TEXTS), cpu.logits(TEXTS)
    assert got.dtype == np.float32 and got.shape == (300, 2)
    np.testing.assert_allclose(got, want, atol=ATOL, rtol=RTOL)
    assert np.mean(got.argmax(1) == want.argmax(1)) >= 0.99


def test_fp32_on_cuda_agrees_with_fp32_on_cpu(cuda_bundle):
    gpu = Classifier.load(cuda_bundle, device="cuda", precision="fp32")
    cpu = Classifier.load(cuda_bundle, precision="fp32")
    np.testing.assert_allclose(gpu.logits(TEXTS), cpu.logits(TEXTS), atol=ATOL, rtol=RTOL)


def test_auto_picks_the_gpu_and_the_int8_graph_stays_on_the_cpu(cuda_bundle):
    clf = Classifier.load(cuda_bundle, device="auto")
    assert (clf.device, clf.precision) == ("cuda", "fp16")
    with pytest.raises(BundleError, match="int8 graph .* is meant for cpu, not cuda"):
        Classifier.load(cuda_bundle, device="cuda", precision="int8")


def test_threads_share_a_cuda_classifier(cuda_bundle):
    clf = Classifier.load(cuda_bundle, device="cuda")
    chunks = [MESSAGES[i : i + 250] for i in range(0, 2000, 250)]
    serial = [clf.predict_proba(c) for c in chunks]
    with ThreadPoolExecutor(8) as pool:
        threaded = list(pool.map(clf.predict_proba, chunks))
    # Rows mixed up between threads would differ by far more than a GPU kernel's rounding.
    for a, b in zip(serial, threaded):
        np.testing.assert_allclose(a, b, atol=1e-3, rtol=0)


def test_classify_and_eval_on_cuda_from_the_command_line(cuda_bundle):
    result = spamkit_cli("classify", cuda_bundle, "--device", "cuda", "--json",
                         "WINNER!! Claim your £900 prize now", "see you at 6?")
    assert result.returncode == 0, result.stderr
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert [r["label"] in ("ham", "spam") for r in rows] == [True, True]
    result = spamkit_cli("eval", cuda_bundle, "--device", "cuda", "--json", "--data", SMS_FILE)
    assert result.returncode == 0, result.stderr
    manifest = json.loads((cuda_bundle / "manifest.json").read_text())
    # The same graph on another provider: a message or two near the boundary may flip.
    assert json.loads(result.stdout)["accuracy"] == pytest.approx(
        manifest["verification"]["test_accuracy_fp16"], abs=2 / 300)


def test_bench_measures_the_gpu_as_it_measures_the_cpu(cuda_bundle):
    result = spamkit_cli("bench", cuda_bundle, "--device", "cuda", "--data", SMS_FILE, "--json",
                         "--messages", "50", "--throughput-messages", "500")
    assert result.returncode == 0, result.stderr
    r = json.loads(result.stdout)
    assert (r["device"], r["precision"], r["graph"]) == ("cuda", "fp16", "model.fp16.onnx")
    assert r["providers"][0] == "CUDAExecutionProvider"
    assert 0 < r["latency_ms"]["p50"] <= r["latency_ms"]["p90"]
    assert r["throughput"]["messages"] == 500 and r["throughput"]["msgs_per_s"] > 0


def test_an_interrupted_cuda_run_resumes_on_the_gpu(tmp_path):
    out = tmp_path / "ckpt"
    args = ["train", "--device", "cuda", "--preset", "tiny", "--no-compile", "--epochs", "3",
            "--data", str(SMS_FILE), "--out", str(out)]
    child = subprocess.Popen(
        [sys.executable, "-m", "spamkit", *args], stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True,
        # As a terminal's Ctrl-C: a child of a CI runner may inherit SIGINT ignored.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),  # noqa: PLW1509
    )
    for line in child.stdout:
        if line.startswith("epoch 1:"):
            child.send_signal(signal.SIGINT)
            break
    _, err = child.communicate(timeout=300)
    assert child.returncode == 130, err
    # The signal lands during or after epoch 1's save: the run resumes from what is on disk.
    saved = re.search(r"can resume after epoch (\d)", err)
    assert saved, err
    result = spamkit_cli("train", "--resume", "--out", out)
    assert result.returncode == 0, result.stderr
    assert f"resuming {out} after epoch {saved[1]}" in result.stdout
    assert re.search(r", on cuda \(", result.stdout)
    metrics = json.loads((out / "metrics.json").read_text())
    assert [h["epoch"] for h in metrics["history"]] == [1, 2, 3]
