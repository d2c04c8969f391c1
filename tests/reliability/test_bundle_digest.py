"""Pinning a bundle: `spamkit export` prints its digest (the sha256 of manifest.json, which holds
every other file's sha256), and `Classifier.load(digest=...)` or `--digest` refuses any other
bundle, however consistent, such as one whose manifest swaps the labels."""

import hashlib
import json
import re
import shutil

import onnx
import pytest
from conftest import SMS_FILE, assert_clean_failure, spamkit_cli

from spamkit.runtime import BundleError, Classifier
from spamkit.runtime.bundle import sha256_file

SPAM = "WINNER!! You have won a 1 week FREE membership. Call 09061701461 to claim now"
HAM = "Ok, see you at 6 then. Bring the charger please"


def digest_of(bundle) -> str:
    return hashlib.sha256((bundle / "manifest.json").read_bytes()).hexdigest()


def printed_digest(stdout: str) -> str:
    found = re.findall(r"^digest ([0-9a-f]{64}) ", stdout, re.MULTILINE)
    assert len(found) == 1, stdout
    return found[0]


@pytest.fixture
def bundle(tiny_bundle, tmp_path):
    return shutil.copytree(tiny_bundle, tmp_path / "bundle")


def swap_labels(bundle) -> None:
    manifest = json.loads((bundle / "manifest.json").read_text())
    manifest["labels"].reverse()
    (bundle / "manifest.json").write_text(json.dumps(manifest, indent=2))


def test_export_prints_the_digest_an_app_pins(tiny_checkpoint, tmp_path):
    out = tmp_path / "bundle"
    result = spamkit_cli("export", tiny_checkpoint, "--out", out)
    assert result.returncode == 0, result.stderr
    digest = printed_digest(result.stdout)
    assert digest == digest_of(out)
    clf = Classifier.load(out, digest=digest)
    assert clf.digest == digest
    # As printed, with a "sha256:" prefix, in capitals, or with the shell's stray spaces.
    for spelling in (f"sha256:{digest}", digest.upper(), f" {digest}\n"):
        assert Classifier.load(out, digest=spelling).digest == digest


def test_a_pinned_load_refuses_a_manifest_whose_labels_were_swapped(bundle):
    """The manifest cannot checksum itself: swapped labels load fine and flip every answer.
    Only the pin can tell, and it does before anything else is read."""
    pinned = digest_of(bundle)
    before = Classifier.load(bundle, digest=pinned).predict([SPAM, HAM])
    swap_labels(bundle)
    assert Classifier.load(bundle).predict([SPAM, HAM]) == [
        {"ham": "spam", "spam": "ham"}[label] for label in before]
    with pytest.raises(BundleError) as e:
        Classifier.load(bundle, digest=pinned)
    assert str(e.value) == (f"{bundle} is not the pinned bundle: its digest is "
                            f"{digest_of(bundle)}, not {pinned}")


def test_a_graph_reading_its_weights_from_an_unlisted_file_is_refused_under_the_pin(bundle):
    """Before: the int8 graph's weights moved to unlisted.bin, which no load hashed; with only
    the graph re-hashed into the manifest, the pinned digest kept answering however
    unlisted.bin's bytes were changed."""
    graph = bundle / "model.int8.onnx"
    onnx.save(onnx.load(graph), graph, save_as_external_data=True, location="unlisted.bin")
    manifest = json.loads((bundle / "manifest.json").read_text())
    manifest["files"]["model.int8.onnx"] = sha256_file(graph)
    manifest["sizes"]["model.int8.onnx"] = graph.stat().st_size
    (bundle / "manifest.json").write_text(json.dumps(manifest, indent=2))
    pinned = digest_of(bundle)
    weights = bytearray((bundle / "unlisted.bin").read_bytes())
    weights[len(weights) // 2:] = bytes(len(weights) - len(weights) // 2)
    (bundle / "unlisted.bin").write_bytes(weights)
    result = spamkit_cli("classify", bundle, SPAM, HAM, "--digest", pinned)
    assert_clean_failure(result, f"{graph} reads its weights from 'unlisted.bin', which the "
                                 "manifest does not list; refused")
    with pytest.raises(BundleError, match="unlisted.bin"):
        Classifier.load(bundle, digest=pinned)


def test_the_digest_is_of_the_manifest_bytes_read_once(bundle):
    clf = Classifier.load(bundle)
    assert clf.digest == digest_of(bundle)
    # Reformatting the manifest changes nothing it says but changes the bytes, so the digest.
    manifest = json.loads((bundle / "manifest.json").read_text())
    (bundle / "manifest.json").write_text(json.dumps(manifest))
    assert Classifier.load(bundle).manifest == clf.manifest
    assert Classifier.load(bundle).digest != clf.digest


def test_every_command_that_loads_a_bundle_refuses_another_with_both_digests(bundle, tmp_path):
    pinned = digest_of(bundle)
    swap_labels(bundle)
    now = digest_of(bundle)
    messages = tmp_path / "messages.txt"
    messages.write_text(f"{SPAM}\n{HAM}\n", encoding="utf-8")
    out = tmp_path / "scores.csv"
    commands = [
        ("classify", bundle, HAM),
        ("score", bundle, messages, "--out", out),
        ("bench", bundle, "--data", SMS_FILE, "--messages", "2", "--throughput-messages", "2"),
        ("eval", bundle, "--data", SMS_FILE),
    ]
    for command in commands:
        result = spamkit_cli(*command, "--digest", pinned)
        assert_clean_failure(result, "not the pinned bundle", now, pinned)
    assert not out.exists()


def test_the_right_digest_lets_every_command_run(bundle, tmp_path):
    digest = digest_of(bundle)
    result = spamkit_cli("classify", bundle, SPAM, HAM, "--digest", digest)
    assert result.returncode == 0, result.stderr
    assert len(result.stdout.splitlines()) == 2
    messages = tmp_path / "messages.txt"
    messages.write_text(f"{SPAM}\n{HAM}\n", encoding="utf-8")
    result = spamkit_cli("score", bundle, messages, "--out", tmp_path / "s.csv", "--digest",
                         f"sha256:{digest}")
    assert result.returncode == 0, result.stderr
    result = spamkit_cli("eval", bundle, "--data", SMS_FILE, "--digest", digest, "--json")
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("command", ["classify", "score", "bench", "eval"])
def test_a_malformed_digest_is_a_usage_error(bundle, command, tmp_path):
    extra = {"classify": [HAM], "score": [SMS_FILE, "--out", tmp_path / "o.csv"]}
    result = spamkit_cli(command, bundle, *extra.get(command, []), "--digest", "abc123")
    assert result.returncode == 2, result.stderr
    assert "--digest" in result.stderr and "64 hex digits" in result.stderr


def test_eval_of_a_checkpoint_with_a_digest_says_it_pins_bundles(tiny_checkpoint):
    result = spamkit_cli("eval", tiny_checkpoint, "--digest", "0" * 64)
    assert_clean_failure(result, "--digest", "bundle")


def test_calibrate_prints_the_new_digest_and_the_old_pin_no_longer_holds(bundle):
    old = digest_of(bundle)
    result = spamkit_cli("calibrate", bundle, "--data", SMS_FILE, "--target-precision", "0.9")
    assert result.returncode == 0, result.stderr
    new = printed_digest(result.stdout)
    assert new == digest_of(bundle) != old
    assert Classifier.load(bundle, digest=new).threshold is not None
    with pytest.raises(BundleError, match=f"its digest is {new}, not {old}"):
        Classifier.load(bundle, digest=old)
