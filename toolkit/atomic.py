"""Write files and directories so that a reader never sees a half-written one, and nothing the
writer did not check is ever deleted.

Everything goes to a temporary name beside the target and is renamed into place only when
complete; a crash or kill at any moment leaves either the old target or the new one, plus at
worst a `.tmp-*` leftover. Writers put the file that marks a directory complete (a checkpoint's
config.json, a bundle's manifest.json) in last, so a leftover never loads.

A directory (and `commit_checked`'s file) is put in place without replacing whatever is at the
target by then, unless a check made after it has been swapped out shows it is what may be
replaced: an empty directory, or a spamkit artifact of which every file is accounted for
(spamkit.outputs.owned_files); that is then deleted file by file. Anything else there, such as
a file a user dropped into the output while the run was writing, is swapped back, untouched,
and the commit refused.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import os
import shutil
import signal
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

from spamkit.errors import SpamkitError
from spamkit.outputs import owned_files

# mkstemp/mkdtemp create private (0600/0700) entries; the finished file or directory should get
# the permissions any other file the user creates would.
_UMASK = os.umask(0)
os.umask(_UMASK)
_AT_FDCWD, _RENAME_NOREPLACE, _RENAME_EXCHANGE = -100, 1, 2

# What is at a target -> the names of the files in it that may be deleted (none for a file that
# may be replaced as a whole), or None when it holds anything else.
Owned = Callable[[Path], list[str] | None]


class OutputChanged(SpamkitError):
    """The target gained something the run did not check while it was being written."""


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_file(target: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path; on success it replaces `target`, on error it is deleted."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.tmp-", dir=target.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    tmp_path.chmod(0o666 & ~_UMASK)
    try:
        yield tmp_path
        commit_file(tmp_path, target)
    finally:
        tmp_path.unlink(missing_ok=True)


def commit_file(tmp: Path, target: Path) -> None:
    """Rename a complete file over `target`, durably: its data is on disk before its name."""
    with open(tmp, "rb+") as f:
        os.fsync(f.fileno())
    os.replace(tmp, target)
    _fsync_dir(target.parent)


def commit_checked(tmp: Path, target: Path, owned: Owned) -> None:
    """Rename the complete file `tmp` to `target`, durably, replacing only what `owned`
    accepts at that moment (see the module's docstring); OutputChanged if anything else is
    there, with `tmp` left as it is."""
    with open(tmp, "rb+") as f:
        os.fsync(f.fileno())
    with _interrupts_held():
        _put(tmp, target, owned)
    _fsync_dir(target.parent)


def write_bytes_atomic(target: str | os.PathLike[str], data: bytes) -> None:
    with atomic_file(target) as tmp:
        tmp.write_bytes(data)


@contextlib.contextmanager
def atomic_dir(target: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield an empty temporary directory that becomes `target` when the block succeeds.

    An existing `target` is replaced only after the new one is complete, and only if it is
    then empty or a spamkit artifact that holds nothing else; otherwise OutputChanged, the
    target is left as it is and the new directory deleted.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.tmp-", dir=target.parent))
    tmp.chmod(0o777 & ~_UMASK)
    try:
        yield tmp
        for f in tmp.rglob("*"):
            if f.is_file():
                f.chmod(0o666 & ~_UMASK)  # some writers (safetensors) create 0600 files
                with open(f, "rb") as fh:
                    os.fsync(fh.fileno())
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    try:
        with _interrupts_held():
            _put(tmp, target, owned_files)
    except OutputChanged:
        shutil.rmtree(tmp, ignore_errors=True)  # swapped back: it holds the new directory again
        raise
    _fsync_dir(target.parent)


@contextlib.contextmanager
def _interrupts_held() -> Iterator[None]:
    """Ctrl-C lands before a commit or after it, never between its renames (where what was
    swapped out is not yet checked, or not yet swapped back)."""
    held = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, held)


def _put(tmp: Path, target: Path, owned: Owned) -> None:
    """Move `tmp` to `target`. What is there by then is swapped out first, and deleted only if
    `owned` accounts for every file of it; anything else is swapped back untouched."""
    if _rename_noreplace(tmp, target):
        return
    _exchange(tmp, target)  # `tmp` holds what was at `target`, out of reach of its name
    names = owned(tmp)
    if names is None:
        _exchange(tmp, target)
        raise OutputChanged(f"{target} changed while this run was writing it: it now holds "
                            "something spamkit did not write, which is kept as it is; refusing "
                            "to replace it, and discarding this run's result")
    _remove(tmp, names)


def _remove(path: Path, names: list[str]) -> None:
    """Delete `path`: a file, or a directory holding the files `names` and their folders alone
    (rmdir refuses a folder that holds anything more)."""
    if not path.is_dir() or path.is_symlink():
        path.unlink()
        return
    for name in names:
        (path / name).unlink()
    folders = [Path(root) for root, _, _ in os.walk(path)]
    for folder in sorted(folders, key=lambda p: len(p.parts), reverse=True):
        folder.rmdir()


def _renameat2(a: Path, b: Path, flags: int) -> bool:
    """Linux's renameat2; False where this system or file system does not support `flags`."""
    renameat2 = getattr(ctypes.CDLL(None, use_errno=True), "renameat2", None)
    if renameat2 is None:
        return False
    if renameat2(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), flags) == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.ENOSYS, errno.EINVAL):  # "not supported here"
        return False
    raise OSError(err, os.strerror(err), str(b))


def _rename_noreplace(a: Path, b: Path) -> bool:
    """Rename `a` to `b` only if nothing is at `b`, in one step; False if something is."""
    try:
        if _renameat2(a, b, _RENAME_NOREPLACE):
            return True
        if a.is_dir():  # rename(2) replaces no directory but an empty one, and no file
            os.rename(a, b)
        else:  # a link cannot replace anything
            os.link(a, b)
            os.unlink(a)
    except OSError as e:
        if e.errno in (errno.EEXIST, errno.ENOTEMPTY, errno.ENOTDIR, errno.EISDIR):
            return False
        raise
    return True


def _exchange(a: Path, b: Path) -> None:
    """Swap two names in one step, so `b` is never missing: Linux's renameat2 with
    RENAME_EXCHANGE. Elsewhere, two renames, with the old entry kept beside `b` until the
    new one is in place."""
    if _renameat2(a, b, _RENAME_EXCHANGE):
        return
    old = Path(tempfile.mkdtemp(prefix=f".{b.name}.old-", dir=b.parent))
    os.replace(b, old / b.name)
    os.replace(a, b)
    os.replace(old / b.name, a)
    old.rmdir()
