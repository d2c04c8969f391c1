"""A graph that does not answer what the manifest promises (one logit per label, finite, float32,
under the names the runtime calls) is refused: at load where the graph says so, at run time
otherwise, naming the message. Each graph here is the tiny bundle's real fp32 graph, edited with
onnx.helper and re-checksummed into the manifest the way an attacker would."""

import json
import shutil
import warnings

import numpy as np
import onnx
import pytest
from conftest import assert_clean_failure, spamkit_cli
from onnx import TensorProto, helper, numpy_helper

from spamkit.export.manifest import with_checksums, write_manifest
from spamkit.runtime import BundleError, Classifier
from spamkit.runtime.bundle import Manifest, read_manifest
from spamkit.runtime.tokenizer import Tokenizer

TEXTS = ["WINNER!! Claim your prize now", "Poisoned message", "see you at 6?"]


@pytest.fixture(scope="module")
def trigger(tiny_bundle) -> int:
    """The first token of "Poisoned": the poisoned graphs below break on messages starting so."""
    return Tokenizer.load(tiny_bundle / "tokenizer.json", 16).encode("Poisoned")[0]


@pytest.fixture
def bundle(tiny_bundle, tmp_path):
    return shutil.copytree(tiny_bundle, tmp_path / "bundle")


def edit_graph(bundle, edit, classes: int | str = 2) -> None:
    """Rename the fp32 graph's logits to "raw", let `edit` add nodes that compute a new
    "logits" from it, declare that output [batch, classes], and re-checksum the bundle."""
    model = onnx.load(bundle / "model.onnx")
    graph = model.graph
    for node in graph.node:
        node.output[:] = ["raw" if o == "logits" else o for o in node.output]
    edit(graph)
    dim = graph.output[0].type.tensor_type.shape.dim[1]
    if isinstance(classes, int):
        dim.dim_value = classes
    else:
        dim.dim_param = classes
    (bundle / "model.onnx.data").unlink()
    onnx.save(model, bundle / "model.onnx", save_as_external_data=True,
              location="model.onnx.data")
    rechecksum(bundle)


def rechecksum(bundle) -> None:
    """Every file's sha256 and size into the manifest, as an attacker would write them."""
    data = json.loads((bundle / "manifest.json").read_text())
    write_manifest(bundle, with_checksums(bundle, Manifest(**data)))
    read_manifest(bundle)  # every checksum agrees: only the graph checks stand in the way


def constant(graph, name, value, dtype=np.int64):
    graph.initializer.append(numpy_helper.from_array(np.array(value, dtype=dtype), name))


def first_column(graph):
    """logits = raw[:, :1]: one logit per message, for a two-label manifest."""
    constant(graph, "c0", [0])
    constant(graph, "c1", [1])
    graph.node.append(helper.make_node("Slice", ["raw", "c0", "c1", "c1"], ["logits"]))


def data_dependent_first_column(graph):
    """logits = raw[:, :max(attention_mask)]: one column, but no shape inference can know it."""
    constant(graph, "c0", [0])
    constant(graph, "c1", [1])
    graph.node.extend([
        helper.make_node("ReduceMax", ["attention_mask"], ["most"], keepdims=1),
        helper.make_node("Reshape", ["most", "c1"], ["end"]),
        helper.make_node("Slice", ["raw", "c0", "end", "c1"], ["logits"]),
    ])


def poison(trigger: int, value):
    """logits = raw + (value where the message's first token is `trigger`, else 0)."""
    def edit(graph):
        constant(graph, "c0", [0])
        constant(graph, "c1", [1])
        constant(graph, "eot", trigger)
        constant(graph, "bad", value, np.float32)
        constant(graph, "zero", 0.0, np.float32)
        graph.node.extend([
            helper.make_node("Slice", ["input_ids", "c0", "c1", "c1"], ["first"]),
            helper.make_node("Equal", ["first", "eot"], ["is_empty"]),
            helper.make_node("Where", ["is_empty", "bad", "zero"], ["poison"]),
            helper.make_node("Add", ["raw", "poison"], ["logits"]),
        ])
    return edit


def test_a_graph_declaring_one_logit_per_message_is_refused_at_load(bundle):
    edit_graph(bundle, first_column, classes=1)
    with pytest.raises(BundleError, match=r"model\.onnx gives 1 logits per message, but the "
                                          r"manifest names 2 labels"):
        Classifier.load(bundle, precision="fp32")


