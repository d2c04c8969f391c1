"""Nothing a bundle's manifest or tokenizer says is taken on trust: every field is checked when
the bundle is read, and whatever a hostile or broken bundle holds, loading it either works or
fails with one BundleError line naming the problem."""

import base64
import copy
import hashlib
import json
import shutil

import numpy as np
import pytest
from conftest import assert_clean_failure, spamkit_cli
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from spamkit.export.manifest import with_checksums, write_manifest
from spamkit.runtime import BundleError, Classifier
from spamkit.runtime.bundle import MAX_LABELS, Manifest, read_manifest

FUZZ = settings(derandomize=True, database=None, deadline=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture,
                                       HealthCheck.too_slow])


@pytest.fixture
def bundle(tiny_bundle, tmp_path):
    return shutil.copytree(tiny_bundle, tmp_path / "bundle")


def edit_manifest(bundle, change) -> None:
    path = bundle / "manifest.json"
    data = json.loads(path.read_text())
    change(data)
    path.write_text(json.dumps(data))


def set_field(key, value):
    def change(data):
        data[key] = value
    return change


def rechecksum(bundle) -> None:
    """What an attacker does after editing a file: make the manifest's sha256s and sizes agree."""
    data = json.loads((bundle / "manifest.json").read_text())
    write_manifest(bundle, with_checksums(bundle, Manifest(**data)))


def assert_refused(bundle, *words) -> str:
    with pytest.raises(BundleError) as e:
        Classifier.load(bundle)
    message = str(e.value)
    assert "\n" not in message, message
    for word in words:
        assert word in message, f"{word!r} not in {message!r}"
    return message


def test_the_tiny_bundle_records_its_vocabulary_for_the_tokenizer_check(tiny_bundle):
    manifest = read_manifest(tiny_bundle)
    assert manifest.format_version == 4 and manifest.vocab_size == 50257
    assert Classifier.load(tiny_bundle).tokenizer.encoding.max_token_value == 50256


FORMAT_4_FIELDS = ("text_graphs", "ort_graphs", "int8_target", "checked_on_isa")


def as_format(version: int, keep: str | None = None):
    """An edit that makes the manifest an older format's: format 4's fields gone, but `keep`."""
    def change(d):
        for name in FORMAT_4_FIELDS:
            if name != keep:
                d.pop(name)
        d["format_version"] = version
    return change


