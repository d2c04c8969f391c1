"""Write the static site of `spamkit web`: a page that classifies typed or pasted messages in the
browser with onnxruntime-web, offline, from a copy of the bundle's CPU graph and tokenizer.

    DIR/index.html, app.js   the page
    DIR/preprocess.js        the bundle's preprocessing in JavaScript (shared with ports/node)
    DIR/vendor/              onnxruntime-web's WebAssembly build (no CDN)
    DIR/bundle/              manifest.json as is, tokenizer.json and the graph the page runs
    DIR/site.json            what was written, from which bundle (written last)

The site is written to a temporary directory and renamed into place; every copied bundle file is
checked against the manifest's sha256 after copying, so what was checked is what is served.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from spamkit import __version__
from spamkit.atomic import atomic_dir
from spamkit.errors import SpamkitError
from spamkit.outputs import SITE, check_output
from spamkit.runtime.bundle import MANIFEST_FILE, open_manifest, sha256_file, verify_files

HERE = Path(__file__).resolve().parent
STATIC = HERE / "static"
# `make web-deps` installs onnxruntime-web here from toolkit/web/package-lock.json.
ORT_DIST = HERE / "node_modules" / "onnxruntime-web" / "dist"
# What the page's `import "./vendor/ort.wasm.min.mjs"` loads: the WebAssembly-only build.
ORT_FILES = ("ort.wasm.min.mjs", "ort-wasm-simd-threaded.mjs", "ort-wasm-simd-threaded.wasm")
SITE_FORMAT = "spamkit-web-site"


@dataclass(frozen=True)
class Site:
    precision: str
    files: list[str]  # bundle files copied
    digest: str  # the bundle's


def vendored_runtime() -> list[Path]:
    """onnxruntime-web's files the page needs, or a one-line error saying how to get them."""
    paths = [ORT_DIST / name for name in ORT_FILES]
    missing = [p.name for p in paths if not p.is_file()]
    if missing:
        raise SpamkitError(f"onnxruntime-web is not installed beside spamkit.web ({missing[0]} "
                           f"missing from {ORT_DIST}): run `make web-deps`")
    return paths


def write_site(bundle: str | os.PathLike[str], out: str | os.PathLike[str], *,
               force: bool = False, digest: str | None = None) -> Site:
    """Write the site for `bundle` at `out` (replacing a site there only with `force`); with
    `digest`, any other bundle is refused."""
    from spamkit.runtime.device import choose_graph  # imports onnxruntime: only when writing

    bundle, out = Path(bundle), Path(out)
    manifest, digest = open_manifest(bundle, digest)
    precision = choose_graph(manifest, bundle, "cpu", None)
    names = [manifest.tokenizer, *manifest.graph_files(precision)]
    runtime_files = vendored_runtime()
    check_output(out, SITE, force=force, inputs=[bundle])
    with atomic_dir(out) as tmp:
        for path in STATIC.iterdir():
            shutil.copyfile(path, tmp / path.name)
        (tmp / "vendor").mkdir()
        for path in runtime_files:
            shutil.copyfile(path, tmp / "vendor" / path.name)
        (tmp / "bundle").mkdir()
        for name in [MANIFEST_FILE, *names]:
            (tmp / "bundle" / name).parent.mkdir(parents=True, exist_ok=True)  # a/b.json
            shutil.copyfile(bundle / name, tmp / "bundle" / name)
        verify_files(tmp / "bundle", manifest, names)
        if sha256_file(tmp / "bundle" / MANIFEST_FILE) != digest:
            raise SpamkitError(f"{bundle / MANIFEST_FILE} changed while it was copied")
        info = {"format": SITE_FORMAT, "bundle_digest": digest, "graph": precision,
                "spamkit_version": __version__}
        (tmp / "site.json").write_text(json.dumps(info, indent=2) + "\n", encoding="utf-8")
    return Site(precision, names, digest)
