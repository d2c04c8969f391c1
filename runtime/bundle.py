"""The bundle: a directory that holds everything an app needs to classify, and its manifest.

    manifest.json        labels, context length, pad id, graphs, versions, sha256 of every file
    tokenizer.json       the GPT-2 tokenizer (see tokenizer.py)
    model.onnx           fp32 graph: (input_ids, attention_mask) int64 -> logits float32 [batch, classes]
    model.int8.onnx      the same graph with int8 weights (CPU)

Reading a manifest checks every listed file against its sha256, so a damaged or edited bundle
is refused before ONNX Runtime reads a byte of it.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

from spamkit.atomic import write_bytes_atomic
from spamkit.errors import SpamkitError

MANIFEST_FILE = "manifest.json"
TOKENIZER_FILE = "tokenizer.json"
FORMAT = "spamkit-bundle"
FORMAT_VERSION = 1
GRAPH_FILES = {"fp32": "model.onnx", "int8": "model.int8.onnx"}


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
    verification: dict = field(default_factory=dict)  # figures measured at export
    # How the training data was split (split kind, seed, columns), so `spamkit eval` and
    # `spamkit calibrate` can rebuild the validation and test splits.
    data: dict = field(default_factory=dict)
    # Set by `spamkit calibrate`: predict `label` when its probability reaches `value`.
    threshold: dict | None = None
    tokenizer: str = TOKENIZER_FILE
    format: str = FORMAT
    format_version: int = FORMAT_VERSION


def graph_file(bundle: str | os.PathLike[str], manifest: Manifest, precision: str) -> Path:
    """The bundle's graph of that precision, or a BundleError naming the ones it has."""
    if precision not in manifest.graphs:
        raise BundleError(
            f"{bundle} has no {precision} graph (it has {', '.join(manifest.graphs)})"
        )
    return Path(bundle) / manifest.graphs[precision]


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def write_manifest(bundle: str | os.PathLike[str], manifest: Manifest) -> Manifest:
    """Write the manifest with the checksum of every other file in the directory."""
    bundle = Path(bundle)
    files = {
        p.relative_to(bundle).as_posix(): sha256_file(p)
        for p in sorted(bundle.rglob("*"))
        if p.is_file() and p.name != MANIFEST_FILE
    }
    manifest = Manifest(**{**asdict(manifest), "files": files})
    text = json.dumps(asdict(manifest), indent=2) + "\n"
    write_bytes_atomic(bundle / MANIFEST_FILE, text.encode())
    return manifest


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
        manifest = Manifest(**data)
    except TypeError as e:
        raise BundleError(f"{bundle / MANIFEST_FILE} is malformed: {e}") from None
    root = bundle.resolve()
    for name, expected in manifest.files.items():
        path = bundle / name
        # Loading must never read outside the bundle: no absolute names, no "..", no links.
        if path.is_symlink() or not path.resolve().is_relative_to(root) or Path(name).is_absolute():
            raise BundleError(f"{bundle / MANIFEST_FILE} lists {name}, which is outside the "
                              "bundle or a link; refused")
        if not path.is_file():
            raise BundleError(f"{bundle} is incomplete: {name} is missing")
        if sha256_file(path) != expected:
            raise BundleError(f"{bundle / name} does not match its checksum: damaged or changed")
    for name in [manifest.tokenizer, *manifest.graphs.values()]:
        if name not in manifest.files:
            raise BundleError(f"{bundle / MANIFEST_FILE} lists {name} without a checksum")
    return manifest
