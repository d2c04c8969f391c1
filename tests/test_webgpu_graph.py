"""WebGPU's graph (`spamkit web`, spamkit.web.webgpu_graph): the bundle's fp32 graph with its
causal attention written out in standard operators answers as the fp32 graph does, on messages
past the 32 tokens where onnxruntime-web's fused WebGPU kernel goes wrong; an attention it cannot
write out is refused in one line that names --no-webgpu, and nothing is left behind."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from conftest import SMS_FILE

from spamkit.data import DataConfig, load_splits
from spamkit.errors import SpamkitError
from spamkit.runtime.bundle import read_manifest
from spamkit.runtime.tokenizer import Tokenizer
from spamkit.web.site import add_webgpu_graph


def fp32_graph_copy(bundle: Path, where: Path) -> Path:
    """The bundle's fp32 graph and its external data, copied to `where`."""
    manifest = read_manifest(bundle)
    for name in manifest.graph_files("fp32"):
        shutil.copyfile(bundle / name, where / name)
    return where / manifest.graphs["fp32"]


def logits(session: ort.InferenceSession, ids: list[int]) -> np.ndarray:
    inputs = np.array([ids], np.int64)
    return session.run(["logits"], {"input_ids": inputs,
                                     "attention_mask": np.ones_like(inputs)})[0][0]


def test_the_webgpu_graph_answers_as_the_fp32_graph_on_short_and_long_messages(
        tiny_bundle, tmp_path):
    fp32 = fp32_graph_copy(tiny_bundle, tmp_path)
    webgpu = tmp_path / "model.webgpu.onnx"
    add_webgpu_graph(fp32, webgpu)

    def ops(path: Path) -> set[str]:
        return {node.op_type for node in onnx.load(path, load_external_data=False).graph.node}

    assert "MultiHeadAttention" in ops(fp32)
    assert "MultiHeadAttention" not in ops(webgpu) and "Softmax" in ops(webgpu)
    texts = load_splits(DataConfig(path=str(SMS_FILE))).test.texts
    manifest = read_manifest(tiny_bundle)
    tokens = Tokenizer.load(tiny_bundle / manifest.tokenizer,
                            manifest.context_length).encode_batch(texts)
    assert sum(len(ids) >= 32 for ids in tokens) >= 50  # where the fused kernel went wrong
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL  # as written
    fused, written = (ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
                      for path in (fp32, webgpu))
    for ids in tokens:
        np.testing.assert_allclose(logits(written, ids), logits(fused, ids), atol=1e-5, rtol=0)


def test_an_attention_that_is_not_causal_is_refused_naming_no_webgpu(tiny_bundle, tmp_path):
    fp32 = fp32_graph_copy(tiny_bundle, tmp_path)
    model = onnx.load(fp32, load_external_data=False)
    causal = [attr for node in model.graph.node for attr in node.attribute
              if node.op_type == "MultiHeadAttention" and attr.name == "unidirectional"]
    assert causal
    for attr in causal:
        attr.i = 0
    onnx.save(model, fp32)  # its weights stay in the external data file beside it
    webgpu = tmp_path / "model.webgpu.onnx"

    with pytest.raises(SpamkitError, match=r"cannot write WebGPU's graph .*\(--no-webgpu "):
        add_webgpu_graph(fp32, webgpu)
    assert not webgpu.exists()
