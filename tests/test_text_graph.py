"""Text graphs (`spamkit export --text-input`): raw strings in, logits out, GPT-2's BPE inside
the graph. They must read every message exactly as the runtime does: the same token ids, the
same logits (docs/bundle-format.md)."""

import json
import shutil
import subprocess
import sys
from dataclasses import replace

import numpy as np
import onnx
import onnxruntime as ort
import onnxruntime_extensions
import pytest
from conftest import SMS_FILE, assert_clean_failure, spamkit_cli
from hypothesis import given, settings
from hypothesis import strategies as st

from spamkit.export.manifest import write_manifest
from spamkit.runtime import BundleError, Classifier
from spamkit.runtime.batching import pad_batch
from spamkit.runtime.bundle import read_manifest

SMS = [line.split("\t", 1)[1].rstrip("\r")
       for line in SMS_FILE.read_text(encoding="utf-8").split("\n") if line]


@pytest.fixture(scope="module")
def text_bundle(tiny_checkpoint, tmp_path_factory):
    out = tmp_path_factory.mktemp("text") / "bundle"
    result = spamkit_cli("export", tiny_checkpoint, "--out", out, "--int8", "--keep-fp32",
                         "--text-input")
    assert result.returncode == 0, result.stderr
    for p in ("fp32", "int8"):
        assert f"{p} text graph vs {p} graph on" in result.stdout
    return out


@pytest.fixture(scope="module", params=["fp32", "int8"])
def routes(text_bundle, request):
    """The token-id route and the text-graph route of one precision."""
    return (Classifier.load(text_bundle, precision=request.param),
            Classifier.load(text_bundle, precision=request.param, text_graph=True))


def text_session(bundle, precision):
    options = ort.SessionOptions()
    options.register_custom_ops_library(onnxruntime_extensions.get_library_path())
    return ort.InferenceSession(str(bundle / read_manifest(bundle).text_graphs[precision]),
                                options, providers=["CPUExecutionProvider"])


def test_export_writes_a_text_graph_beside_each_graph_reading_its_weights(text_bundle):
    manifest = json.loads((text_bundle / "manifest.json").read_text())
    assert manifest["format_version"] == 4
    assert manifest["text_graphs"] == {"fp32": "model.text.onnx", "int8": "model.int8.text.onnx"}
    assert manifest["verification"]["int8_text_graph_max_abs_logit_diff"] <= 1e-5
    for name in ["model.onnx", "model.int8.onnx", *manifest["text_graphs"].values()]:
        graph = onnx.load(text_bundle / name, load_external_data=False)
        assert graph.ir_version <= 10, f"{name} is IR {graph.ir_version}"  # onnxruntime-web 1.30
    text = onnx.load(text_bundle / "model.int8.text.onnx", load_external_data=False)
    places = {e.value for t in text.graph.initializer for e in t.external_data
              if e.key == "location"}
    assert places == {"model.int8.onnx.data"}  # the weights, not a copy of them
    assert [i.name for i in text.graph.input] == ["text"]
    assert [o.name for o in text.graph.output] == ["logits", "input_ids", "attention_mask"]


def test_every_sms_message_gets_the_runtimes_ids_and_logits(text_bundle):
    clf = Classifier.load(text_bundle, precision="int8")
    session = text_session(text_bundle, "int8")
    by_length = sorted(SMS, key=len)  # batches of similar lengths: little padding to run
    for start in range(0, len(by_length), 64):
        batch = by_length[start:start + 64]
        logits, ids, mask = session.run(["logits", "input_ids", "attention_mask"],
                                        {"text": np.array(batch, dtype=object)})
        want_ids, want_mask = pad_batch(clf.tokenizer.encode_batch(batch), clf.tokenizer.pad_id)
        np.testing.assert_array_equal(ids, want_ids)
        np.testing.assert_array_equal(mask, want_mask)
        want = clf.session.run(["logits"], {"input_ids": ids, "attention_mask": mask})[0]
        np.testing.assert_array_equal(logits, want)


def test_the_classifier_answers_alike_on_either_route(routes):
    ids, text = routes
    assert text.text_graph and not ids.text_graph
    # Batched differently (by characters, not tokens): float rounding only.
    sample = SMS[::10]
    np.testing.assert_allclose(text.logits(sample), ids.logits(sample), atol=1e-5)
    assert text.predict(SMS[:50]) == ids.predict(SMS[:50])


