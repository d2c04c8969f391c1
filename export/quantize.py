"""int8 weights and activations for the CPU graph, with activation scales fixed at export.

Every MatMul with constant weights becomes QuantizeLinear + MatMulIntegerToFloat (the same int8
VNNI kernel that ONNX Runtime's dynamic quantization uses), with per-output-channel weight scales
and per-tensor activation scales calibrated on real messages. The target's scheme
(spamkit.export.targets) decides the weights: plain 8-bit, or pair-safe 8-bit, which x86
without VNNI sums without clipping. Dynamic quantization would derive the activation scale from
each batch's range, so a message's logits would depend on the messages batched with it; fixed
scales make every row's result its own.

The token embedding table, a third of the weights of the 124M shape, becomes 4-bit with one scale
per block of 32 values (GatherBlockQuantized): it is only looked up, never multiplied, so its
rounding stays in the rows of the message's own tokens. The position table stays int8 per row.

Each block's attention then runs as one QAttention kernel: the int8 q/k/v projection followed by
causal attention, which drops the Split between them (faster, same logits: docs/bundle-format.md).
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import onnx_ir as ir
import onnxruntime as ort
from onnx_ir.passes.common import RemoveUnusedNodesPass

from spamkit.export.onnx_graph import save_graph
from spamkit.export.targets import Scheme
from spamkit.runtime.batching import pad_batch
from spamkit.runtime.bundle import ATTENTION_MASK, INPUT_IDS

MS_DOMAIN = "com.microsoft"
TOKEN_BLOCK = 32  # values per 4-bit block of the token embedding table, one scale each


def quantize_int8(fp32: Path, int8: Path, calibration: list[list[int]], pad_id: int,
                  scheme: Scheme) -> None:
    """Write the int8 version of the graph at `fp32` to `int8`; `calibration` holds the token ids
    of real messages whose activations set the ranges; `scheme` is the target's weight format."""
    model = ir.load(fp32)
    # Not the class heads (as wide as the logits; an ensemble has one per member): they are
    # tiny, and they set the logits directly.
    classes = model.graph.outputs[0].shape[-1]
    matmuls = [n for n in model.graph
               if (w := _weight(n)) is not None and w.shape[1] != classes]
    input_ids = next(v for v in model.graph.inputs if v.name == INPUT_IDS)
    ranges = _activation_ranges(fp32, [n.inputs[0].name for n in matmuls], calibration, pad_id)
    for node in matmuls:
        _quantize_matmul(model.graph, node, ranges[node.inputs[0].name], scheme)
    for node in list(model.graph):
        if node.op_type == "Gather" and node.inputs[0].const_value is not None:
            _quantize_embedding(model.graph, node, input_ids)
        elif node.op_type == "MultiHeadAttention":
            _fuse_attention(model.graph, node)
    model.opset_imports.setdefault(MS_DOMAIN, 1)
    RemoveUnusedNodesPass()(model)
    save_graph(model, int8)


def _activation_ranges(
    fp32: Path, names: list[str], calibration: list[list[int]], pad_id: int
) -> dict[str, tuple[float, float]]:
    """Min and max of each named tensor over the calibration messages, run one at a time so
    that padding never widens a range."""
    probe = ir.load(fp32)
    values = {v.name: v for node in probe.graph for v in node.outputs}
    probe.graph.outputs.extend(values[name] for name in names)
    with tempfile.TemporaryDirectory(dir=fp32.parent) as tmp:
        path = Path(tmp) / "probe.onnx"
        ir.save(probe, path, external_data="probe.onnx.data")
        session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    lo = {name: np.inf for name in names}
    hi = {name: -np.inf for name in names}
    for ids in calibration:
        input_ids, mask = pad_batch([ids], pad_id)
        outputs = session.run(names, {INPUT_IDS: input_ids, ATTENTION_MASK: mask})
        for name, x in zip(names, outputs, strict=True):
            lo[name] = min(lo[name], float(x.min()))
            hi[name] = max(hi[name], float(x.max()))
    return {name: (lo[name], hi[name]) for name in names}


def _weight(node: ir.Node) -> np.ndarray | None:
    """The constant [in, out] weight of a MatMul or plain Gemm."""
    if node.op_type not in ("MatMul", "Gemm") or node.inputs[1].const_value is None:
        return None
    if node.op_type == "MatMul" and len(node.inputs[1].const_value.shape) == 2:
        return node.inputs[1].const_value.numpy()
    attrs = {name: a.value for name, a in node.attributes.items()}
    bias = node.inputs[2] if len(node.inputs) > 2 else None
    if node.op_type == "Gemm" and attrs.get("alpha", 1.0) == attrs.get("beta", 1.0) == 1.0 \
            and not attrs.get("transA", 0) \
            and (bias is None
                 or (bias.const_value is not None and len(bias.const_value.shape) == 1)):
        w = node.inputs[1].const_value.numpy()
        return w.T if attrs.get("transB", 0) else w
    return None


