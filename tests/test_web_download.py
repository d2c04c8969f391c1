"""`spamkit web` where spamkit came from its wheel, which carries no onnxruntime-web: the page's
files come from the npm package that package-lock.json pins, downloaded from registry.npmjs.org
into the cache once (a real download, skipped where the registry cannot be reached) and checked
against the lockfile's sha512 integrity each time; a changed cached package, a download that is
not the pinned one and no network at all are each one line."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import shutil
import socket
import tarfile
from pathlib import Path

import pytest
from conftest import ROOT, assert_clean_failure, closed_port_url
from test_extras import installed_wheel, run
from webpage import served

LOCK = json.loads((ROOT / "toolkit/web/package-lock.json").read_text())
PIN = LOCK["packages"]["node_modules/onnxruntime-web"]
TARBALL = f"onnxruntime-web-{PIN['version']}.tgz"
# The WebAssembly build only: spamkit[cpu,cli] has no onnx to write the WebGPU graph with.
PAGE_FILES = ["ort-wasm-simd-threaded.mjs", "ort-wasm-simd-threaded.wasm", "ort.wasm.min.mjs"]


def offline() -> dict[str, str]:
    """A registry where nothing listens: the download fails at once, as with no network."""
    return {"SPAMKIT_NPM_REGISTRY": closed_port_url().rsplit("/", 1)[0]}


def web(install: dict, bundle: Path, out: Path, cache: Path, **env: str):
    """`spamkit web BUNDLE --out OUT` in the installed wheel, spamkit[cpu,cli], with `cache`."""
    return run(install, "-m", "spamkit", "web", bundle, "--out", out,
               extra={**install["cpu"], "SPAMKIT_CACHE": str(cache), **env})


@pytest.fixture(scope="module")
def install(tmp_path_factory) -> dict:
    """spamkit[cpu,cli] installed from its wheel (tests/test_extras.py)."""
    return installed_wheel(tmp_path_factory.mktemp("install"))


@pytest.fixture(scope="module")
def downloaded(install, tiny_bundle, tmp_path_factory) -> dict:
    """The site and the cache of a first `spamkit web`, which downloaded from npm."""
    try:
        socket.create_connection(("registry.npmjs.org", 443), timeout=10).close()
    except OSError as e:
        pytest.skip(f"registry.npmjs.org cannot be reached ({e}): the download is not tested")
    root = tmp_path_factory.mktemp("web-download")
    result = web(install, tiny_bundle, root / "site", root / "cache")
    assert result.returncode == 0, result.stderr
    return {"site": root / "site", "cache": root / "cache", "stdout": result.stdout}


def test_spamkit_web_downloads_the_pinned_onnxruntime_web_once_and_writes_the_page(
        downloaded, install, tiny_bundle, tmp_path):
    vendor = downloaded["site"] / "vendor"
    assert f"downloading onnxruntime-web {PIN['version']}" in downloaded["stdout"]
    assert sorted(p.name for p in vendor.iterdir()) == PAGE_FILES
    assert 'no WebGPU: its graph is written with the onnx package: pip install "spamkit[web]"' \
        in downloaded["stdout"]
    assert [p.name for p in downloaded["cache"].iterdir()] == [TARBALL]  # nothing half-written
    data = (downloaded["cache"] / TARBALL).read_bytes()
    assert PIN["integrity"] == f"sha512-{base64.b64encode(hashlib.sha512(data).digest()).decode()}"
    node_modules = ROOT / "toolkit/web/node_modules/onnxruntime-web/dist"
    if node_modules.is_dir():  # what `make web-deps` installs, byte for byte
        for name in PAGE_FILES:
            assert (vendor / name).read_bytes() == (node_modules / name).read_bytes(), name

    again = web(install, tiny_bundle, tmp_path / "site", downloaded["cache"], **offline())

    assert again.returncode == 0, again.stderr  # from the cache, offline
    assert "downloading" not in again.stdout
    for name in PAGE_FILES:
        assert (tmp_path / "site/vendor" / name).read_bytes() == (vendor / name).read_bytes()


def test_a_changed_package_in_the_cache_is_refused_in_one_line(downloaded, install, tiny_bundle,
                                                                tmp_path):
    cache = tmp_path / "cache"
    shutil.copytree(downloaded["cache"], cache)
    tarball = cache / TARBALL
    data = bytearray(tarball.read_bytes())
    data[len(data) // 2] ^= 1
    tarball.write_bytes(data)

    result = web(install, tiny_bundle, tmp_path / "site", cache, **offline())

    assert_clean_failure(result, str(tarball), f"is not onnxruntime-web {PIN['version']}",
                         "sha512", "delete it", out=tmp_path / "site")


def package(names: list[str]) -> bytes:
    """An npm package tarball holding package/dist/NAME for each of `names`."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for name in names:
            info = tarfile.TarInfo(f"package/dist/{name}")
            info.size = len(name)
            tar.addfile(info, io.BytesIO(name.encode()))
    return buffer.getvalue()


def test_a_download_that_is_not_the_pinned_package_is_refused_and_not_kept(install, tiny_bundle,
                                                                           tmp_path):
    mirror = tmp_path / "mirror" / "onnxruntime-web" / "-"
    mirror.mkdir(parents=True)
    (mirror / TARBALL).write_bytes(package(PAGE_FILES))  # a package, but not the pinned one
    cache = tmp_path / "cache"

    with served(tmp_path / "mirror") as url:
        result = web(install, tiny_bundle, tmp_path / "site", cache, SPAMKIT_NPM_REGISTRY=url)

    assert_clean_failure(result, f"onnxruntime-web {PIN['version']} downloaded from {url}",
                         "does not match package-lock.json's sha512 integrity", "not kept",
                         out=tmp_path / "site")
    assert list(cache.iterdir()) == []


def test_offline_without_the_package_says_what_to_do_in_one_line(install, tiny_bundle, tmp_path):
    cache = tmp_path / "cache"

    result = web(install, tiny_bundle, tmp_path / "site", cache, **offline())

    assert_clean_failure(result, f"could not download onnxruntime-web {PIN['version']}",
                         "SPAMKIT_NPM_REGISTRY", f"npm pack onnxruntime-web@{PIN['version']}` "
                         f"in {cache}", out=tmp_path / "site")


def test_a_pinned_package_without_a_file_the_page_loads_is_refused():
    from spamkit.errors import SpamkitError
    from spamkit.web.ort_web import BUILDS, WASM, package_files, pinned

    with pytest.raises(SpamkitError, match=r"npm package has no dist/ort-wasm-simd-threaded\.wasm"):
        package_files(package(["ort.wasm.min.mjs", "ort-wasm-simd-threaded.mjs"]), pinned(),
                      BUILDS[WASM])
