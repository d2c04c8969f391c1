"""`spamkit export --text-input`: a precision's graph with GPT-2's tokenizer in front of it,
strings in, logits out (docs/bundle-format.md, "Text graphs").

onnxruntime-extensions' GPT2Tokenizer op does the byte-pair encoding, from vocabulary and merge
tables derived here from the bundle's own tokenizer; plain ONNX ops then keep each message's
last `context_length` ids, give an empty message the end-of-text id, pad on the right and build
the mask, as the runtime's Tokenizer and pad_batch do. The two parts are joined with
onnx.compose, and the result reads the weights of the graph it was made from (its GRAPH.data):
a text graph adds the tokenizer's tables, not a second copy of the weights.
"""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper

from spamkit.errors import SpamkitError
from spamkit.export.verify import mixed_batches
from spamkit.runtime.batching import pad_batch
from spamkit.runtime.bundle import (
    ATTENTION_MASK,
    INPUT_IDS,
    LOGITS,
    TEXT,
    TEXT_GRAPH_FILES,
    Manifest,
)
from spamkit.runtime.text_graph import (
    NUL_BYTES,
    as_text_tensor,
    cut_texts,
    extensions_library,
)
from spamkit.runtime.tokenizer import EOT, Tokenizer
from spamkit.tokenizer import data_gym_byte_decoder

CONTRIB = "ai.onnx.contrib"  # onnxruntime-extensions' operator domain
# The classifier graphs' IR version: onnxruntime-web 1.30 refuses IR 14, IR 10 loads. The parts
# composed must agree on it.
IR_VERSION = 10
# The same classifier on the same ids: only the composed graph's own optimizations may move a
# logit, by float rounding.
TEXT_TOLERANCE = 1e-5


def write_text_graphs(bundle: Path, graphs: dict[str, str], tokenizer: Tokenizer,
                      pad_id: int) -> dict[str, str]:
    """Beside each of `graphs` (precision -> file in `bundle`), its text graph; returns them as
    the manifest's `text_graphs`."""
    written = {}
    front = None
    for precision, name in graphs.items():
        classifier = onnx.load(bundle / name, load_external_data=False)  # weights stay apart
        if classifier.ir_version > IR_VERSION:
            raise ValueError(f"{name} is ONNX IR {classifier.ir_version}, above {IR_VERSION}")
        opset = next(o.version for o in classifier.opset_import if o.domain in ("", "ai.onnx"))
        front = front or tokenize_model(tokenizer, pad_id, opset)
        written[precision] = TEXT_GRAPH_FILES[precision]
        _save(_compose(front, classifier), bundle / written[precision])
    return written


def _compose(front: onnx.ModelProto, classifier: onnx.ModelProto) -> onnx.ModelProto:
    """The tokenizer's outputs into the classifier's inputs; the ids it ran stay outputs too.
    (onnx.compose.merge_models would check the result without the weights' directory.)"""
    graph = onnx.compose.merge_graphs(
        front.graph, classifier.graph,
        io_map=[(INPUT_IDS, INPUT_IDS), (ATTENTION_MASK, ATTENTION_MASK)],
        outputs=[LOGITS, INPUT_IDS, ATTENTION_MASK], name="spamkit_text_classifier")
    order = [LOGITS, INPUT_IDS, ATTENTION_MASK]
    outputs = sorted(graph.output, key=lambda o: order.index(o.name))
    del graph.output[:]
    graph.output.extend(outputs)
    opsets = {o.domain: o.version for o in [*front.opset_import, *classifier.opset_import]}
    return helper.make_model(graph, ir_version=IR_VERSION, producer_name="spamkit",
                             opset_imports=[helper.make_opsetid(d, v) for d, v in opsets.items()])


def _save(model: onnx.ModelProto, path: Path) -> None:
    """Save and check it where its weights are (the checker resolves GRAPH.data from there)."""
    onnx.save(model, path)
    onnx.checker.check_model(str(path))


def tokenize_model(tokenizer: Tokenizer, pad_id: int, opset: int) -> onnx.ModelProto:
    """text string [batch] -> input_ids, attention_mask int64 [batch, sequence], as the runtime
    would feed them to the classifier."""
    vocab, merges = bpe_tables(tokenizer)
    consts = {"axis1": [1], "context": tokenizer.max_length, "one": 1, "zero": 0, "ones": [1],
              "eot": tokenizer.eot_id, "pad": pad_id, "pad_end": [0, 0, 0, 1]}
    init = [numpy_helper.from_array(np.array(v, np.int64), f"text/{k}") for k, v in consts.items()]
    node = helper.make_node
    nodes = [
        node("GPT2Tokenizer", [TEXT], ["text/ids", "text/mask"], domain=CONTRIB, vocab=vocab,
             merges=merges, padding_length=-1),
        node("ReduceSum", ["text/mask", "text/axis1"], ["text/count"], keepdims=0),
        # Truncation from the front: row i keeps ids [start_i, count_i).
        node("Min", ["text/count", "text/context"], ["text/kept"]),
        node("Sub", ["text/count", "text/kept"], ["text/start"]),
        # An empty message keeps one id, the end-of-text token.
        node("Max", ["text/kept", "text/one"], ["text/length"]),
        node("Concat", ["text/length", "text/ones"], ["text/lengths_or_one"], axis=0),
        node("ReduceMax", ["text/lengths_or_one"], ["text/width"], keepdims=0),
        node("Range", ["text/zero", "text/width", "text/one"], ["text/column"]),
        node("Unsqueeze", ["text/start", "text/axis1"], ["text/start_column"]),
        node("Add", ["text/start_column", "text/column"], ["text/source"]),
        # One end-of-text column after the ids: every row has a column to gather from.
        node("Pad", ["text/ids", "text/pad_end", "text/eot"], ["text/ids_eot"]),
        node("Shape", ["text/ids_eot"], ["text/columns"], start=1, end=2),
        node("Sub", ["text/columns", "text/one"], ["text/last_column"]),
        node("Min", ["text/source", "text/last_column"], ["text/index"]),
        node("GatherElements", ["text/ids_eot", "text/index"], ["text/kept_ids"], axis=1),
        node("Unsqueeze", ["text/count", "text/axis1"], ["text/count_column"]),
        node("Equal", ["text/count_column", "text/zero"], ["text/empty"]),
        node("Where", ["text/empty", "text/eot", "text/kept_ids"], ["text/ids_or_eot"]),
        node("Unsqueeze", ["text/length", "text/axis1"], ["text/length_column"]),
        node("Less", ["text/column", "text/length_column"], ["text/real"]),
        node("Where", ["text/real", "text/ids_or_eot", "text/pad"], [INPUT_IDS]),
        node("Cast", ["text/real"], [ATTENTION_MASK], to=TensorProto.INT64),
    ]
    ids = [helper.make_tensor_value_info(name, TensorProto.INT64, ["batch", "sequence"])
           for name in (INPUT_IDS, ATTENTION_MASK)]
    graph = helper.make_graph(
        nodes, "tokenize", [helper.make_tensor_value_info(TEXT, TensorProto.STRING, ["batch"])],
        ids, init)
    return helper.make_model(graph, ir_version=IR_VERSION, opset_imports=[
        helper.make_opsetid("", opset), helper.make_opsetid(CONTRIB, 1)])


