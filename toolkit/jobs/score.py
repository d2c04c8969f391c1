"""`spamkit score`: classify every message of a file of any size, one output row per message.

The input is read and scored `batch_size` messages at a time, so memory does not grow with the
file. Rows (id, label, the probability of each class) are written in input order to
OUTPUT.partial beside OUTPUT, which is renamed to OUTPUT once every message is scored; `--resume`
continues a partial file after its last complete row, and only when OUTPUT.partial.json (written
when the run started) shows the same input content, bundle and options. The three names are
the run's alone while it runs (spamkit.outputs.exclusive_output): a second run given the same
OUTPUT is refused. Torch-free: a bundle is all it needs.
"""

from __future__ import annotations

import csv
import itertools
import json
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TextIO

import numpy as np

from spamkit.atomic import OutputChanged, commit_checked, write_bytes_atomic
from spamkit.config import ENGINES
from spamkit.errors import Interrupted, SpamkitError
from spamkit.extras import require
from spamkit.jsonfile import peek_format_json
from spamkit.outputs import SCORES, check_not_input, check_output, exclusive_output, is_artifact
from spamkit.progress import progress_bar
from spamkit.records import Index, Source, records
from spamkit.runtime import Classifier
from spamkit.runtime.bundle import open_manifest, sha256_file
from spamkit.runtime.device import choose_graph

OUTPUT_KINDS = {".csv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl"}
# Records per piece of the input: where a resumed run can start reading, and the unit of work
# a Ray read task takes.
PIECE = 4096
RUN_FORMAT = "spamkit-score-run"

# Takes the ids, labels and class probabilities of consecutive records and writes their rows.
Write = Callable[[Sequence[str], Sequence[str], np.ndarray], None]


@dataclass(frozen=True)
class ScoreConfig:
    engine: str = "local"
    batch_size: int = 1024  # messages scored together: one read locally, one actor call on Ray
    precision: str | None = None  # the bundle's graph; default: as Classifier.load picks
    threads: int | None = None  # ONNX Runtime threads (each actor's, on Ray)
    actors: int = 1  # Ray actors, each with its own copy of the model
    address: str | None = None  # a running Ray cluster; default: start one on this machine
    resume: bool = False
    digest: str | None = None  # pins the bundle: any other is refused
    force: bool = False  # replace a scores file already at the output (never anything else)

    def check(self) -> None:
        if self.engine not in ENGINES:
            raise SpamkitError(f"unknown --engine {self.engine!r}; "
                               f"choose from {', '.join(ENGINES)}")
        if self.batch_size < 1 or self.actors < 1:
            raise SpamkitError("--batch-size and --actors must be at least 1")
        if self.engine == "local" and (self.address is not None or self.actors != 1):
            raise SpamkitError("--actors and --address are for --engine ray")
        if self.engine == "ray":  # before the input is read, however large
            require("ray", "--engine ray")


def score_texts(clf: Classifier, texts: list[str]) -> tuple[list[str], np.ndarray]:
    """The label and the class probabilities of each text: what both engines write."""
    probs = clf.predict_proba(texts)
    return clf.decide_labels(probs), probs


class Rows:
    """Output rows, CSV (with a header) or JSON Lines: id, label, p_<class> for every class."""

    def __init__(self, f: TextIO, kind: str, classes: list[str]) -> None:
        self.f = f
        self.columns = ["id", "label", *(f"p_{c}" for c in classes)]
        # The csv module's default CRLF line ending also makes it quote any field holding a
        # bare CR or LF, so every row reads back as exactly one record.
        self.csv = csv.writer(f) if kind == "csv" else None

    def header(self) -> None:
        if self.csv:
            self.csv.writerow(self.columns)

    def write(self, ids: Sequence[str], labels: Sequence[str], probs: np.ndarray) -> None:
        for ident, label, p in zip(ids, labels, probs, strict=True):
            if self.csv:
                self.csv.writerow([ident, label, *(f"{x:.6f}" for x in p)])
            else:
                values = [ident, label, *(round(float(x), 6) for x in p)]
                self.f.write(json.dumps(dict(zip(self.columns, values)), ensure_ascii=False)
                             + "\n")
        self.f.flush()  # whole batches reach the file as they are scored


