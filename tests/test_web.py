"""`spamkit web`: the static site classifies in a real browser (Chromium, driven by Playwright),
offline, with the labels and probabilities of the Python runtime. Run by `make test-web`."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from conftest import SMS_FILE, assert_clean_failure, spamkit_cli
from test_node_port import LONG, change_a_byte, tokenizer_in_a_subfolder
from webpage import ORT_WEB, READY, classify_in_page, opened, require, served, written_site

from spamkit.runtime.bundle import sha256_file

pytestmark = pytest.mark.browser

WASM_BUILD = ["ort-wasm-simd-threaded.mjs", "ort-wasm-simd-threaded.wasm", "ort.wasm.min.mjs"]
WEBGPU_BUILD = ["ort-wasm-simd-threaded.asyncify.mjs", "ort-wasm-simd-threaded.asyncify.wasm",
                "ort.webgpu.min.mjs"]
SPAM = "WINNER!! You have been selected to receive a £900 prize reward! Call 09061701461 to claim."


@pytest.fixture(scope="module")
def site(tiny_bundle, tmp_path_factory) -> Path:
    return written_site(tiny_bundle, tmp_path_factory.mktemp("web") / "site")


def assert_answers_as_python(page, bundle: Path, graph: str = "int8") -> None:
    """The page classifies the 300 messages of the SMS test split, and the rules of the bundle
    format too (empty, blank, longer than the context: cut from the front), as the Python
    runtime does on the same graph: the same labels, probabilities within 1e-4."""
    from spamkit.data import DataConfig, load_splits
    from spamkit.runtime import Classifier

    texts = [*load_splits(DataConfig(path=str(SMS_FILE))).test.texts, "", " ", LONG]
    clf = Classifier.load(bundle, precision=graph)
    results = classify_in_page(page, texts)
    assert [r["label"] for r in results] == clf.predict(texts)
    got = np.array([r["probabilities"] for r in results])
    np.testing.assert_allclose(got, clf.predict_proba(texts), atol=1e-4, rtol=0)


def test_the_page_classifies_sms_messages_as_the_python_runtime_does(site, tiny_bundle):
    """Headless Chromium has WebGPU but no GPU adapter: the page falls back to WebAssembly,
    says why, and runs its graph for it, int8."""
    outside: list[str] = []
    with served(site) as url, opened(url, outside) as page:
        assert page.inner_text("#status").startswith("Ready: the tiny model's int8 graph on "
                                                      "WebAssembly, checked against the manifest")
        assert page.inner_text("#backend") == ("WebAssembly on the CPU (not WebGPU: this "
                                               "browser found no GPU adapter for it).")
        assert_answers_as_python(page, tiny_bundle)
    assert outside == []  # nothing fetched from anywhere but the site itself


def test_with_a_gpu_the_page_runs_webgpu_and_answers_as_python_on_fp32(site, tiny_bundle):
    """Chromium with SwiftShader's WebGPU adapter (a GPU emulated on the CPU): the page runs the
    fp32 graph on WebGPU, with the answers of the Python runtime on that graph."""
    outside: list[str] = []
    with served(site) as url, opened(url, outside, gpu=True) as page:
        assert page.inner_text("#status").startswith("Ready: the tiny model's fp32 graph on "
                                                      "WebGPU")
        assert page.get_attribute("#backend", "data-backend") == "webgpu"
        assert_answers_as_python(page, tiny_bundle, "fp32")
    assert outside == []


def test_the_fp32_graph_on_webassembly_answers_as_python_too(site, tiny_bundle):
    """The other graph the page may run on WebAssembly (`?graph=fp32`, as the benchmark asks)."""
    with served(site) as url, opened(url + "?backend=wasm&graph=fp32", [], gpu=True) as page:
        assert page.inner_text("#backend") == ("WebAssembly on the CPU (not WebGPU: the page's "
                                               "address asks for WebAssembly).")
        assert_answers_as_python(page, tiny_bundle, "fp32")


def test_where_webgpu_fails_to_start_the_page_falls_back_to_webassembly(site, tmp_path):
    """A GPU adapter, but WebGPU's build cannot be loaded: the page says so and runs int8 on
    WebAssembly. Asked for WebGPU by address, it is one error line instead."""
    import shutil

    copy = tmp_path / "site"
    shutil.copytree(site, copy)
    (copy / "vendor" / "ort.webgpu.min.mjs").unlink()
    with served(copy) as url, opened(url, [], gpu=True) as page:
        backend = page.inner_text("#backend")
        [answer] = classify_in_page(page, [SPAM])
        page.goto(url + "?backend=webgpu")
        page.wait_for_function(READY)
        status = page.inner_text("#status")
    assert backend.startswith("WebAssembly on the CPU (not WebGPU: it failed to start: ")
    assert answer["label"] in ("spam", "ham")
    assert status.startswith("spamkit: error: ?backend=webgpu: it failed to start: ")


def test_a_user_types_a_message_and_sees_label_probability_and_time(site, tiny_bundle):
    from spamkit.runtime import Classifier

    clf = Classifier.load(tiny_bundle)
    with served(site) as url, opened(url, []) as page:
        page.fill("#message", SPAM)
        page.press("#message", "Enter")
        page.wait_for_selector("#result:not([hidden])")
        label, probability, took = (page.inner_text(s) for s in ("#label", "#probability",
                                                                 "#time"))
    assert label == clf.predict(SPAM)
    p = float(probability.removeprefix("p = "))
    assert p == pytest.approx(clf.predict_proba(SPAM).max(), abs=1e-4)
    assert took.endswith(" ms") and float(took.removesuffix(" ms")) > 0


@pytest.mark.parametrize(("name", "gpu"), [
    ("tokenizer.json", False), ("model.int8.onnx", False), ("model.int8.onnx.data", False),
    ("model.webgpu.onnx", True), ("model.onnx.data", True)])
def test_the_page_refuses_any_file_changed_after_the_site_was_written(site, tmp_path, name, gpu):
    """Each file the page loads, on WebAssembly and on WebGPU (the one the site made too)."""
    import shutil

    copy = tmp_path / "site"
    shutil.copytree(site, copy)
    change_a_byte(copy / "bundle" / name)
    with served(copy) as url, opened(url, [], gpu=gpu) as page:
        status = page.inner_text("#status")
        assert page.is_disabled("#message")
    assert status == f"spamkit: error: bundle/{name} does not match its checksum: damaged " \
                     "or changed"


def test_the_site_holds_each_backends_graph_and_the_manifest_as_exported(site, tiny_bundle):
    """int8 for WebAssembly, fp32 for WebGPU, each with its onnxruntime-web build; the manifest
    byte for byte (the same digest)."""
    assert json.loads((site / "site.json").read_text())["graphs"] == {"wasm": "int8",
                                                                      "webgpu": "fp32"}
    assert sorted(p.name for p in (site / "bundle").iterdir()) == [
        "manifest.json", "model.int8.onnx", "model.int8.onnx.data", "model.onnx",
        "model.onnx.data", "model.webgpu.onnx", "tokenizer.json"]
    made = json.loads((site / "site.json").read_text())["files"]
    assert made == {"model.webgpu.onnx": sha256_file(site / "bundle" / "model.webgpu.onnx")}
    assert (site / "bundle" / "manifest.json").read_bytes() == \
        (tiny_bundle / "manifest.json").read_bytes()
    assert sorted(p.name for p in (site / "vendor").iterdir()) == sorted(
        WASM_BUILD + WEBGPU_BUILD)


def test_without_webgpu_the_site_holds_the_int8_graph_and_webassembly_only(tiny_bundle, tmp_path):
    require("onnxruntime-web (npm)", ORT_WEB.is_dir())
    out = tmp_path / "site"

    result = spamkit_cli("web", tiny_bundle, "--out", out, "--no-webgpu")

    assert result.returncode == 0, result.stderr
    assert ": the page runs the int8 graph on WebAssembly (onnxruntime-web)\n" in result.stdout
    assert sorted(p.name for p in (out / "bundle").iterdir()) == [
        "manifest.json", "model.int8.onnx", "model.int8.onnx.data", "tokenizer.json"]
    assert sorted(p.name for p in (out / "vendor").iterdir()) == WASM_BUILD
    with served(out) as url, opened(url, [], gpu=True) as page:
        assert page.inner_text("#backend") == ("WebAssembly on the CPU (not WebGPU: this site "
                                               "was written without it).")


def test_spamkit_web_replaces_a_site_only_with_force_and_never_a_users_directory(
        site, tiny_bundle, tmp_path):
    again = spamkit_cli("web", tiny_bundle, "--out", site)
    assert_clean_failure(again, "already holds a spamkit web site", "--force")
    assert spamkit_cli("web", tiny_bundle, "--out", site, "--force").returncode == 0
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("keep me")
    assert_clean_failure(spamkit_cli("web", tiny_bundle, "--out", mine, "--force"),
                         "not a spamkit web site")
    assert (mine / "notes.txt").read_text() == "keep me"


def test_spamkit_web_refuses_a_damaged_bundle_in_one_line(tiny_bundle, tmp_path):
    import shutil

    require("onnxruntime-web (npm)", ORT_WEB.is_dir())
    bundle = tmp_path / "bundle"
    shutil.copytree(tiny_bundle, bundle)
    tokenizer = bundle / "tokenizer.json"
    tokenizer.write_bytes(tokenizer.read_bytes().replace(b'"name"', b'"nAme"', 1))
    out = tmp_path / "site"
    assert_clean_failure(spamkit_cli("web", bundle, "--out", out), "tokenizer.json",
                         "checksum", out=out)
    assert_clean_failure(spamkit_cli("web", tmp_path / "nowhere", "--out", out),
                         "bundle not found", out=out)
    assert_clean_failure(spamkit_cli("web", tiny_bundle, "--out", out, "--digest", "0" * 64),
                         "not the pinned bundle", out=out)


def test_a_bundle_with_its_tokenizer_in_a_subfolder_makes_a_working_site(tiny_bundle, tmp_path):
    from spamkit.runtime import Classifier

    require("onnxruntime-web (npm)", ORT_WEB.is_dir())
    bundle = tokenizer_in_a_subfolder(tiny_bundle, tmp_path / "bundle")
    out = tmp_path / "site"

    result = spamkit_cli("web", bundle, "--out", out)

    assert result.returncode == 0, result.stderr
    with served(out) as url, opened(url, []) as page:
        [answer] = classify_in_page(page, [SPAM])
    assert answer["label"] == Classifier.load(bundle).predict(SPAM)
