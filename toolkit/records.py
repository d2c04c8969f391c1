"""Messages in a file, one record at a time: plain text, CSV/TSV with a header, or JSON Lines.

Records are read from any byte offset without reading what comes before (bar a CSV header), so
a large file can be scored in pieces, resumed, or split between machines. Only LF ends a line (a
CRLF's CR goes with it; any other CR is text), as in `spamkit classify`. CSV is read strictly
(RFC 4180 quoting: a quote that is never closed, or text after a closing quote, is an error);
TSV has no quoting at all. Bytes that are not UTF-8 become U+FFFD, as in `spamkit classify`;
anything else malformed is an error that names the file and line. Torch-free.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from spamkit.errors import SpamkitError

KINDS = {".csv": "csv", ".tsv": "tsv", ".jsonl": "jsonl", ".ndjson": "jsonl"}  # else: text


@dataclass(frozen=True)
class Source:
    """A file of messages and where each record keeps its text and, optionally, its id."""

    path: Path
    kind: str  # "text" (one message per line), "csv", "tsv" or "jsonl"
    text_field: str = "text"
    id_field: str | None = None  # None: a record's id is its number, 1 for the first

    @classmethod
    def of(cls, path: str | Path, text_field: str = "text", id_field: str | None = None) -> Source:
        path = Path(path)
        if not path.is_file():
            raise SpamkitError(f"no input file at {path}")
        return cls(path, KINDS.get(path.suffix.lower(), "text"), text_field, id_field)


@dataclass(frozen=True)
class Position:
    """Where a record starts: the byte offset and line of its first line, and its number.
    The default, offset 0, is the first record (after the header of a CSV)."""

    offset: int = 0
    line: int = 1
    number: int = 1


@dataclass(frozen=True)
class Record:
    number: int
    id: str
    text: str


class _Lines:
    """A binary file's lines, decoded, with the byte offset and number of the last one read."""

    def __init__(self, f: BinaryIO) -> None:
        self.f = f
        self.offset = 0  # just past the last line read
        self.line = 0
        self.ended = True  # whether the last line read ended with a newline

    def seek(self, position: Position) -> None:
        self.f.seek(position.offset)
        self.offset, self.line = position.offset, position.line - 1

    def __iter__(self) -> _Lines:
        return self

    def __next__(self) -> str:
        raw = self.f.readline()
        if not raw:
            raise StopIteration
        text = raw.decode("utf-8", errors="replace")
        if self.offset == 0:
            text = text.removeprefix("\ufeff")  # spreadsheet programs start files with a BOM
        self.offset += len(raw)
        self.line += 1
        self.ended = raw.endswith(b"\n")
        return text


def records(source: Source, start: Position | None = None,
            whole_lines_only: bool = False) -> Iterator[tuple[Record, Position]]:
    """Each record from `start` (default: the first), with the position of the one after it.

    `whole_lines_only` stops before a last record that does not end in a newline: the torn
    last row of a file that was being written when its writer was killed."""
    with open(source.path, "rb") as f:
        lines = _Lines(f)
        if source.kind in ("csv", "tsv"):
            reader = csv.reader(lines, strict=True) if source.kind == "csv" else _tsv(lines)
            columns = _columns(source, next(reader, None))  # a resumed read needs them too
            rows = _csv_rows(source, lines, reader, columns, whole_lines_only)
        else:
            rows = (_json_rows if source.kind == "jsonl" else _text_rows)(
                source, lines, whole_lines_only)
        start = start or Position()
        if start.offset:
            lines.seek(start)
        number = start.number
        for ident, text in rows:
            record = Record(number, str(number) if ident is None else ident, text)
            yield record, Position(lines.offset, lines.line + 1, number + 1)
            number += 1


# Each yields (id or None, text) per record, reading `lines` lazily.

def _text_rows(source, lines, whole_lines_only):
    for line in lines:
        if whole_lines_only and not lines.ended:
            return
        yield None, strip_line_end(line)


