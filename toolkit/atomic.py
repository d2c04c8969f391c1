"""Write files and directories so that a reader never sees a half-written one.

Everything goes to a temporary name beside the target and is renamed into place only when
complete; a crash or kill at any moment leaves either the old target or the new one, plus at
worst a `.tmp-*` leftover. Writers put the file that marks a directory complete (a checkpoint's
config.json, a bundle's manifest.json) in last, so a leftover never loads.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

# mkstemp/mkdtemp create private (0600/0700) entries; the finished file or directory should get
# the permissions any other file the user creates would.
_UMASK = os.umask(0)
os.umask(_UMASK)


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


def write_bytes_atomic(target: str | os.PathLike[str], data: bytes) -> None:
    with atomic_file(target) as tmp:
        tmp.write_bytes(data)


@contextlib.contextmanager
def atomic_dir(target: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield an empty temporary directory that becomes `target` when the block succeeds.

    An existing `target` is replaced only after the new one is complete.
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
        if target.exists():
            _exchange(tmp, target)  # tmp now holds the old directory, removed below
        else:
            os.replace(tmp, target)
        _fsync_dir(target.parent)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _exchange(a: Path, b: Path) -> None:
    """Swap two directories in one step, so `b` is never missing: Linux's renameat2 with
    RENAME_EXCHANGE. Elsewhere, two renames, with the old directory kept beside `b` until the
    new one is in place."""
    libc = ctypes.CDLL(None, use_errno=True)
    renameat2 = getattr(libc, "renameat2", None)
    if renameat2 is not None:
        at_fdcwd, rename_exchange = -100, 2
        if renameat2(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange) == 0:
            return
        err = ctypes.get_errno()
        if err not in (errno.ENOSYS, errno.EINVAL):  # anything but "not supported here"
            raise OSError(err, os.strerror(err), str(b))
    old = Path(tempfile.mkdtemp(prefix=f".{b.name}.old-", dir=b.parent))
    os.replace(b, old / b.name)
    os.replace(a, b)
    os.replace(old / b.name, a)
    old.rmdir()