# The readings the contract spells out, and texts whose tail tokens change if the character cap
# is applied anywhere else (the caller cuts before the graph).
EDGES = ["", " ", "\n", "<|endoftext|>", "a <|endoftext|>b", "x<|endoftext|><|endoftext|>y",
         "<|endofprompt|> <|endoftext", "call \ud800 now \udfff", "\ud83c\udf89 won",
         "7" * 40_001, "\n" * 40_001, "WIN A PRIZE " * 83_334]


def test_edge_cases_read_alike(routes):
    ids, text = routes
    np.testing.assert_allclose(text.logits(EDGES), ids.logits(EDGES), atol=1e-5)
    # And alone, where nothing but the reading can differ.
    for message in EDGES:
        np.testing.assert_array_equal(text.logits(message), ids.logits(message))


PIECES = st.sampled_from(["<|endoftext|>", "<|", "|>", " ", "  ", "\n", "\t", "\r\n", "'s",
                          "'ll", "7", "42", "\u00a0", "\u200b", "é", "🎉", "中"])
MESSAGES = st.lists(st.one_of(st.text(max_size=40), PIECES), max_size=12).map("".join)


@pytest.fixture(scope="module")
def int8_routes(text_bundle):
    return Classifier.load(text_bundle, precision="int8"), text_session(text_bundle, "int8")


@settings(derandomize=True, database=None, deadline=None, max_examples=100)
@given(batch=st.lists(MESSAGES, min_size=1, max_size=6))
def test_any_text_gets_the_same_ids_and_logits(int8_routes, batch):
    clf, session = int8_routes
    cut = [t.encode("utf-16", "surrogatepass").decode("utf-16", "replace") for t in batch]
    logits, ids, mask = session.run(["logits", "input_ids", "attention_mask"],
                                    {"text": np.array(cut, dtype=object)})
    want_ids, want_mask = pad_batch(clf.tokenizer.encode_batch(batch), clf.tokenizer.pad_id)
    np.testing.assert_array_equal(ids, want_ids)
    np.testing.assert_array_equal(mask, want_mask)
    np.testing.assert_allclose(logits, clf.logits(batch), atol=1e-5)


def test_a_bundle_without_text_graphs_says_how_to_get_one(text_bundle, tmp_path):
    bundle = shutil.copytree(text_bundle, tmp_path / "bundle")
    write_manifest(bundle, replace(read_manifest(bundle), text_graphs={}))
    with pytest.raises(BundleError, match="no int8 text graph: export it with --text-input"):
        Classifier.load(bundle, text_graph=True)
    with pytest.raises(TypeError, match="text_graph"):
        Classifier.load(bundle, text_graph="yes")


def test_a_changed_text_graph_is_refused(text_bundle, tmp_path):
    bundle = shutil.copytree(text_bundle, tmp_path / "bundle")
    with open(bundle / "model.int8.text.onnx", "r+b") as f:
        f.seek(100)
        byte = f.read(1)
        f.seek(100)
        f.write(bytes([byte[0] ^ 1]))
    with pytest.raises(BundleError, match="model.int8.text.onnx does not match its checksum"):
        Classifier.load(bundle, text_graph=True)
    Classifier.load(bundle)  # the token-id route does not read it


# A Python where onnxruntime-extensions is not installed (`import` fails as it would).
WITHOUT_EXTENSIONS = "import sys; sys.modules['onnxruntime_extensions'] = None; "


def test_without_the_extra_loading_a_text_graph_names_it(text_bundle):
    code = (WITHOUT_EXTENSIONS + "from spamkit.runtime import Classifier\n"
            f"Classifier.load({str(text_bundle)!r}, text_graph=True)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 1
    assert "ImportError: text graphs need onnxruntime-extensions: pip install 'spamkit[text]'" \
        in result.stderr


def test_without_the_extra_export_text_input_fails_in_one_line(tiny_checkpoint, tmp_path):
    out = tmp_path / "bundle"
    code = (WITHOUT_EXTENSIONS + "from spamkit.cli import main\n"
            f"sys.argv = ['spamkit', 'export', {str(tiny_checkpoint)!r}, '--out', {str(out)!r},"
            " '--text-input']\nmain()")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            timeout=120)
    assert_clean_failure(result, "--text-input", "spamkit[text]", out=out)
