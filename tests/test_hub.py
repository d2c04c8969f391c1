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
    for name, value in manifest["verification"].items():  # names and strings as code
        shown = (f"{value:.6g}" if isinstance(value, float)
                 else f"`{value}`" if isinstance(value, str) else str(value))
        assert f"| `{name}` | {shown} |" in body


def test_push_refuses_a_damaged_bundle(tiny_bundle, tmp_path):
    bundle = tmp_path / "bundle"
    shutil.copytree(tiny_bundle, bundle)
    tokenizer = bundle / "tokenizer.json"
    tokenizer.write_bytes(tokenizer.read_bytes().replace(b'"', b"'", 1))
    staged = tmp_path / "staged"
    assert_clean_failure(spamkit_cli("push", bundle, "me/sms-spam", "--dry-run", staged),
                         "tokenizer.json does not match its checksum", out=staged)


def rename_listed(bundle, old: str, new: str, field: str | None = None) -> None:
    """List `old` as `new` in the bundle's manifest (`field` names it too), as a hand-edited
    manifest would; the files themselves are left where they are."""
    path = bundle / "manifest.json"
    manifest = json.loads(path.read_text())
    for key in ("files", "sizes"):
        manifest[key][new] = manifest[key].pop(old)
    if field:
        manifest[field] = new
    path.write_text(json.dumps(manifest, indent=2))


def test_a_commit_cannot_load_a_file_from_another_commits_snapshot(hub, tiny_bundle, tmp_path):
    env = hub_env(tmp_path, hub)
    load_and_predict(env, f"hf://{REPO}")  # COMMIT's files are in the cache
    # The next commit on main lists its tokenizer as the one in COMMIT's snapshot folder.
    folder = tmp_path / "next"
    shutil.copytree(tiny_bundle, folder)
    (folder / "tokenizer.json").unlink()
    other = f"../{COMMIT}/tokenizer.json"
    rename_listed(folder, "tokenizer.json", other, field="tokenizer")
    hub.repos[REPO] = Repo(folder, "89abcdef" * 5)
    fetched = hub.downloaded(REPO)
    result = spamkit_cli("classify", f"hf://{REPO}", "see you at 6?", env=env)
    assert_clean_failure(result, f"hf://{REPO}: its manifest.json lists {other!r}, which is not "
                         "a plain relative path")
    # Refused on reading the manifest: nothing it lists was fetched, from any commit.
    assert hub.downloaded(REPO) == sorted([*fetched, "manifest.json"])


def plant_bundle(tmp_path, tiny_bundle, name: str = "outside"):
    """A bundle folder beside the Hugging Face cache, and the cache's folders of
    org/good (its refs/ and snapshots/), empty, as a reference to it needs them."""
    outside = tmp_path / name
    shutil.copytree(tiny_bundle, outside)
    repo = tmp_path / "hf" / "hub" / "models--org--good"
    for sub in ("refs", "snapshots"):
        (repo / sub).mkdir(parents=True, exist_ok=True)
    return outside, repo


def test_an_offline_revision_cannot_lead_out_of_the_cache(tiny_bundle, tmp_path):
    outside, _ = plant_bundle(tmp_path, tiny_bundle)
    # refs/../../../../pointer is tmp_path/pointer; snapshots/../../../../outside, `outside`.
    (tmp_path / "pointer").write_text("../../../../outside")
    reference = "hf://org/good@../../../../pointer"
    offline = hub_env(tmp_path, offline=True)
    result = spamkit_cli("classify", reference, "see you at 6?", env=offline)
    assert result.returncode == 2
    assert_clean_failure(result, repr(reference), "is not a Hub reference", "the revision "
                         "'../../../../pointer' is neither a commit's 40 hex digits nor a branch")
    for revision in ["/etc", "a//b", "a\\b", "", ".hidden", "v1/"]:
        reference = f"hf://org/good@{revision}"
        error = python(f"""
from spamkit.runtime import Classifier
try:
    Classifier.load({reference!r})
except ValueError as e:
    print(e)
""", offline)
        assert f"the revision {revision!r} is neither" in error.stdout, (revision, error)