def strip_line_end(line: str) -> str:
    """A line's text: only LF ends a line, and the CR of a CRLF goes with it; any other CR
    (a lone one, or one before the end of the file) is part of the text."""
    return line[:-2] if line.endswith("\r\n") else line.removesuffix("\n")


def _tsv(lines):
    """TSV rows: fields split at tabs, nothing quoted (a `"` is an ordinary character), so a
    record is exactly one line; a blank line is no row, as in a CSV."""
    for line in lines:
        text = strip_line_end(line)
        yield text.split("\t") if text else []


def _json_rows(source, lines, whole_lines_only):
    for line in lines:
        if whole_lines_only and not lines.ended:
            return
        if not line.strip():
            continue
        where = f"{source.path}, line {lines.line}"
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as e:
            raise SpamkitError(f"{where}: not valid JSON ({e.msg})") from None
        except RecursionError:
            raise SpamkitError(f"{where}: JSON nested too deeply to read") from None
        if not isinstance(obj, dict):
            raise SpamkitError(f"{where}: expected a JSON object, not {type(obj).__name__}")
        text = obj.get(source.text_field)
        if not isinstance(text, str):
            raise SpamkitError(f"{where}: no string field {source.text_field!r}")
        ident = None
        if source.id_field is not None:
            ident = obj.get(source.id_field)
            if not isinstance(ident, (str, int, float)) or isinstance(ident, bool):
                raise SpamkitError(f"{where}: no string or number field {source.id_field!r}")
            ident = _no_surrogates(str(ident))
        yield ident, _no_surrogates(text)


def _no_surrogates(s: str) -> str:
    # JSON's "\ud800" escapes can make lone surrogates, which no UTF-8 writer accepts: they
    # become U+FFFD, as undecodable bytes do.
    return s if s.isascii() else s.encode("utf-8", "surrogatepass").decode("utf-8", "replace")


def _columns(source: Source, header: list[str] | None) -> list[int]:
    """Where the text column is in each row, then the id column if there is one."""
    if header is None:
        raise SpamkitError(f"{source.path} is empty: expected a header row")
    wanted = [source.text_field] + ([source.id_field] if source.id_field is not None else [])
    for name in wanted:
        if name not in header:
            raise SpamkitError(f"{source.path} has no column {name!r}; its columns are "
                               + ", ".join(repr(c) for c in header))
    return [header.index(name) for name in wanted]


def _csv_rows(source, lines, reader, columns, whole_lines_only):
    while True:
        first_line = lines.line + 1
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as e:
            if whole_lines_only:
                return  # a quoted field cut off by the end of the file
            why = ("a quote opened here is never closed" if "end of data" in str(e)
                   else f"malformed CSV ({e})")
            raise SpamkitError(f"{source.path}, line {first_line}: {why}") from None
        if whole_lines_only and not lines.ended:
            return
        if not row:
            continue  # a blank line
        if len(row) <= max(columns):
            raise SpamkitError(f"{source.path}, line {first_line}: {len(row)} fields where "
                               f"its header has at least {max(columns) + 1}")
        yield (row[columns[1]] if len(columns) > 1 else None), row[columns[0]]


@dataclass(frozen=True)
class Index:
    """How many records a file holds and where every `every`-th one starts, found in one
    pass that also checks every record (so a bad line stops a run before it starts)."""

    total: int
    every: int
    starts: list[Position]  # of records 1, 1 + every, 1 + 2 * every, ...

    @classmethod
    def of(cls, source: Source, every: int) -> Index:
        starts, total = [Position()], 0
        for record, after in records(source):
            total = record.number
            if total % every == 0:
                starts.append(after)
        return cls(total, every, starts)

    def start(self, number: int) -> tuple[Position, int]:
        """Where to read from to reach record `number`, and how many records come before it."""
        i = (number - 1) // self.every
        return self.starts[i], number - 1 - i * self.every
