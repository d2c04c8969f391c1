"""The graph the page runs on WebGPU: the bundle's fp32 graph with its attention written out.

onnxruntime-web's WebGPU MultiHeadAttention kernel answers wrongly for a causal attention over
32 tokens or more (rows from the fifth on; seen on SwiftShader's adapter with onnxruntime-web
1.30.0, tests/test_web.py), so each MultiHeadAttention(q, k, v) with `unidirectional` becomes
standard operators: scores q·kᵀ scaled, a causal mask, Softmax, then ·v. Only the small graph file
changes; its weights stay in the fp32 graph's external data file, which the page checks as usual.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import onnx
from onnx import helper, numpy_helper

MS_DOMAIN = "com.microsoft"
MASKED = -1e9  # added to a masked score: its exp is 0, and no row is masked whole


def write_webgpu_graph(fp32: Path, out: Path) -> None:
    """Write the graph at `fp32`, its causal MultiHeadAttention nodes written out, to `out`
    (beside `fp32`'s external data, which it keeps referring to by name)."""
    model = onnx.load(fp32, load_external_data=False)
    widths = _widths(model)
    nodes, mask = [], None
    for node in model.graph.node:
        if node.domain != MS_DOMAIN or node.op_type != "MultiHeadAttention":
            nodes.append(node)
            continue
        attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
        if attrs.get("unidirectional") != 1 or len([i for i in node.input if i]) != 3:
            raise ValueError(f"{node.name}: not a causal attention of q, k and v alone")
        if mask is None:
            mask = _causal_mask(model.graph, node.input[0], nodes)
        heads, width = attrs["num_heads"], widths[node.input[0]]
        scale = attrs.get("scale", 1 / math.sqrt(width // heads))
        nodes += _attention(model.graph, node, heads, scale, mask)
    del model.graph.node[:]
    model.graph.node.extend(nodes)
    onnx.save(model, out)


def _widths(model: onnx.ModelProto) -> dict[str, int]:
    """The last dimension of each tensor whose shape inference knows it."""
    inferred = onnx.shape_inference.infer_shapes(model).graph.value_info
    return {v.name: v.type.tensor_type.shape.dim[-1].dim_value for v in inferred
            if v.type.tensor_type.shape.dim}


def _const(graph: onnx.GraphProto, name: str, value: np.ndarray) -> str:
    graph.initializer.append(numpy_helper.from_array(value, name))
    return name


def _causal_mask(graph: onnx.GraphProto, q: str, nodes: list) -> str:
    """[S, S]: 0 where a token may see another (itself and those before), MASKED elsewhere."""
    def i64(name: str, values: object) -> str:
        return _const(graph, f"causal.{name}", np.array(values, np.int64))

    nodes += [
        helper.make_node("Shape", [q], ["causal.s"], start=1, end=2),
        helper.make_node("Squeeze", ["causal.s"], ["causal.n"]),
        helper.make_node("Range", [i64("zero", 0), "causal.n", i64("one", 1)], ["causal.r"]),
        helper.make_node("Unsqueeze", ["causal.r", i64("axis1", [1])], ["causal.rows"]),
        helper.make_node("Unsqueeze", ["causal.r", i64("axis0", [0])], ["causal.cols"]),
        helper.make_node("Greater", ["causal.cols", "causal.rows"], ["causal.later"]),
        helper.make_node("Where", ["causal.later",
                                   _const(graph, "causal.masked", np.array(MASKED, np.float32)),
                                   _const(graph, "causal.open", np.array(0, np.float32))],
                         ["causal.mask"]),
    ]
    return "causal.mask"


def _attention(graph: onnx.GraphProto, node: onnx.NodeProto, heads: int, scale: float,
               mask: str) -> list[onnx.NodeProto]:
    """softmax(q·kᵀ·scale + mask)·v per head, [B, S, D] in and out."""
    q, k, v = node.input[:3]
    p = node.name or node.output[0]
    split = _const(graph, f"{p}.heads", np.array([0, 0, heads, -1], np.int64))
    merged = _const(graph, f"{p}.merged", np.array([0, 0, -1], np.int64))
    s = _const(graph, f"{p}.scale", np.array(scale, np.float32))
    return [
        helper.make_node("Reshape", [q, split], [f"{p}.q4"]),
        helper.make_node("Transpose", [f"{p}.q4"], [f"{p}.q"], perm=[0, 2, 1, 3]),
        helper.make_node("Reshape", [k, split], [f"{p}.k4"]),
        helper.make_node("Transpose", [f"{p}.k4"], [f"{p}.kt"], perm=[0, 2, 3, 1]),
        helper.make_node("Reshape", [v, split], [f"{p}.v4"]),
        helper.make_node("Transpose", [f"{p}.v4"], [f"{p}.v"], perm=[0, 2, 1, 3]),
        helper.make_node("MatMul", [f"{p}.q", f"{p}.kt"], [f"{p}.qk"]),
        helper.make_node("Mul", [f"{p}.qk", s], [f"{p}.scaled"]),
        helper.make_node("Add", [f"{p}.scaled", mask], [f"{p}.masked"]),
        helper.make_node("Softmax", [f"{p}.masked"], [f"{p}.weights"], axis=-1),
        helper.make_node("MatMul", [f"{p}.weights", f"{p}.v"], [f"{p}.o"]),
        helper.make_node("Transpose", [f"{p}.o"], [f"{p}.o4"], perm=[0, 2, 1, 3]),
        helper.make_node("Reshape", [f"{p}.o4", merged], [node.output[0]]),
    ]
