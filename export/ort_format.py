"""`spamkit export --ort`: each CPU graph also in ONNX Runtime's own format (.ort), the format
ONNX Runtime Mobile and other reduced builds load, and the operators those graphs need.

The .ort graph is the .onnx graph as ONNX Runtime optimizes it at the BASIC level, saved: the
rewrites ONNX's semantics allow on any execution provider (constant folding, redundant nodes).
A minimal build runs the file as saved, so nothing in it may be tied to one CPU: the LAYOUT and
ALL levels add rewrites for one CPU family (NCHWc blocks sized to x86 vector registers), and
EXTENDED fuses for ONNX Runtime's CPU provider, which spamkit's export has already done in the
graph itself (export/optimize.py, quantize.py: docs/mobile.md has what extended would add). It
is then checked against the .onnx graph, as the runtime loads each, on real messages: the
logits must be the same to the last bit, or no bundle is written. The .ort file holds its
weights (the format has no external-data file), so it is about the size of GRAPH + GRAPH.data.

`required_operators.config` lists every operator of the bundle's .ort graphs, as ONNX Runtime's
tools write it, for a reduced build: `build.sh --minimal_build --include_ops_by_config ...`
(docs/mobile.md).
"""

from __future__ import annotations

import tempfile
from dataclasses import replace
from pathlib import Path

import numpy as np
import onnxruntime as ort
from onnxruntime.tools.ort_format_model import create_config_from_models

from spamkit.errors import SpamkitError
from spamkit.export.quiet import quiet
from spamkit.runtime.bundle import ORT_SUFFIX, Manifest
from spamkit.runtime.classifier import Classifier
from spamkit.runtime.session import make_session
from spamkit.runtime.tokenizer import Tokenizer

OPTIMIZATION = "basic"
OPERATORS_CONFIG = "required_operators.config"


def add_ort_graphs(bundle: Path, manifest: Manifest, tokenizer: Tokenizer,
                   texts: list[str]) -> Manifest:
    """Write the ORT-format copy of each CPU graph of the bundle being built in `bundle`, check
    its logits on `texts` against the .onnx graph's, and write the operators config; the
    manifest with the copies in `ort_graphs` and the check's figures in `verification`."""
    ort_graphs = {p: Path(name).with_suffix(ORT_SUFFIX).name
                  for p, name in manifest.graphs.items() if "cpu" in manifest.devices[p]}
    figures = {"ort_optimization": OPTIMIZATION}
    for precision, name in ort_graphs.items():
        convert_to_ort(bundle / manifest.graphs[precision], bundle / name)
        diff = _logit_difference(bundle, manifest, tokenizer, texts, precision, name)
        print(f"{precision} graph in ORT format vs .onnx on {len(texts)} validation messages: "
              f"max |logit diff| {diff:.2e} (allowed 0)")
        # Written so that a NaN difference fails too.
        if not diff == 0:
            raise SpamkitError(f"the ORT-format {precision} graph disagrees with the .onnx graph:"
                               f" max |logit diff| {diff:.2e}; no bundle written")
        figures[f"{precision}_ort_max_abs_logit_diff_vs_onnx"] = diff
    write_operators_config([bundle / name for name in ort_graphs.values()],
                           bundle / OPERATORS_CONFIG)
    return replace(manifest, ort_graphs=ort_graphs,
                   verification={**manifest.verification, **figures})


def convert_to_ort(onnx_graph: Path, ort_graph: Path) -> None:
    """Save the graph at `onnx_graph`, optimized at the OPTIMIZATION level, as `ort_graph`:
    what `python -m onnxruntime.tools.convert_onnx_models_to_ort` does for one graph."""
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
    options.optimized_model_filepath = str(ort_graph)
    options.add_session_config_entry("session.save_model_format", "ORT")
    # ONNX Runtime's default depends on the CPU it runs on; fixed (as the tool fixes it for
    # any target but ARM), the .ort graph is the same whichever CPU export runs on.
    options.add_session_config_entry("session.qdqisint8allowed", "0")
    ort.InferenceSession(str(onnx_graph), options, providers=["CPUExecutionProvider"])


def _logit_difference(bundle: Path, manifest: Manifest, tokenizer: Tokenizer, texts: list[str],
                      precision: str, ort_name: str) -> float:
    """Largest |logit| difference between the .onnx graph and its .ort copy on `texts`, each
    loaded as the runtime loads it, batched alike."""
    logits = [
        Classifier(make_session(bundle / name, ["CPUExecutionProvider"]), tokenizer, manifest,
                   "cpu", precision).logits(texts)
        for name in (manifest.graphs[precision], ort_name)
    ]
    return float(np.max(np.abs(logits[0] - logits[1]), initial=0.0))


def write_operators_config(graphs: list[Path], path: Path) -> None:
    """ONNX Runtime's operator config for a reduced build that runs `graphs` (.ort files),
    naming each graph by its file name (the tool writes the path it was given)."""
    with tempfile.TemporaryDirectory(dir=path.parent) as tmp:
        written = Path(tmp) / path.name
        with quiet("ort_format_model.utils"):
            create_config_from_models(graphs, written, enable_type_reduction=False)
        text = written.read_text(encoding="utf-8")
    for graph in graphs:
        text = text.replace(f"# - {graph}\n", f"# - {graph.name}\n")
    path.write_text(text, encoding="utf-8")
