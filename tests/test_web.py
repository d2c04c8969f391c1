"""`spamkit web`: the static site classifies in a real browser (Chromium, driven by Playwright),
offline, with the labels and probabilities of the Python runtime. Run by `make test-web`."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from conftest import SMS_FILE, assert_clean_failure, spamkit_cli
from test_node_port import LONG, change_a_byte, tokenizer_in_a_subfolder
from webpage import ORT_WEB, classify_in_page, opened, require, served, written_site

pytestmark = pytest.mark.browser

SPAM = "WINNER!! You have been selected to receive a £900 prize reward! Call 09061701461 to claim."


@pytest.fixture(scope="module")
def site(tiny_bundle, tmp_path_factory) -> Path:
    return written_site(tiny_bundle, tmp_path_factory.mktemp("web") / "site")


def assert_answers_as_python(page, bundle: Path) -> None:
    """The page classifies the 300 messages of the SMS test split, and the rules of the bundle
    format too (empty, blank, longer than the context: cut from the front), as the Python
    runtime does: the same labels, probabilities within 1e-4."""
    from spamkit.data import DataConfig, load_splits
    from spamkit.runtime import Classifier

    texts = [*load_splits(DataConfig(path=str(SMS_FILE))).test.texts, "", " ", LONG]
    clf = Classifier.load(bundle)
    results = classify_in_page(page, texts)
    assert [r["label"] for r in results] == clf.predict(texts)
    got = np.array([r["probabilities"] for r in results])
    np.testing.assert_allclose(got, clf.predict_proba(texts), atol=1e-4, rtol=0)


def test_the_page_classifies_sms_messages_as_the_python_runtime_does(site, tiny_bundle):
    outside: list[str] = []
    with served(site) as url, opened(url, outside) as page:
        assert "checked against the manifest's sha256" in page.inner_text("#status")
        assert_answers_as_python(page, tiny_bundle)
    assert outside == []  # nothing fetched from anywhere but the site itself


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


@pytest.mark.parametrize("name", ["tokenizer.json", "model.int8.onnx", "model.int8.onnx.data"])
def test_the_page_refuses_any_file_changed_after_the_site_was_written(site, tmp_path, name):
    import shutil

    copy = tmp_path / "site"
    shutil.copytree(site, copy)
    change_a_byte(copy / "bundle" / name)
    with served(copy) as url, opened(url, []) as page:
        status = page.inner_text("#status")
        assert page.is_disabled("#message")
    assert status == f"spamkit: error: bundle/{name} does not match its checksum: damaged " \
                     "or changed"


def test_the_site_holds_one_cpu_graph_and_the_manifest_as_exported(site, tiny_bundle):
    """The int8 graph only (the page runs it), the manifest byte for byte (the same digest)."""
    manifest = json.loads((tiny_bundle / "manifest.json").read_text())
    assert sorted(p.name for p in (site / "bundle").iterdir()) == [
        "manifest.json", "model.int8.onnx", "model.int8.onnx.data", "tokenizer.json"]
    assert (site / "bundle" / "manifest.json").read_bytes() == \
        (tiny_bundle / "manifest.json").read_bytes()
    assert "fp32" in manifest["graphs"]  # left out of the site: the page never runs it
    assert sorted(p.name for p in (site / "vendor").iterdir()) == [
        "ort-wasm-simd-threaded.mjs", "ort-wasm-simd-threaded.wasm", "ort.wasm.min.mjs"]


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
