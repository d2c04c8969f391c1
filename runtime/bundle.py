"""The bundle: a directory that holds everything an app needs to classify, and its manifest.

    manifest.json        labels, context length, pad id, graphs and the device each is meant
                         for, versions, sha256 of every file
    tokenizer.json       the GPT-2 tokenizer (see tokenizer.py)
    model.onnx           fp32 graph: (input_ids, attention_mask) int64 -> logits float32 [batch, classes]
    model.int8.onnx      the same graph with int8 weights (CPU)
    model.fp16.onnx      the same graph in fp16, same inputs and outputs (CUDA)
    GRAPH.data           each graph's weights, beside it (ONNX Runtime memory-maps them)

Reading a manifest checks that every listed file is there with its recorded size; loading a graph
checks it and the tokenizer against their sha256 first, so a damaged or edited file is refused
before ONNX Runtime reads a byte of it. (Hashing only what is loaded keeps start-up fast: an
int8 app never pays for hashing the fp32 graph beside it.)
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

from spamkit.atomic import write_bytes_atomic
from spamkit.errors import SpamkitError

MANIFEST_FILE = "manifest.json"
TOKENIZER_FILE = "tokenizer.json"
FORMAT = "spamkit-bundle"
# 2 added `devices`. Format 1 bundles hold fp32 and int8 graphs only, meant for the devices that
# GRAPH_DEVICES gives them, so a reader fills `devices` in from there.
FORMAT_VERSION = 2
GRAPH_FILES = {"fp32": "model.onnx", "int8": "model.int8.onnx", "fp16": "model.fp16.onnx"}
GRAPH_DEVICES = {"fp32": ["cpu", "cuda"], "int8": ["cpu"], "fp16": ["cuda"]}


class BundleError(SpamkitError):
    """The bundle is missing, damaged, or from an incompatible spamkit."""


@dataclass(frozen=True)
class Manifest:
    labels: list[str]
    context_length: int
    pad_id: int
    token: str  # which token the graph classifies from: "last" or "first"
    preset: str
    opset: int
    graphs: dict[str, str]  # precision -> file
    spamkit_version: str
    files: dict[str, str] = field(default_factory=dict)  # file -> sha256
    sizes: dict[str, int] = field(default_factory=dict)  # file -> bytes (absent before 0.2)
    verification: dict = field(default_factory=dict)  # figures measured at export
    # How the training data was split (split kind, seed, columns), so `spamkit eval` and
    # `spamkit calibrate` can rebuild the validation and test splits.
    data: dict = field(default_factory=dict)
    # Set by `spamkit calibrate`: predict `label` when its probability reaches `value`.
    threshold: dict | None = None
    # precision -> the devices its graph is meant for; the runtime's default picks from these.
    devices: dict[str, list[str]] = field(default_factory=dict)
    tokenizer: str = TOKENIZER_FILE
    format: str = FORMAT
    format_version: int = FORMAT_VERSION

    def graph_files(self, precision: str) -> list[str]:
        """The graph file for `precision` and any external-data files beside it."""
        graph = self.graphs[precision]
        return [name for name in self.files if name == graph or name.startswith(graph + ".")]


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def with_checksums(bundle: str | os.PathLike[str], manifest: Manifest) -> Manifest:
    """The manifest with the sha256 and size of every other file in the directory."""
    bundle = Path(bundle)
    paths = [p for p in sorted(bundle.rglob("*")) if p.is_file() and p.name != MANIFEST_FILE]
    names = [p.relative_to(bundle).as_posix() for p in paths]
    return replace(
        manifest,
        files={name: sha256_file(p) for name, p in zip(names, paths, strict=True)},
        sizes={name: p.stat().st_size for name, p in zip(names, paths, strict=True)},
    )


def write_manifest(bundle: str | os.PathLike[str], manifest: Manifest) -> None:
    text = json.dumps(asdict(manifest), indent=2) + "\n"
    write_bytes_atomic(Path(bundle) / MANIFEST_FILE, text.encode())


def read_manifest(bundle: str | os.PathLike[str]) -> Manifest:
    bundle = Path(bundle)
    if not bundle.is_dir():
        raise BundleError(f"bundle not found: {bundle} is not a directory")
    try:
        data = json.loads((bundle / MANIFEST_FILE).read_text())
    except FileNotFoundError:
        raise BundleError(f"{bundle} is not a spamkit bundle: no {MANIFEST_FILE}") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise BundleError(f"{bundle / MANIFEST_FILE} is not valid JSON: {e}") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise BundleError(f"{bundle / MANIFEST_FILE} is not a spamkit bundle manifest")
    if data.get("format_version", 0) > FORMAT_VERSION:
        raise BundleError(
            f"{bundle} is bundle format {data['format_version']}; this spamkit reads format "
            f"{FORMAT_VERSION} and older: upgrade spamkit"
        )
    try:
        if data.get("format_version", 0) < 2:
            data = {**data, "devices": {p: GRAPH_DEVICES.get(p) for p in data.get("graphs", {})}}
        manifest = Manifest(**data)
    except TypeError as e:
        raise BundleError(f"{bundle / MANIFEST_FILE} is malformed: {e}") from None
    root = bundle.resolve()
    for name in manifest.files:
        path = bundle / name
        # Loading must never read outside the bundle: no absolute names, no "..", no links.
        if path.is_symlink() or not path.resolve().is_relative_to(root) or Path(name).is_absolute():
            raise BundleError(f"{bundle / MANIFEST_FILE} lists {name}, which is outside the "
                              "bundle or a link; refused")
        if not path.is_file():
            raise BundleError(f"{bundle} is incomplete: {name} is missing")
        if name in manifest.sizes and path.stat().st_size != manifest.sizes[name]:
            raise BundleError(f"{bundle / name} is {path.stat().st_size} bytes, not "
                              f"{manifest.sizes[name]}: damaged or changed")
    for name in [manifest.tokenizer, *manifest.graphs.values()]:
        if name not in manifest.files:
            raise BundleError(f"{bundle / MANIFEST_FILE} lists {name} without a checksum")
    for precision in manifest.graphs:
        if not manifest.devices.get(precision):
            raise BundleError(f"{bundle / MANIFEST_FILE} names no device for its {precision} graph")
    return manifest


def verify_files(bundle: str | os.PathLike[str], manifest: Manifest, names: list[str]) -> None:
    """Check the named files against their recorded sha256."""
    for name in names:
        if sha256_file(Path(bundle) / name) != manifest.files[name]:
            raise BundleError(f"{Path(bundle) / name} does not match its checksum: damaged or "
                              "changed")