def add_const(graph: ir.Graph, name: str, array: np.ndarray) -> ir.Value:
    value = ir.Value(name=name, const_value=ir.tensor(array, name=name))
    graph.register_initializer(value)
    return value


def _quantize_matmul(graph: ir.Graph, node: ir.Node, activation_range: tuple[float, float],
                     scheme: Scheme) -> None:
    x, w_value = node.inputs[:2]
    w = _weight(node).astype(np.float32)
    w_q, w_scale = quantize_weights(w, scheme)
    # Asymmetric uint8 activations over the calibrated range, which must contain 0.
    lo, hi = min(activation_range[0], 0.0), max(activation_range[1], 0.0)
    x_scale = np.float32(max(hi - lo, 1e-8) / 255.0)
    x_zero = np.uint8(np.clip(np.round(-lo / x_scale), 0, 255))
    base = node.name or w_value.name
    x_scale_v = add_const(graph, f"{base}.x_scale", np.array(x_scale, np.float32))
    x_zero_v = add_const(graph, f"{base}.x_zero_point", np.array(x_zero, np.uint8))
    inputs = [
        None,
        add_const(graph, f"{w_value.name}.int8", w_q),
        x_scale_v,
        add_const(graph, f"{w_value.name}.scale", w_scale.astype(np.float32)),
        x_zero_v,
        None,
        None,
    ]
    quantize = ir.Node("", "QuantizeLinear", [x, x_scale_v, x_zero_v], name=f"{base}.quantize")
    inputs[0] = quantize.outputs[0]
    output = node.outputs[0]
    if node.op_type == "Gemm":
        inputs[6] = node.inputs[2] if len(node.inputs) > 2 else None
    elif (bias_add := _bias_add(output)) is not None:  # the kernel adds it as it writes
        add, inputs[6] = bias_add
        output = add.outputs[0]
    matmul = ir.Node(MS_DOMAIN, "MatMulIntegerToFloat", inputs, name=f"{base}.int8")
    graph.insert_before(node, [quantize, matmul])
    output.replace_all_uses_with(matmul.outputs[0], replace_graph_outputs=True)


