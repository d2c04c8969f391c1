"""`spamkit pretrain`: the classifier's GPT trained as a next-token language model on unlabelled
text (domain-adaptive pretraining, Gururangan et al. 2020), on the loop `spamkit train` runs
(train_epochs), for `spamkit train --init` to fine-tune.

Messages are packed end to end, `<|endoftext|>` before each, and cut into blocks of --seq-len
tokens (GPT-2's own recipe): no padding, every token a target. A share of the messages, drawn
by the seed, is held out to measure the language-model loss after every epoch.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np
import torch

from spamkit.config import PretrainConfig
from spamkit.data import DataConfig
from spamkit.errors import SpamkitError
from spamkit.outputs import CHECKPOINT, check_output, exclusive_output
from spamkit.tokenizer import gpt2_encoding, gpt2_tokenizer
from spamkit.training import distributed
from spamkit.training.build import start_model
from spamkit.training.char_ngrams import CharNgramEmbedding, fold_embeddings
from spamkit.training.checkpoint import CURVES_FILE
from spamkit.training.lm import LanguageModel, save_pretrained_lm
from spamkit.training.model import GPTClassifier
from spamkit.training.pretrained import preset_name
from spamkit.training.resume import Progress, SavedState, load_state
from spamkit.training.torch_device import describe
from spamkit.training.train import (
    Encoded,
    Nets,
    RunConfig,
    curves_missing,
    evaluate_split,
    parallel,
    start_optimizing,
    start_processes,
    train_or_say_how_to_resume,
    use_threads,
)
from spamkit.unlabelled import Unlabelled, unlabelled_text


@dataclass(frozen=True)
class Reading:
    """What a pretraining run reads besides its settings: saved with its resume point."""

    text: list[str]  # --text files and folders
    text_column: str = "text"
    data_text: bool = True  # the data file's messages outside validation and test


def pretrain(cfg: PretrainConfig, data_cfg: DataConfig, out_dir: str,
             reading: Reading | None = None, force: bool = False, resume: bool = False,
             threads: int | None = None) -> dict:
    """Pretrain on the unlabelled text and write the language model to `out_dir`.

    Args:
        cfg: the model to start from and how to train it.
        data_cfg: the data file and split whose training messages are read and whose
            validation and test messages are never read (spamkit.unlabelled).
        out_dir: the folder to write: new, empty, or (with `force`) an unfinished run.
        reading: more unlabelled text, and whether to read the data file's.
        force: replace an unfinished run in `out_dir`.
        resume: continue the interrupted run in `out_dir` after its last complete epoch, with
            the settings and text it started with (`cfg`, `data_cfg` and `reading` unused).
        threads: torch's CPU threads (None: torch's default).

    Returns:
        The metrics the folder records: each epoch's, and the held-out loss before training.

    Raises:
        SpamkitError: a bad option, unreadable or changed text, too little of it, or an
            `out_dir` that holds anything else. Interrupted: Ctrl-C.
    """
    use_threads(threads)
    reading = reading or Reading([])
    writer = os.environ.get("RANK", "0") == "0"  # torchrun's other ranks write nothing
    with exclusive_output(out_dir) if writer else contextlib.nullcontext():
        if resume:
            saved = load_state(out_dir)
            cfg, data_cfg, reading = saved_settings(saved, out_dir)
            return _pretrain(cfg, data_cfg, reading, out_dir, saved)
        if writer:
            check_output(out_dir, CHECKPOINT, force=force,
                         inputs=[data_cfg.path, cfg.weights, *reading.text])
        return _pretrain(cfg, data_cfg, reading, out_dir, None)


def _pretrain(cfg: PretrainConfig, data_cfg: DataConfig, reading: Reading, out_dir: str,
              saved: SavedState | None) -> dict:
    """Read the text, set the run up, train its epochs, write the model."""
    cfg.check()
    unlabelled = unlabelled_text(data_cfg, reading.text, reading.text_column, reading.data_text)
    run, model = set_up(cfg, replace(data_cfg, sha256=unlabelled.sha256), out_dir, saved)
    data, vocab = pack_text(unlabelled.texts, cfg, model.config.context_length)
    net = LanguageModel(model, vocab.to(run.cfg.device))
    net = torch.compile(net) if run.cfg.compile else net  # every block has the same shape
    nets = Nets(model, net, parallel(run, net))
    extra = start_record(cfg, reading, unlabelled, saved, out_dir)
    if not saved:
        extra["held_out_loss_before"] = evaluate_split(net, data["val"], run.cfg, run.ranks)["loss"]
    run = replace(run, extra={"pretrain": extra})
    if run.ranks.master:
        announce(run, model, unlabelled, data, len(vocab), extra["held_out_loss_before"])
    optimizer, scaler, progress = start_optimizing(run, model, saved)
    train_or_say_how_to_resume("pretrain", run, nets, optimizer, scaler, data, progress)
    distributed.stop()
    if not progress.history:
        raise SpamkitError("no epoch ran: raise --epochs or --max-steps")
    return save_results(run, model, data, progress) if run.ranks.master else {}


def save_results(run: RunConfig, model: GPTClassifier, data: dict[str, Encoded],
                 progress: Progress) -> dict:
    """Write the language model (its last epoch), say how the held-out loss went; return the
    metrics."""
    record = dict(run.extra["pretrain"])
    before = record.pop("held_out_loss_before")
    metrics = {"held_out_loss_before": before, "history": progress.history,
               "blocks": {name: len(d.ids) for name, d in data.items()}}
    fold_embeddings(model)
    save_pretrained_lm(run.out_dir, model.cpu().eval(), {**record, "data": asdict(run.data_cfg)},
                       metrics)
    curves = "no training curves"  # said before training; the folder is whole without them
    if not curves_missing():
        from spamkit import plots  # matplotlib: the plots extra

        plots.training_curves(progress.history, Path(run.out_dir) / CURVES_FILE)
        curves = f"training curves in {CURVES_FILE}"
    last = progress.history[-1]["val_loss"]
    print(f"held-out loss {before:.3f} -> {last:.3f} (perplexity {math.exp(last):.1f}); "
          f"language model written to {run.out_dir} ({curves}): fine-tune it with "
          f"`spamkit train --init {run.out_dir}`")
    return metrics


def start_record(cfg: PretrainConfig, reading: Reading, unlabelled: Unlabelled,
                 saved: SavedState | None, out_dir: str) -> dict:
    """What the run records of itself (and saves to resume): its settings and the text it
    read; on resume, the saved record, refused if the text is no longer what it read."""
    record = {"training": asdict(cfg), "reading": asdict(reading), "files": unlabelled.files,
              "messages": len(unlabelled.texts), "dropped": unlabelled.dropped,
              "text_sha256": text_digest(unlabelled.texts)}
    if not saved:
        return record
    kept = dict(saved.meta["pretrain"])
    if kept["text_sha256"] != record["text_sha256"]:
        raise SpamkitError(f"the unlabelled text is not what the run in {out_dir} started on "
                           "(a --text file changed): start afresh with --force")
    return kept


def text_digest(texts: list[str]) -> str:
    """The sha256 of the messages, in order."""
    return hashlib.sha256(json.dumps(texts).encode()).hexdigest()


def saved_settings(saved: SavedState, out_dir: str
                   ) -> tuple[PretrainConfig, DataConfig, Reading]:
    """The settings an interrupted pretraining run started with."""
    kept = saved.meta.get("pretrain")
    if kept is None:
        raise SpamkitError(f"{out_dir} is an unfinished `spamkit train` run, not a pretraining "
                           f"one: finish it with spamkit train --resume --out {out_dir}")
    return PretrainConfig(**kept["training"]), saved.data, Reading(**kept["reading"])


def set_up(cfg: PretrainConfig, data_cfg: DataConfig, out_dir: str, saved: SavedState | None
           ) -> tuple[RunConfig, GPTClassifier]:
    """Resolve where the run trains and build the model (from the saved state when resuming):
    every weight trains but the class head, which a language model does not use."""
    train_cfg = cfg.as_train()
    run_cfg, ranks = start_processes(train_cfg)
    torch.manual_seed(cfg.seed)
    model = GPTClassifier(saved.model) if saved else start_model(train_cfg, data_cfg,
                                                                  dropout=cfg.dropout)
    if cfg.seq_len > model.config.context_length:
        raise SpamkitError(f"--seq-len {cfg.seq_len} is beyond the {preset_name(model.config)} "
                           f"model's context of {model.config.context_length} tokens")
    if cfg.char_ngrams:
        model.wte = CharNgramEmbedding(model.wte, gpt2_encoding(), cfg.char_ngrams)
    model.head.requires_grad_(False)
    model.to(run_cfg.device)
    return RunConfig(train_cfg, run_cfg, data_cfg, out_dir, ranks, [], lm=True), model


def pack_text(texts: list[str], cfg: PretrainConfig, context: int
              ) -> tuple[dict[str, Encoded], torch.Tensor]:
    """The messages as blocks, "train" and "val" from the held-out share (--held-out), whose
    targets are positions in the vocabulary they use (returned beside them: its token ids)."""
    order = np.random.default_rng(cfg.seed).permutation(len(texts))
    n_held = max(1, round(len(texts) * cfg.held_out))
    tokenizer = gpt2_tokenizer(context)
    data = {name: pack(tokenizer.encode_batch([texts[i] for i in part]), tokenizer.eot_id,
                       cfg.seq_len)
            for name, part in (("train", order[n_held:]), ("val", order[:n_held]))}
    for name, what in (("train", "training"), ("val", "held-out")):
        if not data[name].ids:
            raise SpamkitError(f"too little text for one {what} block of --seq-len "
                               f"{cfg.seq_len} tokens: give more text or a shorter --seq-len")
    vocab = sorted({t for d in data.values() for b in d.labels for t in b})
    position = {t: i for i, t in enumerate(vocab)}
    for d in data.values():
        d.labels[:] = [[position[t] for t in b] for b in d.labels]
    return data, torch.tensor(vocab)


def pack(ids: list[list[int]], eot: int, seq_len: int) -> Encoded:
    """Messages end to end, `eot` before each, cut into blocks of `seq_len` tokens whose
    targets are the tokens one further on (a block's last target is the next block's first
    token); what is left over at the end is dropped."""
    stream = [t for x in ids for t in (eot, *x)]
    n = (len(stream) - 1) // seq_len
    blocks = [stream[i * seq_len : (i + 1) * seq_len + 1] for i in range(n)]
    return Encoded([b[:-1] for b in blocks], [b[1:] for b in blocks], eot)


def announce(run: RunConfig, model: GPTClassifier, unlabelled: Unlabelled,
             data: dict[str, Encoded], n_vocab: int, before: float) -> None:
    """The opening lines: what is read, what is left out, what trains and how."""
    cfg, threads = run.cfg, torch.get_num_threads()
    files = f" and {len(unlabelled.files)} --text file(s)" if unlabelled.files else ""
    print(f"unlabelled text: {len(unlabelled.texts)} messages (the data file's outside "
          f"validation and test{files}); {unlabelled.dropped} dropped as equal to a validation "
          f"or test message", flush=True)
    n_trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    print(f"pretraining {preset_name(model.config)} ({n_trainable / 1e6:.2f}M trainable "
          f"parameters) as a language model on {len(data['train'].ids)} blocks of "
          f"{len(data['train'].ids[0])} tokens ({n_vocab} distinct: the softmax's), "
          f"{len(data['val'].ids)} held out (loss {before:.3f} before pretraining), on "
          f"{describe(cfg.device)}, {threads} CPU thread{'s' if threads > 1 else ''}, "
          f"precision {cfg.precision}, compile "
          f"{'on' if cfg.compile else 'off'}", flush=True)
    missing = curves_missing()
    if missing:
        print(f"note: the folder will have no training curves ({CURVES_FILE}): {missing}",
              flush=True)
