"""The bundle: a directory that holds everything an app needs to classify, and its manifest.

    manifest.json        labels, context length, pad id, vocabulary size, graphs and the device
                         each is meant for, versions, sha256 of every file
    tokenizer.json       the GPT-2 tokenizer (see tokenizer.py)
    model.onnx           fp32 graph: (input_ids, attention_mask) int64 -> logits float32
                         [batch, classes]
    model.int8.onnx      the same graph with int8 weights (CPU)
    model.fp16.onnx      the same graph in fp16, same inputs and outputs (CUDA)
    GRAPH.data           each graph's weights, beside it (ONNX Runtime memory-maps them)
    model*.text.onnx     optional (format 4): text string [batch] -> logits, the tokenizer in
                         the graph (onnxruntime-extensions), reading its precision's GRAPH.data
    model.int8.ort       with --ort: a CPU graph in ONNX Runtime's own format (ORT Mobile),
    model.ort            weights inside; required_operators.config: the operators they use

Nothing a bundle says is trusted. Reading a manifest checks every field (types, ranges, names,
unknown keys refused) and that every listed file is there with its recorded size; loading a
graph checks it, every file its external data names (which must be listed) and the tokenizer
against their sha256 first, so a damaged or edited file is refused before ONNX Runtime reads a
byte of it. (Hashing only what is loaded keeps start-up fast: an int8 app never pays for
hashing the fp32 graph beside it.)

A bundle's digest is the sha256 of its manifest.json bytes. The manifest holds every other
file's sha256, so the digest covers the whole bundle: `Classifier.load(bundle, digest=...)`
refuses any other bundle, however consistent it is.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import posixpath
import re
from dataclasses import dataclass, field, fields
from pathlib import Path

from spamkit.runtime.errors import BundleError
from spamkit.runtime.external_data import external_data_locations
from spamkit.runtime.isa import ISAS, TARGETS

MANIFEST_FILE = "manifest.json"
TOKENIZER_FILE = "tokenizer.json"
FORMAT = "spamkit-bundle"
# 2 added `devices`. Format 1 bundles hold fp32 and int8 graphs only, meant for the devices that
# GRAPH_DEVICES gives them, so a reader fills `devices` in from there. 3 added `vocab_size`,
# which the tokenizer's ids must fit; older bundles are read without that check. 4 added the
# optional `text_graphs` and `ort_graphs`, and `int8_target` and `checked_on_isa`
# (spamkit.runtime.isa); older int8 graphs are 8-bit u8s8.
FORMAT_VERSION = 4
FIELDS_SINCE = {"devices": 2, "vocab_size": 3, "text_graphs": 4, "ort_graphs": 4,
                "int8_target": 4, "checked_on_isa": 4}
GRAPH_FILES = {"fp32": "model.onnx", "int8": "model.int8.onnx", "fp16": "model.fp16.onnx"}
# `spamkit export --text-input`: each precision's graph with the tokenizer in front of it.
TEXT_GRAPH_FILES = {"fp32": "model.text.onnx", "int8": "model.int8.text.onnx",
                    "fp16": "model.fp16.text.onnx"}
GRAPH_DEVICES = {"fp32": ["cpu", "cuda"], "int8": ["cpu"], "fp16": ["cuda"]}
# ONNX Runtime's own format (ONNX Runtime Mobile's), written with --ort for the CPU graphs:
# model.int8.onnx -> model.int8.ort.
ORT_SUFFIX = ".ort"
GRAPH_FORMATS = ("onnx", "ort")
TOKENS = ("last", "first")  # the token the graph classifies from
# The graph's inputs (int64 [batch, sequence]) and output (float32 [batch, classes]).
INPUT_IDS, ATTENTION_MASK, LOGITS = "input_ids", "attention_mask", "logits"
GRAPH_INPUTS = (INPUT_IDS, ATTENTION_MASK)
# A text graph's input: the messages, string [batch]; it also outputs the ids it ran.
TEXT = "text"
# Where Classifier.load may run a bundle ("auto": CUDA when ONNX Runtime can, else the CPU).
RUNTIME_DEVICES = ("cpu", "cuda", "auto")
# By default a device runs the smallest graph meant for it (int8 on a CPU, fp16 on a GPU).
GRAPHS_SMALLEST_FIRST = ("int8", "fp16", "fp32")

# Sane bounds on what a manifest may claim: far beyond any real bundle, small enough that
# nothing downstream (tokenizer, batching, printing) is ever asked for something absurd.
MAX_MANIFEST_BYTES = 1 << 20
MAX_GRAPH_BYTES = 2 << 30  # protobuf's own limit on a message, so on an ONNX graph
MAX_LABELS = 1000
MAX_CONTEXT = 1 << 20
MAX_VOCAB = 1 << 24
MAX_ENTRIES = 1000  # files, sizes, figures
MAX_TEXT = 256  # characters in a label, a file name, a version, a figure's name
SHA256 = re.compile(r"[0-9a-f]{64}")
THRESHOLD_KEYS = ("label", "value", "target_precision", "val_precision", "val_recall")


@dataclass(frozen=True)
class Manifest:
    """A bundle's manifest.json, every field checked (`read_manifest` gives one)."""

    labels: list[str]
    context_length: int
    pad_id: int
    token: str  # which token the graph classifies from: "last" or "first"
    preset: str
    opset: int
    graphs: dict[str, str]  # precision -> file
    spamkit_version: str
    files: dict[str, str] = field(default_factory=dict)  # file -> sha256
    sizes: dict[str, int] = field(default_factory=dict)  # file -> bytes (absent in early bundles)
    verification: dict = field(default_factory=dict)  # figures measured at export
    # How the training data was split (split kind, seed, columns), so `spamkit eval` and
    # `spamkit calibrate` can rebuild the validation and test splits.
    data: dict = field(default_factory=dict)
    # Set by `spamkit calibrate`: predict `label` when its probability reaches `value`.
    threshold: dict | None = None
    # precision -> the devices its graph is meant for; the runtime's default picks from these.
    devices: dict[str, list[str]] = field(default_factory=dict)
    # Rows of the graph's token embedding; None in bundles older than format 3.
    vocab_size: int | None = None
    # precision -> its text graph (format 4, `spamkit export --text-input`); empty without.
    text_graphs: dict[str, str] = field(default_factory=dict)
    # precision -> the same graph in ORT format (format 4; `spamkit export --ort`).
    ort_graphs: dict[str, str] = field(default_factory=dict)
    # The CPUs the int8 graph was built for (spamkit.runtime.isa.TARGETS; None without one, or
    # before format 4), and the ISA class of the host where export checked it.
    int8_target: str | None = None
    checked_on_isa: str | None = None
    tokenizer: str = TOKENIZER_FILE
    format: str = FORMAT
    format_version: int = FORMAT_VERSION

    def graph_file(self, precision: str, graph_format: str = "onnx") -> str:
        """The file of the `precision` graph in `graph_format` ("onnx" or "ort")."""
        return (self.graphs if graph_format == "onnx" else self.ort_graphs)[precision]

    def graph_files(self, precision: str, graph_format: str = "onnx") -> list[str]:
        """The graph file for `precision` and any external-data files beside it."""
        graph = self.graph_file(precision, graph_format)
        return [name for name in self.files if name == graph or name.startswith(graph + ".")]