def bpe_tables(tokenizer: Tokenizer) -> tuple[str, str]:
    """The tokenizer's ranks as GPT-2's `encoder.json` (token -> id, bytes spelled as printable
    characters) and `vocab.bpe` merges, the forms the GPT2Tokenizer op reads."""
    ranks = {token: rank for rank, token in enumerate(tokenizer.ranks())}
    spell = {b: c for c, b in data_gym_byte_decoder().items()}
    vocab = {"".join(spell[b] for b in token): rank for token, rank in ranks.items()}
    vocab[EOT] = tokenizer.eot_id
    # NUL comes in as NUL_BYTES: merged before anything else, into NUL's id (bytes that valid
    # UTF-8 never holds, so no other text meets these merges).
    nul = "".join(spell[b] for b in NUL_BYTES)
    vocab |= {nul[:2]: ranks[b"\0"], nul: ranks[b"\0"]}
    merges = ["#version: 0.2", f"{nul[0]} {nul[1]}", f"{nul[:2]} {nul[2]}"]
    for token, rank in sorted(ranks.items(), key=lambda kv: kv[1]):
        if len(token) > 1:
            first, second = _last_merge(token, rank, ranks)
            merges.append(" ".join("".join(spell[b] for b in part) for part in (first, second)))
    return json.dumps(vocab, ensure_ascii=False), "\n".join(merges) + "\n"


def _last_merge(token: bytes, rank: int, ranks: dict[bytes, int]) -> tuple[bytes, bytes]:
    """The two tokens whose merge makes `token`: its bytes merged by lower ranks alone."""
    parts = [bytes([b]) for b in token]
    while len(parts) > 2:
        pairs = enumerate(itertools.pairwise(parts))
        best, i = min((ranks.get(a + b, rank), i) for i, (a, b) in pairs)
        if best >= rank:
            raise ValueError(f"token {token!r} is not a merge of two lower-ranked tokens")
        parts[i:i + 2] = [parts[i] + parts[i + 1]]
    return parts[0], parts[1]


def check_text_graphs(bundle: Path, manifest: Manifest, tokenizer: Tokenizer,
                      texts: list[str]) -> dict[str, float]:
    """Fail unless each text graph gives the runtime's token ids for `texts` and its graph's
    logits for them (batches of several sizes); the largest logit difference per precision."""
    figures = {}
    options = ort.SessionOptions()
    options.register_custom_ops_library(extensions_library())
    texts = cut_texts(texts, tokenizer.max_chars)
    for precision, name in manifest.text_graphs.items():
        text_session = ort.InferenceSession(str(bundle / name), options,
                                            providers=["CPUExecutionProvider"])
        id_session = ort.InferenceSession(str(bundle / manifest.graphs[precision]),
                                          providers=["CPUExecutionProvider"])
        worst = 0.0
        for rows in mixed_batches(len(texts)):
            batch = [texts[i] for i in rows]
            logits, ids, mask = text_session.run([LOGITS, INPUT_IDS, ATTENTION_MASK],
                                                 {TEXT: as_text_tensor(batch)})
            want_ids, want_mask = pad_batch(tokenizer.encode_batch(batch), tokenizer.pad_id)
            if not (np.array_equal(ids, want_ids) and np.array_equal(mask, want_mask)):
                raise SpamkitError(f"the {precision} text graph tokenizes a message otherwise "
                                   "than the runtime; no bundle written")
            want = id_session.run([LOGITS], {INPUT_IDS: ids, ATTENTION_MASK: mask})[0]
            worst = max(worst, float(np.max(np.abs(logits - want), initial=0.0)))
        if not worst <= TEXT_TOLERANCE:  # written so that NaN fails too
            raise SpamkitError(f"the {precision} text graph's logits differ from its graph's by "
                               f"{worst:.2e} > {TEXT_TOLERANCE:.0e}; no bundle written")
        print(f"{precision} text graph vs {precision} graph on {len(texts)} messages: same ids, "
              f"max |logit diff| {worst:.2e}")
        figures[f"{precision}_text_graph_max_abs_logit_diff"] = worst
    return figures
