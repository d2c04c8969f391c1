"""Text graphs (`spamkit export --text-input`): raw strings in, logits out, GPT-2's BPE inside
the graph. They must read every message exactly as the runtime does: the same token ids, the
same logits (docs/bundle-format.md)."""

import json
import shutil
import subprocess
import sys
import textwrap
from dataclasses import replace

import numpy as np
import onnx
import onnxruntime as ort
import onnxruntime_extensions
import pytest
from conftest import SMS_FILE, assert_clean_failure, spamkit_cli
from hypothesis import given, settings
from hypothesis import strategies as st

from spamkit.export.manifest import with_checksums, write_manifest
from spamkit.runtime import BundleError, Classifier
from spamkit.runtime.batching import pad_batch
from spamkit.runtime.bundle import Manifest, read_manifest
from spamkit.runtime.text_graph import as_text_tensor

pytestmark = pytest.mark.slow  # `make test-slow`

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
         "7" * 40_001, "\n" * 40_001, "WIN A PRIZE " * 83_334,
         # onnxruntime-extensions ends a string at NUL: the runtime sends NUL otherwise.
         "\0", "\0\0 x", "a\n\n\0b", "?\0!", "\ud55c\0\ud7a3", "\0<|endoftext|>\0 ",
         "\0" + "7" * 40_001]


def test_a_nul_does_not_end_the_message(routes):
    """Before: the text graph read 'see you at 6?' and stopped at the NUL."""
    ids, text = routes
    message = "see you at 6?\0FREE PRIZE CALL NOW WINNER"
    np.testing.assert_array_equal(text.logits(message), ids.logits(message))
    assert not np.array_equal(ids.logits(message), ids.logits("see you at 6?"))


def test_edge_cases_read_alike(routes):
    ids, text = routes
    np.testing.assert_allclose(text.logits(EDGES), ids.logits(EDGES), atol=1e-5)
    # And alone, where nothing but the reading can differ.
    for message in EDGES:
        np.testing.assert_array_equal(text.logits(message), ids.logits(message))


PIECES = st.sampled_from(["<|endoftext|>", "<|", "|>", " ", "  ", "\n", "\t", "\r\n", "'s",
                          "'ll", "7", "42", "\u00a0", "\u200b", "é", "🎉", "中", "\0"])
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
                                    {"text": as_text_tensor(cut)})
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


def flip_byte(path, at: int = 100) -> None:
    with open(path, "r+b") as f:
        f.seek(at)
        byte = f.read(1)
        f.seek(at)
        f.write(bytes([byte[0] ^ 1]))


def test_a_changed_text_graph_is_refused(text_bundle, tmp_path):
    bundle = shutil.copytree(text_bundle, tmp_path / "bundle")
    flip_byte(bundle / "model.int8.text.onnx")
    with pytest.raises(BundleError, match="model.int8.text.onnx does not match its checksum"):
        Classifier.load(bundle, text_graph=True)
    Classifier.load(bundle)  # the token-id route does not read it


def test_a_text_graph_reading_another_graphs_weights_has_them_hashed(text_bundle, tmp_path):
    """An int8 text graph copied from the fp32 one reads model.onnx.data: before, loading it
    hashed the int8 graph's files, never the one it reads."""
    bundle = shutil.copytree(text_bundle, tmp_path / "bundle")
    shutil.copy(bundle / "model.text.onnx", bundle / "model.int8.text.onnx")
    write_manifest(bundle, with_checksums(bundle, Manifest(**json.loads(
        (bundle / "manifest.json").read_text()))))
    flip_byte(bundle / "model.onnx.data")
    with pytest.raises(BundleError, match=r"model\.onnx\.data does not match its checksum"):
        Classifier.load(bundle, precision="int8", text_graph=True)


# A text graph that reads otherwise than the runtime, written by a real export just before it
# checks it: GPT-2's first merge left out of its tables, or its logits nudged past 1e-5.
DAMAGED_TEXT_GRAPHS = {
    "ids": """
        real = text_graph.bpe_tables
        def bpe_tables(tokenizer):
            vocab, merges = real(tokenizer)
            lines = merges.split("\\n")
            lines.remove("Ġ t")
            return vocab, "\\n".join(lines)
        text_graph.bpe_tables = bpe_tables
        """,
    "logits": """
        real = text_graph._compose
        def _compose(front, classifier):
            model = real(front, classifier)
            for node in model.graph.node:
                node.output[:] = ["raw" if o == "logits" else o for o in node.output]
            nudge = onnx.numpy_helper.from_array(np.array(1e-3, np.float32), "nudge")
            model.graph.initializer.append(nudge)
            model.graph.node.append(onnx.helper.make_node("Add", ["raw", "nudge"], ["logits"]))
            return model
        text_graph._compose = _compose
        """,
}
REFUSAL = {"ids": "the fp32 text graph tokenizes a message otherwise than the runtime",
           "logits": "the fp32 text graph's logits differ from its graph's by 1.00e-03 > 1e-05"}


@pytest.mark.parametrize("damage", ["ids", "logits"])
def test_export_refuses_a_text_graph_that_differs(tiny_checkpoint, tmp_path, damage):
    out = tmp_path / "bundle"
    code = ("import sys\nimport numpy as np, onnx\nfrom spamkit.cli import main\n"
            "from spamkit.export import text_graph\n" + textwrap.dedent(DAMAGED_TEXT_GRAPHS[damage])
            + f"sys.argv = ['spamkit', 'export', {str(tiny_checkpoint)!r}, '--out', {str(out)!r}, "
            "'--text-input']\nmain()")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            timeout=600)
    assert_clean_failure(result, REFUSAL[damage], "no bundle written", out=out)


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
