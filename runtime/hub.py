"""Bundles on the Hugging Face Hub: `hf://org/name[@revision]` names the bundle published in a
model repository (`spamkit push`), at a branch, tag or commit (default: main).

huggingface_hub (the `hub` extra) downloads it into its own cache, the one transformers and
sentence-transformers share ($HF_HUB_CACHE, else $HF_HOME/hub, else ~/.cache/huggingface/hub),
and it is imported only here, only when a reference is given. Only the files the bundle's
manifest lists are fetched, and all from one commit. What comes back is an ordinary bundle
folder: the caller then checks it as it checks any other. With HF_HUB_OFFLINE=1 (or no
network) a reference loads from the cache alone.
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
    check_manifest,
    first_line,
    load_json,
    read_capped,
)
from spamkit.runtime.errors import BundleError

HUB_SCHEME = "hf://"
# Where huggingface_hub's snapshot_download warns that no file matched its patterns.
NO_MATCH_LOGGER = "huggingface_hub._snapshot_download"
# org/name, then an optional @revision (a branch, tag or commit; refs/pr/1 has slashes).
REFERENCE = re.compile(r"hf://(?P<repo>[^/@\s]+/[^/@\s]+)(?:@(?P<revision>[^@\s]+))?")


def is_hub_reference(bundle: object) -> bool:
    return isinstance(bundle, str) and bundle.startswith(HUB_SCHEME)


def parse_reference(reference: str) -> tuple[str, str | None]:
    """(repo id, revision or None) of `hf://org/name[@revision]`; ValueError if malformed."""
    match = REFERENCE.fullmatch(reference)
    if match is None:
        raise ValueError(f"{reference!r} is not a Hub reference: write hf://org/name, or "
                         "hf://org/name@revision for a branch, tag or commit")
    return match["repo"], match["revision"]


def resolve_bundle(bundle: str | os.PathLike[str]) -> Path:
    """The local folder of `bundle`: itself, or for an `hf://` reference the Hub cache's copy
    (downloaded first if it is not there)."""
    return download_bundle(bundle) if is_hub_reference(bundle) else Path(bundle)


def download_bundle(reference: str) -> Path:
    """The cached snapshot folder holding the bundle `reference` names, with every file its
    manifest lists; BundleError when it cannot be had (offline and not cached, no such
    repository or revision, not a spamkit bundle)."""
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
        folder = Path(_from_hub(reference, huggingface_hub.snapshot_download, repo_id,
                                revision=revision, allow_patterns=[MANIFEST_FILE]))
    path = folder / MANIFEST_FILE
    if not path.is_file():
        raise BundleError(f"{reference} is not a spamkit bundle: the repository has no "
                          f"{MANIFEST_FILE}")
    manifest = check_manifest(load_json(read_capped(path, MAX_MANIFEST_BYTES), str(path)),
                              str(path))
    missing = [name for name in manifest.files if not (folder / name).exists()]
    if missing:  # what is there is that commit's: only what is missing is fetched
        # Exact names: a listed file named like a glob pattern must not pull in others.
        _from_hub(reference, huggingface_hub.snapshot_download, repo_id, revision=folder.name,
                  allow_patterns=[glob.escape(name) for name in missing])
    return folder


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
    except errors.HFValidationError as e:  # a repo id the Hub does not allow: a bad argument
        raise ValueError(f"{reference}: {first_line(e)}") from None
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
