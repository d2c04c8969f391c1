"""spamkit.runtime on ARM64 for real: Debian's aarch64 CPython with the aarch64 wheels of ONNX
Runtime, numpy and tiktoken, run by qemu-user on this x86 machine (`make test-arm64` sets it up:
tests/arm64/setup.sh). The int8 bundle, as its .onnx graph and its .ort graph (exported here, on
x86), classifies the SMS test split there as it does here."""

import json
import subprocess

import numpy as np
import pytest
from conftest import ROOT, SMS_FILE

from spamkit.data import DataConfig, load_splits
from spamkit.runtime import Classifier
from spamkit.runtime.bundle import GRAPH_FORMATS, read_manifest

pytestmark = pytest.mark.arm64

ARM64_PYTHON = ROOT / "tests" / "arm64" / "python"
READY = ROOT / ".arm64" / "wheels.done"
# Largest |logit| difference allowed between ARM and x86. The int8 matmuls accumulate in int32,
# exactly on both; the rest is fp32 arithmetic (LayerNorm, attention's softmax, GELU, the
# scales), whose kernels round differently on each ISA: of the order of 1e-6 at these logits'
# size. 1e-4 is what export allows the fp32 graph against PyTorch.
TOLERANCE = 1e-4


@pytest.fixture(scope="module")
def on_arm64(tiny_ort_bundle, tmp_path_factory):
    """What the aarch64 CPython answers for the SMS test split, with the messages."""
    if not READY.exists():
        pytest.skip("no aarch64 CPython here: `make test-arm64` sets it up and runs this test")
    manifest = read_manifest(tiny_ort_bundle)
    texts = load_splits(DataConfig(path=str(SMS_FILE), **manifest.data)).test.texts
    messages = tmp_path_factory.mktemp("arm64") / "messages.json"
    messages.write_text(json.dumps(texts), encoding="utf-8")
    result = subprocess.run(
        [ARM64_PYTHON, ROOT / "tests" / "arm64" / "classify.py", tiny_ort_bundle, messages],
        capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout), texts


@pytest.mark.parametrize("graph_format", GRAPH_FORMATS)
def test_arm64_classifies_the_test_split_as_x86_does(on_arm64, tiny_ort_bundle, graph_format):
    arm, texts = on_arm64
    assert arm["machine"] == "aarch64"
    x86 = Classifier.load(tiny_ort_bundle, graph_format=graph_format)
    assert arm[graph_format]["graph"] == f"model.int8.{graph_format}"
    assert arm[graph_format]["labels"] == x86.predict(texts)
    diff = np.abs(np.array(arm[graph_format]["logits"], dtype=np.float32) - x86.logits(texts))
    print(f"{graph_format}: max |logit diff| aarch64 vs x86 {diff.max():.2e} on {len(texts)} "
          f"messages (allowed {TOLERANCE:.0e})")
    assert diff.max() <= TOLERANCE