def test_a_changed_refs_file_or_snapshot_link_cannot_lead_out_of_the_cache(tiny_bundle,
                                                                            tmp_path):
    outside, repo = plant_bundle(tmp_path, tiny_bundle)
    offline = hub_env(tmp_path, offline=True)
    # refs/main holds a path, not a commit: snapshots/../../../../outside is `outside`.
    (repo / "refs" / "main").write_text("../../../../outside")
    assert_clean_failure(spamkit_cli("classify", "hf://org/good", "hi", env=offline),
                         "hf://org/good leads to", str(outside), "outside the Hugging Face "
                         f"cache's {repo / 'snapshots'}")
    # refs/main holds a commit whose snapshot folder is a link to `outside`.
    (repo / "refs" / "main").write_text(COMMIT)
    (repo / "snapshots" / COMMIT).symlink_to(outside)
    assert_clean_failure(spamkit_cli("classify", "hf://org/good", "hi", env=offline),
                         "hf://org/good leads to", str(outside), "outside the Hugging Face")


@pytest.mark.parametrize("reference, problem", [
    ("hf://../x", "'..' starts or ends with '-' or '.'"),
    ("hf://org/sms spam", "'sms spam' may hold only letters, digits, '-', '_' and '.'"),
    ("hf://org/sms--spam", "'org/sms--spam' has '--' or '..'"),
    ("hf://org/a/b", "write org/name"),
])
def test_a_malformed_reference_is_one_line_saying_what_is_wrong(reference, problem, tmp_path):
    result = spamkit_cli("classify", reference, "hi", env=hub_env(tmp_path, offline=True))
    assert result.returncode == 2
    assert_clean_failure(result, f"{reference!r} is not a Hub reference: {problem}",
                         "hf://org/name@revision")


def cache_state(cache) -> dict:
    """Every path in the cache, with its link target or its bytes' sha256."""
    import hashlib

    return {str(p.relative_to(cache)): os.readlink(p) if p.is_symlink()
            else hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else "dir"
            for p in sorted(cache.rglob("*"))}


def test_calibrate_refuses_a_bundle_on_the_hub_or_in_its_cache(hub, tmp_path):
    env = hub_env(tmp_path, hub)
    load_and_predict(env, f"hf://{REPO}")
    cache = tmp_path / "hf" / "hub"
    before = cache_state(cache)
    snapshot = cache / CACHE_FOLDER / "snapshots" / COMMIT
    calibrate = ("calibrate", "--target-precision", "0.05", "--data", SMS_FILE)
    assert_clean_failure(spamkit_cli(*calibrate, f"hf://{REPO}@v1", env=env),
                         f"hf://{REPO}@v1 is on the Hugging Face Hub: copy it to a folder first "
                         f"(hf download {REPO} --revision v1 --local-dir DIR)")
    assert_clean_failure(spamkit_cli(*calibrate, snapshot, env=env),
                         f"{snapshot} is a snapshot in the Hugging Face cache",
                         f"copy it to a folder first (cp -rL {snapshot} DIR)")
    assert cache_state(cache) == before


def test_push_refuses_a_bundle_that_lists_a_readme_of_its_own(tiny_bundle, tmp_path):
    bundle = tmp_path / "bundle"
    shutil.copytree(tiny_bundle, bundle)
    (bundle / "tokenizer.json").rename(bundle / "README.md")  # listed, with its sha256
    rename_listed(bundle, "tokenizer.json", "README.md", field="tokenizer")
    staged = tmp_path / "staged"
    assert_clean_failure(spamkit_cli("push", bundle, "me/sms-spam", "--dry-run", staged),
                         "lists README.md, the model card that push writes", out=staged)


