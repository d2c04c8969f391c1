"""Fine-tune a GPT classifier: a plain loop (nanoGPT style) with the book's chapter 6 metrics.

`train` sets a run up and finishes it; `train_epochs` is the loop itself (batch, loss,
backward, step; then evaluate, keep and save the resume point after each epoch).
"""

from __future__ import annotations

import contextlib
import copy
import importlib.util
import math
import os
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.data import DistributedSampler

from spamkit.config import TrainConfig
from spamkit.data import DataConfig, Examples, Splits, load_splits
from spamkit.errors import Interrupted, SpamkitError
from spamkit.extras import EXTRAS
from spamkit.outputs import CHECKPOINT, check_output, exclusive_output
from spamkit.progress import progress_bar
from spamkit.runtime.classifier import pad_batch
from spamkit.runtime.tokenizer import Tokenizer
from spamkit.tokenizer import gpt2_tokenizer
from spamkit.training import distributed
from spamkit.training.build import build_model, relabel, set_trainable
from spamkit.training.char_ngrams import CharNgramEmbedding, fold_embeddings
from spamkit.training.checkpoint import CURVES_FILE, Checkpoint, save_checkpoint
from spamkit.training.distributed import Ranks
from spamkit.training.lora import merge_lora
from spamkit.training.model import GPTClassifier
from spamkit.training.pretrained import preset_name
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
SPLITS = ("train", "val", "test")


@dataclass
class Encoded:
    """A split, tokenized once: token ids per message and class ids, and how batches pad them."""

    ids: list[list[int]]
    labels: list[int] | list[list[int]]  # a class per message; a language model's next tokens
    pad_id: int
    pad_to: int | None = None  # --pad-to, resolved to a length
    # The frozen trunk's output per message, [tokens, n_embd], when training reuses it.
    states: list[torch.Tensor] | None = None

    @classmethod
    def of(cls, examples: Examples, tokenizer: Tokenizer) -> Encoded:
        return cls(tokenizer.encode_batch(examples.texts), list(examples.labels), tokenizer.pad_id)


@dataclass(frozen=True)
class RunConfig:
    """What a run is, settled before its first step; what it trains is passed beside it."""

    asked: TrainConfig  # as given: what the resume point saves, so a resume resolves `auto` afresh
    cfg: TrainConfig  # what runs: device, precision and compile resolved
    data_cfg: DataConfig  # with the data's sha256, which `eval` "as trained" checks
    out_dir: str
    ranks: Ranks
    labels: list[str]  # class names, in the model's order
    lm: bool = False  # a language model (`spamkit pretrain`): each token's next is its label
    extra: dict | None = None  # saved with the resume point: what else resuming needs


@dataclass(frozen=True)
class Nets:
    """The model and what runs it: `net` evaluates (the model, or its top over a cached trunk;
    compiled if asked), `train_net` trains (`net`, in DistributedDataParallel with several
    processes)."""

    model: GPTClassifier
    net: nn.Module
    train_net: nn.Module


@dataclass(frozen=True)
class Schedule:
    """How the training split is dealt out: per process, per micro-batch, per optimizer step."""

    sampler: DistributedSampler
    local_batch: int  # messages per micro-batch in each process
    n_batches: int  # micro-batches per epoch in each process
    steps_per_epoch: int
    total_steps: float  # what the learning-rate schedule decays over


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
    """Set the run up, train its epochs, then score the kept epoch and write the checkpoint."""
    saved = load_state(out_dir) if resume else None
    if saved and "pretrain" in saved.meta:
        raise SpamkitError(f"{out_dir} is an unfinished `spamkit pretrain` run: finish it with "
                           f"spamkit pretrain --resume --out {out_dir}")
    if saved:
        cfg, data_cfg = saved.train, saved.data
    run, model, data = set_up_run(cfg, data_cfg, out_dir, saved)
    optimizer, scaler, progress = start_optimizing(run, model, saved)
    nets, data, cache_note = prepare_networks(run, model, data)
    announce_run(run, model, len(data["train"].ids), cache_note)
    train_or_say_how_to_resume("train", run, nets, optimizer, scaler, data, progress)
    metrics = evaluate_kept(run, nets, data, progress)
    if run.ranks.master:
        save_results(run, model, metrics, data["train"].pad_to)
    return metrics


