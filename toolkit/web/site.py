"""Write the static site of `spamkit web`: a page that classifies typed or pasted messages in the
browser with onnxruntime-web, offline, from a copy of the bundle's tokenizer and the graph each
backend runs.

    DIR/index.html, app.js   the page
    DIR/preprocess.js        the bundle's preprocessing in JavaScript (shared with ports/node)
    DIR/isolation*.js        cross-origin isolation for threads, by a service worker if need be
    DIR/vendor/              onnxruntime-web's builds (no CDN; spamkit.web.ort_web)
    DIR/bundle/              manifest.json as is, tokenizer.json, the graphs the page runs, and
                             WebGPU's version of the fp32 graph (spamkit.web.webgpu_graph)
    DIR/site.json            what was written, from which bundle, which graph per backend, the
                             sha256 of the files it made (last)

The site is written to a temporary directory and renamed into place; every copied bundle file is
checked against the manifest's sha256 after copying, so what was checked is what is served.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from spamkit import __version__
from spamkit.atomic import atomic_dir
from spamkit.errors import SpamkitError
from spamkit.outputs import SITE, check_output
from spamkit.runtime.bundle import MANIFEST_FILE, Manifest, open_manifest, sha256_file, verify_files
from spamkit.web.ort_web import WASM, WEBGPU, runtime_files

STATIC = Path(__file__).resolve().parent / "static"
SITE_FORMAT = "spamkit-web-site"
# Each backend's graph, the first of these the bundle has. WebAssembly: int8, which onnxruntime-web
# ran fastest there (docs/web.md). WebGPU: fp32, as its kernels have no int8 matrix products.
BACKEND_GRAPHS = {WASM: ("int8", "fp32"), WEBGPU: ("fp32",)}
BACKEND_NAMES = {WASM: "WebAssembly", WEBGPU: "WebGPU where the browser has a GPU"}
WEBGPU_GRAPH = "model.webgpu.onnx"  # in bundle/, beside the fp32 graph whose data it reads


@dataclass(frozen=True)
class Site:
    graphs: dict[str, str]  # backend -> the precision of the graph it runs
    files: list[str]  # bundle files copied
    digest: str  # the bundle's
    no_webgpu: str | None = None  # why the site has no WebGPU, where it was asked for


def backend_graphs(manifest: Manifest, webgpu: bool = True) -> tuple[dict[str, str], str | None]:
    """The graph each backend of the page runs, and why WebGPU has none where `webgpu` asks for
    it; a one-line error where WebAssembly has none."""
    graphs, why = {}, None
    for backend, precisions in BACKEND_GRAPHS.items():
        found = [p for p in precisions if p in manifest.graphs]
        if found and (webgpu or backend != WEBGPU):
            graphs[backend] = found[0]
    if webgpu and WEBGPU not in graphs:
        why = "the bundle has no fp32 graph (`spamkit export --keep-fp32` keeps it)"
    elif WEBGPU in graphs and importlib.util.find_spec("onnx") is None:
        del graphs[WEBGPU]
        why = 'its graph is written with the onnx package: pip install "spamkit[web]"'
    if WASM not in graphs:
        raise SpamkitError(f"the bundle has no graph the page can run (it needs one of "
                           f"{', '.join(BACKEND_GRAPHS[WASM])}; it has "
                           f"{', '.join(manifest.graphs)})")
    return graphs, why


def write_site(bundle: str | os.PathLike[str], out: str | os.PathLike[str], *,
               force: bool = False, digest: str | None = None, webgpu: bool = True) -> Site:
    """Write the site for `bundle` at `out` (replacing a site there only with `force`); with
    `digest`, any other bundle is refused; `webgpu=False` leaves WebGPU's build and graph out."""
    bundle, out = Path(bundle), Path(out)
    manifest, digest = open_manifest(bundle, digest)
    graphs, no_webgpu = backend_graphs(manifest, webgpu)
    names = [manifest.tokenizer, *dict.fromkeys(
        name for precision in graphs.values() for name in manifest.graph_files(precision))]
    runtime = runtime_files(list(graphs))  # downloaded before anything is written, if need be
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
        made = {}
        if WEBGPU in graphs:
            made[WEBGPU_GRAPH] = add_webgpu_graph(
                tmp / "bundle" / manifest.graphs[graphs[WEBGPU]], tmp / "bundle" / WEBGPU_GRAPH)
        info = {"format": SITE_FORMAT, "bundle_digest": digest, "graphs": graphs,
                "webgpu_graph": WEBGPU_GRAPH if made else None, "files": made,
                "spamkit_version": __version__}
        (tmp / "site.json").write_text(json.dumps(info, indent=2) + "\n", encoding="utf-8")
    return Site(graphs, names, digest, no_webgpu)


def add_webgpu_graph(fp32: Path, out: Path) -> str:
    """WebGPU's version of the graph at `fp32` at `out`, beside it; its sha256."""
    from spamkit.web.webgpu_graph import write_webgpu_graph  # imports onnx

    try:
        write_webgpu_graph(fp32, out)
    except ValueError as e:
        raise SpamkitError(f"cannot write WebGPU's graph from {fp32.name}: {e} (--no-webgpu "
                           "leaves WebGPU out)") from None
    return sha256_file(out)
