"""Rewrite the exported graph into ONNX Runtime's fused transformer kernels.

`torch.onnx.export` writes attention, GELU and LayerNorm as dozens of elementary ops per block,
plus the shape arithmetic that builds a causal mask. ONNX Runtime runs one kernel per node, and
on a short message the per-node cost rivals the arithmetic, so the graph is rewritten into
MultiHeadAttention and FastGelu, with plain Add + LayerNormalization for the residual stream.
"""

from __future__ import annotations

import onnx_ir as ir
from onnx_ir.passes.common import RemoveUnusedNodesPass
from onnxscript.rewriter.ort_fusions import optimize_for_ort

from spamkit.export.quiet import quiet


def optimize_graph(model: ir.Model) -> ir.Model:
    with quiet("onnxscript"):
        model, _ = optimize_for_ort(model)
    for node in list(model.graph):
        if node.op_type == "MultiHeadAttention" and len(node.inputs) > 5:
            # The only mask in spamkit's attention is the causal one (padding follows the
            # token the head reads), so the mask tensor the export builds is replaced by the
            # kernel's own causal flag, and its shape plumbing becomes dead.
            node.resize_inputs(3)
            node.attributes["unidirectional"] = ir.AttrInt64("unidirectional", 1)
        elif node.op_type == "FastGelu" and len(node.inputs) == 1:
            _fold_bias_into_gelu(node)
        elif node.op_type == "SkipLayerNormalization":
            _unfuse_skip_layer_norm(model.graph, node)
    RemoveUnusedNodesPass()(model)
    return model


def _unfuse_skip_layer_norm(graph: ir.Graph, node: ir.Node) -> None:
    """SkipLayerNormalization(x, skip, gamma, beta, bias) -> LayerNormalization(x + bias + skip).

    ONNX Runtime's CPU SkipLayerNormalization kernel is slower than the two Adds and the
    LayerNormalization it fuses (docs/bundle-format.md). Keeping the bias Add next to the matmul
    also lets the int8 quantizer fold it into the matmul kernel."""
    x, skip, gamma, beta = node.inputs[:4]
    bias = node.inputs[4] if len(node.inputs) > 4 else None
    added = []
    if bias is not None:
        added.append(ir.Node("", "Add", [x, bias], name=f"{node.name}.bias"))
        x = added[-1].outputs[0]
    added.append(ir.Node("", "Add", [x, skip], name=f"{node.name}.residual"))
    residual = added[-1].outputs[0]
    epsilon = node.attributes["epsilon"].value
    added.append(ir.Node("", "LayerNormalization", [residual, gamma, beta],
                         {"axis": ir.AttrInt64("axis", -1),
                          "epsilon": ir.AttrFloat32("epsilon", epsilon)},
                         name=f"{node.name}.norm"))
    graph.insert_before(node, added)
    node.outputs[0].replace_all_uses_with(added[-1].outputs[0], replace_graph_outputs=True)
    if len(node.outputs) > 3:  # the residual sum, which the next block reads
        node.outputs[3].replace_all_uses_with(residual, replace_graph_outputs=True)
    graph.remove(node, safe=True)


def _fold_bias_into_gelu(gelu: ir.Node) -> None:
    """Add(x, bias) -> FastGelu becomes FastGelu(x, bias): one pass over the activations."""
    add = gelu.inputs[0].producer()
    if add is None or add.op_type != "Add" or len(gelu.inputs[0].uses()) != 1:
        return
    x, bias = add.inputs
    if bias.const_value is None:
        x, bias = bias, x
    if bias.const_value is None or len(bias.const_value.shape) != 1:
        return
    gelu.resize_inputs(2)
    gelu.replace_input_with(0, x)
    gelu.replace_input_with(1, bias)