def start_optimizing(run: RunConfig, model: GPTClassifier, saved: SavedState | None
                     ) -> tuple[torch.optim.Optimizer, torch.amp.GradScaler, Progress]:
    """The optimizer, fp16's gradient scaler and the progress a run starts from (the saved
    ones when it resumes)."""
    optimizer = make_optimizer(model, run.cfg)
    scaler = torch.amp.GradScaler(run.cfg.device, enabled=run.cfg.precision == "fp16")
    return optimizer, scaler, start_progress(run, model, optimizer, scaler, saved)


def train_or_say_how_to_resume(command: str, run: RunConfig, nets: Nets,
                               optimizer: torch.optim.Optimizer, scaler: torch.amp.GradScaler,
                               data: dict[str, Encoded], progress: Progress) -> None:
    """train_epochs; Ctrl-C ends it with the `spamkit COMMAND --resume` that continues it."""
    try:
        train_epochs(run, nets, optimizer, scaler, data, progress)
    except KeyboardInterrupt:
        how = (f"spamkit {command} --resume --out {run.out_dir}" if run.ranks.world == 1
               else "the same command with --resume")
        raise Interrupted(f"interrupted; {run.out_dir} can resume after epoch "
                          f"{progress.epoch}: {how}") from None


def train_epochs(run: RunConfig, nets: Nets, optimizer: torch.optim.Optimizer,
                 scaler: torch.amp.GradScaler, data: dict[str, Encoded], progress: Progress
                 ) -> None:
    """The training loop (the book's train_classifier_simple): each batch's loss and backward
    pass, an optimizer step every --grad-accum batches; after each epoch, evaluate, keep the
    epoch if --keep picks it, and write the resume point (`progress.epoch`: the last written)."""
    cfg, ranks = run.cfg, run.ranks
    schedule = plan_schedule(run, len(data["train"].ids))
    for epoch in range(progress.epoch + 1, cfg.epochs + 1):
        if reached_max_steps(cfg, progress):
            break
        t0 = time.perf_counter()
        nets.model.train()
        schedule.sampler.set_epoch(epoch)
        seed_dropout(run, epoch)
        bar = progress_bar(ranks.master, total=schedule.steps_per_epoch, desc=f"epoch {epoch}",
                           leave=False)
        loss_sum, correct, count, first_step_seconds = 0.0, 0, 0, None  # in this process
        order = list(schedule.sampler)
        for i, (inputs, mask, labels) in enumerate(
                batches(data["train"], schedule.local_batch, order)):
            step_ends = (i + 1) % cfg.grad_accum == 0 or i + 1 == schedule.n_batches
            if ranks.world > 1:
                nets.train_net.require_backward_grad_sync = step_ends  # average once per step
            loss, right = calc_loss_batch(nets.train_net, inputs, mask, labels, cfg)
            scaler.scale(loss / cfg.grad_accum).backward()
            loss_sum += loss.item() * labels.numel()  # the batch's targets: messages or tokens
            correct, count = correct + right, count + labels.numel()
            progress.seen += len(labels) * ranks.world
            if step_ends:
                lr = learning_rate(cfg, progress.step, schedule.total_steps)
                step_optimizer(optimizer, scaler, lr)
                progress.step += 1
                first_step_seconds = first_step_seconds or time.perf_counter() - t0
                bar.update(1)
                bar.set_postfix(loss=f"{loss_sum / count:.3f}")
                if reached_max_steps(cfg, progress):
                    break
        bar.close()
        train_seconds = time.perf_counter() - t0
        sums = distributed.all_sum([loss_sum, correct, count], cfg.device)
        val = evaluate_split(nets.net, data["val"], cfg, ranks)
        record = record_epoch(progress, epoch, sums, val, t0, train_seconds, first_step_seconds)
        if ranks.master:
            print(format_epoch(record, run.lm), flush=True)  # reaches logs and pipes at once
        keep_epoch(cfg, nets.model, progress, record)
        save_progress(run, nets.model, optimizer, scaler, replace(progress, epoch=epoch))
        progress.epoch = epoch


# The loop's steps ---------------------------------------------------------------------------


def reached_max_steps(cfg: TrainConfig, progress: Progress) -> bool:
    return cfg.max_steps is not None and progress.step >= cfg.max_steps