MANIFEST_CASES = {
    # The cases: each was accepted before, and classified with it.
    "context_length -5": (set_field("context_length", -5), "context_length"),
    "context_length 1e12": (set_field("context_length", 1e12), "context_length"),
    "context_length 10**12": (set_field("context_length", 10**12), "context_length"),
    "context_length as a string": (set_field("context_length", "256"), "context_length"),
    "no labels": (set_field("labels", []), "labels"),
    "one label": (set_field("labels", ["ham"]), "labels"),
    "10,000 labels": (set_field("labels", [f"l{i}" for i in range(10_000)]), "labels"),
    "a repeated label": (set_field("labels", ["ham", "ham"]), "repeat"),
    "a label that is not a string": (set_field("labels", ["ham", 3]), "labels"),
    "a label with a newline": (set_field("labels", ["ham", "sp\nam"]), "labels"),
    "an unknown key": (set_field("extra", 1), "'extra'"),
    "pad_id beyond the vocabulary": (set_field("pad_id", 50257), "pad_id"),
    "a negative pad_id": (set_field("pad_id", -1), "pad_id"),
    "a negative vocab_size": (set_field("vocab_size", -1), "vocab_size"),
    "an unknown token position": (set_field("token", "middle"), "token"),
    "no graphs": (set_field("graphs", {}), "graphs"),
    "an unknown graph": (set_field("graphs", {"int4": "model.onnx"}), "graphs"),
    "a graph file that is a number": (set_field("graphs", {"fp32": 5}), "graphs"),
    "files as a list": (set_field("files", ["model.onnx"]), "files"),
    "a checksum that is not a sha256": (
        lambda d: d["files"].update({"model.onnx": "abc"}), "files"),
    "a negative size": (lambda d: d["sizes"].update({"model.onnx": -1}), "sizes"),
    "a size that is a float": (lambda d: d["sizes"].update({"model.onnx": 1.5}), "sizes"),
    "a size for a file not listed": (lambda d: d["sizes"].update({"x.bin": 1}), "x.bin"),
    "a file name too long for the file system": (
        lambda d: d["files"].update({"é" * 200: "0" * 64}), "cannot be read"),
    "a threshold label not among the labels": (
        set_field("threshold", {"label": "eggs", "value": 0.5}), "eggs"),
    "a threshold of 1.5": (set_field("threshold", {"label": "spam", "value": 1.5}), "value"),
    "a threshold that is a string": (
        set_field("threshold", {"label": "spam", "value": "0.5"}), "value"),
    "a threshold without a value": (set_field("threshold", {"label": "spam"}), "threshold"),
    "an unknown device": (lambda d: d["devices"].update({"fp32": ["tpu"]}), "devices"),
    "a device that is a list": (lambda d: d["devices"].update({"fp32": [["cpu"]]}), "devices"),
    "devices for a graph it lacks": (
        lambda d: d["devices"].update({"fp16": ["cuda"]}), "fp16 graph it does not have"),
    "a tokenizer name that is a number": (set_field("tokenizer", 5), "tokenizer"),
    "a nested figure in verification": (
        lambda d: d["verification"].update({"x": [1, 2]}), "verification"),
    "format_version missing": (lambda d: d.pop("format_version"), "format_version"),
    "format_version as a string": (set_field("format_version", "3"), "format_version"),
    "format 2 with format 3's vocab_size": (
        as_format(2), "'vocab_size'"),
    "format 4 without vocab_size": (lambda d: d.pop("vocab_size"), "vocab_size"),
    "format 3 with format 4's text_graphs": (
        as_format(3, keep="text_graphs"), "'text_graphs'"),
    "format 3 with format 4's ort_graphs": (
        as_format(3, keep="ort_graphs"), "'ort_graphs'"),
    "format 3 with format 4's int8_target": (
        as_format(3, keep="int8_target"), "'int8_target'"),
    "a text graph of an unknown precision": (
        lambda d: d["text_graphs"].update({"int4": "model.onnx"}), "text_graphs"),
    "a text graph without its graph": (
        lambda d: d["text_graphs"].update({"fp16": "model.onnx"}), "no fp16 graph"),
    "a text graph without a checksum": (
        lambda d: d["text_graphs"].update({"int8": "text.onnx"}), "without a checksum"),
    "an ORT graph without a checksum": (
        set_field("ort_graphs", {"int8": "model.int8.ort"}), "model.int8.ort"),
    "an ORT graph of a graph it lacks": (lambda d: (
        d["graphs"].pop("fp32"), d["devices"].pop("fp32"),
        d["files"].update({"model.ort": "0" * 64}), d.update(ort_graphs={"fp32": "model.ort"})),
        "ORT-format fp32 graph but no fp32 graph"),
    "an ORT graph that is not .ort": (
        set_field("ort_graphs", {"int8": "model.int8.onnx"}), "ort_graphs"),
    "an ORT graph for the GPU": (set_field("ort_graphs", {"fp16": "model.fp16.ort"}),
                                 "ort_graphs"),
    "an int8 target that is not one": (set_field("int8_target", "x86-avx3"), "int8_target"),
    "an int8 graph without a target": (set_field("int8_target", None), "without an int8_target"),
    "a target without an int8 graph": (
        lambda d: (d["graphs"].pop("int8"), d["devices"].pop("int8")),
        "int8_target without an int8 graph"),
    "checked on an ISA that is not one": (set_field("checked_on_isa", "avx9"), "checked_on_isa"),
    "no labels key": (lambda d: d.pop("labels"), "labels"),
}


@pytest.mark.parametrize("case", MANIFEST_CASES)
def test_a_manifest_field_out_of_bounds_is_refused_in_one_line(bundle, case):
    change, word = MANIFEST_CASES[case]
    edit_manifest(bundle, change)
    assert_refused(bundle, "manifest.json", word)


def test_the_largest_label_count_allowed_is_still_checked_against_the_graph(bundle):
    # Within the manifest's bounds, but not what the graph answers: refused at load.
    edit_manifest(bundle, set_field("labels", [f"l{i}" for i in range(MAX_LABELS)]))
    assert_refused(bundle, "model.int8.onnx", f"{MAX_LABELS} labels")


@pytest.mark.parametrize("name, text, words", [
    ("nested 100,000 deep", '{"labels": ' + "[" * 100_000 + "]" * 100_000 + "}",
     ["nested too deeply"]),
    ("a NaN literal", '{"format": "spamkit-bundle", "context_length": NaN}', ["NaN"]),
    ("a repeated key", '{"format": "spamkit-bundle", "labels": [], "labels": []}', ["repeated"]),
    ("a 5,000-digit number", '{"format": "spamkit-bundle", "pad_id": ' + "9" * 5000 + "}",
     ["not valid JSON"]),
    ("not UTF-8", b'{"labels": "\xff\xfe"}', ["not valid JSON"]),
    ("a list", "[1, 2, 3]", ["not a spamkit bundle manifest"]),
    ("null", "null", ["not a spamkit bundle manifest"]),
    ("over a megabyte", '{"format": "spamkit-bundle", "preset": "' + "x" * (1 << 20) + '"}',
     ["over 1048576 bytes"]),
])
def test_a_manifest_that_is_hostile_json_is_refused_in_one_line(bundle, name, text, words):
    path = bundle / "manifest.json"
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    assert_refused(bundle, "manifest.json", *words)


