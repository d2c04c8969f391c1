"""`spamkit export --ort`: the int8 graph also in ONNX Runtime's own format, as ONNX Runtime
Mobile loads it, with the operators a reduced build needs; the runtime runs it with the .onnx
graph's logits."""

import shutil

import numpy as np
import onnx
import pytest
from conftest import SMS_FILE
from onnx import numpy_helper
from onnxruntime.tools.reduced_build_config_parser import parse_config

from spamkit.data import DataConfig, load_splits
from spamkit.errors import SpamkitError
from spamkit.export import ort_format
from spamkit.export.bundle import ExportConfig, export_bundle
from spamkit.runtime import BundleError, Classifier
from spamkit.runtime.bundle import read_manifest


def test_the_ort_graph_classifies_the_test_split_with_the_onnx_graphs_logits(tiny_ort_bundle):
    manifest = read_manifest(tiny_ort_bundle)
    assert manifest.ort_graphs == {"int8": "model.int8.ort"}
    assert manifest.verification["int8_ort_max_abs_logit_diff_vs_onnx"] == 0.0
    assert manifest.verification["ort_optimization"] == "basic"
    # The .ort file holds the weights itself: about the .onnx graph and its .data file together.
    onnx_bytes = sum(manifest.sizes[f] for f in manifest.graph_files("int8"))
    assert abs(manifest.sizes["model.int8.ort"] - onnx_bytes) < 0.05 * onnx_bytes

    texts = load_splits(DataConfig(path=str(SMS_FILE), **manifest.data)).test.texts
    onnx_clf = Classifier.load(tiny_ort_bundle)
    ort_clf = Classifier.load(tiny_ort_bundle, graph_format="ort")
    assert ort_clf.precision == onnx_clf.precision == "int8"
    np.testing.assert_array_equal(ort_clf.logits(texts), onnx_clf.logits(texts))
    assert ort_clf.predict(texts) == onnx_clf.predict(texts)


def test_a_changed_ort_graph_is_refused_and_the_onnx_graph_still_loads(tiny_ort_bundle, tmp_path):
    bundle = shutil.copytree(tiny_ort_bundle, tmp_path / "bundle")
    graph = bundle / "model.int8.ort"
    data = bytearray(graph.read_bytes())
    data[len(data) // 2] ^= 1  # one bit of one weight, the size unchanged
    graph.write_bytes(data)
    with pytest.raises(BundleError, match="model.int8.ort does not match its checksum"):
        Classifier.load(bundle, graph_format="ort")
    assert Classifier.load(bundle).predict("see you at 6?") in ("ham", "spam")


def test_an_ort_graph_that_computes_otherwise_is_refused_by_export(tiny_checkpoint, tmp_path,
                                                                 monkeypatch):
    """As if ONNX Runtime's converter changed what the graph computes (one bias moved): export
    runs both graphs on the validation messages, refuses, and writes nothing."""
    convert = ort_format.convert_to_ort

    def convert_a_changed_graph(onnx_graph, ort_graph):
        model = onnx.load(onnx_graph)
        bias = next(t for t in model.graph.initializer
                    if t.data_type == onnx.TensorProto.FLOAT and len(t.dims) == 1)
        bias.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(bias) + 0.5, bias.name))
        changed = tmp_path / "changed" / onnx_graph.name
        changed.parent.mkdir()
        onnx.save(model, changed, save_as_external_data=True, location=f"{changed.name}.data")
        convert(changed, ort_graph)

    monkeypatch.setattr(ort_format, "convert_to_ort", convert_a_changed_graph)
    out = tmp_path / "bundle"
    with pytest.raises(SpamkitError, match=r"the ORT-format int8 graph disagrees with the .onnx "
                                           r"graph: max \|logit diff\| .*; no bundle written"):
        export_bundle(tiny_checkpoint, out, ExportConfig(int8=True, ort=True))
    assert not out.exists()


def test_required_operators_config_covers_every_operator_of_the_graph(tiny_ort_bundle):
    config = tiny_ort_bundle / "required_operators.config"
    # Read as ONNX Runtime's build reads it (--include_ops_by_config).
    required, _ = parse_config(str(config))
    listed = {(domain, op) for domain, opsets in required.items()
              for ops in opsets.values() for op in ops}
    graph = onnx.load(tiny_ort_bundle / "model.int8.onnx", load_external_data=False).graph
    used = {(node.domain or "ai.onnx", node.op_type) for node in graph.node}
    assert used <= listed, used - listed
    assert ("com.microsoft", "QAttention") in listed
    # Named as in the bundle, not by the temporary directory export wrote it in.
    assert "# - model.int8.ort\n" in config.read_text()


def test_graph_format_is_checked(tiny_bundle):
    with pytest.raises(ValueError, match="graph_format must be one of onnx, ort, not 'ORT'"):
        Classifier.load(tiny_bundle, graph_format="ORT")
    with pytest.raises(ValueError, match="CPU only"):
        Classifier.load(tiny_bundle, graph_format="ort", device="auto")
    with pytest.raises(BundleError, match="no ORT-format int8 graph .export it with --ort"):
        Classifier.load(tiny_bundle, graph_format="ort")
    with pytest.raises(SpamkitError, match="add --int8 or --keep-fp32"):
        ExportConfig(fp16=True, ort=True)