def test_push_refuses_a_file_named_by_a_path_that_is_not_plain(tiny_bundle, tmp_path):
    bundle = tmp_path / "bundle"
    shutil.copytree(tiny_bundle, bundle)
    (bundle / "sub").mkdir()
    rename_listed(bundle, "tokenizer.json", "sub/../tokenizer.json", field="tokenizer")
    staged = tmp_path / "staged"
    assert_clean_failure(spamkit_cli("push", bundle, "me/sms-spam", "--dry-run", staged),
                         "lists 'sub/../tokenizer.json', which is not a plain relative path",
                         out=staged)


def test_the_model_card_shows_what_the_manifest_says_and_renders_none_of_it(tiny_bundle,
                                                                             tmp_path):
    from html.parser import HTMLParser

    from markdown_it import MarkdownIt

    bundle = tmp_path / "bundle"
    shutil.copytree(tiny_bundle, bundle)
    manifest = json.loads((bundle / "manifest.json").read_text())
    hostile = ["ham`<img src=x onerror=alert(1)>`", "<script>alert(2)</script> | *spam*"]
    manifest["labels"] = hostile
    manifest["threshold"] = {"label": hostile[1], "value": 0.5}
    manifest["verification"]["<b>x</b>|y"] = "<i>it</i>"
    (bundle / "manifest.json").write_text(json.dumps(manifest))
    staged = tmp_path / "staged"
    result = spamkit_cli("push", bundle, "me/sms-spam", "--dry-run", staged)
    assert result.returncode == 0, result.stderr
    body = (staged / "README.md").read_text().split("\n---\n", 1)[1]  # the Hub reads the front

    class Page(HTMLParser):  # the tags of the page and the text of its <code> elements
        def __init__(self):
            super().__init__()
            self.tags, self.code, self.in_code = set(), [], False

        def handle_starttag(self, tag, attrs):
            self.tags.add(tag)
            self.in_code = tag == "code"
            self.code += [""] if self.in_code else []

        def handle_endtag(self, tag):
            self.in_code = False

        def handle_data(self, data):
            if self.in_code:
                self.code[-1] += data

    page = Page()
    page.feed(MarkdownIt("commonmark", {"html": True}).enable("table").render(body))
    assert page.tags <= {"h1", "h2", "p", "ul", "li", "code", "pre", "table", "thead", "tbody",
                         "tr", "th", "td"}, page.tags
    assert {*hostile, "<b>x</b>|y", "<i>it</i>"} <= set(page.code), page.code


@pytest.mark.parametrize("repo_id, problem", [
    ("sms-spam", "write org/name"),
    ("me/sms--spam", "'me/sms--spam' has '--' or '..'"),
    ("me/-spam", "'-spam' starts or ends with '-' or '.'"),
    ("me/sms spam", "'sms spam' may hold only letters, digits, '-', '_' and '.'"),
    ("me/spam.git", "'me/spam.git' ends with '.git'"),
    ("me/" + "s" * 97, "an org or name is at most 96 characters, not 97"),
])
def test_push_to_a_malformed_repository_id_says_what_is_wrong_with_it(repo_id, problem, tmp_path):
    # Checked first: the folder pushed (here not a bundle) is not even looked at.
    line = assert_clean_failure(spamkit_cli("push", tmp_path, repo_id, env=hub_env(tmp_path)),
                                f"{repo_id!r} is not a Hub repository id: {problem}")
    assert "log in" not in line


def test_push_says_log_in_only_when_the_hub_refuses_the_token(tiny_bundle, tmp_path):
    unreachable = spamkit_cli("push", tiny_bundle, "me/sms-spam", env=hub_env(tmp_path))
    line = assert_clean_failure(unreachable, "cannot push to me/sms-spam:")
    assert "log in" not in line
    hub = StandInHub(root=tmp_path, token="hf_other")
    hub.start()
    try:
        refused = spamkit_cli("push", tiny_bundle, "me/sms-spam", env=hub_env(tmp_path, hub))
    finally:
        hub.stop()
    assert_clean_failure(refused, "cannot push to me/sms-spam: ", "401",
                         "(log in with `hf auth login` or set HF_TOKEN)")
    assert hub.repos == {}


