"""`spamkit export`: a self-contained bundle whose graphs match PyTorch."""

import json

import numpy as np
import pytest
import torch
from conftest import SMS_FILE

from spamkit.errors import SpamkitError
from spamkit.export.bundle import ExportConfig, export_bundle
from spamkit.runtime import Classifier
from spamkit.runtime.bundle import read_manifest, sha256_file
from spamkit.training.checkpoint import load_checkpoint
from spamkit.training.train import collate

MESSAGES = [line.split("\t", 1)[1] for line in SMS_FILE.read_text(encoding="utf-8").splitlines()]


def test_bundle_holds_graphs_tokenizer_and_a_manifest_with_checksums(tiny_bundle):
    manifest = read_manifest(tiny_bundle)
    assert manifest.labels == ["ham", "spam"]
    assert manifest.graphs == {"fp32": "model.onnx", "int8": "model.int8.onnx"}
    assert manifest.pad_id == 50256 and manifest.context_length == 256 and manifest.preset == "tiny"
    # Each graph keeps its weights in a file beside it, which ONNX Runtime memory-maps.
    assert set(manifest.files) == {"model.onnx", "model.onnx.data", "model.int8.onnx",
                                   "model.int8.onnx.data", "tokenizer.json"}
    for name, digest in manifest.files.items():
        assert sha256_file(tiny_bundle / name) == digest
    assert manifest.verification["fp32_max_abs_logit_diff_vs_torch"] <= 1e-4
    # The tiny preset is nearly all token embeddings: at 8 bits per weight the int8 graph would
    # be over a quarter of the fp32 one, with the table at 4 bits (plus a scale per 32) a sixth.
    int8, fp32 = (sum(manifest.sizes[f] for f in manifest.graph_files(p)) for p in ("int8", "fp32"))
    assert int8 < 0.2 * fp32


def test_onnx_graph_has_the_runtime_interface(tiny_bundle):
    import onnx

    graph = onnx.load(tiny_bundle / "model.onnx").graph
    inputs = {i.name: i.type.tensor_type for i in graph.input}
    assert set(inputs) == {"input_ids", "attention_mask"}
    assert all(t.elem_type == onnx.TensorProto.INT64 for t in inputs.values())
    assert all(d.dim_param for t in inputs.values() for d in t.shape.dim)  # both axes dynamic
    (out,) = graph.output
    assert out.name == "logits" and out.type.tensor_type.elem_type == onnx.TensorProto.FLOAT
    assert out.type.tensor_type.shape.dim[1].dim_value == 2


def test_fp32_onnx_logits_equal_pytorch_on_real_messages(tiny_checkpoint, tiny_bundle):
    model = load_checkpoint(tiny_checkpoint).model
    clf = Classifier.load(tiny_bundle, precision="fp32")
    texts = MESSAGES[:200]
    got = clf.logits(texts)
    ids = clf.tokenizer.encode_batch(texts)
    with torch.no_grad():
        want = np.concatenate([model(*collate(ids[i : i + 32], 50256)).numpy()
                               for i in range(0, len(ids), 32)])
    np.testing.assert_allclose(got, want, atol=1e-4, rtol=0)


def test_a_message_gets_the_same_logits_alone_and_batched_with_longer_ones(tiny_bundle):
    short = "Ok lar... Joking wif u oni..."
    longer = sorted(MESSAGES, key=len)[-20:]
    texts = [short, *longer]
    # Caps that hold all 21 in one batch: the short message's row is padded to the longest.
    lengths = [len(x) for x in Classifier.load(tiny_bundle).tokenizer.encode_batch(texts)]
    assert lengths[0] * 5 < max(lengths)
    clf = Classifier.load(tiny_bundle, precision="fp32", batch_size=len(texts),
                          batch_tokens=len(texts) * max(lengths))
    alone = clf.logits([short])
    batched = clf.logits(texts)
    np.testing.assert_allclose(batched[:1], alone, atol=1e-5, rtol=0)


def test_int8_bundle_classifies_like_fp32(tiny_bundle):
    manifest = read_manifest(tiny_bundle)
    assert manifest.verification["val_int8_label_agreement"] >= 0.95
    clf = Classifier.load(tiny_bundle)
    assert clf.precision == "int8"
    fp32 = Classifier.load(tiny_bundle, precision="fp32")
    texts = MESSAGES[:300]
    agree = np.mean(np.array(clf.predict(texts)) == np.array(fp32.predict(texts)))
    assert agree >= 0.95


def test_an_int8_bundle_ships_only_the_int8_graph(tiny_checkpoint, tmp_path):
    out = tmp_path / "bundle"
    export_bundle(tiny_checkpoint, out, ExportConfig(int8=True))
    assert not (out / "model.onnx").exists()
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["graphs"] == {"int8": "model.int8.onnx"}
    assert Classifier.load(out).predict("hello") in ("ham", "spam")


def test_failed_export_leaves_no_bundle(tiny_checkpoint, tmp_path):
    out = tmp_path / "bundle"
    with pytest.raises(SpamkitError, match="no data file"):
        missing = ExportConfig(int8=True, data=str(tmp_path / "nope.tsv"))
        export_bundle(tiny_checkpoint, out, missing)
    assert list(tmp_path.iterdir()) == []


def test_an_unknown_int8_target_is_refused_before_any_work(tiny_checkpoint, tmp_path):
    """The CLI offers only the known targets; the API checks the name itself."""
    out = tmp_path / "bundle"
    with pytest.raises(SpamkitError, match="--target must be one of auto, .*not 'x86-avx3'"):
        export_bundle(tiny_checkpoint, out, ExportConfig(int8=True, target="x86-avx3"))
    assert list(tmp_path.iterdir()) == []


def test_first_token_model_exports_and_matches_pytorch(tmp_path):
    from spamkit.config import TrainConfig
    from spamkit.data import DataConfig
    from spamkit.training.train import train

    train(TrainConfig(preset="tiny", token="first", epochs=1, max_steps=3, compile=False),
          DataConfig(path=str(SMS_FILE)), str(tmp_path / "ckpt"))
    manifest = export_bundle(tmp_path / "ckpt", tmp_path / "bundle", ExportConfig())
    assert manifest.token == "first"
    assert manifest.verification["fp32_max_abs_logit_diff_vs_torch"] <= 1e-4
    clf = Classifier.load(tmp_path / "bundle")
    # Reading the first token, a message is judged by its first word alone.
    np.testing.assert_allclose(clf.logits("Free entry now"), clf.logits("Free money!!"), atol=1e-5)