def score_file(bundle: str | Path, source: Source, output: str | Path, cfg: ScoreConfig) -> int:
    """Score every record of `source` into `output`, written whole or not at all.

    Args:
        bundle: the bundle folder to classify with.
        source: the input file and how to read its records.
        output: the scores file, .csv or .jsonl; OUTPUT.partial holds a run in progress.
        cfg: the engine (local or Ray), batch size, threads, and whether to resume.

    Returns:
        How many rows the scores file holds.

    Raises:
        SpamkitError: a bad option, bundle, input or output (nothing is written then), or a
            resume of another run; Interrupted: stopped, with what a resume needs kept.
    """
    cfg.check()
    output = Path(output)
    kind = OUTPUT_KINDS.get(output.suffix.lower())
    if kind is None:
        raise SpamkitError(f"{output}: the output's name must end in .csv or .jsonl")
    # Held until this run ends, however it ends: a second run would mix its rows into ours.
    with exclusive_output(output):
        return _score_file(bundle, source, output, kind, cfg)


def _score_file(bundle: str | Path, source: Source, output: Path, kind: str,
                cfg: ScoreConfig) -> int:
    partial, record = _partial_files(output)
    _check_outputs(output, bundle, source, cfg)
    # A bad bundle is refused before the input is read, and before any Ray actor loads it.
    manifest, digest = open_manifest(bundle, cfg.digest)
    cfg = replace(cfg, digest=digest)  # the engines load exactly the bundle the run records
    precision = choose_graph(manifest, Path(bundle), "cpu", cfg.precision)
    index = Index.of(source, PIECE)  # checks every record, so bad input stops the run here
    run = run_identity(digest, source, precision)
    done = 0
    if cfg.resume:
        _check_same_run(partial, record, run)
        done = _cut_to_complete_rows(partial, kind, source, index)
        print(f"resuming {output} after {done} of {index.total} messages", flush=True)
    else:
        write_bytes_atomic(record, json.dumps(run, indent=1).encode())
    # Opened before the try: a file that cannot be opened as this run's is never deleted.
    opened = open(partial, "a" if done else "w", encoding="utf-8", newline="",
                  opener=_partial_opener)
    try:
        with opened as f:
            rows = Rows(f, kind, manifest.labels)
            if not done:
                rows.header()
            bar = progress_bar(total=index.total, initial=done, unit=" messages")

            def write(ids: Sequence[str], labels: Sequence[str], probs: np.ndarray) -> None:
                rows.write(ids, labels, probs)
                bar.update(len(ids))

            try:
                if cfg.engine == "ray":
                    from spamkit.jobs.score_ray import score_on_ray

                    score_on_ray(bundle, source, index, done + 1, cfg, write)
                else:
                    _score_here(bundle, source, index, done + 1, cfg, write)
            finally:
                bar.close()
    except BaseException as e:
        # Counted in the file, now closed: a signal can land after a batch's rows were written
        # (the file's buffer flushes as it fills and when it closes) and before any count.
        kept = _complete_rows(partial, kind)[0] if partial.is_file() else 0
        if not kept:  # nothing scored: nothing to resume either
            partial.unlink(missing_ok=True)
            record.unlink(missing_ok=True)
        if isinstance(e, KeyboardInterrupt):
            raise Interrupted(f"interrupted after {kept} of {index.total} messages"
                              + (f", which {partial} keeps: add --resume to the same command "
                                 "to continue" if kept else "")) from None
        raise
    _commit(partial, output, index.total, cfg)
    record.unlink(missing_ok=True)
    return index.total


def _partial_opener(path: str, flags: int) -> int:
    """Open OUTPUT.partial itself, never through a link; a new run creates it (a file that
    appeared there since the checks is refused, not truncated)."""
    if not flags & os.O_APPEND:
        flags |= os.O_EXCL
    return os.open(path, flags | os.O_NOFOLLOW, 0o666)


def _commit(partial: Path, output: Path, total: int, cfg: ScoreConfig) -> None:
    """Rename the complete partial file to `output`, replacing only a scores file that
    --force allows, as it is at that moment (a file of the user's that appeared there while
    scoring is kept, and so are the rows)."""
    def owned(found: Path) -> list[str] | None:
        return [] if cfg.force and is_artifact(found, SCORES) else None

    try:
        commit_checked(partial, output, owned)
    except OutputChanged:
        raise SpamkitError(f"--out {output} changed while this run was scoring (it holds "
                           "what this run may not replace) and is kept as it is; all "
                           f"{total} rows are in {partial}: move {output} away, then add "
                           "--resume to the same command to finish") from None


