"""Writing a bundle's manifest: export writes it last, calibrate rewrites it. The runtime only
reads manifests (spamkit.runtime.bundle); this module imports neither torch nor ONNX Runtime."""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict, replace
from pathlib import Path

from spamkit.atomic import write_bytes_atomic
from spamkit.runtime.bundle import (
    FIELDS_SINCE,
    MANIFEST_FILE,
    Manifest,
    check_manifest,
    sha256_file,
)


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


def write_manifest(bundle: str | os.PathLike[str], manifest: Manifest) -> str:
    """Write the manifest (refusing one the runtime would refuse); return the bundle's digest.
    Rewriting a manifest (as `spamkit calibrate` does) changes the digest."""
    data = {k: v for k, v in asdict(manifest).items()
            if FIELDS_SINCE.get(k, 1) <= manifest.format_version}
    check_manifest(data, f"the manifest for {bundle}")
    text = (json.dumps(data, indent=2) + "\n").encode()
    write_bytes_atomic(Path(bundle) / MANIFEST_FILE, text)
    return hashlib.sha256(text).hexdigest()