def seed_dropout(run: RunConfig, epoch: int) -> None:
    """With several processes, its own dropout masks on each rank, from the epoch alone, so a
    resumed run draws the masks an uninterrupted one would."""
    if run.ranks.world > 1:
        torch.manual_seed(run.cfg.weights_seed + epoch * run.ranks.world + run.ranks.rank)


def calc_loss_batch(net: nn.Module, inputs: torch.Tensor, mask: torch.Tensor,
                    labels: torch.Tensor, cfg: TrainConfig) -> tuple[torch.Tensor, int]:
    """One batch's mean cross-entropy (the book's calc_loss_batch) and how many it got right:
    a class per message, or (a language model's) a next token per position."""
    inputs, mask, labels = (t.to(cfg.device) for t in (inputs, mask, labels))
    with autocast(cfg):
        logits = net(inputs, mask).float()
    loss = F.cross_entropy(logits.flatten(0, -2), labels.flatten())
    return loss, (logits.argmax(-1) == labels).sum().item()


def step_optimizer(optimizer: torch.optim.Optimizer, scaler: torch.amp.GradScaler,
                   lr: float) -> None:
    """One optimizer step at `lr` through the loss scaler (fp16's), then clear the gradients."""
    for group in optimizer.param_groups:
        group["lr"] = lr
    scaler.step(optimizer)
    scaler.update()
    optimizer.zero_grad(set_to_none=True)


def learning_rate(cfg: TrainConfig, step: int, total_steps: int) -> float:
    """The learning rate of optimizer step `step` (counted from 0) of `total_steps`."""
    warmup = cfg.warmup_steps
    if step < warmup:
        return cfg.lr * (step + 1) / warmup
    if cfg.lr_schedule == "constant":
        return cfg.lr
    done = (step - warmup) / max(total_steps - warmup, 1)
    return cfg.lr * 0.5 * (1.0 + math.cos(math.pi * min(done, 1.0)))


@torch.no_grad()
def evaluate_split(net: nn.Module, data: Encoded, cfg: TrainConfig, ranks: Ranks
                   ) -> dict[str, float]:
    """Mean cross-entropy and accuracy over a whole split (the book's calc_*_loader), per
    message or (a language model's) per token; with several processes, each scores every
    world-th message and the sums are added up."""
    net.eval()
    # Sorting by length wastes no compute on padding; the order does not change the means.
    order = sorted(range(len(data.ids)), key=lambda i: len(data.ids[i]))[ranks.rank :: ranks.world]
    loss_sum, correct, count = 0.0, 0, 0
    for inputs, mask, labels in batches(data, 32, order):
        with autocast(cfg):
            logits = net(inputs.to(cfg.device), mask.to(cfg.device)).float()
        labels = labels.to(cfg.device)
        loss_sum += F.cross_entropy(logits.flatten(0, -2), labels.flatten(),
                                    reduction="sum").item()
        correct += (logits.argmax(-1) == labels).sum().item()
        count += labels.numel()
    loss_sum, correct, count = distributed.all_sum([loss_sum, correct, count], cfg.device)
    n = max(count, 1)
    return {"loss": loss_sum / n, "accuracy": correct / n}


def record_epoch(progress: Progress, epoch: int, sums: list[float], val: dict[str, float],
                 t0: float, train_seconds: float, first_step_seconds: float | None) -> dict:
    """Add the epoch's record to the history; `sums`: its summed training loss, right answers
    and messages over all processes."""
    loss_sum, correct, count = sums
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
        "steps": progress.step - (progress.history[-1]["step"] if progress.history else 0),
        "first_step_seconds": first_step_seconds,  # torch.compile compiles in it
    }
    progress.history.append(record)
    return record


def format_epoch(record: dict, lm: bool = False) -> str:
    """An epoch's line: losses and accuracies, or (a language model's) held-out perplexity."""
    scores = (f"train loss {record['train_loss']:.3f} | held-out loss {record['val_loss']:.3f} "
              f"perplexity {math.exp(record['val_loss']):.1f}" if lm else
              f"train loss {record['train_loss']:.3f} acc {record['train_accuracy']:.2%} | val "
              f"loss {record['val_loss']:.3f} acc {record['val_accuracy']:.2%}")
    return (f"epoch {record['epoch']}: {scores} | {record['seconds']:.1f}s "
            f"({record['train_seconds'] / max(record['steps'], 1):.3f} s/step)")


