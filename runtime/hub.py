"""Bundles on the Hugging Face Hub: `hf://org/name[@revision]` names the bundle published in a
model repository (`spamkit push`), at a branch, tag or commit (default: main).

huggingface_hub (the `hub` extra) downloads it into its own cache, the one transformers and
sentence-transformers share ($HF_HUB_CACHE, else $HF_HOME/hub, else ~/.cache/huggingface/hub),
and it is imported only here, only when a reference is given. Only the files the bundle's
manifest lists are fetched, and all from one commit: the reference is checked before anything
is looked up (the Hub's rules for org/name; a revision is a commit or a branch or tag name,
which huggingface_hub joins to a path in its cache), the snapshot folder must be in the
repository's `snapshots/` in the cache, and each listed file must be a plain relative path in
it. What comes back is an ordinary bundle folder: the caller then checks it as it checks any
other. With HF_HUB_OFFLINE=1 (or no network) a reference loads from the cache alone. A bare
`org/name[@revision]` that is no path here is read as `hf://org/name[@revision]`.
"""

from __future__ import annotations

import contextlib
import glob
import logging
import os
import re
from collections.abc import Iterator
from pathlib import Path

from spamkit.runtime.bundle import (
    MANIFEST_FILE,
    MAX_MANIFEST_BYTES,
    Manifest,
    check_manifest,
    first_line,
    hub_blobs,
    load_json,
    read_capped,
)
from spamkit.runtime.errors import BundleError

HUB_SCHEME = "hf://"
# Where huggingface_hub's snapshot_download warns that no file matched its patterns.
NO_MATCH_LOGGER = "huggingface_hub._snapshot_download"
# The repository, then an optional @revision (refs/pr/1 has slashes); each checked below.
REFERENCE = re.compile(r"hf://(?P<repo>[^@]*)(?:@(?P<revision>.*))?", re.DOTALL)
USAGE = "write hf://org/name, or hf://org/name@revision for a branch, tag or commit"
# The Hub's rules for an org or a name (huggingface_hub's validate_repo_id, ASCII only).
NAME = re.compile(r"[A-Za-z0-9_.-]+")
MAX_NAME = 96
COMMIT = re.compile(r"[0-9a-f]{40}")
# One /-separated part of a branch or tag name: never empty, never led by ".", no backslash.
REVISION_PART = re.compile(r"[A-Za-z0-9_+-][A-Za-z0-9_.+-]*")


def is_hub_reference(bundle: object) -> bool:
    """Whether `bundle` is an hf:// reference (checked or not: see `parse_reference`)."""
    return isinstance(bundle, str) and bundle.startswith(HUB_SCHEME)


def parse_reference(reference: str) -> tuple[str, str | None]:
    """Read `hf://org/name[@revision]`, before anything is downloaded or looked up.

    Args:
        reference: the reference.

    Returns:
        (repo id "org/name", revision or None for main).

    Raises:
        ValueError: it is no valid reference, saying what is wrong with it."""
    match = REFERENCE.fullmatch(reference)
    problem = ("it does not start with hf://" if match is None
               else repo_id_problem(match["repo"]) or revision_problem(match["revision"]))
    if problem:
        raise ValueError(f"{reference!r} is not a Hub reference: {problem} ({USAGE})")
    return match["repo"], match["revision"]


def repo_id_problem(repo_id: str) -> str | None:
    """What the Hub would refuse in `repo_id` as a model repository.

    Args:
        repo_id: "org/name".

    Returns:
        The problem, said plainly, or None for a valid org/name."""
    parts = repo_id.split("/")
    if len(parts) != 2 or not all(parts):
        return "write org/name"
    for part in parts:
        if not NAME.fullmatch(part):
            return f"{part!r} may hold only letters, digits, '-', '_' and '.'"
        if part[0] in "-." or part[-1] in "-.":
            return f"{part!r} starts or ends with '-' or '.'"
        if len(part) > MAX_NAME:
            return f"an org or name is at most {MAX_NAME} characters, not {len(part)}"
    if "--" in repo_id or ".." in repo_id:
        return f"{repo_id!r} has '--' or '..'"
    return f"{repo_id!r} ends with '.git'" if repo_id.endswith(".git") else None


def revision_problem(revision: str | None) -> str | None:
    """Why `revision` names no branch, tag or commit (huggingface_hub joins it to a path in its
    cache: '..', '/' first, '\\' or an empty part could lead anywhere).

    Args:
        revision: a commit, branch or tag name, or None (main).

    Returns:
        The problem, said plainly, or None if it is a revision."""
    if revision is None or COMMIT.fullmatch(revision):
        return None
    if ".." in revision or not all(REVISION_PART.fullmatch(p) for p in revision.split("/")):
        return (f"the revision {revision!r} is neither a commit's 40 hex digits nor a branch or "
                "tag name (letters, digits, '-', '_', '+' and '.' in parts joined by '/', no "
                "part empty or led by '.', no '..')")
    return None