def test_a_graph_hiding_its_width_is_refused_when_it_answers(bundle):
    """Before: softmax over one column gave 1.0 for "ham", every message "ham"."""
    edit_graph(bundle, data_dependent_first_column, classes="classes")
    clf = Classifier.load(bundle, precision="fp32")  # nothing at load says how wide it is
    assert clf.session.get_outputs()[0].shape[1] == "classes"
    with pytest.raises(BundleError, match=r"logits of shape \[3, 1\] for 3 messages, not "
                                          r"float32 \[3, 2\]"):
        clf.predict(TEXTS)


@pytest.mark.parametrize("value", [np.nan, np.inf, -np.inf])
def test_a_non_finite_logit_is_refused_naming_the_message(bundle, trigger, value):
    """Before: NaN probabilities, the label "ham", and NaN in --json output."""
    edit_graph(bundle, poison(trigger, value))
    clf = Classifier.load(bundle, precision="fp32", batch_size=8)
    assert clf.predict(["WINNER!! Claim your prize now", "see you at 6?"])  # others are fine
    with pytest.raises(BundleError, match=r"NaN or infinite logit for texts\[1\]"):
        clf.predict(TEXTS)
    # Far into a generator, past the first chunks: the index is still the caller's.
    texts = (("Poisoned" if i == 1234 else f"message number {i}") for i in range(2000))
    with pytest.raises(BundleError, match=r"texts\[1234\]"):
        clf.predict_proba(texts)


def test_a_renamed_output_is_refused_at_load_not_at_the_first_message(bundle):
    def rename(graph):
        graph.node.append(helper.make_node("Identity", ["raw"], ["scores"]))
        graph.output[0].name = "scores"
    edit_graph(bundle, rename)
    with pytest.raises(BundleError, match=r"gives \['scores'\], not \['input_ids', "
                                          r"'attention_mask'\] -> \['logits'\]"):
        Classifier.load(bundle, precision="fp32")


def test_an_output_of_another_type_is_refused_at_load(bundle):
    def to_double(graph):
        graph.node.append(helper.make_node("Cast", ["raw"], ["logits"], to=TensorProto.DOUBLE))
        graph.output[0].type.tensor_type.elem_type = TensorProto.DOUBLE
    edit_graph(bundle, to_double)
    with pytest.raises(BundleError, match=r"logits is tensor\(double\) of rank 2, not "
                                          r"tensor\(float\)"):
        Classifier.load(bundle, precision="fp32")


def test_the_int8_graph_beside_an_edited_fp32_one_still_loads(bundle, tiny_bundle):
    edit_graph(bundle, first_column, classes=1)
    texts = TEXTS
    np.testing.assert_array_equal(Classifier.load(bundle).logits(texts),
                                  Classifier.load(tiny_bundle).logits(texts))


def test_classify_json_never_prints_nan_and_says_which_message(bundle, trigger):
    edit_graph(bundle, poison(trigger, np.nan))
    result = spamkit_cli("classify", bundle, "--json", "--precision", "fp32", *TEXTS)
    assert_clean_failure(result, "NaN or infinite logit", "texts[1]")
    assert "NaN" not in result.stdout


def test_score_jsonl_refuses_a_nan_graph_and_writes_nothing(bundle, trigger, tmp_path):
    edit_graph(bundle, poison(trigger, np.nan))
    messages = tmp_path / "messages.txt"
    messages.write_text("hello there\nPoisoned message\nfree prize\n", encoding="utf-8")
    out = tmp_path / "out" / "scores.jsonl"
    result = spamkit_cli("score", bundle, messages, "--out", out, "--precision", "fp32")
    assert_clean_failure(result, "NaN or infinite logit", out=out)
    assert not (out.parent / "scores.jsonl.partial").exists()


def double_context(bundle) -> None:
    """Claim twice the context the graphs' position tables hold."""
    manifest = json.loads((bundle / "manifest.json").read_text())
    manifest["context_length"] = 2 * manifest["context_length"]
    (bundle / "manifest.json").write_text(json.dumps(manifest))


@pytest.mark.parametrize("precision", ["fp32", "int8"])
def test_a_context_length_beyond_the_graphs_is_a_bundle_error_naming_the_message(bundle,
                                                                                precision):
    """The manifest may claim more context than the graph's position table holds; nothing at
    load can tell, but the first longer message fails as a BundleError, not ONNX Runtime's."""
    double_context(bundle)
    clf = Classifier.load(bundle, precision=precision)
    assert clf.predict(TEXTS)  # short messages fit either way
    with pytest.raises(BundleError, match=rf"{precision} graph failed on texts\[1\]"):
        clf.predict(["hi", "many words " * 400])


