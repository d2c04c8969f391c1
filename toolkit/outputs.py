"""What `train`, `export` and `score` may write over: the one check every writer makes before
it starts any work, and the lock that keeps the output its own until it ends.

An output that does not exist, or an empty directory, is written. One that exists is replaced
only with `force`, and only when it is a spamkit artifact of the kind being written (a bundle by
export, a checkpoint or unfinished training run by train, a scores file by score) that holds
nothing else: every file in it is one that kind has; anything else there is the user's and is
never touched. An output that is, or holds, one of the command's inputs is refused even with
`force`. spamkit.atomic asks `owned_files` again at the moment it replaces an output, so what
changed meanwhile is never deleted either. Torch-free.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path, PurePosixPath

from spamkit.errors import SpamkitError
from spamkit.jsonfile import peek_format_json
from spamkit.runtime.bundle import MANIFEST_FILE, open_manifest

BUNDLE, CHECKPOINT, SCORES = "bundle", "checkpoint", "scores file"
SITE = "web site"  # `spamkit web`
STATE = "training state"  # OUT/training-state, which train replaces after every epoch
TRAINING_STATE = "training-state"
# What spamkit.training writes (it imports torch, so the names are here): a checkpoint's files
# (save_checkpoint, then the curves), and a training state's (save_state).
CHECKPOINT_FILES = ("config.json", "model.safetensors", "metrics.json", "curves.png")
# A language model `spamkit pretrain` wrote (the same files): a trunk to fine-tune, not a
# classifier to export.
PRETRAINED_FORMAT = "spamkit-pretrained-lm"
STATE_FILES = ("state.json", "tensors.safetensors")


def check_output(out: str | os.PathLike[str], kind: str, *, force: bool = False,
                 inputs: Iterable[str | os.PathLike[str] | None] = ()) -> None:
    """Refuse, in one line, to write `kind` at `out` if that would delete or overwrite anything
    but a spamkit `kind` that `force` allows replacing, or any of `inputs`."""
    out = Path(out)
    check_not_input(out, inputs)
    if not (out.exists() or out.is_symlink()):
        return
    if kind != SCORES and out.is_dir() and not out.is_symlink() and not any(out.iterdir()):
        return  # an empty directory holds nothing to lose
    if not is_artifact(out, kind):
        what = "a link" if out.is_symlink() else "a directory" if out.is_dir() else "a file"
        raise SpamkitError(f"--out {out} exists and is {what} that is not a spamkit {kind}: "
                           "refusing to replace it; choose a new or empty --out")
    if not force:
        resume = " (or --resume to continue its training)" if (
            out / TRAINING_STATE).is_dir() else ""
        raise SpamkitError(f"--out {out} already holds a spamkit {kind}: add --force to replace "
                           f"it{resume}, or choose another --out")


def check_not_input(out: str | os.PathLike[str],
                    inputs: Iterable[str | os.PathLike[str] | None]) -> None:
    """Refuse an output that is one of `inputs` (by any name, links included) or holds one."""
    for given in inputs:
        if given is not None and _contains(Path(out), Path(given)):
            raise SpamkitError(f"--out {out} would overwrite the input {given}: choose another "
                               "--out")


@contextlib.contextmanager
def exclusive_output(out: str | os.PathLike[str]) -> Iterator[None]:
    """Keep `out` (and every temporary or partial name beside it) to this run for the block:
    another spamkit run that asks for it meanwhile is refused in one line. The lock is an
    flock on `.NAME.spamkit-lock` beside `out`, which the kernel releases when the process
    ends, however it ends: a killed run never leaves `out` locked."""
    out = Path(out)
    made = [p for p in [out.parent, *out.parent.parents] if not p.exists()]
    try:
        fd = _lock(out)
        try:
            yield
        finally:
            _lock_name(out).unlink(missing_ok=True)  # while still held: see _lock
            os.close(fd)
    finally:
        for folder in made:  # made for the lock: removed again if nothing else went in
            with contextlib.suppress(OSError):
                folder.rmdir()


def _lock_name(out: Path) -> Path:
    return out.parent / f".{out.name}.spamkit-lock"


def _lock(out: Path) -> int:
    """Take the lock of `out` without waiting; a descriptor that holds it until closed."""
    import fcntl  # POSIX: here, so that `spamkit classify` (whose CLI imports this) runs anywhere

    path = _lock_name(out)
    while True:
        out.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o666)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise SpamkitError(f"--out {out} is being written by another spamkit run: wait for "
                               "it to end, or choose another --out") from None
        # The run that held it deletes it before letting go: if this file is no longer at its
        # name, that run had it, and the lock that counts is the one now at the name.
        with contextlib.suppress(FileNotFoundError):
            if os.path.samestat(os.fstat(fd), os.lstat(path)):
                return fd
        os.close(fd)


def is_artifact(path: Path, kind: str) -> bool:
    """Whether `path` is something spamkit wrote as `kind` (what --force may replace)."""
    if kind == SCORES:
        return path.is_file() and not path.is_symlink() and _is_scores_file(path)
    return artifact_files(path, kind) is not None


def owned_files(path: Path) -> list[str] | None:
    """What spamkit.atomic may delete to put a new directory at `path`: the files (relative
    names) of the empty directory or spamkit artifact there, or None for anything else."""
    if path.is_dir() and not path.is_symlink() and not any(path.iterdir()):
        return []
    for kind in _EXPECTED:
        files = artifact_files(path, kind)
        if files is not None:
            return files
    return None


def artifact_files(path: Path, kind: str) -> list[str] | None:
    """Every file (relative name) of the spamkit `kind` (a directory) at `path`, if that is
    what it is and it holds nothing else; else None."""
    if not path.is_dir() or path.is_symlink():
        return None
    expected = _EXPECTED[kind](path)
    return None if expected is None else _holding_only(path, expected)


def _bundle_files(path: Path) -> set[str] | None:
    """A bundle: a manifest the runtime reads (every field checked, every file it lists
    present), and those files."""
    try:
        manifest, _ = open_manifest(path)
    except SpamkitError:
        return None
    return {MANIFEST_FILE, *manifest.files}


def _checkpoint_files(path: Path) -> set[str] | None:
    """A checkpoint (its config declares the format), or a training run stopped before its
    checkpoint was written, which holds only its resume point. A checkpoint that a new run is
    replacing (--force) holds that run's resume point too."""
    state = {f"{TRAINING_STATE}/{name}" for name in STATE_FILES}
    if any(peek_format_json(path / CHECKPOINT_FILES[0], fmt) is not None
           for fmt in ("spamkit-checkpoint", PRETRAINED_FORMAT)):  # train's or pretrain's
        return {*CHECKPOINT_FILES, *state}
    if (path / TRAINING_STATE).is_dir() and not (path / TRAINING_STATE).is_symlink():
        return state
    return None