def sha256_file(path: Path) -> str:
    """The sha256 of a file, read in pieces (a graph may be gigabytes).

    Args:
        path: the file.

    Returns:
        The digest in hex, as a manifest's `files` records it.

    Raises:
        OSError: the file cannot be read."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def parse_digest(digest: str) -> str:
    """A bundle digest as `spamkit export` prints it, in the form `open_manifest` compares.

    Args:
        digest: 64 hex digits, either case, "sha256:" before them allowed.

    Returns:
        The 64 hex digits, lower case.

    Raises:
        ValueError: it is anything else."""
    if isinstance(digest, str):
        hex_digits = digest.strip().lower().removeprefix("sha256:")
        if SHA256.fullmatch(hex_digits):
            return hex_digits
    raise ValueError(f"a bundle digest is the 64 hex digits `spamkit export` prints, not "
                     f"{_show(digest)}")


def read_manifest(bundle: str | os.PathLike[str]) -> Manifest:
    """The bundle's manifest, checked, as `open_manifest` gives it.

    Args:
        bundle: the bundle's folder.

    Returns:
        Its Manifest.

    Raises:
        BundleError: as `open_manifest`."""
    return open_manifest(bundle)[0]


def open_manifest(bundle: str | os.PathLike[str], digest: str | None = None
                  ) -> tuple[Manifest, str]:
    """The bundle's manifest, checked, and its digest: the sha256 of the very bytes parsed.

    Args:
        bundle: the bundle's folder.
        digest: a pinned digest (see `parse_digest`), or None.

    Returns:
        (manifest, digest in hex).

    Raises:
        ValueError: `digest` is not a digest.
        BundleError: no bundle there, another bundle than the pinned one, a malformed
            manifest, or a listed file missing, outside the bundle or of another size."""
    expected = None if digest is None else parse_digest(digest)
    bundle = Path(bundle)
    if not bundle.is_dir():
        raise BundleError(f"bundle not found: {bundle} is not a directory")
    path = bundle / MANIFEST_FILE
    if not path.is_file():
        raise BundleError(f"{bundle} is not a spamkit bundle: no {MANIFEST_FILE}")
    raw = read_capped(path, MAX_MANIFEST_BYTES)
    found = hashlib.sha256(raw).hexdigest()
    if expected is not None and found != expected:
        raise BundleError(f"{bundle} is not the pinned bundle: its digest is {found}, not "
                          f"{expected}")
    manifest = check_manifest(load_json(raw, str(path)), str(path))
    check_files(bundle, manifest)
    return manifest, found


def read_capped(path: Path, limit: int) -> bytes:
    """A file's bytes, refusing one over `limit` bytes without reading it all.

    Args:
        path: the file.
        limit: the most bytes it may hold.

    Returns:
        Its bytes.

    Raises:
        BundleError: it cannot be read, is over `limit`, or changed while it was read."""
    try:
        with open(path, "rb") as f:
            size = os.fstat(f.fileno()).st_size
            if size > limit:
                raise BundleError(f"{path} is over {limit} bytes: not a spamkit bundle file")
            data = f.read(size + 1)  # one byte more shows a file still being written
    except OSError as e:
        raise BundleError(f"cannot read {path}: {e.strerror or e}") from None
    if len(data) != size:
        raise BundleError(f"{path} changed while it was read")
    return data


def load_json(raw: bytes, where: str) -> object:
    """Strict JSON: no NaN or Infinity, no repeated keys.

    Args:
        raw: the file's bytes.
        where: what to call it in an error (its path).

    Returns:
        The parsed value.

    Raises:
        BundleError: for any failure (nesting too deep for the parser included)."""
    try:
        return json.loads(raw, parse_constant=_refuse_constant, object_pairs_hook=_unique_keys)
    except RecursionError:
        raise BundleError(f"{where} is not valid JSON: nested too deeply") from None
    except ValueError as e:  # JSONDecodeError, UnicodeDecodeError, too many digits, ours
        raise BundleError(f"{where} is not valid JSON: {first_line(e)}") from None


def first_line(error: BaseException) -> str:
    """The first line of an error's message (a library's may run to many), or its type."""
    return (str(error).splitlines() or [type(error).__name__])[0]


def _refuse_constant(name: str) -> None:
    raise ValueError(f"{name} is not a number JSON allows")


def _unique_keys(pairs: list[tuple[str, object]]) -> dict:
    data = dict(pairs)
    if len(data) != len(pairs):
        raise ValueError("a key is repeated in an object")
    return data


def check_manifest(data: object, where: str) -> Manifest:
    """A Manifest from parsed JSON whose every field has been checked.

    Args:
        data: the parsed manifest.json.
        where: what to call it in an error (its path).

    Returns:
        The Manifest (a format 1 one with its `devices` filled in).

    Raises:
        BundleError: not a manifest, a newer format, or a field unknown, missing, malformed or
            disagreeing with another."""
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise BundleError(f"{where} is not a spamkit bundle manifest")
    version = data.get("format_version")
    if not _is_int(version) or version < 1:
        raise BundleError(f"{where} is malformed: format_version is {_show(version)}, not a "
                          "format number")
    if version > FORMAT_VERSION:
        raise BundleError(f"{where} is bundle format {version}; this spamkit reads format "
                          f"{FORMAT_VERSION} and older: upgrade spamkit")
    _check_keys(data, version, where)
    if version < 2 and isinstance(data["graphs"], dict):
        data = {**data, "devices": {p: GRAPH_DEVICES.get(p) for p in data["graphs"]}}
    for name, value in data.items():
        try:
            FIELD_CHECKS[name](value)
        except ValueError as e:
            raise BundleError(f"{where} is malformed: {name} {e}") from None
    manifest = Manifest(**data)
    try:
        _check_agreement(manifest)
    except ValueError as e:
        raise BundleError(f"{where} is malformed: {e}") from None
    return manifest


def _check_keys(data: dict, version: int, where: str) -> None:
    """Every key known to the manifest's format, and every key it requires present."""
    known = [f for f in fields(Manifest) if FIELDS_SINCE.get(f.name, 1) <= version]
    unknown = sorted(set(data) - {f.name for f in known})
    if unknown:
        raise BundleError(f"{where} has a field that bundle format {version} does not have: "
                          f"{_show(unknown[0])}; refused")
    optional = {"sizes", "verification", "data", "threshold", "tokenizer", "text_graphs",
                "ort_graphs", "int8_target"}
    required = [f.name for f in known if f.name not in optional]
    missing = [name for name in required if name not in data]
    if missing:
        raise BundleError(f"{where} is malformed: it has no {missing[0]}")