def _partial_files(output: Path) -> tuple[Path, Path]:
    """An unfinished run's rows, and the record of what they are scores of."""
    partial = output.with_name(output.name + ".partial")
    return partial, partial.with_name(partial.name + ".json")


def _check_outputs(output: Path, bundle: str | Path, source: Source, cfg: ScoreConfig) -> None:
    """Refuse a run that would overwrite the user's files or an interrupted run's rows."""
    check_output(output, SCORES, force=cfg.force, inputs=[source.path, bundle])
    partial, record = _partial_files(output)
    check_not_input(partial, [source.path])
    check_not_input(record, [source.path])
    if partial.is_symlink():
        raise SpamkitError(f"{partial} is a link: spamkit score writes that name only as a file "
                           "of its own; remove the link, or choose another --out")
    if cfg.resume and not partial.is_file():
        raise SpamkitError(f"nothing to resume: no {partial} from an interrupted spamkit score")
    if not cfg.resume and partial.exists():
        raise SpamkitError(f"{partial} holds an interrupted run: add --resume to continue it, "
                           "or delete it to start over")
    if not cfg.resume and record.exists() and peek_format_json(record, RUN_FORMAT) is None:
        raise SpamkitError(f"{record} is not a record spamkit score wrote, and a run needs its "
                           "name: move it, or choose another --out")


def run_identity(digest: str, source: Source, precision: str) -> dict:
    """What decides the rows of a run (`digest`: the bundle's, which covers its every file and
    a calibrated threshold): resuming with anything else would mix two runs."""
    return {
        "format": RUN_FORMAT,
        "input": f"{source.path.stat().st_size} bytes with sha256 {sha256_file(source.path)}",
        "bundle": f"digest {digest}",
        "--precision": precision,
        "--text-column": source.text_field,
        "--id-column": source.id_field or "(row numbers)",
    }


def _check_same_run(partial: Path, record: Path, run: dict) -> None:
    """Refuse to continue `partial` unless its record says it scored what `run` would."""
    if not record.is_file():
        raise SpamkitError(f"{partial} has no {record.name} saying what it was scoring (not "
                           "left by this spamkit score): delete it to start over")
    then = peek_format_json(record, RUN_FORMAT)
    if then is None:
        raise SpamkitError(f"{record} is damaged: delete it and {partial} to start over")
    differs = [f"{key} {then.get(key)} then, {value} now" for key, value in run.items()
               if then.get(key) != value]
    if differs:
        raise SpamkitError(f"{partial} was scoring something else: {'; '.join(differs)}; "
                           "resume with the same input, bundle and options, or delete it to "
                           "start over")


def _score_here(bundle: str | Path, source: Source, index: Index, first: int, cfg: ScoreConfig,
                write: Write) -> None:
    """The local engine: one Classifier in this process, `batch_size` records at a time."""
    clf = Classifier.load(bundle, precision=cfg.precision, threads=cfg.threads,
                          digest=cfg.digest)
    start, skip = index.start(first)
    todo = (record for record, _ in itertools.islice(records(source, start), skip, None))
    while batch := list(itertools.islice(todo, cfg.batch_size)):
        write([r.id for r in batch], *score_texts(clf, [r.text for r in batch]))


def _complete_rows(partial: Path, kind: str) -> tuple[int, int]:
    """How many complete rows a partial output holds, and the offset just after the last."""
    done, end = 0, 0
    if partial.stat().st_size:
        for row, after in records(Source(partial, kind, "label", "id"), whole_lines_only=True):
            done, end = row.number, after.offset
    return done, end


def _cut_to_complete_rows(partial: Path, kind: str, source: Source, index: Index) -> int:
    """Cut an interrupted run's partial output after its last complete row (its run record has
    been checked: same input, bundle and options); return how many rows it keeps."""
    done, end = _complete_rows(partial, kind)
    if done > index.total:
        raise SpamkitError(f"{partial} has {done} rows, more than the {index.total} messages in "
                           f"{source.path}: it was scoring another input")
    with open(partial, "r+b") as f:
        f.truncate(end)
    return done
