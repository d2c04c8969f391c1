"""`spamkit score --engine ray`: the local engine's rows, scored by a pool of Ray actors.

Ray Data reads the input in pieces (read tasks seek to where each piece starts), hands
`batch_size` messages at a time to actors that each load the bundle once, and streams the
results back in input order to this process, which writes them as the local engine does. On a
cluster, every node must see the bundle and the input at the same paths (a shared file
system), and have spamkit installed.
"""

from __future__ import annotations

import itertools
import logging
from pathlib import Path

import numpy as np

from spamkit.errors import SpamkitError
from spamkit.jobs.score import ScoreConfig, Write, score_texts
from spamkit.records import Index, Position, Source, records


class BundleActor:
    """A Ray actor: loads the bundle once, then scores batch after batch."""

    def __init__(self, bundle: str, precision: str | None, threads: int | None,
                 digest: str | None) -> None:
        from spamkit.runtime import Classifier

        self.clf = Classifier.load(bundle, precision=precision, threads=threads, digest=digest)

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        labels, probs = score_texts(self.clf, batch["text"].tolist())
        return {"number": batch["number"], "id": batch["id"],
                "label": np.array(labels, dtype=object), "probs": probs}


# A piece of the input, as a Ray row: where it starts, how many records to skip there (a
# resumed run's first piece) and how many to read in all.
PIECE_FIELDS = ("offset", "line", "number", "skip", "count")


def read_pieces(pieces: dict[str, np.ndarray], source: Source) -> dict[str, np.ndarray]:
    """A Ray read task: the records of each piece, from the byte offset where it starts."""
    numbers, ids, texts = [], [], []
    for offset, line, number, skip, count in zip(*(pieces[k] for k in PIECE_FIELDS)):
        start = Position(int(offset), int(line), int(number))
        for record, _ in itertools.islice(records(source, start), int(skip), int(count)):
            numbers.append(record.number)
            ids.append(record.id)
            texts.append(record.text)
    return {"number": np.array(numbers, dtype=np.int64), "id": np.array(ids, dtype=object),
            "text": np.array(texts, dtype=object)}


def score_on_ray(bundle: str | Path, source: Source, index: Index, first: int,
                 cfg: ScoreConfig, write: Write) -> None:
    """Score records `first`... of `source` on Ray and `write` them in input order."""
    import ray  # ScoreConfig.check has made sure it is installed

    if first > index.total:
        return
    source = Source(source.path.resolve(), source.kind, source.text_field, source.id_field)
    pieces = [
        dict(zip(PIECE_FIELDS, (start.offset, start.line, start.number,
                                max(first - start.number, 0),
                                min(index.every, index.total + 1 - start.number))))
        for start in index.starts[(first - 1) // index.every :]
        if start.number <= index.total
    ]
    # Ray's notices (and its workers' output) would bury the progress bar; its errors still
    # arrive as exceptions.
    quiet = {"logging_level": logging.ERROR, "log_to_driver": False}
    try:
        if cfg.address:
            ray.init(address=cfg.address, **quiet)
        else:
            ray.init(address="local", include_dashboard=False, **quiet)
    except (ConnectionError, ValueError, RuntimeError) as e:
        raise SpamkitError(f"cannot start or reach Ray at {cfg.address or 'a local cluster'}: "
                           f"{str(e).splitlines()[0]}") from None
    try:
        ctx = ray.data.DataContext.get_current()
        ctx.execution_options.preserve_order = True  # rows come back in input order
        ctx.enable_progress_bars = False  # score_file draws its own
        logging.getLogger("ray.data").setLevel(logging.ERROR)
        scored = (
            ray.data.from_items(pieces)
            # Reading takes little CPU, and must never wait for the CPUs the actors hold.
            .map_batches(read_pieces, batch_size=1, fn_kwargs={"source": source}, num_cpus=0)
            .map_batches(BundleActor, batch_size=cfg.batch_size,
                         compute=ray.data.ActorPoolStrategy(size=cfg.actors),
                         num_cpus=cfg.threads or 1,
                         fn_constructor_kwargs={"bundle": str(Path(bundle).resolve()),
                                                "precision": cfg.precision,
                                                "threads": cfg.threads,
                                                "digest": cfg.digest})
        )
        expected = first
        for batch in scored.iter_batches(batch_size=None, batch_format="numpy"):
            if len(batch["number"]) and batch["number"][0] != expected:
                raise SpamkitError(f"Ray returned message {batch['number'][0]} where "
                                   f"{expected} was due")
            write(batch["id"].tolist(), batch["label"].tolist(), batch["probs"])
            expected += len(batch["number"])
    except ray.exceptions.RayError as e:
        raise SpamkitError(f"scoring on Ray failed: {_reason(e)}") from None
    finally:
        ray.shutdown()


def _reason(error: BaseException) -> str:
    """What stopped Ray: the last line of the traceback it passes on as text (the exception
    itself stays in the worker), without the type when it is spamkit's own error."""
    lines = [line for line in str(error).splitlines() if line.strip()]
    last = lines[-1] if lines else type(error).__name__
    kind, sep, message = last.partition(": ")
    return message if sep and kind.startswith("spamkit.") else last
