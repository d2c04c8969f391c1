"""A child process that sends itself a real signal at an exact call (a file write, a rename, an
open): the moments a test must hit every time, which a kill timed off the child's output can
miss on a loaded machine."""

from __future__ import annotations

import os
from pathlib import Path

# Imported by the child's `site` at startup when its directory is on PYTHONPATH. With
# SPAMKIT_TEST_FAULT="KIND:NAME:SIGNAL:N" the child sends itself SIGNAL at the N-th matching call:
#   replace  os.replace(SRC, DST) where DST is named NAME (a writer's commit rename), just
#            before the rename happens
#   write    Path.write_text on a file named NAME, before writing
#   open     open() of a file named NAME, in any mode, before it is opened
#   torn     a write to a file opened for writing directly inside the directory NAME (whatever
#            the file is called): half of the bytes are written, then the signal
FAULT_HOOK = '''
import builtins, io, os, pathlib, signal, time

_spec = os.environ.get("SPAMKIT_TEST_FAULT")
if _spec:
    _kind, _rest = _spec.split(":", 1)
    _name, _sig, _nth = _rest.rsplit(":", 2)
    _sig, _nth, _seen = getattr(signal, _sig), int(_nth), [0]

    def _hit():
        _seen[0] += 1
        if _seen[0] == _nth:
            os.kill(os.getpid(), _sig)
            time.sleep(5)  # SIGKILL never returns; SIGINT's KeyboardInterrupt is raised here

    def _path(file):
        if isinstance(file, (str, bytes, os.PathLike)):
            return os.path.abspath(os.fsdecode(file))
        return ""  # a file descriptor

    class _Torn:
        def __init__(self, f):
            self._f = f

        def write(self, data):
            half = len(data) // 2
            self._f.write(data[:half])
            self._f.flush()
            _hit()
            return half + self._f.write(data[half:])

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return self._f.__exit__(*exc)

        def __getattr__(self, name):
            return getattr(self._f, name)

    _open = io.open

    def _hooked_open(file, mode="r", *args, **kwargs):
        path = _path(file)
        if _kind == "open" and os.path.basename(path) == _name:
            _hit()
        f = _open(file, mode, *args, **kwargs)
        if _kind == "torn" and os.path.dirname(path) == _name and set(mode) & set("wax+"):
            return _Torn(f)
        return f

    if _kind == "replace":
        _replace = os.replace

        def replace(src, dst, *args, **kwargs):
            if os.path.basename(os.fspath(dst)) == _name:
                _hit()
            return _replace(src, dst, *args, **kwargs)

        os.replace = replace
    elif _kind == "write":
        _write_text = pathlib.Path.write_text

        def write_text(self, *args, **kwargs):
            if self.name == _name:
                _hit()
            return _write_text(self, *args, **kwargs)

        pathlib.Path.write_text = write_text
    elif _kind in ("open", "torn"):
        builtins.open = io.open = _hooked_open
    else:
        raise SystemExit(f"bad SPAMKIT_TEST_FAULT {_spec!r}")
'''


def install_fault_hook(folder: Path) -> Path:
    """Write FAULT_HOOK as FOLDER's `sitecustomize`; FOLDER goes on the child's PYTHONPATH."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "sitecustomize.py").write_text(FAULT_HOOK)
    return folder


def fault_env(hook: Path, spec: str) -> dict:
    """Environment entries that arm the hook in a child: SPAMKIT_TEST_FAULT=SPEC."""
    path = os.pathsep.join(filter(None, [str(hook), os.environ.get("PYTHONPATH")]))
    return {"SPAMKIT_TEST_FAULT": spec, "PYTHONPATH": path}