def _state_files(path: Path) -> set[str] | None:
    if peek_format_json(path / STATE_FILES[0], "spamkit-training-state") is None:
        return None
    return set(STATE_FILES)


def _site_files(path: Path) -> set[str] | None:
    """A web site (its site.json declares the format): everything in it, not yet checked file
    by file."""
    if peek_format_json(path / "site.json", "spamkit-web-site") is None:
        return None
    return {p.relative_to(path).as_posix() for p in path.rglob("*")}


# Each kind of directory -> the files it may hold, when `path` declares that kind; tried in
# this order by owned_files.
_EXPECTED: dict[str, Callable[[Path], set[str] | None]] = {
    BUNDLE: _bundle_files, CHECKPOINT: _checkpoint_files, STATE: _state_files, SITE: _site_files}


def _holding_only(path: Path, expected: set[str]) -> list[str] | None:
    """The files under `path` if every entry there is one of `expected`, a folder of them, or
    what spamkit.atomic left of one when killed (`.NAME.tmp-*`, `.NAME.old-*`); else None."""
    allowed = expected | {p.as_posix() for name in expected
                          for p in PurePosixPath(name).parents if p.name}
    tops = {name.split("/")[0] for name in expected}
    files = []
    for entry in path.rglob("*"):  # links are entries: never followed
        name = entry.relative_to(path).as_posix()
        top = name.split("/")[0]
        if name not in allowed and not any(top.startswith((f".{t}.tmp-", f".{t}.old-"))
                                           for t in tops):
            return None
        if entry.is_symlink() or not entry.is_dir():
            files.append(name)
    return files


def _is_scores_file(path: Path) -> bool:
    """A `spamkit score` output: its first line is the header `id,label,p_<class>...` (CSV) or
    an object with those keys (JSON Lines)."""
    with open(path, "rb") as f:
        first = f.readline(1 << 16).decode("utf-8", errors="replace").strip()
    try:
        columns = list(json.loads(first)) if first.startswith("{") else first.split(",")
    except (ValueError, RecursionError):
        return False
    return (len(columns) > 2 and columns[:2] == ["id", "label"]
            and all(str(c).startswith("p_") for c in columns[2:]))


def _contains(out: Path, given: Path) -> bool:
    """Whether writing `out` would replace `given`: the same file or directory (by any name,
    links included), or a directory it lies in."""
    if not given.exists():
        return False
    if out.exists() and os.path.samefile(out, given):
        return True
    return given.resolve().is_relative_to(out.resolve())