def _check_agreement(m: Manifest) -> None:
    """What the fields say about each other."""
    for name in [m.tokenizer, *m.graphs.values(), *m.text_graphs.values(),
                 *m.ort_graphs.values()]:
        if name not in m.files:
            raise ValueError(f"it lists {_show(name)} without a checksum")
    orphans = sorted(set(m.text_graphs) - set(m.graphs))
    if orphans:
        raise ValueError(f"it has a {orphans[0]} text graph but no {orphans[0]} graph, whose "
                         "weights it reads")
    unmatched = sorted(m.graphs.keys() ^ m.devices.keys())
    if unmatched:
        p = unmatched[0]
        raise ValueError(f"it names no device for its {p} graph" if p in m.graphs
                         else f"it names devices for a {p} graph it does not have")
    unlisted = sorted(set(m.sizes) - set(m.files))
    if unlisted:
        raise ValueError(f"sizes names {_show(unlisted[0])}, which files does not list")
    alone = sorted(m.ort_graphs.keys() - m.graphs.keys())
    if alone:
        raise ValueError(f"it has an ORT-format {alone[0]} graph but no {alone[0]} graph")
    if m.threshold is not None and m.threshold["label"] not in m.labels:
        raise ValueError(f"threshold label {_show(m.threshold['label'])} is not one of the "
                         f"labels {_show(m.labels)}")
    if m.format_version >= 4 and ("int8" in m.graphs) != (m.int8_target is not None):
        raise ValueError("it has an int8 graph without an int8_target" if "int8" in m.graphs
                         else "it names an int8_target without an int8 graph")
    if m.vocab_size is not None and m.pad_id >= m.vocab_size:
        raise ValueError(f"pad_id {m.pad_id} is outside the vocabulary of {m.vocab_size}")


