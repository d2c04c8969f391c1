"""A bundle that was changed, cut short, emptied, or built to read files outside itself is
refused before ONNX Runtime reads it, with the file named."""

import json
import shutil

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from spamkit.export.manifest import with_checksums, write_manifest
from spamkit.runtime import BundleError, Classifier
from spamkit.runtime.bundle import FORMAT_VERSION, Manifest, read_manifest, sha256_file


@pytest.fixture
def bundle(tiny_bundle, tmp_path):
    copy = tmp_path / "bundle"
    shutil.copytree(tiny_bundle, copy)
    return copy


def damage(path, how):
    data = path.read_bytes()
    if how == "changed":
        path.write_bytes(data[:100] + bytes([data[100] ^ 1]) + data[101:])
    elif how == "truncated":
        path.write_bytes(data[: len(data) // 2])
    elif how == "emptied":
        path.write_bytes(b"")
    else:
        path.unlink()


# Which check refuses each kind of damage: the sha256 catches a change of the same size, the
# manifest's sizes a cut, and a missing file is named as such. (ONNX Runtime would name a
# damaged graph too, so the words matter: they show spamkit refused it before ORT read it.)
REFUSED_BY = {"changed": "does not match its checksum", "truncated": "bytes, not",
              "emptied": "is 0 bytes, not", "missing": "is missing"}


@pytest.mark.parametrize("how", ["changed", "truncated", "missing", "emptied"])
@pytest.mark.parametrize("name,precision", [
    ("model.int8.onnx", "int8"), ("model.int8.onnx.data", "int8"), ("model.onnx", "fp32"),
    ("model.onnx.data", "fp32"), ("tokenizer.json", None)])
def test_a_damaged_file_is_named_when_loaded(bundle, name, precision, how):
    damage(bundle / name, how)
    with pytest.raises(BundleError) as refused:
        Classifier.load(bundle, precision=precision)
    assert name in str(refused.value) and REFUSED_BY[how] in str(refused.value), refused.value


@pytest.mark.parametrize("how", ["truncated", "missing", "emptied"])
def test_a_cut_graph_is_refused_even_when_another_is_loaded(bundle, how):
    """Only the graph being loaded is hashed, but every file's presence and size is checked."""
    damage(bundle / "model.onnx", how)
    with pytest.raises(BundleError, match=r"model\.onnx"):
        Classifier.load(bundle, precision="int8")


def test_a_newer_bundle_format_is_refused_with_both_versions(bundle):
    manifest = json.loads((bundle / "manifest.json").read_text())
    manifest["format_version"] = 99
    (bundle / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(BundleError, match=f"format 99.*reads format {FORMAT_VERSION} and older"):
        Classifier.load(bundle)


@pytest.mark.parametrize("how", ["relative", "absolute"])
def test_external_data_outside_the_bundle_is_refused(bundle, tmp_path, how):
    """A graph whose weights live in a file outside the bundle, correctly checksummed in the
    manifest (as a hostile bundle would be), still cannot make the runtime read that file."""
    secret = np.arange(16, dtype=np.float32).reshape(4, 4)
    (tmp_path / "secret.bin").write_bytes(secret.tobytes())
    location = "../secret.bin" if how == "relative" else str(tmp_path / "secret.bin")
    weight = numpy_helper.from_array(secret, "W")
    weight.ClearField("raw_data")
    weight.data_location = TensorProto.EXTERNAL
    for key, value in (("location", location), ("offset", "0"), ("length", "64")):
        entry = weight.external_data.add()
        entry.key, entry.value = key, value
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "W"], ["logits"])], "hostile",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [1, 4])], [weight])
    onnx.save(helper.make_model(graph), bundle / "model.onnx")
    write_manifest(bundle, with_checksums(
        bundle, Manifest(**json.loads((bundle / "manifest.json").read_text()))))
    read_manifest(bundle)  # the checksums agree: only the path check stands in the way
    with pytest.raises(BundleError, match="model.onnx"):
        Classifier.load(bundle, precision="fp32")


def test_a_file_linked_to_outside_the_bundle_is_refused(bundle, tmp_path):
    outside = tmp_path / "elsewhere.json"
    shutil.move(bundle / "tokenizer.json", outside)
    (bundle / "tokenizer.json").symlink_to(outside)
    assert sha256_file(bundle / "tokenizer.json") == sha256_file(outside)  # checksum still fine
    with pytest.raises(BundleError, match="tokenizer.json.*outside the bundle or a link"):
        Classifier.load(bundle)


def test_a_manifest_naming_a_path_outside_is_refused(bundle):
    manifest = json.loads((bundle / "manifest.json").read_text())
    manifest["files"]["../manifest.json"] = "0" * 64
    (bundle / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(BundleError, match=r"\.\./manifest\.json.*outside"):
        Classifier.load(bundle)
