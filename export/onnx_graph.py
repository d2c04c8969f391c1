"""Trace the classifier to an ONNX graph: (input_ids, attention_mask) -> last-token logits."""

from __future__ import annotations

import copy
from pathlib import Path

import onnx_ir as ir
import torch
from torch import nn

from spamkit.export.optimize import optimize_graph
from spamkit.export.quiet import quiet
from spamkit.runtime.bundle import ATTENTION_MASK, GRAPH_INPUTS, INPUT_IDS, LOGITS
from spamkit.training.model import GPTClassifier

OPSET = 18


class Float32Logits(nn.Module):
    """An fp16 copy of the model whose logits leave as float32: the fp16 graph keeps the
    runtime's interface (int64 in, float32 out), so callers cannot tell the graphs apart."""

    def __init__(self, model: GPTClassifier) -> None:
        super().__init__()
        self.model = copy.deepcopy(model).half()

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        return self.model(input_ids, attention_mask).float()


def export_onnx(model: GPTClassifier, path: Path, fp16: bool = False) -> None:
    """Export with batch and sequence axes dynamic. The model's forward already gathers the
    classified token before the final LayerNorm and head, so the graph computes the head for
    one position per message and returns [batch, num_classes]. The graph is then rewritten into
    ONNX Runtime's fused kernels (optimize.py).

    With `fp16`, weights and activations are fp16 (torch's own fp16 ops, traced as they are),
    inputs and logits as in the fp32 graph."""
    model = model.eval().float()
    if fp16:
        model = Float32Logits(model).eval()
    example = torch.tensor([[15496, 11, 995, 0], [40, 1101, 50256, 50256]])
    mask = (example != 50256).long()
    batch, seq = torch.export.Dim("batch"), torch.export.Dim("sequence")
    dims = {INPUT_IDS: {0: batch, 1: seq}, ATTENTION_MASK: {0: batch, 1: seq}}
    with quiet("torch.onnx"):
        program = torch.onnx.export(
            model,
            (example, mask),
            input_names=list(GRAPH_INPUTS),
            output_names=[LOGITS],
            dynamic_shapes=dims,
            opset_version=OPSET,
            dynamo=True,
        )
    save_graph(optimize_graph(program.model), path)


def save_graph(graph: ir.Model, path: Path) -> None:
    """`path` holds the graph, `path`.data beside it the weights. ONNX Runtime memory-maps
    such a file instead of parsing the weights out of the protobuf and copying them, which loads
    faster in less memory (docs/bundle-format.md). It also lifts protobuf's limit on a file's
    size."""
    ir.save(graph, path, external_data=saved_files(path)[1].name)


def saved_files(path: Path) -> list[Path]:
    """The files `save_graph(graph, path)` writes: the graph and its weights."""
    return [path, path.with_name(f"{path.name}.data")]