def check_files(bundle: Path, manifest: Manifest) -> None:
    """Every listed file inside the bundle, present, and of its recorded size."""
    root = bundle.resolve()
    blobs = hub_blobs(root)
    for name in manifest.files:
        try:
            _check_file(bundle, root, blobs, name, manifest.sizes.get(name))
        except OSError as e:  # e.g. a name too long for the file system
            raise BundleError(f"{bundle / MANIFEST_FILE} lists {_show(name)}, which cannot be "
                              f"read: {e.strerror or e}") from None


def hub_blobs(root: Path) -> Path | None:
    """For a bundle in the Hugging Face cache (REPO/snapshots/COMMIT, huggingface_hub's
    layout), REPO/blobs: its files are links there, which huggingface_hub made."""
    blobs = root.parent.parent / "blobs"
    return blobs if root.parent.name == "snapshots" and blobs.is_dir() else None


def _check_file(bundle: Path, root: Path, blobs: Path | None, name: str,
                size: int | None) -> None:
    path = bundle / name
    # Loading must never read outside the bundle: no absolute names, no "..", no links (but
    # a Hub cache snapshot's own links to its repository's blobs).
    target = path.resolve()
    inside = not path.is_symlink() and target.is_relative_to(root)
    hub_blob = blobs is not None and path.is_symlink() and target.parent == blobs
    if Path(name).is_absolute() or not (inside or hub_blob):
        raise BundleError(f"{bundle / MANIFEST_FILE} lists {name}, which is outside the bundle "
                          "or a link; refused")
    if not path.is_file():
        raise BundleError(f"{bundle} is incomplete: {name} is missing")
    if size is not None and path.stat().st_size != size:
        raise BundleError(f"{path} is {path.stat().st_size} bytes, not {size}: damaged or "
                          "changed")