def keep_epoch(cfg: TrainConfig, model: GPTClassifier, progress: Progress, record: dict) -> None:
    """Hold on to this epoch's weights if the checkpoint should have them (see `should_keep`)."""
    val = {"accuracy": record["val_accuracy"], "loss": record["val_loss"]}
    if should_keep(cfg, val, progress.best):
        progress.best = {"val_accuracy": val["accuracy"], "val_loss": val["loss"],
                         "epoch": record["epoch"]}
        progress.best_state = copy.deepcopy(model.state_dict())


def should_keep(cfg: TrainConfig, val: dict[str, float], kept: dict) -> bool:
    """Whether the checkpoint should hold this epoch's weights rather than the kept epoch's."""
    if cfg.keep == "last":
        return True
    return (val["accuracy"], -val["loss"]) > (kept["val_accuracy"], -kept["val_loss"])


def save_progress(run: RunConfig, model: GPTClassifier, optimizer: torch.optim.Optimizer,
                  scaler: torch.amp.GradScaler, progress: Progress) -> None:
    """Write the resume point (rank 0 only): the model, optimizer and progress so far."""
    if run.ranks.master:
        save_state(run.out_dir, run.asked, run.data_cfg, model.config, run.labels, model,
                   optimizer, scaler, progress, run.extra)


# Batches ------------------------------------------------------------------------------------


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