def quantize_weights(w: np.ndarray, scheme: Scheme) -> tuple[np.ndarray, np.ndarray]:
    """Symmetric per-output-channel int8 weights of `w` (the zero point is 0, so it costs
    nothing) and their scales. With a pair limit, each column takes the scale, from its peak
    over pair_limit / 2 (where no pair can pass) to its peak over weight_max, whose weights,
    pairs limited, are nearest its own.

    Args:
        w: a float weight matrix [in, out].
        scheme: the target's weight format (spamkit.export.targets).

    Returns:
        The int8 weights [in, out] and each column's float32 scale [out]: w ~ weights * scale.
    """
    peak = np.abs(w).max(axis=0)
    peak[peak == 0] = 1.0
    # Every top: trying fewer gave more squared error and flipped more labels (docs/targets.md).
    tops = [scheme.weight_max] if scheme.pair_limit is None else \
        range(scheme.pair_limit // 2, scheme.weight_max + 1)
    best_q, best_scale = np.zeros_like(w), np.ones_like(peak)
    best_err = np.full(peak.shape, np.inf)
    for top in tops:
        scale = peak / top
        real = w / scale
        q = np.clip(np.round(real), -top, top)
        if scheme.pair_limit is not None:
            q = limit_pairs(real, q, scheme.pair_limit)
        err = np.square(q * scale - w).sum(axis=0)
        better = err < best_err
        best_q[:, better] = q[:, better]
        best_scale[better], best_err[better] = scale[better], err[better]
    return best_q.astype(np.int8), best_scale.astype(np.float32)


def limit_pairs(real: np.ndarray, rounded: np.ndarray, limit: int) -> np.ndarray:
    """`rounded` (the int8 weights [in, out], as floats) with each same-sign pair of rows 2j and
    2j+1 whose magnitudes add up to more than `limit` moved onto |w1| + |w2| = limit: each of
    the pair's `real` (unrounded) values gives up half the excess, the nearest point there."""
    w = rounded.copy()
    k = w.shape[0] // 2 * 2
    a, b = w[0:k:2], w[1:k:2]  # views: writing them writes w
    over = (a * b > 0) & (np.abs(a) + np.abs(b) > limit)
    ra, rb = np.abs(real[0:k:2][over]), np.abs(real[1:k:2][over])
    kept = np.clip(np.round(ra - (ra + rb - limit) / 2), limit - 127, 127)
    a[over] = np.sign(a[over]) * kept
    b[over] = np.sign(b[over]) * (limit - kept)
    return w


def _bias_add(output: ir.Value) -> tuple[ir.Node, ir.Value] | None:
    uses = output.uses()
    if len(uses) != 1 or uses[0].node.op_type != "Add":
        return None
    add = uses[0].node
    bias = add.inputs[1 - uses[0].idx]
    if bias.const_value is None or len(bias.const_value.shape) != 1:
        return None
    return add, bias


def _quantize_embedding(graph: ir.Graph, gather: ir.Node, input_ids: ir.Value) -> None:
    table_value, ids = gather.inputs
    table = table_value.const_value.numpy().astype(np.float32)
    name = table_value.name
    if ids is input_ids and table.shape[1] % TOKEN_BLOCK == 0:
        dequantized = _gather_4bit(graph, name, table, ids)
    else:
        dequantized = _gather_int8(graph, name, table, ids)
    graph.insert_before(gather, dequantized)
    gather.outputs[0].replace_all_uses_with(dequantized[-1].outputs[0],
                                            replace_graph_outputs=True)


def _gather_4bit(graph: ir.Graph, name: str, table: np.ndarray, ids: ir.Value) -> list[ir.Node]:
    """Symmetric 4-bit blocks of TOKEN_BLOCK values along each row, stored as uint8 pairs with
    GatherBlockQuantized's default zero point of 8."""
    rows, cols = table.shape
    blocks = table.reshape(rows, cols // TOKEN_BLOCK, TOKEN_BLOCK)
    scale = np.abs(blocks).max(axis=-1) / 7.0
    scale[scale == 0] = 1.0
    q = (np.clip(np.round(blocks / scale[..., None]), -7, 7) + 8).astype(np.uint8)
    q = q.reshape(rows, cols)
    packed = q[:, 0::2] | (q[:, 1::2] << 4)  # the first of each pair in the low nibble
    # `bits` is left at its default (4): ONNX Runtime 1.22 reads uint8 data as 4-bit pairs and
    # only later versions know the attribute.
    attrs = {"block_size": ir.AttrInt64("block_size", TOKEN_BLOCK),
             "gather_axis": ir.AttrInt64("gather_axis", 0),
             "quantize_axis": ir.AttrInt64("quantize_axis", 1)}
    return [ir.Node(MS_DOMAIN, "GatherBlockQuantized",
                    [add_const(graph, f"{name}.uint4", packed), ids,
                     add_const(graph, f"{name}.scale", scale.astype(np.float32))],
                    attrs, name=f"{name}.rows")]


def _gather_int8(graph: ir.Graph, name: str, table: np.ndarray, ids: ir.Value) -> list[ir.Node]:
    """An int8 table with one scale per row: only the gathered rows are dequantized."""
    scale = np.abs(table).max(axis=1, keepdims=True) / 127.0
    scale[scale == 0] = 1.0
    table_q = np.clip(np.round(table / scale), -127, 127).astype(np.int8)
    rows = ir.Node("", "Gather", [add_const(graph, f"{name}.int8", table_q), ids],
                   name=f"{name}.rows")
    scales = ir.Node("", "Gather",
                     [add_const(graph, f"{name}.scale", scale.astype(np.float32)), ids],
                     name=f"{name}.row_scales")
    to_float = {"to": ir.AttrInt64("to", int(ir.DataType.FLOAT))}
    cast = ir.Node("", "Cast", [rows.outputs[0]], to_float, name=f"{name}.cast")
    mul = ir.Node("", "Mul", [cast.outputs[0], scales.outputs[0]], name=f"{name}.dequantize")
    return [rows, scales, cast, mul]


def _fuse_attention(graph: ir.Graph, attention: ir.Node) -> None:
    """MatMulIntegerToFloat(x, w_qkv) -> Split -> MultiHeadAttention(q, k, v), causal and
    without a mask, becomes QAttention(x, w_qkv)."""
    split = attention.inputs[0].producer()
    if split is None or split.op_type != "Split" or len(split.inputs) != 1 \
            or split.attributes.get_int("axis", 0) not in (-1, 2) \
            or list(split.outputs) != list(attention.inputs) \
            or set(attention.attributes) != {"num_heads", "unidirectional"}:
        return
    matmul = split.inputs[0].producer()
    if matmul is None or matmul.op_type != "MatMulIntegerToFloat" or len(matmul.inputs) < 7 \
            or matmul.inputs[6] is None or len(split.inputs[0].uses()) != 1:
        return
    x, w, x_scale, w_scale, x_zero = matmul.inputs[:5]
    fused = ir.Node(MS_DOMAIN, "QAttention", [x, w, matmul.inputs[6], x_scale, w_scale, None,
                                                x_zero],
                    {name: ir.AttrInt64(name, attention.attributes[name].value)
                     for name in ("num_heads", "unidirectional")},
                    name=f"{attention.name}.int8")
    graph.insert_before(attention, [fused])
    attention.outputs[0].replace_all_uses_with(fused.outputs[0], replace_graph_outputs=True)
