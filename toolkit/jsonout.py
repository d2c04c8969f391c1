"""What `--json` prints, for every command alike: a schema version and one rounding rule
(docs/cli-json.md describes each output)."""

from __future__ import annotations

import json

# The version of the --json outputs' fields: raised when a field changes meaning or goes away
# (a new field does not raise it).
JSON_FORMAT = 1
# Every float, probabilities and times alike, to six decimals: the scores files' precision.
DECIMALS = 6


def rounded(value: object) -> object:
    """`value` with every float in it rounded to DECIMALS places.

    Args:
        value: JSON-ready data: dicts, lists, tuples, floats and other scalars.

    Returns:
        The same data, floats rounded (dicts and lists copied, tuples become lists).
    """
    if isinstance(value, float):
        return round(value, DECIMALS)
    if isinstance(value, dict):
        return {k: rounded(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [rounded(v) for v in value]
    return value


def json_output(obj: dict, indent: int | None = None) -> str:
    """`obj` as a --json output prints it.

    Args:
        obj: the output's fields.
        indent: as json.dumps's (None: one line, as JSON Lines rows are).

    Returns:
        JSON text: `"format": JSON_FORMAT` first, then `obj` with its floats rounded.
    """
    return json.dumps({"format": JSON_FORMAT, **rounded(obj)}, indent=indent)
