"""What `train`, `export` and `score` may write over: the one check every writer makes before
it starts any work.

An output that does not exist, or an empty directory, is written. One that exists is replaced
only with `force`, and only when it is a spamkit artifact of the kind being written (a bundle by
export, a checkpoint or unfinished training run by train, a scores file by score); anything else
there is the user's and is never touched. An output that is, or holds, one of the command's
inputs is refused even with `force`. Torch-free.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from pathlib import Path

from spamkit.errors import SpamkitError
from spamkit.jsonfile import peek_format_json

BUNDLE, CHECKPOINT, SCORES = "bundle", "checkpoint", "scores file"
SITE = "web site"  # `spamkit web`
# The file that names a directory's kind, and the format it declares.
_MARKERS = {BUNDLE: ("manifest.json", "spamkit-bundle"),
            CHECKPOINT: ("config.json", "spamkit-checkpoint"),
            SITE: ("site.json", "spamkit-web-site")}
TRAINING_STATE = "training-state"


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


def is_artifact(path: Path, kind: str) -> bool:
    """Whether `path` is something spamkit wrote as `kind` (what --force may replace)."""
    if kind == SCORES:
        return path.is_file() and not path.is_symlink() and _is_scores_file(path)
    if not path.is_dir() or path.is_symlink():
        return False
    marker, fmt = _MARKERS[kind]
    if peek_format_json(path / marker, fmt) is not None:
        return True
    # A training run stopped before its checkpoint was written holds only its resume point.
    return kind == CHECKPOINT and [p.name for p in path.iterdir()] == [TRAINING_STATE]


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