def test_push_dry_run_refuses_a_folder_that_holds_files(tiny_bundle, tmp_path):
    staged = tmp_path / "staged"
    staged.mkdir()
    (staged / "notes.txt").write_text("mine")
    assert_clean_failure(spamkit_cli("push", tiny_bundle, "me/sms-spam", "--dry-run", staged),
                         f"--dry-run {staged} exists and is not an empty directory")
    assert [p.name for p in staged.iterdir()] == ["notes.txt"]


def test_a_listed_file_named_like_a_glob_pattern_is_fetched_alone(hub, tiny_bundle, tmp_path):
    folder = tmp_path / "globbed"
    shutil.copytree(tiny_bundle, folder)
    (folder / "tokenizer.json").rename(folder / "tokenizer[12].json")
    rename_listed(folder, "tokenizer.json", "tokenizer[12].json", field="tokenizer")
    # What the name, read as a pattern, would match instead: not the bundle's.
    shutil.copyfile(folder / "tokenizer[12].json", folder / "tokenizer1.json")
    hub.repos["spamkit-test/globbed"] = Repo(folder, COMMIT)
    [online] = load_and_predict(hub_env(tmp_path, hub), "hf://spamkit-test/globbed")
    assert online["proba"] == local_answers(tiny_bundle)["proba"]
    listed = json.loads((folder / "manifest.json").read_text())["files"]
    assert hub.downloaded("spamkit-test/globbed") == sorted(["manifest.json", *listed])


# An app that loads a bundle by the name it was given, pickles it as Ray or multiprocessing
# would, or loads such a pickle (argv[2]: "load" or "unpickle").
BY_NAME = """
import json, pickle, sys
from spamkit.runtime import Classifier
if sys.argv[2] == "load":
    clf = Classifier.load(sys.argv[1])
    open("clf.pickle", "wb").write(pickle.dumps(clf))
else:
    clf = pickle.loads(open(sys.argv[1], "rb").read())
print(json.dumps({{"proba": clf.predict_proba({messages!r}).tolist(), "digest": clf.digest,
                  "bundle": str(clf.bundle)}}))
"""


def by_name(app, env: dict, name: str, how: str = "load") -> dict:
    """What the app in folder `app` answers for MESSAGES after loading `name` `how`."""
    result = subprocess.run([sys.executable, "-c", BY_NAME.format(messages=MESSAGES), name, how],
                            capture_output=True, text=True, timeout=300, cwd=app,
                            env={**os.environ, **env})
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_a_bare_org_name_is_a_hub_id_where_no_such_folder_is(hub, tiny_bundle, tmp_path):
    app = tmp_path / "app"
    app.mkdir()
    local = local_answers(tiny_bundle)
    snapshot = tmp_path / "hf" / "hub" / CACHE_FOLDER / "snapshots" / COMMIT

    online = by_name(app, hub_env(tmp_path, hub), REPO)

    assert online == {**local, "bundle": str(snapshot)}  # as hf://org/name loads it
    # Pickled as the reference at the commit it loaded: any process loads the same files.
    assert f"hf://{REPO}@{COMMIT}".encode() in (app / "clf.pickle").read_bytes()
    hub.stop()
    offline = hub_env(tmp_path, offline=True)
    assert by_name(app, offline, "clf.pickle", "unpickle") == online
    # A folder of that name is the folder, never the Hub (here another bundle).
    shutil.copytree(tiny_bundle, app / REPO)
    manifest = json.loads((app / REPO / "manifest.json").read_text())
    manifest["threshold"] = {"label": "spam", "value": 0.5}
    (app / REPO / "manifest.json").write_text(json.dumps(manifest))
    assert by_name(app, offline, REPO)["bundle"] == REPO
    # Neither a folder nor on the Hub (offline, not cached): both said, in one line.
    assert_clean_failure(spamkit_cli("classify", "spamkit-test/nothing", "hi", env=offline),
                         "bundle not found: spamkit-test/nothing is not a directory, nor a "
                         "bundle on the Hugging Face Hub (hf://spamkit-test/nothing is not in "
                         "the Hugging Face cache")