def verify_files(bundle: str | os.PathLike[str], manifest: Manifest, names: list[str]) -> None:
    """Check the named files against their recorded sha256.

    Args:
        bundle: the bundle's folder.
        manifest: its manifest, which lists every one of `names`.
        names: the files to check.

    Raises:
        BundleError: a file does not match its checksum."""
    for name in names:
        if sha256_file(Path(bundle) / name) != manifest.files[name]:
            raise _changed(Path(bundle) / name)


def verify_graph(bundle: Path, manifest: Manifest, name: str) -> None:
    """Check the ONNX graph `name` and every file its tensors' external data names (ONNX Runtime
    reads them too) against their sha256.

    Args:
        bundle: the bundle's folder.
        manifest: its manifest.
        name: the graph's file, as the manifest lists it.

    Raises:
        BundleError: a file does not match its checksum, the graph is no ONNX graph, or it reads
            weights from a file the manifest does not list."""
    path = bundle / name
    try:
        locations = external_data_locations(read_verified(bundle, manifest, name,
                                                          MAX_GRAPH_BYTES))
    except ValueError as e:
        raise BundleError(f"{path} is not an ONNX graph: {e}") from None
    # Resolved as ONNX Runtime resolves them: from the graph's folder.
    files = [posixpath.normpath(posixpath.join(posixpath.dirname(name), location))
             for location in locations]
    for location, file in zip(locations, files, strict=True):
        if file not in manifest.files:
            raise BundleError(f"{path} reads its weights from {_show(location)}, which the "
                              "manifest does not list; refused")
    verify_files(bundle, manifest, files)


def read_verified(bundle: Path, manifest: Manifest, name: str, limit: int) -> bytes:
    """A listed file's bytes, read once and checked against its sha256: what is checked is
    what is used."""
    raw = read_capped(bundle / name, limit)
    if hashlib.sha256(raw).hexdigest() != manifest.files[name]:
        raise _changed(bundle / name)
    return raw


def _changed(path: Path) -> BundleError:
    return BundleError(f"{path} does not match its checksum: damaged or changed")


# Field checks: each raises ValueError saying what is wrong with the value.


def _is_int(v: object) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _show(v: object) -> str:
    """A value as an error message may quote it: one line, short."""
    try:
        text = repr(v)
    except RecursionError:  # nested as deep as the parser allows
        return f"a deeply nested {type(v).__name__}"
    return text if len(text) <= 60 else text[:57] + "..."


def _int_in(low: int, high: int):
    def check(v: object) -> None:
        if not _is_int(v) or not low <= v <= high:
            raise ValueError(f"must be an integer from {low} to {high}, not {_show(v)}")
    return check


def _check_text(v: object) -> None:
    if not isinstance(v, str) or not 0 < len(v) <= MAX_TEXT or not v.isprintable():
        raise ValueError(f"must be a printable string of 1 to {MAX_TEXT} characters, not "
                         f"{_show(v)}")


def _check_one_of(*allowed: str):
    def check(v: object) -> None:
        if v not in allowed:
            raise ValueError(f"must be one of {', '.join(allowed)}, not {_show(v)}")
    return check


def _check_mapping(v: object, check_value, most: int = MAX_ENTRIES) -> None:
    if not isinstance(v, dict) or len(v) > most:
        raise ValueError(f"must be an object of at most {most} entries, not {_show(v)}")
    for key, value in v.items():
        _check_text(key)
        try:
            check_value(value)
        except ValueError as e:
            raise ValueError(f"[{_show(key)}] {e}") from None


def _check_labels(v: object) -> None:
    if not isinstance(v, list) or not 2 <= len(v) <= MAX_LABELS:
        raise ValueError(f"must be a list of 2 to {MAX_LABELS} names, not {_show(v)}")
    for label in v:
        _check_text(label)
    if len(set(v)) != len(v):
        raise ValueError(f"must not repeat a name: {_show(v)}")


