"""Fine-tune a GPT classifier: a plain loop (nanoGPT style) with the book's chapter 6 metrics."""

from __future__ import annotations

import contextlib
import copy
import importlib.util
import math
import os
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.data import DistributedSampler

from spamkit.config import INITS, TrainConfig, preset_config
from spamkit.data import DataConfig, Examples, Splits, load_splits
from spamkit.errors import Interrupted, SpamkitError
from spamkit.extras import EXTRAS
from spamkit.outputs import CHECKPOINT, check_output, exclusive_output
from spamkit.progress import progress_bar
from spamkit.runtime.classifier import pad_batch
from spamkit.runtime.tokenizer import Tokenizer
from spamkit.tokenizer import gpt2_tokenizer
from spamkit.training import distributed
from spamkit.training.char_ngrams import CharNgramEmbedding
from spamkit.training.checkpoint import CURVES_FILE, Checkpoint, save_checkpoint
from spamkit.training.distributed import Ranks
from spamkit.training.hf_classifier import open_classifier
from spamkit.training.lora import add_lora, merge_lora
from spamkit.training.model import GPTClassifier
from spamkit.training.pretrained import find_weights, load_pretrained, preset_name
from spamkit.training.resume import Progress, SavedState, load_state, save_state
from spamkit.training.torch_device import (
    describe,
    resolve_compile,
    resolve_device,
    resolve_precision,
)

AUTOCAST_DTYPES = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}
# Frozen-trunk outputs beyond this size (all splits) are computed afresh every step instead.
CACHE_LIMIT_BYTES = 2 * 1024**3


@dataclass
class Encoded:
    """A split, tokenized once: token ids per message and class ids."""

    ids: list[list[int]]
    labels: list[int]
    # The frozen trunk's output per message, [tokens, n_embd], when training reuses it.
    states: list[torch.Tensor] | None = None

    @classmethod
    def of(cls, examples: Examples, tokenizer: Tokenizer) -> Encoded:
        return cls(tokenizer.encode_batch(examples.texts), list(examples.labels))