@pytest.mark.parametrize("depth", [500, 950, 985, 1000])
@pytest.mark.parametrize("field", ["labels", "threshold", "preset"])
def test_a_field_nested_near_the_parsers_limit_is_refused_in_one_line(bundle, field, depth):
    """Whichever gives up first, the parser (its limit depends on the stack) or the field's
    check quoting the value, the answer is one BundleError line."""
    manifest = json.loads((bundle / "manifest.json").read_text())
    manifest[field] = "NESTED"
    text = json.dumps(manifest).replace('"NESTED"', "[" * depth + "]" * depth)
    (bundle / "manifest.json").write_text(text)
    message = assert_refused(bundle, "manifest.json")
    assert f"{field} " in message or "nested too deeply" in message, message


def test_spamkit_classify_says_what_is_wrong_with_the_manifest_in_one_line(bundle):
    edit_manifest(bundle, set_field("context_length", -5))
    result = spamkit_cli("classify", bundle, "hello")
    assert_clean_failure(result, "context_length", "-5")
    (bundle / "manifest.json").write_text('{"labels": ' + "[" * 100_000 + "]" * 100_000 + "}")
    assert_clean_failure(spamkit_cli("classify", bundle, "hello"), "nested too deeply")


def test_an_older_format_2_bundle_still_loads_and_answers_the_same(tiny_bundle, bundle):
    edit_manifest(bundle, lambda d: (d.pop("vocab_size"), as_format(2)(d)))
    old = Classifier.load(bundle)
    assert old.manifest.vocab_size is None  # format 2 did not record it: nothing to check
    texts = ["WINNER!! claim your prize", "see you at 6", ""]
    np.testing.assert_array_equal(old.logits(texts), Classifier.load(tiny_bundle).logits(texts))


def test_a_format_3_bundle_still_loads(tiny_bundle, bundle):
    edit_manifest(bundle, as_format(3))
    old = Classifier.load(bundle)
    assert old.manifest.format_version == 3 and old.manifest.text_graphs == {}
    texts = ["WINNER!! claim your prize", "see you at 6", ""]
    np.testing.assert_array_equal(old.logits(texts), Classifier.load(tiny_bundle).logits(texts))


# The tokenizer: checksummed, but an attacker can re-checksum a tampered one. Each still fails
# at load, in one line, instead of at the first message (or never).


def tamper_tokenizer(bundle, change) -> None:
    path = bundle / "tokenizer.json"
    data = json.loads(path.read_text())
    path.write_text(json.dumps(change(data)) if callable(change) else change)
    rechecksum(bundle)


def _with(key, value):
    return lambda d: {**d, key: value}


def _ranks(edit):
    def change(d):
        ranks = list(d["ranks"])
        edit(ranks)
        return {**d, "ranks": ranks}
    return change


TOKENIZER_CASES = {
    "not JSON": ("{not json", "not valid JSON"),
    "nested 100,000 deep": ("[" * 100_000 + "]" * 100_000, "nested too deeply"),
    "a list": ("[]", "name, pat_str, special_tokens and ranks"),
    "no special_tokens": (lambda d: {k: v for k, v in d.items() if k != "special_tokens"},
                          "special_tokens"),
    "a rank that is not base64": (_ranks(lambda r: r.__setitem__(300, "@@@not base64@@@")),
                                  "not base64"),
    "a rank that is a number": (_ranks(lambda r: r.__setitem__(300, 7)), "base64 strings"),
    "a rank repeated": (_ranks(lambda r: r.__setitem__(0xE0, r[300])), "repeats"),
    "an empty rank": (_ranks(lambda r: r.__setitem__(300, "")), "holds an empty one"),
    "a single byte dropped": (_ranks(lambda r: r.pop(0xE0)), "lacks a single byte"),
    "another regex": (_with("pat_str", ""), "pat_str"),
    "no end-of-text token": (_with("special_tokens", {"<|x|>": 50256}), "special_tokens"),
    "an end-of-text id inside the ranks": (_with("special_tokens", {"<|endoftext|>": 5}),
                                           "above the ranks"),
    "ids beyond the model's vocabulary": (_with("special_tokens", {"<|endoftext|>": 60000}),
                                          "beyond the model's vocabulary of 50257"),
    "an id beyond 2**31": (_with("special_tokens", {"<|endoftext|>": 2**40}), "special_tokens"),
    "two special tokens with one id": (
        _with("special_tokens", {"<|endoftext|>": 50256, "<|fim_prefix|>": 50256}), "distinct"),
}