def check_plain_names(manifest: Manifest, where: str) -> None:
    """Refuse a manifest naming a file by anything but a plain relative path: in a Hub cache
    snapshot, '..' (or '.', an empty part, a '\\') leads to another commit or out of it.

    Args:
        manifest: the manifest.
        where: what to call it in an error.

    Raises:
        BundleError: a listed name is not a plain relative path."""
    for name in manifest.files:
        parts = name.split("/")
        if "\\" in name or not all(parts) or any(p in (".", "..") for p in parts):
            raise BundleError(f"{where} lists {name!r}, which is not a plain relative path (no "
                              "'..', '.', '\\' or empty part); refused")


def refuse_hub_bundle(bundle: str | os.PathLike[str], command: str) -> None:
    """Refuse to let `command`, which rewrites a bundle, touch one on the Hub or in the Hugging
    Face cache: a snapshot's files are its commit's, shared by every program that loads it.

    Args:
        bundle: the bundle's folder or hf:// reference.
        command: the command, as the error names it (e.g. "spamkit calibrate").

    Raises:
        BundleError: it is on the Hub or in its cache, saying how to copy it to a folder."""
    if is_hub_reference(str(bundle)):
        repo, _, revision = str(bundle).removeprefix(HUB_SCHEME).partition("@")
        copy = f"hf download {repo}{' --revision ' + revision if revision else ''} --local-dir DIR"
        raise BundleError(f"{command} rewrites the bundle, and {bundle} is on the Hugging Face "
                          f"Hub: copy it to a folder first ({copy}) and {command} DIR")
    if hub_blobs(Path(bundle).resolve()) is not None:
        raise BundleError(f"{command} rewrites the bundle, and {bundle} is a snapshot in the "
                          f"Hugging Face cache, shared by every program that loads it: copy it "
                          f"to a folder first (cp -rL {bundle} DIR) and {command} DIR")


def hub_reference(bundle: str | os.PathLike[str]) -> str | None:
    """The hf:// reference `bundle` names, if any.

    Args:
        bundle: a folder, an hf:// reference, or a bare Hub id (org/name[@revision], as
            transformers takes one).

    Returns:
        The reference itself; for a bare Hub id that is no path here, that id after hf://;
        None for anything else (a path)."""
    if is_hub_reference(bundle):
        return str(bundle)
    if not isinstance(bundle, str) or os.path.lexists(bundle):
        return None
    try:  # checked as the same id after hf:// is, so both take one road
        parse_reference(HUB_SCHEME + bundle)
    except ValueError:
        return None
    return HUB_SCHEME + bundle


def locate_bundle(bundle: str | os.PathLike[str]) -> tuple[Path, str]:
    """Where `bundle` is on this machine, and what names that very bundle elsewhere.

    Args:
        bundle: a folder, an hf:// reference, or a bare Hub id that is no path here.

    Returns:
        (local folder, name for another process or machine): a folder is itself, and its
        absolute path; a Hub bundle is the Hub cache's copy (downloaded first if it is not
        there), and the reference at that snapshot's commit.

    Raises:
        ValueError: a malformed hf:// reference.
        ImportError: an hf:// reference without huggingface_hub (the `hub` extra).
        BundleError: as `download_bundle`; for a bare id, any failure, said with "no folder"."""
    reference = hub_reference(bundle)
    if reference is None:
        return Path(bundle), os.path.abspath(bundle)
    try:
        folder = download_bundle(reference)
    except (BundleError, ImportError) as e:
        if reference == bundle:
            raise
        # A mistyped folder reads as an org/name too: say both.
        raise BundleError(f"bundle not found: {bundle} is not a directory, nor a bundle on the "
                          f"Hugging Face Hub ({e})") from None
    repo_id, _ = parse_reference(reference)
    return folder, f"{HUB_SCHEME}{repo_id}@{folder.name}"  # a snapshot is named for its commit


