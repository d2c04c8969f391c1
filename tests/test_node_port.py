"""The Node.js port (ports/node, onnxruntime-node): a second language that loads a bundle and
gives the labels and probabilities of the Python runtime. Run by `make test-web`."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from conftest import SMS_FILE
from onnx import helper, numpy_helper
from webpage import NODE_PORT, ROOT, node

from spamkit.runtime.tokenizer import EOT

pytestmark = pytest.mark.node

PROGRAM = NODE_PORT / "classify.mjs"
PREPROCESS = ROOT / "toolkit" / "web" / "static" / "preprocess.js"
# Longer than the context: ham at the front, spam at the end, which is what must be kept.
LONG = "Ok lar... Joking wif u oni... " * 60 + "WINNER!! Call 09061701461 to claim your prize"


def run_node(*args: object, stdin: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([node(), *map(str, args)], input=stdin, capture_output=True,
                          text=True, timeout=600)


def write_jsonl(path: Path, texts: list[str]) -> Path:
    path.write_text("".join(json.dumps(t) + "\n" for t in texts), encoding="utf-8")
    return path


def test_node_classifies_the_sms_test_split_as_python_does(tiny_bundle, tmp_path):
    from spamkit.data import DataConfig, load_splits
    from spamkit.runtime import Classifier

    texts = load_splits(DataConfig(path=str(SMS_FILE))).test.texts
    texts = [*texts, "", LONG]
    result = run_node(PROGRAM, tiny_bundle, "--jsonl", write_jsonl(tmp_path / "in.jsonl", texts))
    assert result.returncode == 0, result.stderr
    answers = [json.loads(line) for line in result.stdout.splitlines()]
    clf = Classifier.load(tiny_bundle)
    assert len(answers) == len(texts) == 302
    assert [a["label"] for a in answers] == clf.predict(texts)
    got = np.array([[a["probabilities"][label] for label in clf.labels] for a in answers])
    np.testing.assert_allclose(got, clf.predict_proba(texts), atol=1e-4, rtol=0)


def contract_ids(tokenizer, text: str) -> list[int]:
    """A message's ids by docs/bundle-format.md, straight from tiktoken: the literal
    <|endoftext|> is its id (spamkit 0.1's runtime read it as plain text)."""
    longest = max(len(t) for t in tokenizer.encoding.token_byte_values())
    ids = tokenizer.encoding.encode(text[-tokenizer.max_length * longest:],
                                    allowed_special={EOT}, disallowed_special=())
    return ids[-tokenizer.max_length:] if ids else [tokenizer.eot_id]


def test_the_javascript_tokenizer_gives_tiktokens_ids(tiny_bundle, tmp_path):
    """Every message of the SMS collection and the awkward cases: Unicode whitespace that
    JavaScript's \\s and Rust's disagree on (U+0085, U+FEFF), contractions, digits of other
    scripts, emoji, <|endoftext|> in a message, text longer than the context in tokens and in
    characters, and one long run of a single letter."""
    from spamkit.runtime.bundle import read_manifest
    from spamkit.runtime.classifier import load_tokenizer

    texts = [line.split("\t", 1)[1] for line in SMS_FILE.read_text("utf-8").split("\n") if line]
    texts += ["", " ", "\n\n", "hello   ", "a \ufeffb", "a \u0085b", "x\u0085\u0085 y",
              "a\u00a0 b\u3000c\u2028d", "I'm you'll WE'VE they'D", "٣٤٥ 123456789",
              "😀😀 e\u0301", "tab\tsep\r\n", "word " * 20_000, "x" * 70_000]
    special = ["<|endoftext|>", "hi<|endoftext|>there", "<|endoftext|><|endoftext|>",
               "<|endoftext|", "<|fim_prefix|> x"]
    tokenizer = load_tokenizer(tiny_bundle, read_manifest(tiny_bundle))
    script = f"""
        import {{ readFileSync }} from "node:fs";
        import {{ Tokenizer }} from {json.dumps(PREPROCESS.as_uri())};
        const tok = new Tokenizer(JSON.parse(readFileSync(process.argv[1], "utf8")),
                                  {tokenizer.max_length});
        const texts = readFileSync(process.argv[2], "utf8").split("\\n").filter((l) => l)
          .map((l) => JSON.parse(l));
        process.stdout.write(texts.map((t) => JSON.stringify(tok.encode(t))).join("\\n"));
    """
    result = run_node("--input-type=module", "-e", script, "--", tiny_bundle / "tokenizer.json",
                      write_jsonl(tmp_path / "texts.jsonl", texts + special))
    assert result.returncode == 0, result.stderr
    got = [json.loads(line) for line in result.stdout.splitlines()]
    expected = [contract_ids(tokenizer, t) for t in texts + special]
    wrong = [(t[:40], g[:8], e[:8]) for t, g, e in zip(texts + special, got, expected) if g != e]
    assert len(got) == len(texts + special) and wrong == []
    assert tokenizer.encode_batch(texts) == expected[: len(texts)]  # the Python runtime's ids


def change_a_byte(path: Path) -> None:
    """A change that still parses: the tokenizer's name field (never read, so only the sha256
    check can notice), else one byte flipped in the middle."""
    raw = path.read_bytes()
    if path.name == "tokenizer.json":
        path.write_bytes(raw.replace(b'"name"', b'"nAme"', 1))
    else:
        middle = len(raw) // 2
        path.write_bytes(raw[:middle] + bytes([raw[middle] ^ 0xFF]) + raw[middle + 1:])


def rechecksum(bundle: Path, **fields: object) -> None:
    """The manifest, with `fields` changed, made to agree with the files again."""
    from spamkit.export.manifest import with_checksums, write_manifest
    from spamkit.runtime.bundle import Manifest

    data = json.loads((bundle / "manifest.json").read_text())
    write_manifest(bundle, with_checksums(bundle, Manifest(**{**data, **fields})))


def tokenizer_in_a_subfolder(source: Path, bundle: Path) -> Path:
    """A copy of `source` whose manifest puts its tokenizer at tok/tokenizer.json."""
    shutil.copytree(source, bundle)
    (bundle / "tok").mkdir()
    (bundle / "tokenizer.json").rename(bundle / "tok" / "tokenizer.json")
    rechecksum(bundle, tokenizer="tok/tokenizer.json")
    return bundle


def test_node_reads_the_tokenizer_where_the_manifest_puts_it(tiny_bundle, tmp_path):
    from spamkit.runtime import Classifier

    bundle = tokenizer_in_a_subfolder(tiny_bundle, tmp_path / "bundle")
    result = run_node(PROGRAM, bundle, "hello", LONG)
    assert result.returncode == 0, result.stderr
    labels = [json.loads(line)["label"] for line in result.stdout.splitlines()]
    assert labels == Classifier.load(bundle).predict(["hello", LONG])


@pytest.mark.parametrize("name", ["tokenizer.json", "model.int8.onnx", "model.int8.onnx.data"])
def test_node_refuses_any_changed_file_in_one_line(tiny_bundle, tmp_path, name):
    bundle = tmp_path / "bundle"
    shutil.copytree(tiny_bundle, bundle)
    change_a_byte(bundle / name)
    result = run_node(PROGRAM, bundle, "hello")
    assert result.returncode == 1 and result.stdout == ""
    assert result.stderr == (f"spamkit-node: error: {bundle / name} does not match its "
                             "checksum: damaged or changed\n")


def test_node_says_how_to_call_it(tiny_bundle):
    result = run_node(PROGRAM)
    assert result.returncode == 2
    assert result.stderr.startswith("spamkit-node: error: usage: classify.mjs BUNDLE")


# A manifest field out of the format's bounds, and what the Node port (and the page) says of it.
MANIFEST_CASES = {
    "a newer format": ({"format_version": 99}, "is bundle format 99; this reads 4 and older"),
    "a label twice": ({"labels": ["spam", "spam"]}, "labels must be 2 or more distinct names"),
    "a threshold for another label": ({"threshold": {"label": "phishing", "value": 0.5}},
                                      "threshold must name one of the labels and a probability"),
    "a threshold above one": ({"threshold": {"label": "spam", "value": 1.5}},
                              "threshold must name one of the labels and a probability"),
}


@pytest.mark.parametrize("case", MANIFEST_CASES)
def test_node_refuses_a_manifest_out_of_the_format_in_one_line(tiny_bundle, tmp_path, case):
    fields, why = MANIFEST_CASES[case]
    bundle = tmp_path / "bundle"
    shutil.copytree(tiny_bundle, bundle)
    manifest = json.loads((bundle / "manifest.json").read_text())
    (bundle / "manifest.json").write_text(json.dumps({**manifest, **fields}))
    result = run_node(PROGRAM, bundle, "hello")
    assert result.returncode == 1 and result.stdout == ""
    assert result.stderr == (f"spamkit-node: error: {bundle} is not a readable spamkit bundle: "
                             f"manifest.json {why}\n")


def test_node_refuses_a_rechecksummed_tokenizer_with_another_regex(tiny_bundle, tmp_path):
    bundle = tmp_path / "bundle"
    shutil.copytree(tiny_bundle, bundle)
    tokenizer = json.loads((bundle / "tokenizer.json").read_text())
    (bundle / "tokenizer.json").write_text(json.dumps({**tokenizer, "pat_str": r"\S+|\s+"}))
    rechecksum(bundle)
    result = run_node(PROGRAM, bundle, "hello")
    assert result.returncode == 1 and result.stdout == ""
    assert result.stderr == "spamkit-node: error: tokenizer.json is not a GPT-2 tokenizer\n"


def with_logits(source: Path, bundle: Path, nodes: list, constants: dict) -> Path:
    """A copy of `source` whose int8 graph (the one Node runs) computes its logits from the
    model's own ("raw") through `nodes`, with `constants` (name: value), its width left
    open, and the manifest re-checksummed: only the port's checks of the logits stand."""
    import onnx

    shutil.copytree(source, bundle)
    model = onnx.load(bundle / "model.int8.onnx")
    graph = model.graph
    for n in graph.node:
        n.output[:] = ["raw" if o == "logits" else o for o in n.output]
    graph.node.extend(nodes)
    graph.initializer.extend(numpy_helper.from_array(np.array(value), name)
                             for name, value in constants.items())
    graph.output[0].type.tensor_type.shape.dim[1].dim_param = "classes"
    (bundle / "model.int8.onnx.data").unlink()
    onnx.save(model, bundle / "model.int8.onnx", save_as_external_data=True,
              location="model.int8.onnx.data")
    rechecksum(bundle)
    return bundle


# Logits the graph may not answer: NaN for every message, or one column for two labels.
LOGIT_CASES = {
    "NaN": ([helper.make_node("Mul", ["raw", "nan"], ["logits"])],
            {"nan": np.float32(np.nan)}, "a NaN or infinite logit for texts[0]"),
    "one column": ([helper.make_node("Slice", ["raw", "c0", "c1", "c1"], ["logits"])],
                   {"c0": np.array([0]), "c1": np.array([1])}, "logits of shape [1,1], not [1, 2]"),
}


@pytest.mark.parametrize("case", LOGIT_CASES)
def test_node_refuses_logits_that_are_not_one_finite_number_per_label(tiny_bundle, tmp_path,
                                                                       case):
    nodes, constants, what = LOGIT_CASES[case]
    bundle = with_logits(tiny_bundle, tmp_path / "bundle", nodes, constants)
    result = run_node(PROGRAM, bundle, "hello")
    assert result.returncode == 1 and result.stdout == ""
    assert result.stderr == f"spamkit-node: error: the graph gave {what}\n"


def test_node_refuses_a_jsonl_line_that_is_not_a_string_before_reading_the_bundle(tmp_path):
    texts = tmp_path / "in.jsonl"
    texts.write_text('"hello"\n{"text": "free prize"}\n', encoding="utf-8")
    result = run_node(PROGRAM, tmp_path / "bundle", "--jsonl", texts)
    assert result.returncode == 1 and result.stdout == ""
    assert result.stderr == f"spamkit-node: error: {texts} line 2 is not a JSON string\n"


def test_node_decides_with_a_calibrated_threshold_as_python_does(tiny_bundle, tmp_path):
    """`spamkit calibrate` stores a threshold for spam: labels follow it, not the argmax."""
    from spamkit.data import DataConfig, load_splits
    from spamkit.runtime import Classifier

    texts = load_splits(DataConfig(path=str(SMS_FILE))).test.texts
    spam = Classifier.load(tiny_bundle).predict_proba(texts)[:, 1]
    bundle = tmp_path / "bundle"
    shutil.copytree(tiny_bundle, bundle)
    manifest = json.loads((bundle / "manifest.json").read_text())
    # Well below 0.5, and halfway between two messages' probabilities: JavaScript's float64
    # softmax and numpy's float32 one differ by ~1e-8, which could tip a message sitting on it.
    ordered = np.unique(spam)
    i = int(len(ordered) * 0.3)
    threshold = {"label": "spam", "value": float(ordered[i] + ordered[i + 1]) / 2}
    (bundle / "manifest.json").write_text(json.dumps({**manifest, "threshold": threshold}))
    clf = Classifier.load(bundle)
    result = run_node(PROGRAM, bundle, "--jsonl", write_jsonl(tmp_path / "in.jsonl", texts))
    assert result.returncode == 0, result.stderr
    labels = [json.loads(line)["label"] for line in result.stdout.splitlines()]
    assert labels == clf.predict(texts)
    assert labels.count("spam") > (spam >= 0.5).sum()  # the threshold changed some labels
