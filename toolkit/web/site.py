"""Write the static site of `spamkit web`: a page that classifies typed or pasted messages in the
browser with onnxruntime-web, offline, from a copy of the bundle's CPU graph and tokenizer.

    DIR/index.html, app.js   the page
    DIR/preprocess.js        the bundle's preprocessing in JavaScript (shared with ports/node)
    DIR/isolation*.js        cross-origin isolation for threads, by a service worker if need be
    DIR/vendor/              onnxruntime-web's WebAssembly build (no CDN; spamkit.web.ort_web)
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
from spamkit.web.ort_web import runtime_files

STATIC = Path(__file__).resolve().parent / "static"
SITE_FORMAT = "spamkit-web-site"


@dataclass(frozen=True)
class Site:
    precision: str
    files: list[str]  # bundle files copied
    digest: str  # the bundle's


def write_site(bundle: str | os.PathLike[str], out: str | os.PathLike[str], *,
               force: bool = False, digest: str | None = None) -> Site:
    """Write the site for `bundle` at `out` (replacing a site there only with `force`); with
    `digest`, any other bundle is refused."""
    from spamkit.runtime.device import choose_graph  # imports onnxruntime: only when writing

    bundle, out = Path(bundle), Path(out)
    manifest, digest = open_manifest(bundle, digest)
    precision = choose_graph(manifest, bundle, "cpu", None)
    names = [manifest.tokenizer, *manifest.graph_files(precision)]
    runtime = runtime_files()  # downloaded before anything is written, where it has to be
    check_output(out, SITE, force=force, inputs=[bundle])
    with atomic_dir(out) as tmp:
        for path in STATIC.iterdir():
            shutil.copyfile(path, tmp / path.name)
        (tmp / "vendor").mkdir()
        for name, data in runtime.items():
            (tmp / "vendor" / name).write_bytes(data)
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