def collate(
    ids: list[list[int]], pad_id: int, pad_to: int | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Right-pad to the longest message in the batch (the runtime's `pad_batch`); return
    input_ids and attention_mask.

    With `pad_to`, every message keeps its last `pad_to` tokens and is padded to that length,
    and the padding is marked as real tokens, so the model reads the last position whatever it
    holds (the book's setup)."""
    input_ids, mask = pad_batch([x[-pad_to:] for x in ids] if pad_to else ids, pad_id)
    if pad_to:
        input_ids = np.pad(input_ids, [(0, 0), (0, pad_to - input_ids.shape[1])],
                           constant_values=pad_id)
        mask = np.ones_like(input_ids)
    return torch.from_numpy(input_ids), torch.from_numpy(mask)


def collate_states(states: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """Right-pad cached trunk outputs to the longest; return them and the attention mask."""
    x = torch.nn.utils.rnn.pad_sequence(states, batch_first=True)
    lengths = torch.tensor([len(s) for s in states])
    return x, (torch.arange(x.shape[1]) < lengths[:, None]).long()


def batches(
    data: Encoded, batch_size: int, pad_id: int, order: list[int], pad_to: int | None = None
) -> Iterator[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
    """(inputs, attention_mask, labels) per batch: token ids, or the cached trunk outputs."""
    for start in range(0, len(order), batch_size):
        idx = order[start : start + batch_size]
        if data.states is None:
            inputs, mask = collate([data.ids[i] for i in idx], pad_id, pad_to)
        else:
            inputs, mask = collate_states([data.states[i] for i in idx])
        yield inputs, mask, torch.tensor([data.labels[i] for i in idx])


class FrozenTrunkTop(nn.Module):
    """What trains when the trunk is frozen: the last block, final norm and head, fed the
    trunk's cached outputs (what torch.compile and DistributedDataParallel then wrap)."""

    def __init__(self, model: GPTClassifier) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        return self.model.top(x, attention_mask)


def cache_size(model: GPTClassifier, splits: list[Encoded], pad_to: int | None) -> int | None:
    """Bytes of the frozen trunk's outputs for `splits`, or None when they are not fixed: some
    of the trunk trains, or dropout draws new masks every step."""
    if model.config.dropout > 0 or any(p.requires_grad for p in model.trunk_parameters()):
        return None
    tokens = sum(pad_to or len(x) for d in splits for x in d.ids)
    return tokens * model.config.n_embd * 4


@torch.no_grad()
def cache_trunk(
    model: GPTClassifier, data: Encoded, cfg: TrainConfig, pad_id: int, pad_to: int | None
) -> Encoded:
    """`data` with the trunk's output for each message, computed once for the whole run."""
    model.eval()
    order = sorted(range(len(data.ids)), key=lambda i: len(data.ids[i]))
    states: list[torch.Tensor] = [torch.empty(0)] * len(order)
    for start in range(0, len(order), 32):
        idx = order[start : start + 32]
        input_ids, mask = collate([data.ids[i] for i in idx], pad_id, pad_to)
        with autocast(cfg):
            x = model.trunk(input_ids.to(cfg.device)).float()
        for row, i, n in zip(x, idx, mask.sum(dim=1).tolist(), strict=True):
            states[i] = row[:n].clone()
    return replace(data, states=states)


def set_trainable(model: GPTClassifier, cfg: TrainConfig) -> None:
    """Freeze everything, then unfreeze the scope (the book's default is `last-block`)."""
    if cfg.trainable == "lora":
        add_lora(model, cfg.lora_rank, cfg.lora_alpha)
        return
    model.requires_grad_(cfg.trainable == "all")
    model.head.requires_grad_(True)
    if cfg.trainable == "last-block":
        model.h[-1].requires_grad_(True)
        model.ln_f.requires_grad_(True)


def build_model(cfg: TrainConfig, splits: Splits) -> tuple[GPTClassifier, Splits]:
    """The model `cfg.init` starts from, and `splits` with class ids in its order: the data's,
    or (a classifier given to --init) its own."""
    head = dict(num_classes=len(splits.labels), token=cfg.token, dropout=cfg.dropout)
    if cfg.init == "random":
        return GPTClassifier(preset_config(cfg.preset or "mini", **head)), splits
    if cfg.init not in INITS:
        return continue_classifier(cfg, splits)
    path = find_weights(cfg.init, cfg.weights)
    model = load_pretrained(path, **head)
    check_preset(cfg, model, f"the weights at {path}")
    print(f"loaded {preset_name(model.config)} GPT-2 weights from {path}")
    return model, splits


def check_preset(cfg: TrainConfig, model: GPTClassifier, what: str) -> None:
    """Refuse a --preset other than the shape of the weights the model was loaded with."""
    shape = preset_name(model.config)
    if cfg.preset and shape != cfg.preset:
        raise SpamkitError(f"{what} are {shape}-shaped, not {cfg.preset}: leave --preset out "
                           "(the shape comes from the weights)")


def continue_classifier(cfg: TrainConfig, splits: Splits) -> tuple[GPTClassifier, Splits]:
    """The transformers classifier at `cfg.init`, head included, to train further on `splits`
    of the same labels, which keep its class order (id2label)."""
    hf = open_classifier(cfg.init, cfg.dropout)
    model, labels = hf.checkpoint.model, hf.checkpoint.labels
    check_preset(cfg, model, f"the weights of {cfg.init}")
    splits = relabel(splits, labels, f"the classifier at {cfg.init} (its id2label)")
    print(f"loaded the {preset_name(model.config)}-shaped classifier {labels} from {hf.folder}")
    return model, splits


def relabel(splits: Splits, labels: list[str], whose: str) -> Splits:
    """`splits` with its class ids counted in `labels` (the model's class order), refused
    unless `labels` names the data's classes."""
    if sorted(labels) != sorted(splits.labels):
        raise SpamkitError(f"{whose} has the labels {labels} and the data {splits.labels}: "
                           "its training goes on only on data of the same labels")
    ids = [labels.index(name) for name in splits.labels]

    def ordered(examples: Examples) -> Examples:
        return replace(examples, labels=[ids[c] for c in examples.labels])

    return replace(splits, labels=labels, train=ordered(splits.train), val=ordered(splits.val),
                   test=ordered(splits.test))


def resolve_pad_to(cfg: TrainConfig, train_ids: list[list[int]], context: int) -> int | None:
    if cfg.pad_to is None:
        return None
    n = {"longest": max(len(x) for x in train_ids), "context": context}.get(cfg.pad_to)
    n = n or int(cfg.pad_to)
    if not 1 <= n <= context:
        raise SpamkitError(f"--pad-to {n} is outside the model's context (1..{context})")
    return n


def make_optimizer(model: GPTClassifier, cfg: TrainConfig) -> torch.optim.Optimizer:
    params = [p for p in model.parameters() if p.requires_grad]
    # nanoGPT's split: decay matrices and embeddings, not biases and LayerNorm gains.
    groups = [
        {"params": [p for p in params if p.dim() >= 2], "weight_decay": cfg.weight_decay},
        {"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0},
    ]
    return torch.optim.AdamW(groups, lr=cfg.lr, betas=(0.9, 0.999), fused=True)


def learning_rate(cfg: TrainConfig, step: int, total_steps: int) -> float:
    """The learning rate of optimizer step `step` (counted from 0) of `total_steps`."""
    if cfg.lr_schedule == "constant":
        return cfg.lr
    return cfg.lr * 0.5 * (1.0 + math.cos(math.pi * min(step / total_steps, 1.0)))


def should_keep(cfg: TrainConfig, val: dict[str, float], kept: dict) -> bool:
    """Whether the checkpoint should hold this epoch's weights rather than the kept epoch's."""
    if cfg.keep == "last":
        return True
    return (val["accuracy"], -val["loss"]) > (kept["val_accuracy"], -kept["val_loss"])


def autocast(cfg: TrainConfig):
    dtype = AUTOCAST_DTYPES[cfg.precision]
    return torch.autocast(cfg.device, dtype=dtype, enabled=dtype is not None)


@torch.no_grad()
def loss_and_accuracy(
    model, data: Encoded, cfg: TrainConfig, pad_id: int, pad_to: int | None, ranks: Ranks
) -> dict[str, float]:
    """Mean cross-entropy and accuracy over a whole split (the book's calc_*_loader); with
    several processes, each scores every world-th message and the sums are added up."""
    model.eval()
    # Sorting by length wastes no compute on padding; the order does not change the means.
    order = sorted(range(len(data.ids)), key=lambda i: len(data.ids[i]))[ranks.rank :: ranks.world]
    loss_sum, correct = 0.0, 0
    for inputs, mask, labels in batches(data, 32, pad_id, order, pad_to):
        with autocast(cfg):
            logits = model(inputs.to(cfg.device), mask.to(cfg.device)).float()
        labels = labels.to(cfg.device)
        loss_sum += F.cross_entropy(logits, labels, reduction="sum").item()
        correct += (logits.argmax(-1) == labels).sum().item()
    loss_sum, correct = distributed.all_sum([loss_sum, correct], cfg.device)
    n = max(len(data.ids), 1)
    return {"loss": loss_sum / n, "accuracy": correct / n}


@dataclass
class Run:
    """One training run's state, set up by `prepare_run` and carried through its steps."""

    cfg: TrainConfig  # as asked: what the training state saves, so a resume resolves `auto` afresh
    run_cfg: TrainConfig  # what runs: device, precision and compile resolved
    data_cfg: DataConfig
    out_dir: str
    ranks: Ranks
    labels: list[str]  # class names
    model: GPTClassifier
    pad_id: int
    pad_to: int | None
    data: dict[str, Encoded]  # "train", "val", "test"
    optimizer: torch.optim.Optimizer
    scaler: torch.amp.GradScaler
    progress: Progress = field(default_factory=Progress)
    resumable: int = 0  # the epoch whose state is on disk
    net: nn.Module | None = None  # the model, or its top over a cached trunk; compiled if asked
    train_net: nn.Module | None = None  # `net`, in DistributedDataParallel with several processes

    @property
    def device(self) -> str:
        return self.run_cfg.device


@dataclass(frozen=True)
class Schedule:
    """How the training split is dealt out: per process, per micro-batch, per optimizer step."""

    sampler: DistributedSampler
    local_batch: int  # messages per micro-batch in each process
    n_batches: int  # micro-batches per epoch in each process
    steps_per_epoch: int
    total_steps: float  # what the learning-rate schedule decays over


def use_threads(threads: int | None) -> None:
    """Run this process's torch CPU work on `threads` threads, intra- and inter-op.

    Args:
        threads: how many; None leaves torch's default (OMP_NUM_THREADS, else every CPU).
    """
    if threads is None:
        return
    torch.set_num_threads(threads)
    # Settable once per process, before its first parallel work: a later run in the same
    # process (an app's, a test's) keeps the count already set.
    with contextlib.suppress(RuntimeError):
        torch.set_num_interop_threads(threads)


def curves_missing() -> str | None:
    """Why the checkpoint will have no training curves (matplotlib, of the plots extra, is not
    installed), or None when it will have them."""
    if importlib.util.find_spec("matplotlib") is not None:
        return None
    return f"matplotlib is not installed: {EXTRAS['matplotlib'][1]}"


def train(cfg: TrainConfig, data_cfg: DataConfig, out_dir: str, resume: bool = False,
          force: bool = False, threads: int | None = None) -> dict:
    """Train, keep the epoch `cfg.keep` picks (best validation accuracy, or the last), write the
    checkpoint.

    With `resume`, continue an interrupted run in `out_dir` from its last complete epoch, with
    the configuration it was started with. `--device auto` is resolved again on resume, so a run
    continues on whatever this machine has; the saved state is device-independent. Under
    torchrun every process runs this with the same arguments: each trains on its share of every
    batch (`cfg.batch_size` is the global batch), gradients and metrics are averaged over all of
    them, and only rank 0 prints and writes.

    `out_dir` must be new, an empty directory, or (with `force`) a checkpoint or unfinished run
    to replace: anything else there is refused before training starts. It is this run's alone
    until the run ends: another spamkit run that asks for it meanwhile is refused.

    `threads`: torch's CPU threads in this process (None: torch's default). Where the run
    runs, not what it computes: it is no setting of the run, saved or compared on resume."""
    use_threads(threads)
    writer = os.environ.get("RANK", "0") == "0"  # torchrun's other ranks write nothing
    with exclusive_output(out_dir) if writer else contextlib.nullcontext():
        if writer and not resume:
            check_output(out_dir, CHECKPOINT, force=force, inputs=[data_cfg.path, cfg.weights])
        return _train(cfg, data_cfg, out_dir, resume)


def _train(cfg: TrainConfig, data_cfg: DataConfig, out_dir: str, resume: bool) -> dict:
    saved = load_state(out_dir) if resume else None
    if saved:
        cfg, data_cfg = saved.train, saved.data
    run = prepare_run(cfg, data_cfg, out_dir, saved)
    start_progress(run, saved)
    cache_note = prepare_networks(run)
    announce_run(run, cache_note)
    schedule = plan_schedule(run)
    try:
        run_epochs(run, schedule)
    except KeyboardInterrupt:
        how = (f"spamkit train --resume --out {out_dir}" if run.ranks.world == 1
               else "the same command with --resume")
        raise Interrupted(f"interrupted; {out_dir} can resume after epoch {run.resumable}: {how}"
                          ) from None
    metrics = evaluate_kept(run)
    if run.ranks.master:
        save_results(run, metrics)
    return metrics


def prepare_run(cfg: TrainConfig, data_cfg: DataConfig, out_dir: str,
                saved: SavedState | None) -> Run:
    """Resolve where the run trains, start its processes, load the data, build the model (from
    the saved state when resuming) and its optimizer."""
    cfg.check()
    device = resolve_device(cfg.device)
    run_cfg = replace(cfg, device=device, precision=resolve_precision(cfg.precision, device),
                      compile=resolve_compile(cfg.compile, device))
    ranks = distributed.start(device)
    if cfg.batch_size % ranks.world:
        raise SpamkitError(f"--batch-size {cfg.batch_size} is the global batch: it must divide "
                           f"evenly among {ranks.world} processes")
    torch.manual_seed(cfg.seed)
    splits = load_splits(data_cfg)
    if saved:
        model = GPTClassifier(saved.model)
        splits = relabel(splits, saved.labels or splits.labels, f"the run in {out_dir}")
    else:
        model, splits = build_model(cfg, splits)
    tokenizer = gpt2_tokenizer(model.config.context_length)
    if cfg.char_ngrams:
        model.wte = CharNgramEmbedding(model.wte, tokenizer.encoding, cfg.char_ngrams)
    data = {name: Encoded.of(getattr(splits, name), tokenizer) for name in ("train", "val", "test")}
    pad_to = resolve_pad_to(cfg, data["train"].ids, model.config.context_length)
    set_trainable(model, cfg)
    model.to(device)
    optimizer = make_optimizer(model, cfg)
    scaler = torch.amp.GradScaler(device, enabled=run_cfg.precision == "fp16")
    data_cfg = replace(data_cfg, sha256=splits.sha256)  # what `eval` "as trained" checks
    return Run(cfg, run_cfg, data_cfg, out_dir, ranks, splits.labels, model, tokenizer.pad_id,
               pad_to, data, optimizer, scaler)


def start_progress(run: Run, saved: SavedState | None) -> None:
    """Restore the saved progress, or write a resume point before the first epoch, so that an
    interrupt at any time can resume."""
    if saved:
        run.progress = saved.restore(run.model, run.optimizer, run.scaler)
        run.resumable = run.progress.epoch
        if run.ranks.master:
            print(f"resuming {run.out_dir} after epoch {run.progress.epoch}")
    else:
        save_progress(run)


def save_progress(run: Run) -> None:
    """Write the resume point (rank 0 only): the model, optimizer and progress so far."""
    if run.ranks.master:
        save_state(run.out_dir, run.cfg, run.data_cfg, run.model.config, run.labels,
                   run.model, run.optimizer, run.scaler, run.progress)


def prepare_networks(run: Run) -> str:
    """Set what evaluates (`run.net`) and what trains (`run.train_net`); return how the frozen
    trunk is handled, for the opening line."""
    note = cache_frozen_trunk(run)
    # dynamic=True: every batch has its own length, and one graph with a symbolic length
    # beats recompiling for each new one.
    run.net = torch.compile(run.net, dynamic=True) if run.run_cfg.compile else run.net
    run.train_net = run.net
    if run.ranks.world > 1:
        from torch.nn.parallel import DistributedDataParallel

        # The model's only buffers are --char-ngrams' lookup tables, the same on every rank:
        # nothing to broadcast before each step.
        run.train_net = DistributedDataParallel(
            run.net, device_ids=None if run.device == "cpu" else [run.ranks.local],
            broadcast_buffers=False)
    return note


def cache_frozen_trunk(run: Run) -> str:
    """When only the top trains, the trunk maps a message to the same hidden states in every
    epoch: compute them once, and each step runs (and backpropagates) the top alone."""
    run.net = run.model
    splits = list(run.data.values())
    size = cache_size(run.model, splits, run.pad_to) if run.cfg.cache_frozen else None
    if size is None:
        return ""
    if size > CACHE_LIMIT_BYTES:
        return f", frozen trunk not cached ({size / 1e9:.1f} GB)"
    run.data = {name: cache_trunk(run.model, d, run.run_cfg, run.pad_id, run.pad_to)
                for name, d in run.data.items()}
    run.net = FrozenTrunkTop(run.model)
    return f", frozen trunk computed once ({size / 1e6:.0f} MB)"


def announce_run(run: Run, cache_note: str) -> None:
    """The opening line: what trains, on what, how; and a note when the checkpoint will have
    no training curves."""
    if not run.ranks.master:
        return
    cfg, model = run.run_cfg, run.model
    n_trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    threads = torch.get_num_threads()  # what torch runs on, however it was set
    print(
        f"training {preset_name(model.config)} ({n_trainable / 1e6:.2f}M trainable "
        f"parameters, {cfg.trainable}) on {len(run.data['train'].ids)} messages, "
        f"{len(run.labels)} classes {run.labels}, on {describe(cfg.device)}, {threads} CPU "
        f"thread{'s' if threads > 1 else ''}{' per process' if run.ranks.world > 1 else ''}, "
        f"precision {cfg.precision}, compile {'on' if cfg.compile else 'off'}" + cache_note
        + (f", {run.ranks.world} processes" if run.ranks.world > 1 else ""), flush=True)
    missing = curves_missing()
    if missing:
        print(f"note: the checkpoint will have no training curves ({CURVES_FILE}): {missing}",
              flush=True)


def plan_schedule(run: Run) -> Schedule:
    # Every rank draws the same permutation of the epoch (seed + epoch) and keeps every
    # world-th message of it, after repeating the first few so that all ranks run as many steps:
    # batch k of all ranks together is batch k of a single-process run with the same seed.
    ranks, cfg = run.ranks, run.cfg
    sampler = DistributedSampler(range(len(run.data["train"].ids)), num_replicas=ranks.world,
                                 rank=ranks.rank, shuffle=True, seed=cfg.seed)
    local_batch = cfg.batch_size // ranks.world
    n_batches = math.ceil(len(sampler) / local_batch)
    steps_per_epoch = math.ceil(n_batches / cfg.grad_accum)
    total_steps = min(steps_per_epoch * cfg.epochs, cfg.max_steps or math.inf)
    return Schedule(sampler, local_batch, n_batches, steps_per_epoch, total_steps)


def run_epochs(run: Run, schedule: Schedule) -> None:
    """Train the remaining epochs; after each, validate, keep it if it is the best so far and
    write the resume point."""
    for epoch in range(run.progress.epoch + 1, run.cfg.epochs + 1):
        if reached_max_steps(run):
            break
        t0 = time.perf_counter()
        sums, first_step_seconds = train_epoch(run, schedule, epoch, t0)
        record = record_epoch(run, epoch, t0, sums, first_step_seconds)
        report_epoch(run, record)
        keep_epoch(run, record)
        run.progress.epoch = epoch
        save_progress(run)
        run.resumable = epoch


def reached_max_steps(run: Run) -> bool:
    return run.cfg.max_steps is not None and run.progress.step >= run.cfg.max_steps


def train_epoch(run: Run, schedule: Schedule, epoch: int, t0: float
                ) -> tuple[list[float], float | None]:
    """One pass over this process's share of the training split. Returns the running sums
    [loss, correct, messages] and the seconds until the first optimizer step."""
    run.model.train()
    schedule.sampler.set_epoch(epoch)
    if run.ranks.world > 1:
        # Its own dropout masks on each rank, from the epoch alone, so a resumed run
        # draws the masks an uninterrupted one would.
        torch.manual_seed(run.cfg.seed + epoch * run.ranks.world + run.ranks.rank)
    loss_sum, correct, count = 0.0, 0, 0
    bar = progress_bar(run.ranks.master, total=schedule.steps_per_epoch, desc=f"epoch {epoch}",
                       leave=False)
    first_step_seconds = None
    for i, (inputs, mask, labels) in enumerate(batches(
        run.data["train"], schedule.local_batch, run.pad_id, list(schedule.sampler), run.pad_to
    )):
        last_micro_step = (i + 1) % run.cfg.grad_accum == 0 or i + 1 == schedule.n_batches
        batch_loss, batch_correct = learn_batch(run, inputs, mask, labels, last_micro_step)
        loss_sum, correct = loss_sum + batch_loss, correct + batch_correct
        count += len(labels)
        run.progress.seen += len(labels) * run.ranks.world
        if last_micro_step:
            step_optimizer(run, schedule.total_steps)
            first_step_seconds = first_step_seconds or time.perf_counter() - t0
            bar.update(1)
            bar.set_postfix(loss=f"{loss_sum / count:.3f}")
            if reached_max_steps(run):
                break
    bar.close()
    return [loss_sum, correct, count], first_step_seconds


def learn_batch(run: Run, inputs: torch.Tensor, mask: torch.Tensor, labels: torch.Tensor,
                sync: bool) -> tuple[float, int]:
    """Forward and backward one micro-batch, averaging the gradients over the processes only
    when `sync`; return its summed loss and how many it got right."""
    train_net = run.train_net
    if run.ranks.world > 1:
        train_net.require_backward_grad_sync = sync  # average once per step
    inputs, mask, labels = (t.to(run.device) for t in (inputs, mask, labels))
    with autocast(run.run_cfg):
        logits = train_net(inputs, mask).float()
    loss = F.cross_entropy(logits, labels)
    run.scaler.scale(loss / run.cfg.grad_accum).backward()
    return loss.item() * len(labels), (logits.argmax(-1) == labels).sum().item()


def step_optimizer(run: Run, total_steps: float) -> None:
    for group in run.optimizer.param_groups:
        group["lr"] = learning_rate(run.cfg, run.progress.step, total_steps)
    run.scaler.step(run.optimizer)
    run.scaler.update()
    run.optimizer.zero_grad(set_to_none=True)
    run.progress.step += 1


def record_epoch(run: Run, epoch: int, t0: float, sums: list[float],
                 first_step_seconds: float | None) -> dict:
    """Validate, and add the epoch's record to the history."""
    progress = run.progress
    train_seconds = time.perf_counter() - t0
    steps = progress.step - (progress.history[-1]["step"] if progress.history else 0)
    loss_sum, correct, count = distributed.all_sum(sums, run.device)
    val = evaluate_split(run, "val")
    record = {
        "epoch": epoch,
        "step": progress.step,
        "examples_seen": progress.seen,
        # Running means over the epoch's batches: free, and what the curves show.
        "train_loss": loss_sum / count,
        "train_accuracy": correct / count,
        "val_loss": val["loss"],
        "val_accuracy": val["accuracy"],
        "seconds": time.perf_counter() - t0,
        "train_seconds": train_seconds,  # the optimizer steps alone, no validation
        "steps": steps,
        "first_step_seconds": first_step_seconds,  # torch.compile compiles in it
    }
    progress.history.append(record)
    return record


def report_epoch(run: Run, record: dict) -> None:
    if run.ranks.master:
        print(
            f"epoch {record['epoch']}: train loss {record['train_loss']:.3f} acc "
            f"{record['train_accuracy']:.2%} | val loss {record['val_loss']:.3f} acc "
            f"{record['val_accuracy']:.2%} | {record['seconds']:.1f}s "
            f"({record['train_seconds'] / max(record['steps'], 1):.3f} s/step)",
            flush=True,  # progress reaches logs and pipes as it happens
        )


def keep_epoch(run: Run, record: dict) -> None:
    """Hold on to this epoch's weights if the checkpoint should have them (see `should_keep`)."""
    val = {"accuracy": record["val_accuracy"], "loss": record["val_loss"]}
    if should_keep(run.cfg, val, run.progress.best):
        run.progress.best = {"val_accuracy": val["accuracy"], "val_loss": val["loss"],
                             "epoch": record["epoch"]}
        run.progress.best_state = copy.deepcopy(run.model.state_dict())


def evaluate_split(run: Run, name: str) -> dict[str, float]:
    return loss_and_accuracy(run.net, run.data[name], run.run_cfg, run.pad_id, run.pad_to,
                             run.ranks)


def evaluate_kept(run: Run) -> dict:
    """Load the kept epoch's weights, score every split with them, and stop the processes;
    return the metrics the checkpoint records."""
    progress = run.progress
    if progress.best_state is None:
        raise SpamkitError("no epoch ran: raise --epochs or --max-steps")
    run.model.load_state_dict(progress.best_state)
    final = {name: evaluate_split(run, name) for name in run.data}
    distributed.stop()
    return {
        "kept_epoch": progress.best["epoch"],  # whose weights the checkpoint holds
        "final": final,
        "history": progress.history,
        "split_sizes": {name: len(d.ids) for name, d in run.data.items()},
    }


def save_results(run: Run, metrics: dict) -> None:
    """Print the kept epoch's scores; write the checkpoint (the plain model: LoRA merged,
    character n-grams folded into the embeddings) and the training curves."""
    cfg, model, final = run.cfg, run.model, metrics["final"]
    print(
        f"kept epoch {metrics['kept_epoch']} ({cfg.keep}): train acc "
        f"{final['train']['accuracy']:.2%}, val acc {final['val']['accuracy']:.2%}, test acc "
        f"{final['test']['accuracy']:.2%}"
    )
    if cfg.trainable == "lora":
        merge_lora(model)
    if cfg.char_ngrams:
        model.wte = model.wte.folded()
    training = {**asdict(run.run_cfg), "pad_to_tokens": run.pad_to}
    ckpt = Checkpoint(model.cpu().eval(), run.labels, preset_name(model.config), run.data_cfg,
                      training)
    save_checkpoint(run.out_dir, ckpt, metrics)  # replaces out_dir, training state included
    if curves_missing():  # said before training; the checkpoint is whole without them
        print(f"checkpoint written to {run.out_dir} (no training curves)")
        return
    from spamkit import plots  # matplotlib: the plots extra

    plots.training_curves(run.progress.history, Path(run.out_dir) / CURVES_FILE)
    print(f"checkpoint written to {run.out_dir} (training curves in {CURVES_FILE})")
