"""ONNX Runtime sessions on a bundle's graphs: the one place the runtime makes them.

A session runs on the device `Classifier.load` was asked for (spamkit.runtime.device picks the
providers and the graph), reads only files that matched their sha256 just before, and is
refused unless it takes and gives what the runtime feeds and reads.
"""

from __future__ import annotations

from pathlib import Path

import onnxruntime as ort

from spamkit.runtime.bundle import (
    GRAPH_INPUTS,
    LOGITS,
    ORT_SUFFIX,
    Manifest,
    first_line,
    verify_files,
    verify_graph,
)
from spamkit.runtime.device import choose_graph, place_session, runs_on_cuda
from spamkit.runtime.errors import BundleError
from spamkit.runtime.isa import warn_target_risk
from spamkit.runtime.text_graph import check_text_graph, extensions_library


def make_session(
    graph: Path, providers: list, threads: int | None = None,
    options: ort.SessionOptions | None = None, custom_ops: str | None = None,
) -> ort.InferenceSession:
    """An ONNX Runtime session on one graph file, as it is (`open_session` checks a bundle's).

    Args:
        graph: the .onnx or .ort file.
        providers: ONNX Runtime's execution providers, as InferenceSession takes them.
        threads: intra-op threads, with spamkit's own options (None: ONNX Runtime's default).
        options: the caller's SessionOptions, used as given in place of spamkit's own.
        custom_ops: a custom-op library to register (a text graph's).

    Returns:
        The session.

    Raises:
        BundleError: ONNX Runtime cannot load the graph (its message's first line)."""
    if options is None:
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        # Fatal only: ONNX Runtime's errors reach the user once, in spamkit's one-line error.
        options.log_severity_level = 4
        if graph.suffix == ORT_SUFFIX:
            # Optimized when export wrote it, and checked as it is: it runs as written, as ONNX
            # Runtime Mobile's minimal build (which cannot optimize) runs it.
            options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
            options.add_session_config_entry("session.load_model_format", "ORT")
        if threads:
            options.intra_op_num_threads = threads
    if custom_ops:
        options.register_custom_ops_library(custom_ops)
    try:
        # ONNX Runtime (>= 1.20) itself refuses external-data paths that leave the graph's
        # directory; any refusal is reported as a bad bundle.
        return ort.InferenceSession(str(graph), sess_options=options, providers=providers)
    except Exception as e:  # noqa: BLE001 - ORT raises its own Fail/InvalidGraph types
        raise BundleError(f"ONNX Runtime cannot load {graph}: {first_line(e)}") from None


def open_session(bundle: Path, manifest: Manifest, device: str | None, providers: object,
                 precision: str | None, threads: int | None,
                 options: ort.SessionOptions | None, kind: str
                 ) -> tuple[ort.InferenceSession, str, str]:
    """The bundle's graph for `device`, verified, opened and checked.

    Args:
        bundle: the bundle's folder; `manifest` is its checked manifest.
        device: "cpu", "cuda" or "auto", or None (with `providers`: theirs; else "cpu").
        providers: ONNX Runtime's providers as given, or None for those `device` picks.
        precision: the graph to run, or None for the smallest one meant for the device.
        threads, options: as `make_session` takes them.
        kind: "onnx", its "ort" copy, or its "text" graph.

    Returns:
        (session, the device it runs on, its graph's precision): on CUDA where asked and it
        starts, else (device="auto") on the CPU.

    Raises:
        BundleError: the graph is missing, damaged, or not one the runtime can call.
        SpamkitError: device="cuda" and ONNX Runtime cannot run there.
        TypeError, ValueError: `providers` is malformed, lacking here, or contradicts `device`."""
    providers, running = place_session(device, providers)
    graph = choose_graph(manifest, bundle, running, precision)
    session = _open_graph(bundle, manifest, graph, providers, threads, options, kind)
    if running == "cuda" and not runs_on_cuda(session, device or "cuda"):
        running = "cpu"
        graph = choose_graph(manifest, bundle, running, precision)
        session = _open_graph(bundle, manifest, graph, ["CPUExecutionProvider"], threads,
                              options, kind)
    if graph == "int8":
        warn_target_risk(manifest.int8_target)
    return session, running, graph


def _open_graph(bundle: Path, manifest: Manifest, precision: str, providers: list,
                threads: int | None, options: ort.SessionOptions | None,
                kind: str = "onnx") -> ort.InferenceSession:
    """A session on the bundle's `precision` graph of `kind` ("onnx", its "ort" copy or its
    "text" graph), checked with every file it reads against their sha256 first."""
    if kind == "text":
        if precision not in manifest.text_graphs:
            raise BundleError(f"{bundle} has no {precision} text graph: export it with "
                              "--text-input")
        verify_graph(bundle, manifest, manifest.text_graphs[precision])
        graph = bundle / manifest.text_graphs[precision]
        session = make_session(graph, providers, threads, options, extensions_library())
        check_text_graph(session, len(manifest.labels), graph)
        return session
    if kind == "ort":
        if precision not in manifest.ort_graphs:
            raise BundleError(f"{bundle} has no ORT-format {precision} graph (export it with "
                              "--ort)")
        # ORT's format holds the weights inside: there is no external data to follow.
        verify_files(bundle, manifest, manifest.graph_files(precision, kind))
    else:
        verify_graph(bundle, manifest, manifest.graph_file(precision))
    graph = bundle / manifest.graph_file(precision, kind)
    session = make_session(graph, providers, threads, options)
    check_graph(session, len(manifest.labels), graph)
    return session


def check_graph(session: ort.InferenceSession, classes: int, graph: Path) -> None:
    """Refuse a graph that the runtime could not call: int64 input_ids and attention_mask
    [batch, sequence] in, float32 logits [batch, classes] out (where the graph fixes the
    classes, they must be the manifest's)."""
    inputs = {i.name: i for i in session.get_inputs()}
    logits = next((o for o in session.get_outputs() if o.name == LOGITS), None)
    if sorted(inputs) != sorted(GRAPH_INPUTS) or logits is None:
        outputs = [o.name for o in session.get_outputs()]
        raise BundleError(f"{graph} takes {sorted(inputs)} and gives {outputs}, not "
                          f"{list(GRAPH_INPUTS)} -> {[LOGITS]}")
    expected = [*((inputs[n], "tensor(int64)") for n in GRAPH_INPUTS), (logits, "tensor(float)")]
    for node, dtype in expected:
        if node.type != dtype or len(node.shape) != 2:
            raise BundleError(f"{graph}: {node.name} is {node.type} of rank {len(node.shape)}, "
                              f"not {dtype} of rank 2")
    if isinstance(logits.shape[1], int) and logits.shape[1] != classes:
        raise BundleError(f"{graph} gives {logits.shape[1]} logits per message, but the manifest "
                          f"names {classes} labels")
