"""Bundles on the Hugging Face Hub, as a user meets them: `spamkit push` publishes one with a
model card, `Classifier.load("hf://org/name")` and `spamkit classify hf://org/name` download it
into huggingface_hub's cache and check it like any bundle, and offline it loads from that cache.

No test reaches the internet: huggingface_hub (the real library, in a fresh process with its
settings in the environment, as a user's shell sets them) talks to tests/hub_server.py, a
stand-in for huggingface.co's API on 127.0.0.1, and fills its cache by its own code."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
from conftest import SMS_FILE, assert_clean_failure, closed_port_url, spamkit_cli
from hub_server import Repo, StandInHub

REPO = "spamkit-test/sms-tiny"
COMMIT = "0123456789abcdef0123456789abcdef01234567"
CACHE_FOLDER = "models--spamkit-test--sms-tiny"
MESSAGES = [line.split("\t", 1)[1] for line in SMS_FILE.read_text().splitlines()[:40]]


@pytest.fixture
def hub(tiny_bundle, tmp_path):
    """The Hub, holding REPO: the tiny bundle, published with a model card and a file beside it
    that is not the bundle's (loading must not fetch it)."""
    folder = tmp_path / "published"
    shutil.copytree(tiny_bundle, folder)
    (folder / "README.md").write_text("---\nlibrary_name: spamkit\n---\n# sms-tiny\n")
    (folder / "training-log.bin").write_bytes(b"\0" * 4096)
    hub = StandInHub({REPO: Repo(folder, COMMIT, ("main", "v1"))}, root=tmp_path)
    hub.start()
    yield hub
    hub.stop()


def hub_env(tmp_path, hub: StandInHub | None = None, offline: bool = False) -> dict:
    """A user's Hugging Face settings: the cache under tmp_path, the endpoint, offline or not."""
    return {"HF_HOME": str(tmp_path / "hf"), "HF_HUB_CACHE": str(tmp_path / "hf" / "hub"),
            "HF_ENDPOINT": hub.url if hub else closed_port_url().rsplit("/", 1)[0],
            "HF_HUB_OFFLINE": "1" if offline else "0", "HF_TOKEN": "hf_test",
            "HF_HUB_DISABLE_PROGRESS_BARS": "1", "HF_HUB_DISABLE_TELEMETRY": "1"}


def python(code: str, env: dict) -> subprocess.CompletedProcess:
    """Run `code` in a fresh interpreter with `env` set, as an app would start."""
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=300, env={**os.environ, **env})


LOAD_AND_PREDICT = """
import json, sys
from spamkit.runtime import Classifier
for ref in sys.argv[1:]:
    clf = Classifier.load(ref)
    print(json.dumps({{"proba": clf.predict_proba({messages!r}).tolist(), "digest": clf.digest}}))
"""


def load_and_predict(env: dict, *refs: str) -> list[dict]:
    """What an app that loads each of `refs` in turn answers for MESSAGES."""
    result = subprocess.run([sys.executable, "-c", LOAD_AND_PREDICT.format(messages=MESSAGES),
                             *refs], capture_output=True, text=True, timeout=300,
                            env={**os.environ, **env})
    assert result.returncode == 0, result.stderr
    return [json.loads(line) for line in result.stdout.splitlines()]


def local_answers(bundle) -> dict:
    from spamkit.runtime import Classifier

    clf = Classifier.load(bundle)
    return {"proba": clf.predict_proba(MESSAGES).tolist(), "digest": clf.digest}