def download_bundle(reference: str) -> Path:
    """The cached snapshot folder holding the bundle `reference` names, with every file its
    manifest lists (only the missing ones are downloaded).

    Args:
        reference: "hf://org/name[@revision]".

    Returns:
        The snapshot folder, named for its commit.

    Raises:
        ValueError: `reference` is malformed.
        ImportError: huggingface_hub is not installed (the `hub` extra).
        BundleError: it cannot be had (offline and not cached, no such repository or
            revision, not a spamkit bundle, a manifest naming a file outside the snapshot)."""
    repo_id, revision = parse_reference(reference)
    try:
        import huggingface_hub
    except ImportError:
        raise ImportError("loading a bundle from the Hugging Face Hub needs huggingface_hub: "
                          "pip install 'spamkit[hub]'") from None
    # The manifest first, to learn the bundle's files; then those files from the same commit
    # (a snapshot folder is named for its commit). snapshot_download, not hf_hub_download: it
    # fails at once without a network, where hf_hub_download retries, warning each time.
    with _quiet(NO_MATCH_LOGGER):  # a repository without a manifest is reported below
        folder = fetch_snapshot(reference, repo_id, revision=revision,
                                allow_patterns=[MANIFEST_FILE])
    path = folder / MANIFEST_FILE
    if not path.is_file():
        raise BundleError(f"{reference} is not a spamkit bundle: the repository has no "
                          f"{MANIFEST_FILE}")
    manifest = check_manifest(load_json(read_capped(path, MAX_MANIFEST_BYTES), str(path)),
                              str(path))
    check_plain_names(manifest, f"{reference}: its {MANIFEST_FILE}")  # before any download
    missing = [name for name in manifest.files if not (folder / name).exists()]
    if missing:  # what is there is that commit's: only what is missing is fetched
        # Exact names: a listed file named like a glob pattern must not pull in others.
        _from_hub(reference, huggingface_hub.snapshot_download, repo_id, revision=folder.name,
                  allow_patterns=[glob.escape(name) for name in missing])
    return folder


def fetch_snapshot(reference: str, repo_id: str, **kwargs) -> Path:
    """The snapshot folder that huggingface_hub's snapshot_download gives for `repo_id`.

    Args:
        reference: what to call it in an error.
        repo_id: "org/name".
        **kwargs: snapshot_download's own arguments (revision, allow_patterns, ...).

    Returns:
        The snapshot folder, in the repository's `snapshots/` in the cache.

    Raises:
        BundleError: the download fails (one line), or the folder lies elsewhere."""
    import huggingface_hub

    folder = Path(_from_hub(reference, huggingface_hub.snapshot_download, repo_id, **kwargs))
    _check_in_cache(reference, folder, repo_id)
    return folder


def _check_in_cache(reference: str, folder: Path, repo_id: str) -> None:
    """Refuse a snapshot folder outside the repository's `snapshots/` in the cache, where a
    changed refs file (its text is joined to a path) or a snapshot link would lead."""
    from huggingface_hub import constants
    from huggingface_hub.file_download import repo_folder_name

    snapshots = (Path(constants.HF_HUB_CACHE) / repo_folder_name(repo_id=repo_id,
                                                                 repo_type="model") / "snapshots")
    if folder.resolve().parent != snapshots.resolve():
        raise BundleError(f"{reference} leads to {folder.resolve()}, outside the Hugging Face "
                          f"cache's {snapshots}: refused (a changed refs file or snapshot link)")


def _from_hub(reference: str, download, repo_id: str, **kwargs) -> str:
    """`download(repo_id, **kwargs)` by huggingface_hub; its failures as one-line
    BundleErrors."""
    from huggingface_hub import constants, errors

    try:
        return download(repo_id, library_name="spamkit", **kwargs)
    except errors.RevisionNotFoundError:
        raise BundleError(f"{reference}: the repository has no revision "
                          f"{kwargs['revision']}") from None
    except errors.RepositoryNotFoundError:
        raise BundleError(f"{reference}: no such model repository on the Hub, or a private one "
                          "(log in with `hf auth login` or set HF_TOKEN)") from None
    except errors.LocalEntryNotFoundError as e:
        raise BundleError(_not_cached(reference, e, constants)) from None
    except Exception as e:  # noqa: BLE001 - HTTP, connection and file errors of several libraries
        raise BundleError(f"cannot download {reference}: {first_line(e)}") from None


@contextlib.contextmanager
def _quiet(logger: str) -> Iterator[None]:
    """Drop what one of a library's loggers says for the duration (its others still speak)."""
    log = logging.getLogger(logger)

    def drop(record: logging.LogRecord) -> bool:
        return False

    log.addFilter(drop)
    try:
        yield
    finally:
        log.removeFilter(drop)


def _not_cached(reference: str, error: Exception, constants) -> str:
    """Why a reference could not be had from the cache alone, and what to do about it."""
    where = f"{reference} is not in the Hugging Face cache ({constants.HF_HUB_CACHE})"
    if constants.HF_HUB_OFFLINE:
        return f"{where} and HF_HUB_OFFLINE is set: download it once without HF_HUB_OFFLINE"
    cause = error.__cause__ or error
    return f"{where} and the Hub cannot be reached ({type(cause).__name__}: {first_line(cause)})"