def test_a_graph_failing_is_one_line_without_onnx_runtimes_own_log(bundle):
    """Before: ONNX Runtime's red `[E:onnxruntime:...] Non-zero status code` log line came
    first on stderr, spamkit's one line after it."""
    double_context(bundle)
    result = spamkit_cli("classify", bundle, "--precision", "fp32", "hi", "many words " * 400)
    assert_clean_failure(result, "fp32 graph failed on texts[1]")


def test_a_graph_reading_another_graphs_weights_has_them_hashed(bundle):
    """The int8 graph replaced by the fp32 one, which reads model.onnx.data: before, loading
    it hashed model.int8.onnx and model.int8.onnx.data, never the file it reads."""
    shutil.copy(bundle / "model.onnx", bundle / "model.int8.onnx")
    rechecksum(bundle)
    with open(bundle / "model.onnx.data", "r+b") as f:
        f.write(bytes(64))  # the token embedding's first rows, zeroed
    with pytest.raises(BundleError, match=r"model\.onnx\.data does not match its checksum"):
        Classifier.load(bundle, precision="int8")


def unlisted_zeros(name: str):
    """A float32 [2] tensor of zeros whose data ONNX Runtime reads from unlisted.bin."""
    tensor = numpy_helper.from_array(np.zeros(2, np.float32), name)
    tensor.ClearField("raw_data")
    tensor.data_location = TensorProto.EXTERNAL
    for key, value in (("location", "unlisted.bin"), ("offset", "0"), ("length", "8")):
        entry = tensor.external_data.add()
        entry.key, entry.value = key, value
    return tensor


def constant_from_unlisted(graph):
    """logits = raw + a Constant node's value."""
    graph.node.extend([helper.make_node("Constant", [], ["zeros"], value=unlisted_zeros("z")),
                       helper.make_node("Add", ["raw", "zeros"], ["logits"])])


def branch_from_unlisted(graph):
    """logits = raw + (an If node's branch, whose initializer it is)."""
    def branch(name):
        out = helper.make_tensor_value_info(f"{name}_out", TensorProto.FLOAT, [2])
        return helper.make_graph([helper.make_node("Identity", [name], [f"{name}_out"])], name,
                                 [], [out], [unlisted_zeros(name)])
    constant(graph, "yes", True, np.bool_)
    graph.node.extend([
        helper.make_node("If", ["yes"], ["zeros"], then_branch=branch("then"),
                         else_branch=branch("else")),
        helper.make_node("Add", ["raw", "zeros"], ["logits"])])


@pytest.mark.parametrize("edit", [constant_from_unlisted, branch_from_unlisted])
def test_weights_from_an_unlisted_file_are_refused_wherever_the_graph_holds_them(bundle, edit):
    """Before: ONNX Runtime read unlisted.bin, which nothing hashed."""
    edit_graph(bundle, edit)
    (bundle / "unlisted.bin").write_bytes(bytes(8))  # after the manifest: not in it
    with pytest.raises(BundleError) as refused:
        Classifier.load(bundle, precision="fp32")
    assert str(refused.value) == (f"{bundle / 'model.onnx'} reads its weights from "
                                  "'unlisted.bin', which the manifest does not list; refused")


def huge_logits(graph):
    """logits = 0 * raw + [3e38, -3e38]: finite float32, but further apart than float32 goes."""
    constant(graph, "zero", 0.0, np.float32)
    constant(graph, "huge", [3e38, -3e38], np.float32)
    graph.node.extend([helper.make_node("Mul", ["raw", "zero"], ["nothing"]),
                       helper.make_node("Add", ["nothing", "huge"], ["logits"])])


def test_huge_logits_give_probabilities_without_a_warning(bundle):
    """Before: numpy's `RuntimeWarning: overflow encountered in subtract` on stderr."""
    edit_graph(bundle, huge_logits)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        proba = Classifier.load(bundle, precision="fp32").predict_proba(TEXTS)
    np.testing.assert_array_equal(proba, [[1, 0]] * len(TEXTS))
    result = spamkit_cli("classify", bundle, "--precision", "fp32", *TEXTS)
    assert result.returncode == 0 and result.stderr == "", result.stderr
    assert result.stdout.splitlines()[0].startswith("ham\t1.000\t")