def test_a_bundle_on_the_hub_is_downloaded_into_its_cache_and_then_loads_offline(
        hub, tiny_bundle, tmp_path):
    [online] = load_and_predict(hub_env(tmp_path, hub), f"hf://{REPO}")
    local = local_answers(tiny_bundle)
    assert online == local  # the same bundle, to the last bit
    # Only the bundle's own files were fetched: its manifest and what that lists.
    listed = json.loads((tiny_bundle / "manifest.json").read_text())["files"]
    assert hub.downloaded(REPO) == sorted(["manifest.json", *listed])
    # Into huggingface_hub's cache, where transformers and sentence-transformers keep theirs.
    repo = tmp_path / "hf" / "hub" / CACHE_FOLDER
    assert (repo / "refs" / "main").read_text() == COMMIT
    snapshot = repo / "snapshots" / COMMIT
    assert sorted(p.name for p in snapshot.iterdir()) == sorted(["manifest.json", *listed])
    assert (snapshot / "manifest.json").resolve().parent == repo / "blobs"

    hub.stop()  # no Hub from here on: offline, the cache alone serves
    requests = len(hub.requests)
    offline = hub_env(tmp_path, offline=True)
    assert load_and_predict(offline, f"hf://{REPO}", f"hf://{REPO}@{COMMIT}") == [local, local]
    cli = spamkit_cli("classify", f"hf://{REPO}", "--digest", local["digest"], "--json",
                      *MESSAGES[:3], env=offline)
    assert cli.returncode == 0, cli.stderr
    answers = [json.loads(line) for line in cli.stdout.splitlines()]
    assert [a["text"] for a in answers] == MESSAGES[:3]
    np.testing.assert_allclose([list(a["probabilities"].values()) for a in answers],
                               local["proba"][:3], atol=1e-6)  # printed to 6 decimals
    assert len(hub.requests) == requests


def test_offline_and_not_in_the_cache_is_one_line_naming_hf_hub_offline_and_the_cache(
        tmp_path):
    cache = tmp_path / "hf" / "hub"
    result = spamkit_cli("classify", f"hf://{REPO}@v1", "see you at 6?",
                         env=hub_env(tmp_path, offline=True))
    assert_clean_failure(result, f"hf://{REPO}@v1", str(cache), "not in the Hugging Face "
                         "cache", "HF_HUB_OFFLINE is set: download it once without HF_HUB_OFFLINE")


def test_an_unreachable_hub_and_an_empty_cache_say_so_in_one_line(tmp_path):
    result = spamkit_cli("classify", f"hf://{REPO}", "see you at 6?", env=hub_env(tmp_path))
    assert_clean_failure(result, f"hf://{REPO}", "the Hub cannot be reached", "not in the "
                         "Hugging Face cache")


def test_what_is_not_there_on_the_hub_is_named(hub, tmp_path):
    (hub.repos[REPO].folder / "manifest.json").rename(tmp_path / "moved.json")
    cases = {f"hf://{REPO}": "is not a spamkit bundle: the repository has no manifest.json",
             f"hf://{REPO}@v2": "the repository has no revision v2",
             "hf://spamkit-test/no-such-model": "no such model repository on the Hub"}
    result = python(f"""
from spamkit.runtime import BundleError, Classifier
for ref in {list(cases)!r}:
    try:
        Classifier.load(ref)
    except BundleError as e:
        print(e)
""", hub_env(tmp_path, hub))
    errors = result.stdout.splitlines()
    assert len(errors) == len(cases), result.stderr
    for (ref, words), error in zip(cases.items(), errors):
        assert error.startswith(ref) and words in error
    usage = spamkit_cli("classify", "hf://sms-tiny", "hi")
    assert usage.returncode == 2
    assert_clean_failure(usage, "is not a Hub reference", "hf://org/name")