def _check_graphs(v: object) -> None:
    _check_mapping(v, _check_text)
    if not v or not set(v) <= set(GRAPH_FILES):
        raise ValueError(f"must name graphs among {', '.join(GRAPH_FILES)}, not {_show(v)}")


def _check_text_graphs(v: object) -> None:
    _check_mapping(v, _check_text)
    if not set(v) <= set(TEXT_GRAPH_FILES):
        raise ValueError(f"must name text graphs among {', '.join(TEXT_GRAPH_FILES)}, not "
                         f"{_show(v)}")


def _check_ort_graphs(v: object) -> None:
    _check_mapping(v, _check_text)
    cpu_graphs = [p for p, devices in GRAPH_DEVICES.items() if "cpu" in devices]
    wrong = [f"{p}: {name}" for p, name in v.items()
             if p not in cpu_graphs or not name.endswith(ORT_SUFFIX)]
    if wrong:
        raise ValueError(f"must map CPU graphs ({', '.join(cpu_graphs)}) to {ORT_SUFFIX} "
                         f"files, not {_show(wrong[0])}")


def _check_sha256(v: object) -> None:
    if not isinstance(v, str) or not SHA256.fullmatch(v):
        raise ValueError(f"must be a sha256 in hex, not {_show(v)}")


def _check_devices(v: object) -> None:
    def check(devices: object) -> None:
        if (not isinstance(devices, list) or not devices
                or not all(d in ("cpu", "cuda") for d in devices)
                or len(set(devices)) != len(devices)):
            raise ValueError(f"must list devices among cpu, cuda, not {_show(devices)}")
    _check_mapping(v, check)


def _check_figure(v: object) -> None:
    """A figure measured at export, or a setting of the data split: a plain JSON scalar."""
    if isinstance(v, str):
        if len(v) > MAX_TEXT or not v.isprintable():
            raise ValueError(f"must be a printable string of at most {MAX_TEXT} characters, "
                             f"not {_show(v)}")
    elif not (v is None or isinstance(v, int) or (isinstance(v, float) and math.isfinite(v))):
        raise ValueError(f"must be a number, a string, true, false or null, not {_show(v)}")


def _check_probability(v: object) -> None:
    if not isinstance(v, (int, float)) or isinstance(v, bool) or not 0 <= v <= 1:
        raise ValueError(f"must be a number from 0 to 1, not {_show(v)}")


def _check_threshold(v: object) -> None:
    if v is None:
        return
    if not isinstance(v, dict) or not {"label", "value"} <= set(v) <= set(THRESHOLD_KEYS):
        raise ValueError(f"must be null or an object with label, value (and optionally "
                         f"{', '.join(THRESHOLD_KEYS[2:])}), not {_show(v)}")
    _check_text(v["label"])
    for key in THRESHOLD_KEYS[1:]:
        try:
            _check_probability(v.get(key, 0))
        except ValueError as e:
            raise ValueError(f"{key} {e}") from None


FIELD_CHECKS = {
    "labels": _check_labels,
    "context_length": _int_in(1, MAX_CONTEXT),
    "pad_id": _int_in(0, MAX_VOCAB - 1),
    "token": _check_one_of(*TOKENS),
    "preset": _check_text,
    "opset": _int_in(1, 1000),
    "graphs": _check_graphs,
    "spamkit_version": _check_text,
    "files": lambda v: _check_mapping(v, _check_sha256),
    "sizes": lambda v: _check_mapping(v, _int_in(0, 1 << 62)),
    "verification": lambda v: _check_mapping(v, _check_figure),
    "data": lambda v: _check_mapping(v, _check_figure),
    "threshold": _check_threshold,
    "devices": _check_devices,
    "vocab_size": _int_in(1, MAX_VOCAB),
    "text_graphs": _check_text_graphs,
    "ort_graphs": _check_ort_graphs,
    "int8_target": lambda v: None if v is None else _check_one_of(*TARGETS)(v),
    "checked_on_isa": _check_one_of(*ISAS),
    "tokenizer": _check_text,
    "format": _check_one_of(FORMAT),
    "format_version": _int_in(1, FORMAT_VERSION),
}
