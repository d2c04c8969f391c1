"""onnxruntime-web's files for the page that `spamkit web` writes. The wheel does not carry them
(an app that only classifies never runs them): a checkout has them in node_modules after `make
web-deps`; elsewhere they come from the npm package that package-lock.json pins, downloaded once
into the user cache and checked against the lockfile's sha512 `integrity` each time it is used.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import os
import tarfile
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass
from http.client import HTTPException
from pathlib import Path

from spamkit.atomic import atomic_file
from spamkit.data import default_cache_dir
from spamkit.errors import SpamkitError
from spamkit.progress import progress_bar, stage

HERE = Path(__file__).resolve().parent
PACKAGE = "onnxruntime-web"
LOCKFILE = HERE / "package-lock.json"
# Where `make web-deps` (npm ci, which checks the lockfile's integrity) installs it in a checkout.
NODE_MODULES_DIST = HERE / "node_modules" / PACKAGE / "dist"
WASM, WEBGPU = "wasm", "webgpu"  # the page's backends
# What the page imports for each backend: the WebAssembly-only build, and the WebGPU one (which
# runs on WebAssembly what its GPU kernels do not cover).
BUILDS = {
    WASM: ("ort.wasm.min.mjs", "ort-wasm-simd-threaded.mjs", "ort-wasm-simd-threaded.wasm"),
    WEBGPU: ("ort.webgpu.min.mjs", "ort-wasm-simd-threaded.asyncify.mjs",
             "ort-wasm-simd-threaded.asyncify.wasm"),
}
REGISTRY_ENV = "SPAMKIT_NPM_REGISTRY"  # a mirror of registry.npmjs.org
NPM_REGISTRY = "https://registry.npmjs.org"
DOWNLOAD_TIMEOUT_S = 60  # per read: a stalled connection fails instead of hanging
CHUNK = 1 << 20


@dataclass(frozen=True)
class Pin:
    """The npm package as package-lock.json pins it."""

    version: str
    integrity: str  # npm's Subresource Integrity form, "sha512-" and the base64 digest

    @property
    def tarball(self) -> str:
        """The file name npm's registry (and `npm pack`) gives the package."""
        return f"{PACKAGE}-{self.version}.tgz"


def pinned(lockfile: Path = LOCKFILE) -> Pin:
    """The onnxruntime-web that `lockfile` pins."""
    entry = json.loads(lockfile.read_text(encoding="utf-8"))["packages"][
        f"node_modules/{PACKAGE}"]
    return Pin(entry["version"], entry["integrity"])


def runtime_files(backends: Sequence[str] = (WASM,), cache_dir: Path | None = None
                  ) -> dict[str, bytes]:
    """The onnxruntime-web files of `backends` by name: a checkout's node_modules where it has
    them, else the pinned npm package from `cache_dir` (the user cache), downloaded there if
    missing. A one-line error where the package cannot be had or is not the pinned one."""
    names = [name for backend in backends for name in BUILDS[backend]]
    if all((NODE_MODULES_DIST / name).is_file() for name in names):
        return {name: (NODE_MODULES_DIST / name).read_bytes() for name in names}
    pin = pinned()
    return package_files(checked_tarball(pin, cache_dir or default_cache_dir()), pin, names)


def checked_tarball(pin: Pin, cache_dir: Path) -> bytes:
    """The pinned package's tarball from `cache_dir`, downloaded first if it is not there; its
    bytes as checked, so what is extracted is what was checked."""
    path = cache_dir / pin.tarball
    if not path.is_file():
        download(pin, path)
    data = path.read_bytes()
    if not matches(data, pin):
        raise SpamkitError(f"{path} is not {PACKAGE} {pin.version} as package-lock.json pins it "
                           "(sha512 integrity): damaged or changed; delete it, and `spamkit web` "
                           "downloads it again")
    return data


def matches(data: bytes, pin: Pin) -> bool:
    """Whether `data` has the pin's sha512 integrity."""
    return pin.integrity == "sha512-" + base64.b64encode(hashlib.sha512(data).digest()).decode()


def download(pin: Pin, target: Path) -> None:
    """Download the pinned tarball to `target`, which only a complete, matching one reaches."""
    registry = (os.environ.get(REGISTRY_ENV) or NPM_REGISTRY).rstrip("/")
    url = f"{registry}/{PACKAGE}/-/{pin.tarball}"
    stage(f"downloading {PACKAGE} {pin.version} for the page from {url} (once: it is kept in "
          f"{target.parent})")
    with atomic_file(target) as tmp:
        try:
            _fetch(url, tmp)
        except (OSError, ValueError, HTTPException) as e:
            raise SpamkitError(
                f"could not download {PACKAGE} {pin.version}, which the page runs, from {url} "
                f"({e}): run `spamkit web` once online, set {REGISTRY_ENV} to a mirror, or run "
                f"`npm pack {PACKAGE}@{pin.version}` in {target.parent}") from None
        if not matches(tmp.read_bytes(), pin):
            raise SpamkitError(f"the {PACKAGE} {pin.version} downloaded from {url} does not "
                               "match package-lock.json's sha512 integrity; not kept")


def _fetch(url: str, dest: Path) -> None:
    with urllib.request.urlopen(url, timeout=DOWNLOAD_TIMEOUT_S) as response, \
            open(dest, "wb") as f, \
            progress_bar(total=int(response.headers.get("Content-Length") or 0) or None,
                         unit="B", unit_scale=True, desc=PACKAGE) as bar:
        while chunk := response.read(CHUNK):
            f.write(chunk)
            bar.update(len(chunk))


def package_files(tarball: bytes, pin: Pin, names: list[str]) -> dict[str, bytes]:
    """The files `names` out of the npm package `tarball` (its files are under package/dist/)."""
    wanted = {f"package/dist/{name}": name for name in names}
    files = {}
    with tarfile.open(fileobj=io.BytesIO(tarball), mode="r:gz") as tar:
        for member in tar:
            if member.name in wanted and member.isfile():
                files[wanted[member.name]] = tar.extractfile(member).read()
    # A newer pin whose package is laid out otherwise: said here, not as a page that fails.
    missing = [name for name in names if name not in files]
    if missing:
        raise SpamkitError(f"{PACKAGE} {pin.version}'s npm package has no dist/{missing[0]}, "
                           "which the page loads")
    return files
