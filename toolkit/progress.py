"""What the long commands show while they work, and `--quiet`, which hides it.

A command's stage and info lines go to stdout as they happen (flushed, so a pipe or a log sees
them at once); its progress bars go to stderr, on a terminal only. Under `--quiet` both go:
what stays is the command's result (printed after the work), its warnings (logged on stderr)
and its errors (one line on stderr, from the CLI).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator

from tqdm import tqdm

_quiet = {"on": False}  # set for the length of a --quiet command's work (quiet_output)


@contextlib.contextmanager
def quiet_output(quiet: bool) -> Iterator[None]:
    """With `quiet`, drop what the block prints to stdout and every progress bar it starts.

    Args:
        quiet: whether to hide the block's progress (`--quiet`); False changes nothing.
    """
    if not quiet:
        yield
        return
    with open(os.devnull, "w", encoding="utf-8") as sink, contextlib.redirect_stdout(sink):
        _quiet["on"] = True
        try:
            yield
        finally:
            _quiet["on"] = False


def progress_bar(show: bool = True, **options) -> tqdm:
    """A tqdm progress bar on stderr, drawn on a terminal only (tqdm's `disable=None`).

    Args:
        show: False for none at all (a process that does not report, e.g. rank 1 of several).
        options: tqdm's own (total, desc, unit, leave ...).

    Returns:
        The bar, disabled under --quiet.
    """
    return tqdm(disable=True if _quiet["on"] or not show else None, **options)


def stage(text: str) -> None:
    """Say, before a step that takes a while, that it has started: `text...` on stdout.

    Args:
        text: the step, e.g. "exporting the fp32 graph".
    """
    print(f"{text}...", flush=True)
