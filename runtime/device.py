"""Where a bundle runs: ONNX Runtime's execution providers for a device name, the graph for that
device, and the check that a CUDA session really runs on the GPU."""

from __future__ import annotations

import contextlib
import functools
import logging
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Literal

import onnxruntime as ort

from spamkit.runtime.bundle import GRAPHS_SMALLEST_FIRST, RUNTIME_DEVICES, Manifest
from spamkit.runtime.errors import BundleError, SpamkitError

log = logging.getLogger("spamkit.runtime")

# Classifier.load's choices as types, so that a type checker flags device="gpu" (spamkit ships
# py.typed); at run time RUNTIME_DEVICES and GRAPH_FILES are checked.
Device = Literal["cpu", "cuda", "auto"]
Precision = Literal["int8", "fp16", "fp32"]

# Export checks every graph it writes on ONNX Runtime's CPU provider, so any graph may run on a
# CPU when asked for by name; on CUDA only those meant for it.
RUNS_ANY_GRAPH = "cpu"


def providers_for(device: str) -> tuple[list[str], str]:
    """Return (providers, the device that will run). "cuda" never falls back silently."""
    if device not in RUNTIME_DEVICES:
        raise ValueError(f"device must be one of {RUNTIME_DEVICES}, not {device!r}")
    has_cuda = "CUDAExecutionProvider" in ort.get_available_providers()
    if device == "cuda" and not has_cuda:
        raise SpamkitError(
            "device='cuda' needs ONNX Runtime's CUDA provider, which this install lacks "
            f"(available: {', '.join(ort.get_available_providers())}); install spamkit[gpu] "
            "(onnxruntime-gpu) on a machine with CUDA, or use device='cpu' or 'auto'"
        )
    if device == "cuda" or (device == "auto" and has_cuda):
        _load_cuda_libraries()
        return ["CUDAExecutionProvider", "CPUExecutionProvider"], "cuda"
    if device == "auto":
        log.warning("spamkit: no CUDA execution provider available, running on CPU")
    return ["CPUExecutionProvider"], "cpu"


def place_session(device: str | None, providers: object) -> tuple[list, str]:
    """Return (providers, the device that will run) for Classifier.load's `device` and
    `providers`. Without providers, `device` (default "cpu") picks them. With providers, they
    are ONNX Runtime's as given, and the device is "cuda" when CUDAExecutionProvider is among
    them, else "cpu" (which graphs are meant for it); a `device` that says otherwise, or
    "auto", is a ValueError."""
    if providers is None:
        return providers_for("cpu" if device is None else device)
    names = check_providers(providers)
    running = "cuda" if "CUDAExecutionProvider" in names else "cpu"
    if device is not None and device != running:
        raise ValueError(f"device={device!r} contradicts providers={names}, which run on "
                         f"{running}: leave device out when passing providers")
    if running == "cuda":
        _load_cuda_libraries()
    return list(providers), running


def check_providers(providers: object) -> list[str]:
    """The provider names of `providers`, a list of names or (name, options) pairs as ONNX
    Runtime takes them; TypeError for another shape, ValueError for a provider this ONNX
    Runtime lacks."""
    if isinstance(providers, (str, Mapping)) or not isinstance(providers, (list, tuple)):
        raise TypeError("providers must be a list of ONNX Runtime provider names or (name, "
                        f"options) pairs, e.g. ['CPUExecutionProvider'], not {providers!r}")
    names = []
    for p in providers:
        pair = isinstance(p, tuple) and len(p) == 2 and isinstance(p[1], Mapping)
        if not (isinstance(p, str) or (pair and isinstance(p[0], str))):
            raise TypeError(f"providers: {p!r} is neither a provider name nor a (name, options "
                            "dict) pair")
        names.append(p[0] if pair else p)
    available = ort.get_available_providers()
    missing = [n for n in names if n not in available]
    if not names:
        raise ValueError("providers is empty: name at least one, e.g. ['CPUExecutionProvider']")
    if missing:
        raise ValueError(f"providers: this ONNX Runtime has no {', '.join(missing)} (it has "
                         f"{', '.join(available)})")
    return names


def check_session_options(options: object, threads: int | None) -> None:
    """TypeError unless `options` is None or an onnxruntime.SessionOptions; ValueError when
    threads is given too (set options.intra_op_num_threads instead)."""
    if options is None:
        return
    if not isinstance(options, ort.SessionOptions):
        raise TypeError(f"session_options must be an onnxruntime.SessionOptions, not "
                        f"{type(options).__name__}")
    if threads is not None:
        raise ValueError("pass threads= or session_options=, not both: set "
                         "session_options.intra_op_num_threads instead")


@functools.cache
def _load_cuda_libraries() -> None:
    """spamkit[gpu] installs CUDA and cuDNN as Python packages (onnxruntime-gpu[cuda,cudnn]),
    where the dynamic loader does not look; ONNX Runtime's preload_dlls loads them from there
    (`import torch` would too, but the runtime never imports torch). Libraries found on the
    system's own paths are used as they are."""
    preload = getattr(ort, "preload_dlls", None)  # onnxruntime-gpu >= 1.21
    if preload:
        with contextlib.redirect_stdout(sys.stderr):  # its messages must not mix with results
            preload()


def choose_graph(manifest: Manifest, bundle: Path, device: str, precision: str | None) -> str:
    """The precision of the graph to run on `device` ("cpu" or "cuda"): `precision` if given
    and allowed there, else the smallest graph meant for the device."""
    meant = [p for p in GRAPHS_SMALLEST_FIRST
             if p in manifest.graphs and device in manifest.devices[p]]
    held = ", ".join(f"{p} for {'/'.join(manifest.devices[p])}" for p in manifest.graphs)
    if precision is None:
        if not meant:
            raise BundleError(f"{bundle} has no graph meant for {device} (it has {held}); pass "
                              "precision= to pick one, or export with --fp16 or keep fp32")
        return meant[0]
    if precision not in manifest.graphs:
        raise BundleError(f"{bundle} has no {precision} graph (it has "
                          f"{', '.join(manifest.graphs)})")
    if precision not in meant and device != RUNS_ANY_GRAPH:
        raise BundleError(f"the {precision} graph of {bundle} is meant for "
                          f"{' and '.join(manifest.devices[precision])}, not {device} "
                          f"(the bundle has {held})")
    return precision


def runs_on_cuda(session: ort.InferenceSession, requested: str) -> bool:
    """Whether a session created for CUDA really runs there. ONNX Runtime quietly falls back to
    the CPU when its CUDA provider cannot start (no GPU, CUDA or cuDNN libraries missing or of
    the wrong version): for device="cuda" that is an error, for "auto" a warning and False."""
    if "CUDAExecutionProvider" in session.get_providers():
        # Nor may a run that fails on the GPU quietly rerun on the CPU.
        session.disable_fallback()
        return True
    why = ("ONNX Runtime's CUDA provider could not start (its log above says why: usually no "
           "GPU, or CUDA/cuDNN libraries missing or of another major version than "
           "onnxruntime-gpu was built for)")
    if requested == "cuda":
        raise SpamkitError(f"device='cuda': {why}; use device='cpu' or 'auto'")
    log.warning("spamkit: %s; running on CPU", why)
    return False
