"""The GPU path, as far as any machine can check it: the fp16 graph (`spamkit export --fp16`),
the manifest that says which graph is meant for which device, the runtime's choice of graph,
and the errors for a GPU that is not there. tests/test_gpu.py runs the rest on a GPU."""

import json
import re
import shutil
from dataclasses import replace

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from conftest import SMS_FILE, spamkit_cli

from spamkit.errors import SpamkitError
from spamkit.export.bundle import FP16_TOLERANCE, ExportConfig, export_bundle
from spamkit.runtime import BundleError, Classifier
from spamkit.runtime.bundle import read_manifest
from spamkit.runtime.device import choose_graph
from spamkit.training.checkpoint import load_checkpoint, save_checkpoint
from spamkit.training.train import collate

MESSAGES = [line.split("\t", 1)[1] for line in SMS_FILE.read_text(encoding="utf-8").splitlines()]
ORT_HAS_CUDA = "CUDAExecutionProvider" in ort.get_available_providers()
TINY = ("--preset", "tiny", "--epochs", "1", "--max-steps", "2", "--no-compile",
        "--data", SMS_FILE)


@pytest.fixture(scope="module")
def fp16_export(tiny_checkpoint, tmp_path_factory):
    out = tmp_path_factory.mktemp("fp16") / "bundle"
    result = spamkit_cli("export", tiny_checkpoint, "--out", out, "--int8", "--fp16", "--keep-fp32")
    assert result.returncode == 0, result.stderr
    return result, out


def test_export_fp16_adds_a_checked_graph_meant_for_gpus(fp16_export):
    result, bundle = fp16_export
    assert sorted(p.name for p in bundle.iterdir()) == [
        "manifest.json", "model.fp16.onnx", "model.fp16.onnx.data", "model.int8.onnx",
        "model.int8.onnx.data", "model.onnx", "model.onnx.data", "tokenizer.json"]
    fp16 = re.search(r"fp16 graph vs PyTorch on 64 validation messages: "
                     r"max \|logit diff\| (\S+) \(allowed (\S+)\)", result.stdout)
    assert fp16, result.stdout
    diff, allowed = float(fp16[1]), float(fp16[2])
    assert 0 < diff <= allowed  # fp16 rounds: never exactly fp32's logits
    manifest = json.loads((bundle / "manifest.json").read_text())
    assert manifest["format_version"] == 4
    assert manifest["graphs"] == {"fp32": "model.onnx", "int8": "model.int8.onnx",
                                  "fp16": "model.fp16.onnx"}
    assert manifest["devices"] == {"fp32": ["cpu", "cuda"], "int8": ["cpu"], "fp16": ["cuda"]}
    checks = manifest["verification"]
    assert checks["checked_with"] == "CPUExecutionProvider"
    assert checks["fp16_max_abs_logit_diff_vs_torch"] == pytest.approx(diff, rel=0.01)
    assert checks["fp16_allowed_logit_diff"] == pytest.approx(allowed, rel=0.01)
    for split in ("val", "test"):
        assert checks[f"{split}_fp16_label_agreement"] >= 0.99
        assert f"{split}_accuracy_fp16" in checks and f"{split}_accuracy_int8" in checks


def test_the_fp16_graph_has_fp16_weights_behind_the_same_interface(fp16_export):
    _, bundle = fp16_export
    graph = onnx.load(bundle / "model.fp16.onnx").graph
    inputs = {i.name: i.type.tensor_type.elem_type for i in graph.input}
    assert inputs == {"input_ids": onnx.TensorProto.INT64, "attention_mask": onnx.TensorProto.INT64}
    (out,) = graph.output
    assert out.name == "logits" and out.type.tensor_type.elem_type == onnx.TensorProto.FLOAT
    weights = [w for w in graph.initializer if np.prod(w.dims) >= 64]
    assert weights and all(w.data_type == onnx.TensorProto.FLOAT16 for w in weights)
    fp16, fp32 = ((bundle / f).stat().st_size for f in ("model.fp16.onnx.data", "model.onnx.data"))
    assert 0.45 < fp16 / fp32 < 0.55


