"""What an int8 graph computes on another CPU: a reference for each kind of int8 kernel.

ONNX Runtime's integer products differ by ISA (spamkit.runtime.isa): exact int32 sums on VNNI,
AMX and ARM64, saturating 16-bit pair sums on x86 without VNNI (vpmaddubsw adds the products of
values 2j and 2j+1 into an int16, then those into int32; the activations' zero point is taken
off afterwards, from the weights' column sums). `reference_graph` rewrites an int8 graph so that
every integer product is computed with plain int32 ONNX ops that give the same answer on any
host, either exactly or as those pair sums; everything else (LayerNorm, GELU, attention in fp32)
stays as it was. A test on one host then tells how a graph behaves on another.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx_ir as ir
import onnxruntime as ort
from onnx_ir.passes.common import RemoveUnusedNodesPass

from spamkit.export.onnx_graph import save_graph
from spamkit.export.quantize import MS_DOMAIN, add_const
from spamkit.export.targets import PAIR_LIMIT
from spamkit.runtime.batching import pad_batch
from spamkit.runtime.bundle import ATTENTION_MASK, INPUT_IDS, LOGITS
from spamkit.runtime.isa import EXACT, PAIRS16

INT16_MIN, INT16_MAX = -(1 << 15), (1 << 15) - 1


def reference_graph(int8: Path, out: Path, kernel: str) -> None:
    """Write to `out` the graph at `int8` with its integer products computed as `kernel`
    computes them, in plain int32 ops that give the same answer on any host.

    Args:
        int8: an int8 graph of spamkit's (symmetric int8 weights).
        out: where to write the reference graph (its weights beside it).
        kernel: EXACT (VNNI, AMX, ARM64) or PAIRS16 (x86 without VNNI).

    Raises:
        ValueError: an unknown kernel, or weights that are not spamkit's int8 ones.
    """
    if kernel not in (EXACT, PAIRS16):
        raise ValueError(f"kernel must be {EXACT} or {PAIRS16}, not {kernel!r}")
    model = ir.load(int8)
    for node in list(model.graph):
        if node.op_type == "QAttention":
            _unfuse_attention(model.graph, node)
    for node in list(model.graph):
        if node.op_type == "MatMulIntegerToFloat":
            _emulate_matmul(model.graph, node, kernel)
    RemoveUnusedNodesPass()(model)
    save_graph(model, out)


def reference_logits(graph: Path, messages: list[list[int]], pad_id: int) -> np.ndarray:
    """Logits of a reference graph, one message at a time (the pair sums' working memory grows
    with the tokens in flight)."""
    session = ort.InferenceSession(str(graph), providers=["CPUExecutionProvider"])
    rows = []
    for ids in messages:
        input_ids, mask = pad_batch([ids], pad_id)
        rows.append(session.run([LOGITS], {INPUT_IDS: input_ids, ATTENTION_MASK: mask})[0][0])
    return np.stack(rows)


def _unfuse_attention(graph: ir.Graph, node: ir.Node) -> None:
    """QAttention(x, w, bias, ...) -> MatMulIntegerToFloat -> Split -> MultiHeadAttention, the
    form it was fused from (spamkit.export.quantize)."""
    x, w, bias, x_scale, w_scale, _, x_zero = node.inputs[:7]
    matmul = ir.Node(MS_DOMAIN, "MatMulIntegerToFloat",
                     [x, w, x_scale, w_scale, x_zero, None, bias], name=f"{node.name}.qkv")
    split = ir.Node("", "Split", [matmul.outputs[0]], {"axis": ir.AttrInt64("axis", -1),
                                                    "num_outputs": ir.AttrInt64("num_outputs", 3)},
                    num_outputs=3, name=f"{node.name}.split")
    attrs = {k: ir.AttrInt64(k, node.attributes[k].value) for k in ("num_heads", "unidirectional")}
    attention = ir.Node(MS_DOMAIN, "MultiHeadAttention", list(split.outputs), attrs,
                        name=f"{node.name}.attention")
    graph.insert_before(node, [matmul, split, attention])
    node.outputs[0].replace_all_uses_with(attention.outputs[0], replace_graph_outputs=True)


def _emulate_matmul(graph: ir.Graph, node: ir.Node, kernel: str) -> None:
    """MatMulIntegerToFloat(a, b, a_scale, b_scale, a_zero, b_zero, bias) as int32 ops."""
    a, b, a_scale, b_scale, a_zero = node.inputs[:5]
    if len(node.inputs) > 5 and node.inputs[5] is not None \
            or b.const_value.dtype != ir.DataType.INT8:
        raise ValueError(f"{node.name}: only symmetric int8 weights (spamkit's) are emulated")
    bias = node.inputs[6] if len(node.inputs) > 6 else None
    w = b.const_value.numpy().astype(np.int32)
    za = int(a_zero.const_value.numpy()) if a_zero is not None else 0
    # Pair sums that cannot pass int16 (pair-safe weights) are exact: the exact ops are faster.
    pairs = kernel == PAIRS16 and not pairs_fit_int16(w)
    name = node.name
    nodes = [ir.Node("", "Cast", [a], {"to": ir.AttrInt64("to", int(ir.DataType.INT32))},
                     name=f"{name}.a32")]
    if pairs:
        nodes += _pair_sums(graph, name, nodes[-1].outputs[0], w, za)
    else:
        shifted = ir.Node("", "Sub", [nodes[-1].outputs[0], add_const(graph, f"{name}.za",
                                                                   np.array(za, np.int32))],
                          name=f"{name}.shift")
        nodes += [shifted, ir.Node("", "MatMul", [shifted.outputs[0],
                                                   add_const(graph, f"{name}.w32", w)],
                                   name=f"{name}.exact")]
    scale = a_scale.const_value.numpy() * b_scale.const_value.numpy()
    nodes.append(ir.Node("", "Cast", [nodes[-1].outputs[0]],
                         {"to": ir.AttrInt64("to", int(ir.DataType.FLOAT))}, name=f"{name}.f32"))
    nodes.append(ir.Node("", "Mul", [nodes[-1].outputs[0], add_const(
        graph, f"{name}.scale", scale.astype(np.float32))], name=f"{name}.dequantize"))
    if bias is not None:
        nodes.append(ir.Node("", "Add", [nodes[-1].outputs[0], bias], name=f"{name}.bias"))
    graph.insert_before(node, nodes)
    node.outputs[0].replace_all_uses_with(nodes[-1].outputs[0], replace_graph_outputs=True)


def int8_weights(int8: Path) -> list[np.ndarray]:
    """The int8 weight matrices of the graph at `int8` (its MatMulIntegerToFloat and QAttention
    nodes')."""
    return [node.inputs[1].const_value.numpy() for node in ir.load(int8).graph
            if node.op_type in ("MatMulIntegerToFloat", "QAttention")]


def pairs_can_saturate(int8: Path) -> bool:
    """Whether any pair of int8 weights of the graph at `int8` can pass int16 on x86 without
    VNNI. Where none can, its pairs16 reference is its exact one."""
    return not all(pairs_fit_int16(w) for w in int8_weights(int8))


def pairs_fit_int16(w: np.ndarray) -> bool:
    """Whether no pair of neighbouring weights [K, N] times uint8 activations can pass int16:
    only two weights of one sign add up (activations are >= 0)."""
    w = w.astype(np.int32)
    if w.shape[0] % 2:
        w = np.concatenate([w, np.zeros((1, w.shape[1]), np.int32)])
    up = np.maximum(w, 0)
    down = np.maximum(-w, 0)
    top = max(int((up[0::2] + up[1::2]).max(initial=0)),
              int((down[0::2] + down[1::2]).max(initial=0)))
    return top <= PAIR_LIMIT


def _pair_sums(graph: ir.Graph, name: str, a32: ir.Value, w: np.ndarray, za: int
               ) -> list[ir.Node]:
    """sum_j sat16(a[2j] w[2j] + a[2j+1] w[2j+1]) - za * sum_k w[k], rows of `a32` [..., K]."""
    k, n = w.shape
    if k % 2:  # the kernel pads K with zeros
        w = np.concatenate([w, np.zeros((1, n), np.int32)])
    half = w.shape[0] // 2
    col_sums = (za * w.sum(axis=0)).astype(np.int32)

    def c(suffix: str, array: np.ndarray) -> ir.Value:
        return add_const(graph, f"{name}.{suffix}", array)

    padding = w.shape[0] - k
    out_shape = ir.Node("", "Shape", [a32], {"end": ir.AttrInt64("end", -1)},
                        name=f"{name}.rows_shape")
    full_shape = ir.Node("", "Concat", [out_shape.outputs[0], c("n", np.array([n], np.int64))],
                         {"axis": ir.AttrInt64("axis", 0)}, name=f"{name}.out_shape")
    flat = ir.Node("", "Reshape", [a32, c("flat", np.array([-1, k], np.int64))],
                   name=f"{name}.flat")
    a_pad = ir.Node("", "Pad", [flat.outputs[0], c("pad", np.array([0, 0, 0, padding],
                                                                   np.int64))],
                    name=f"{name}.pad")
    a3 = ir.Node("", "Reshape", [a_pad.outputs[0], c("pairs_shape",
                                                     np.array([-1, half, 2, 1], np.int64))],
                 name=f"{name}.pairs")
    # [rows, half, 2, 1] * [half, 2, n] -> [rows, half, 2, n], then the pair's two products.
    prods = ir.Node("", "Mul", [a3.outputs[0], c("w_pairs", w.reshape(half, 2, n))],
                    name=f"{name}.products")
    pair = ir.Node("", "ReduceSum", [prods.outputs[0], c("axis2", np.array([2], np.int64))],
                   {"keepdims": ir.AttrInt64("keepdims", 0)}, name=f"{name}.pair_sum")
    lo = ir.Node("", "Max", [pair.outputs[0], c("lo", np.array(INT16_MIN, np.int32))],
                 name=f"{name}.sat_lo")
    hi = ir.Node("", "Min", [lo.outputs[0], c("hi", np.array(INT16_MAX, np.int32))],
                 name=f"{name}.sat_hi")
    total = ir.Node("", "ReduceSum", [hi.outputs[0], c("axis1", np.array([1], np.int64))],
                    {"keepdims": ir.AttrInt64("keepdims", 0)}, name=f"{name}.sum")
    shifted = ir.Node("", "Sub", [total.outputs[0], c("col_sums", col_sums)],
                      name=f"{name}.zero_point")
    back = ir.Node("", "Reshape", [shifted.outputs[0], full_shape.outputs[0]],
                   name=f"{name}.unflatten")
    return [out_shape, full_shape, flat, a_pad, a3, prods, pair, lo, hi, total, shifted, back]