@pytest.mark.parametrize("case", TOKENIZER_CASES)
def test_a_tampered_and_rechecksummed_tokenizer_is_refused_in_one_line(bundle, case):
    change, word = TOKENIZER_CASES[case]
    tamper_tokenizer(bundle, change)
    read_manifest(bundle)  # the checksums agree: only the tokenizer's checks stand in the way
    assert_refused(bundle, "tokenizer.json", word)


def test_an_out_of_vocabulary_id_would_pass_the_int8_graph_silently(tiny_bundle):
    """Why the tokenizer's ids are checked against vocab_size at load: the int8 graph answers
    for an id past its embedding table without complaint (the fp32 one raises)."""
    clf = Classifier.load(tiny_bundle)
    ids = np.array([[60_000, 5]], dtype=np.int64)
    logits = clf.session.run(["logits"], {"input_ids": ids,
                                          "attention_mask": np.ones_like(ids)})[0]
    assert logits.shape == (1, 2)


# Fuzzing: any JSON at all in place of the manifest, or mutations of the real one; any
# tokenizer.json with a matching checksum. Loading either works and classifies, or is a
# one-line BundleError.

JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=12),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner,
                                                                max_size=4),
    max_leaves=12)


@st.composite
def mutated(draw, original: dict) -> object:
    """`original` with a few fields replaced, removed, added, or changed inside."""
    if draw(st.integers(0, 9)) == 0:
        return draw(JSON)
    data = copy.deepcopy(original)
    for _ in range(draw(st.integers(1, 3))):
        key = draw(st.sampled_from(sorted(data))) if data else "labels"
        how = draw(st.sampled_from(["replace", "remove", "add", "inside"]))
        if how == "replace":
            data[key] = draw(JSON)
        elif how == "remove":
            data.pop(key, None)
        elif how == "add":
            data[draw(st.text(max_size=12))] = draw(JSON)
        elif isinstance(data.get(key), dict) and data[key]:
            data[key][draw(st.sampled_from(sorted(data[key])))] = draw(JSON)
        elif isinstance(data.get(key), list) and data[key]:
            data[key][draw(st.integers(0, len(data[key]) - 1))] = draw(JSON)
    return data


def assert_loads_sanely_or_refused(bundle) -> None:
    try:
        clf = Classifier.load(bundle)
    except BundleError as e:
        assert "\n" not in str(e) and str(e)
        event("refused")
        return
    event("loaded")
    p = clf.predict_proba(["WINNER!! claim your prize now", "", "see you at 6 \u0800 🎉"])
    assert p.shape == (3, len(clf.labels)) and np.isfinite(p).all()
    np.testing.assert_allclose(p.sum(axis=1), 1, atol=1e-5)


@settings(FUZZ, max_examples=300)
@given(data=st.data())
def test_fuzz_any_manifest_loads_sanely_or_is_one_bundle_error(tiny_bundle, bundle, data):
    manifest = data.draw(mutated(json.loads((tiny_bundle / "manifest.json").read_text())))
    (bundle / "manifest.json").write_text(json.dumps(manifest))
    assert_loads_sanely_or_refused(bundle)


@settings(FUZZ, max_examples=60)
@given(data=st.data())
def test_fuzz_any_rechecksummed_tokenizer_loads_sanely_or_is_one_bundle_error(
        tiny_bundle, bundle, data):
    original = json.loads((tiny_bundle / "tokenizer.json").read_text())
    if data.draw(st.booleans()):
        ranks = list(original["ranks"])
        for _ in range(data.draw(st.integers(1, 3))):
            i = data.draw(st.integers(0, len(ranks) - 1))
            ranks[i] = data.draw(JSON | st.binary(max_size=4).map(
                lambda b: base64.b64encode(b).decode()))
        tokenizer = {**original, "ranks": ranks}
    else:
        tokenizer = data.draw(mutated({k: v for k, v in original.items() if k != "ranks"}))
        if isinstance(tokenizer, dict) and data.draw(st.booleans()):
            tokenizer["ranks"] = original["ranks"]
    raw = json.dumps(tokenizer).encode()
    (bundle / "tokenizer.json").write_bytes(raw)
    manifest = json.loads((bundle / "manifest.json").read_text())
    manifest["files"]["tokenizer.json"] = hashlib.sha256(raw).hexdigest()
    manifest["sizes"]["tokenizer.json"] = len(raw)
    (bundle / "manifest.json").write_text(json.dumps(manifest))
    assert_loads_sanely_or_refused(bundle)