def batches(data: Encoded, batch_size: int, order: list[int]
            ) -> Iterator[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
    """(inputs, attention_mask, labels) per batch: token ids, or the cached trunk outputs."""
    for start in range(0, len(order), batch_size):
        idx = order[start : start + batch_size]
        if data.states is None:
            inputs, mask = collate([data.ids[i] for i in idx], data.pad_id, data.pad_to)
        else:
            inputs, mask = collate_states([data.states[i] for i in idx])
        yield inputs, mask, torch.tensor([data.labels[i] for i in idx])


def autocast(cfg: TrainConfig):
    dtype = AUTOCAST_DTYPES[cfg.precision]
    return torch.autocast(cfg.device, dtype=dtype, enabled=dtype is not None)


# Setting a run up ---------------------------------------------------------------------------


def set_up_run(cfg: TrainConfig, data_cfg: DataConfig, out_dir: str, saved: SavedState | None
               ) -> tuple[RunConfig, GPTClassifier, dict[str, Encoded]]:
    """Resolve where the run trains, start its processes, load the data, build the model (from
    the saved state when resuming) and set what of it trains."""
    run_cfg, ranks = start_processes(cfg)
    torch.manual_seed(cfg.weights_seed)
    splits = load_splits(data_cfg)
    if saved:
        model = GPTClassifier(saved.model)
        splits = relabel(splits, saved.labels or splits.labels, f"the run in {out_dir}")
    else:
        model, splits = build_model(cfg, data_cfg, splits)
    tokenizer = gpt2_tokenizer(model.config.context_length)
    if cfg.char_ngrams:
        model.wte = CharNgramEmbedding(model.wte, tokenizer.encoding, cfg.char_ngrams)
    data = encode_splits(cfg, splits, tokenizer, model.config.context_length)
    set_trainable(model, cfg)
    model.to(run_cfg.device)
    data_cfg = replace(data_cfg, sha256=splits.sha256)
    return RunConfig(cfg, run_cfg, data_cfg, out_dir, ranks, splits.labels), model, data


def start_processes(cfg: TrainConfig) -> tuple[TrainConfig, Ranks]:
    """`cfg`, checked, with where it runs resolved (device, precision, compile); and this
    process's place among the run's processes, joined."""
    cfg.check()
    device = resolve_device(cfg.device)
    run_cfg = replace(cfg, device=device, precision=resolve_precision(cfg.precision, device),
                      compile=resolve_compile(cfg.compile, device))
    ranks = distributed.start(device)
    if cfg.batch_size % ranks.world:
        raise SpamkitError(f"--batch-size {cfg.batch_size} is the global batch: it must divide "
                           f"evenly among {ranks.world} processes")
    return run_cfg, ranks


def encode_splits(cfg: TrainConfig, splits: Splits, tokenizer: Tokenizer, context: int
                  ) -> dict[str, Encoded]:
    """Every split tokenized once, padded as --pad-to says."""
    data = {name: Encoded.of(getattr(splits, name), tokenizer) for name in SPLITS}
    pad_to = resolve_pad_to(cfg, data["train"].ids, context)
    return {name: replace(d, pad_to=pad_to) for name, d in data.items()}


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


def start_progress(run: RunConfig, model: GPTClassifier, optimizer: torch.optim.Optimizer,
                   scaler: torch.amp.GradScaler, saved: SavedState | None) -> Progress:
    """The saved progress, restored; or none yet, written as a resume point before the first
    epoch, so that an interrupt at any time can resume."""
    if not saved:
        progress = Progress()
        save_progress(run, model, optimizer, scaler, progress)
        return progress
    progress = saved.restore(model, optimizer, scaler)
    if run.ranks.master:
        print(f"resuming {run.out_dir} after epoch {progress.epoch}")
    return progress


def prepare_networks(run: RunConfig, model: GPTClassifier, data: dict[str, Encoded]
                     ) -> tuple[Nets, dict[str, Encoded], str]:
    """What evaluates and what trains, and `data` with the frozen trunk's outputs where they
    are cached; and how the frozen trunk is handled, for the opening line."""
    net, data, note = cache_frozen_trunk(run.cfg, model, data)
    # dynamic=True: every batch has its own length, and one graph with a symbolic length
    # beats recompiling for each new one.
    net = torch.compile(net, dynamic=True) if run.cfg.compile else net
    return Nets(model, net, parallel(run, net)), data, note


def parallel(run: RunConfig, net: nn.Module) -> nn.Module:
    """What trains `net`: itself, or with several processes DistributedDataParallel over it."""
    if run.ranks.world == 1:
        return net
    from torch.nn.parallel import DistributedDataParallel

    # The model's only buffers are --char-ngrams' lookup tables, the same on every rank:
    # nothing to broadcast before each step.
    return DistributedDataParallel(
        net, device_ids=None if run.cfg.device == "cpu" else [run.ranks.local],
        broadcast_buffers=False)


def cache_frozen_trunk(cfg: TrainConfig, model: GPTClassifier, data: dict[str, Encoded]
                       ) -> tuple[nn.Module, dict[str, Encoded], str]:
    """When only the top trains, the trunk maps a message to the same hidden states in every
    epoch: compute them once, and each step runs (and backpropagates) the top alone. Returns
    what runs the model, the data it reads and a note for the opening line."""
    size = cache_size(model, list(data.values())) if cfg.cache_frozen else None
    if size is None:
        return model, data, ""
    if size > CACHE_LIMIT_BYTES:
        return model, data, f", frozen trunk not cached ({size / 1e9:.1f} GB)"
    data = {name: cache_trunk(model, d, cfg) for name, d in data.items()}
    return FrozenTrunkTop(model), data, f", frozen trunk computed once ({size / 1e6:.0f} MB)"


class FrozenTrunkTop(nn.Module):
    """What trains when the trunk is frozen: the last block, final norm and head, fed the
    trunk's cached outputs (what torch.compile and DistributedDataParallel then wrap)."""

    def __init__(self, model: GPTClassifier) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        return self.model.top(x, attention_mask)


def cache_size(model: GPTClassifier, splits: list[Encoded]) -> int | None:
    """Bytes of the frozen trunk's outputs for `splits`, or None when they are not fixed: some
    of the trunk trains, or dropout draws new masks every step."""
    if model.config.dropout > 0 or any(p.requires_grad for p in model.trunk_parameters()):
        return None
    tokens = sum(d.pad_to or len(x) for d in splits for x in d.ids)
    return tokens * model.config.n_embd * 4


@torch.no_grad()
def cache_trunk(model: GPTClassifier, data: Encoded, cfg: TrainConfig) -> Encoded:
    """`data` with the trunk's output for each message, computed once for the whole run."""
    model.eval()
    order = sorted(range(len(data.ids)), key=lambda i: len(data.ids[i]))
    states: list[torch.Tensor] = [torch.empty(0)] * len(order)
    for start in range(0, len(order), 32):
        idx = order[start : start + 32]
        input_ids, mask = collate([data.ids[i] for i in idx], data.pad_id, data.pad_to)
        with autocast(cfg):
            x = model.trunk(input_ids.to(cfg.device)).float()
        for row, i, n in zip(x, idx, mask.sum(dim=1).tolist(), strict=True):
            states[i] = row[:n].clone()
    return replace(data, states=states)


def announce_run(run: RunConfig, model: GPTClassifier, n_messages: int, cache_note: str) -> None:
    """The opening line: what trains, on what, how; and a note when the checkpoint will have
    no training curves."""
    if not run.ranks.master:
        return
    cfg, world = run.cfg, run.ranks.world
    n_trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    threads = torch.get_num_threads()  # what torch runs on, however it was set
    print(
        f"training {preset_name(model.config)} ({n_trainable / 1e6:.2f}M trainable "
        f"parameters, {cfg.trainable}) on {n_messages} messages, "
        f"{len(run.labels)} classes {run.labels}, on {describe(cfg.device)}, {threads} CPU "
        f"thread{'s' if threads > 1 else ''}{' per process' if world > 1 else ''}, "
        f"precision {cfg.precision}, compile {'on' if cfg.compile else 'off'}" + cache_note
        + (f", {world} processes" if world > 1 else ""), flush=True)
    missing = curves_missing()
    if missing:
        print(f"note: the checkpoint will have no training curves ({CURVES_FILE}): {missing}",
              flush=True)


def plan_schedule(run: RunConfig, n_messages: int) -> Schedule:
    # Every rank draws the same permutation of the epoch (seed + epoch) and keeps every
    # world-th message of it, after repeating the first few so that all ranks run as many steps:
    # batch k of all ranks together is batch k of a single-process run with the same seed.
    ranks, cfg = run.ranks, run.cfg
    sampler = DistributedSampler(range(n_messages), num_replicas=ranks.world,
                                 rank=ranks.rank, shuffle=True, seed=cfg.weights_seed)
    local_batch = cfg.batch_size // ranks.world
    n_batches = math.ceil(len(sampler) / local_batch)
    steps_per_epoch = math.ceil(n_batches / cfg.grad_accum)
    total_steps = min(steps_per_epoch * cfg.epochs, cfg.max_steps or math.inf)
    return Schedule(sampler, local_batch, n_batches, steps_per_epoch, total_steps)


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


# Finishing a run ----------------------------------------------------------------------------


def evaluate_kept(run: RunConfig, nets: Nets, data: dict[str, Encoded], progress: Progress
                  ) -> dict:
    """Load the kept epoch's weights, score every split with them, and stop the processes;
    return the metrics the checkpoint records."""
    if progress.best_state is None:
        raise SpamkitError("no epoch ran: raise --epochs or --max-steps")
    nets.model.load_state_dict(progress.best_state)
    final = {name: evaluate_split(nets.net, d, run.cfg, run.ranks) for name, d in data.items()}
    distributed.stop()
    return {
        "kept_epoch": progress.best["epoch"],  # whose weights the checkpoint holds
        "final": final,
        "history": progress.history,
        "split_sizes": {name: len(d.ids) for name, d in data.items()},
    }


def save_results(run: RunConfig, model: GPTClassifier, metrics: dict, pad_to: int | None
                 ) -> None:
    """Print the kept epoch's scores; write the checkpoint (the plain model: LoRA merged,
    character n-grams folded into the embeddings) and the training curves."""
    cfg, final = run.cfg, metrics["final"]
    print(
        f"kept epoch {metrics['kept_epoch']} ({cfg.keep}): train acc "
        f"{final['train']['accuracy']:.2%}, val acc {final['val']['accuracy']:.2%}, test acc "
        f"{final['test']['accuracy']:.2%}"
    )
    if cfg.trainable == "lora":
        merge_lora(model)
    fold_embeddings(model)
    training = {**asdict(cfg), "pad_to_tokens": pad_to}
    ckpt = Checkpoint(model.cpu().eval(), run.labels, preset_name(model.config), run.data_cfg,
                      training)
    save_checkpoint(run.out_dir, ckpt, metrics)  # replaces out_dir, training state included
    if curves_missing():  # said before training; the checkpoint is whole without them
        print(f"checkpoint written to {run.out_dir} (no training curves)")
        return
    from spamkit import plots  # matplotlib: the plots extra

    plots.training_curves(metrics["history"], Path(run.out_dir) / CURVES_FILE)
    print(f"checkpoint written to {run.out_dir} (training curves in {CURVES_FILE})")