def test_fp16_logits_stay_close_to_pytorch_fp32_on_real_messages(tiny_checkpoint, fp16_export):
    _, bundle = fp16_export
    # Export checked the fp16 graph on the CPU, so it may run there when asked for by name.
    clf = Classifier.load(bundle, precision="fp16")
    assert (clf.device, clf.precision) == ("cpu", "fp16")
    texts = MESSAGES[:300]
    got = clf.logits(texts)
    model = load_checkpoint(tiny_checkpoint).model
    ids = clf.tokenizer.encode_batch(texts)
    with torch.no_grad():
        want = np.concatenate([model(*collate(ids[i : i + 32], 50256)).numpy()
                               for i in range(0, len(ids), 32)])
    assert got.dtype == np.float32
    atol, rtol = FP16_TOLERANCE  # element by element: stricter than export's check
    np.testing.assert_allclose(got, want, atol=atol, rtol=rtol)
    assert np.mean(got.argmax(1) == want.argmax(1)) >= 0.99


def test_each_device_runs_the_smallest_graph_meant_for_it(fp16_export):
    _, bundle = fp16_export
    full = read_manifest(bundle)

    def holding(*precisions):  # the manifest of a bundle with only these graphs
        return replace(full, graphs={p: full.graphs[p] for p in precisions},
                       devices={p: full.devices[p] for p in precisions})

    assert choose_graph(full, bundle, "cpu", None) == "int8"
    assert choose_graph(full, bundle, "cuda", None) == "fp16"
    assert choose_graph(holding("fp32", "int8"), bundle, "cuda", None) == "fp32"
    assert choose_graph(holding("fp32", "fp16"), bundle, "cpu", None) == "fp32"
    with pytest.raises(BundleError, match="has no graph meant for cuda .it has int8 for cpu"):
        choose_graph(holding("int8"), bundle, "cuda", None)
    with pytest.raises(BundleError, match="has no graph meant for cpu .it has fp16 for cuda"):
        choose_graph(holding("fp16"), bundle, "cpu", None)
    # By name: any graph on the CPU, where export checked them all; only CUDA's on CUDA.
    assert choose_graph(holding("fp16"), bundle, "cpu", "fp16") == "fp16"
    assert choose_graph(full, bundle, "cuda", "fp32") == "fp32"
    with pytest.raises(BundleError, match="int8 graph .* is meant for cpu, not cuda"):
        choose_graph(full, bundle, "cuda", "int8")
    with pytest.raises(BundleError, match="has no fp16 graph .it has fp32, int8"):
        choose_graph(holding("fp32", "int8"), bundle, "cuda", "fp16")
    # What Classifier.load does with it on this machine's CPU.
    assert Classifier.load(bundle).precision == "int8"


def test_a_format_1_bundle_loads_with_its_graphs_meant_for_their_devices(tiny_bundle, tmp_path):
    bundle = shutil.copytree(tiny_bundle, tmp_path / "bundle")
    manifest = json.loads((bundle / "manifest.json").read_text())
    del manifest["devices"], manifest["vocab_size"], manifest["text_graphs"]
    del manifest["ort_graphs"], manifest["int8_target"], manifest["checked_on_isa"]
    manifest["format_version"] = 1  # as spamkit wrote bundles before the fp16 graph
    (bundle / "manifest.json").write_text(json.dumps(manifest))
    assert read_manifest(bundle).devices == {"fp32": ["cpu", "cuda"], "int8": ["cpu"]}
    clf = Classifier.load(bundle)
    assert (clf.device, clf.precision) == ("cpu", "int8")
    assert clf.predict("see you at 6") in ("ham", "spam")