def test_a_changed_file_in_the_cache_is_refused_like_in_any_bundle(hub, tmp_path):
    [online] = load_and_predict(hub_env(tmp_path, hub), f"hf://{REPO}")
    hub.stop()
    snapshot = tmp_path / "hf" / "hub" / CACHE_FOLDER / "snapshots" / COMMIT
    offline = hub_env(tmp_path, offline=True)
    # Pinned to another bundle's digest: refused, whatever the cache holds.
    other = "0" * 64
    assert_clean_failure(spamkit_cli("classify", f"hf://{REPO}", "--digest", other, "hi",
                                     env=offline), "not the pinned bundle", online["digest"])
    # A cached blob changed in place (same size): the sha256 check names it.
    blob = (snapshot / "model.int8.onnx.data").resolve()
    data = bytearray(blob.read_bytes())
    data[len(data) // 2] ^= 0xFF
    blob.write_bytes(bytes(data))
    assert_clean_failure(spamkit_cli("classify", f"hf://{REPO}", "hi", env=offline),
                         "model.int8.onnx.data does not match its checksum")
    # The snapshot's links lead into its repository's blobs/, and nowhere else.
    outside = tmp_path / "elsewhere.json"
    shutil.copyfile(snapshot / "tokenizer.json", outside)
    (snapshot / "tokenizer.json").unlink()
    (snapshot / "tokenizer.json").symlink_to(outside)
    assert_clean_failure(spamkit_cli("classify", f"hf://{REPO}", "hi", env=offline),
                         "tokenizer.json, which is outside the bundle or a link")


def test_huggingface_hub_is_imported_only_for_a_reference_and_without_it_the_extra_is_named(
        tiny_bundle):
    result = python(f"""
import sys
from spamkit.runtime import Classifier
print(Classifier.load({str(tiny_bundle)!r}).predict("see you at 6?"))
print("huggingface_hub" in sys.modules)
sys.modules["huggingface_hub"] = None  # not installed: a runtime-only install
try:
    Classifier.load("hf://{REPO}")
except ImportError as e:
    print(e)
""", {})
    assert result.returncode == 0, result.stderr
    label, imported, error = result.stdout.splitlines()
    assert label in ("ham", "spam") and imported == "False"
    assert "pip install 'spamkit[hub]'" in error


def test_push_publishes_the_bundle_and_its_card_and_hf_loads_it_back(tiny_bundle, tmp_path):
    hub = StandInHub(root=tmp_path)
    hub.start()
    env = hub_env(tmp_path, hub)
    try:
        pushed = spamkit_cli("push", tiny_bundle, "me/sms-spam", "--private", env=env)
        assert pushed.returncode == 0, pushed.stderr
        assert [(c["organization"], c["name"], c["visibility"]) for c in hub.created] == [
            ("me", "sms-spam", "private")]
        commit = hub.repos["me/sms-spam"].commit
        assert f"pushed to hf://me/sms-spam: {hub.url}/me/sms-spam/commit/{commit}" \
            in pushed.stdout
        # What went up is exactly the dry run's folder: the bundle and README.md.
        staged = tmp_path / "staged"
        dry = spamkit_cli("push", tiny_bundle, "me/sms-spam", "--dry-run", staged, env=env)
        assert dry.returncode == 0, dry.stderr
        published = hub.repos["me/sms-spam"].files()
        assert sorted(published) == sorted(p.name for p in staged.iterdir())
        assert all(p.read_bytes() == (staged / name).read_bytes()
                   for name, p in published.items())
        assert load_and_predict(env, "hf://me/sms-spam") == [local_answers(tiny_bundle)]
    finally:
        hub.stop()


def test_the_model_card_says_what_the_bundle_is_and_how_to_load_it(tiny_bundle, tmp_path):
    staged = tmp_path / "staged"
    result = spamkit_cli("push", tiny_bundle, "me/sms-spam", "--dry-run", staged)
    assert result.returncode == 0, result.stderr
    assert "not pushed" in result.stdout and str(staged) in result.stdout
    manifest = json.loads((tiny_bundle / "manifest.json").read_text())
    assert sorted(p.name for p in staged.iterdir()) == sorted(
        ["README.md", "manifest.json", *manifest["files"]])
    card = (staged / "README.md").read_text()
    front, body = card.removeprefix("---\n").split("\n---\n", 1)
    meta = {k: json.loads(v) for k, v in (line.split(": ", 1) for line in front.splitlines())}
    assert meta["library_name"] == "spamkit"
    assert meta["pipeline_tag"] == "text-classification"
    assert "onnx" in meta["tags"]
    assert "- Labels: `ham`, `spam`" in body
    digest = local_answers(tiny_bundle)["digest"]
    assert f'Classifier.load("hf://me/sms-spam", digest="{digest}")' in body
    assert "spamkit classify hf://me/sms-spam" in body
    for name, value in manifest["verification"].items():
        shown = f"{value:.6g}" if isinstance(value, float) else str(value)
        assert f"| {name} | {shown} |" in body


def test_push_refuses_a_damaged_bundle_and_a_bad_repository_name(tiny_bundle, tmp_path):
    bundle = tmp_path / "bundle"
    shutil.copytree(tiny_bundle, bundle)
    tokenizer = bundle / "tokenizer.json"
    tokenizer.write_bytes(tokenizer.read_bytes().replace(b'"', b"'", 1))
    staged = tmp_path / "staged"
    assert_clean_failure(spamkit_cli("push", bundle, "me/sms-spam", "--dry-run", staged),
                         "tokenizer.json does not match its checksum", out=staged)
    assert_clean_failure(spamkit_cli("push", tiny_bundle, "sms-spam", "--dry-run", staged),
                         "'sms-spam' is not a Hub repository: write org/name", out=staged)
