"""Reading spamkit's own JSON files that name their format (a checkpoint's config, a training
state, a scoring run's record). The runtime reads bundle manifests with its own stricter reader
(spamkit.runtime.bundle)."""

from __future__ import annotations

import json
from pathlib import Path

from spamkit.errors import SpamkitError


def read_format_json(path: Path, fmt: str, version: int, what: str) -> dict:
    """The JSON object in `path` whose "format" is `fmt` and whose "format_version" (1 when
    absent) is at most `version`; a SpamkitError naming `what` for anything else. A missing
    file is left to the caller (FileNotFoundError), which knows what its absence means."""
    try:
        data = json.loads(path.read_bytes())
    except ValueError as e:  # JSONDecodeError, UnicodeDecodeError
        raise SpamkitError(f"{path} is not valid JSON: {e}") from None
    if not isinstance(data, dict) or data.get("format") != fmt:
        raise SpamkitError(f"{path} is not a {what}")
    found = data.get("format_version", 1)
    if not isinstance(found, int) or isinstance(found, bool) or found > version:
        raise SpamkitError(f"{path} is {what} format {found!r}; this spamkit reads up to "
                           f"{version}: upgrade spamkit")
    return data


def peek_format_json(path: Path, fmt: str) -> dict | None:
    """The JSON object in `path` if its "format" is `fmt`, else None (unreadable, not JSON, over
    its read limit, another format): for telling what a file is without trusting it."""
    try:
        with open(path, "rb") as f:
            data = json.loads(f.read(1 << 20))  # never more: it may be any file of the user's
    except (OSError, ValueError, RecursionError):
        return None
    return data if isinstance(data, dict) and data.get("format") == fmt else None