def test_a_manifest_without_a_device_for_a_graph_is_refused(tiny_bundle, tmp_path):
    bundle = shutil.copytree(tiny_bundle, tmp_path / "bundle")
    manifest = json.loads((bundle / "manifest.json").read_text())
    del manifest["devices"]["int8"]
    (bundle / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(BundleError, match="names no device for its int8 graph"):
        Classifier.load(bundle)


def test_eval_reports_the_fp16_graphs_accuracy_as_export_measured_it(fp16_export):
    _, bundle = fp16_export
    result = spamkit_cli("eval", bundle, "--precision", "fp16", "--json", "--data", SMS_FILE)
    assert result.returncode == 0, result.stderr
    manifest = json.loads((bundle / "manifest.json").read_text())
    accuracy = json.loads(result.stdout)["accuracy"]
    assert accuracy == pytest.approx(manifest["verification"]["test_accuracy_fp16"])


@pytest.mark.skipif(ORT_HAS_CUDA, reason="this machine's ONNX Runtime has CUDA")
def test_classify_on_cuda_without_it_is_one_clear_line_and_auto_says_it_uses_the_cpu(
        fp16_export):
    _, bundle = fp16_export
    result = spamkit_cli("classify", bundle, "--device", "cuda", "hello")
    assert result.returncode == 1 and result.stdout == ""
    assert re.fullmatch(r"spamkit: error: device='cuda' needs ONNX Runtime's CUDA provider, "
                        r"which this install lacks .*spamkit\[gpu\].*\n", result.stderr)
    result = spamkit_cli("classify", bundle, "--device", "auto", "hello")
    assert result.returncode == 0, result.stderr
    assert "no CUDA execution provider available, running on CPU" in result.stderr
    assert result.stdout.split("\t")[0] in ("ham", "spam")
    with pytest.raises(SpamkitError, match="CUDA provider"):
        Classifier.load(bundle, device="cuda")


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU")
def test_train_on_cuda_without_a_gpu_is_one_clear_line_before_any_work(tmp_path):
    out = tmp_path / "ckpt"
    result = spamkit_cli("train", *TINY, "--device", "cuda", "--out", out)
    assert result.returncode == 1 and result.stdout == ""
    assert re.fullmatch(r"spamkit: error: --device cuda: this PyTorch \(\S+\) is a CPU-only "
                        r"build; .*--device cpu or auto\n", result.stderr)
    assert not out.exists()


def test_train_device_auto_uses_the_gpu_when_there_is_one_with_its_defaults(tmp_path):
    out = tmp_path / "ckpt"
    defaults = [arg for arg in TINY if arg != "--no-compile"]
    result = spamkit_cli("train", *defaults, "--device", "auto", "--out", out)
    assert result.returncode == 0, result.stderr
    device = "cuda" if torch.cuda.is_available() else "cpu"
    # bf16 and torch.compile on a GPU; on a CPU compiling measured no faster, and bf16 either
    # slower (emulated) or faster but training worse (see resolve_precision).
    gpu_precision = "bf16" if device == "cuda" and torch.cuda.is_bf16_supported(
        including_emulation=False) else "fp16"
    precision, compiled = (gpu_precision, "on") if device == "cuda" else ("fp32", "off")
    assert re.search(rf", on {device}\b.*, precision {precision}, compile {compiled}",
                     result.stdout), result.stdout
    training = json.loads((out / "config.json").read_text())["training"]
    # What ran, not what was asked.
    assert (training["device"], training["precision"]) == (device, precision)
    assert training["compile"] is (device == "cuda")


def test_a_model_whose_weights_overflow_fp16_is_refused_at_export(tiny_checkpoint, tmp_path):
    ckpt = load_checkpoint(tiny_checkpoint)
    with torch.no_grad():
        # Embeddings of ~2e5: fine in fp32 (every block starts with a LayerNorm), but beyond
        # fp16's largest value, 65504, so the fp16 graph computes inf and NaN.
        ckpt.model.wte.weight.mul_(1e7)
    save_checkpoint(tmp_path / "ckpt", ckpt, {})
    with pytest.raises(SpamkitError, match=r"fp16 graph disagrees with PyTorch: max \|logit "
                                           r"diff\| nan > .*no bundle written"):
        export_bundle(tmp_path / "ckpt", tmp_path / "bundle", ExportConfig(fp16=True))
    assert not (tmp_path / "bundle").exists()
