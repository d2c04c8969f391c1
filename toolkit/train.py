"""Fine-tune a GPT classifier: a plain loop (nanoGPT style) with the book's chapter 6 metrics."""

from __future__ import annotations

import copy
import math
import os
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.data import DistributedSampler
from tqdm import tqdm

from spamkit import distributed, plots
from spamkit.char_ngrams import CharNgramEmbedding
from spamkit.checkpoint import Checkpoint, save_checkpoint
from spamkit.config import TrainConfig, preset_config
from spamkit.data import DataConfig, Examples, load_splits
from spamkit.distributed import Ranks
from spamkit.errors import Interrupted, SpamkitError
from spamkit.lora import add_lora, merge_lora
from spamkit.model import GPTClassifier
from spamkit.outputs import CHECKPOINT, check_output
from spamkit.pretrained import find_weights, load_pretrained, preset_name
from spamkit.resume import Progress, load_state, save_state
from spamkit.runtime.tokenizer import Tokenizer
from spamkit.tokenizer import gpt2_tokenizer
from spamkit.torch_device import describe, resolve_compile, resolve_device, resolve_precision

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
    """Right-pad to the longest message in the batch; return input_ids and attention_mask.

    With `pad_to`, every message is padded to that length and the padding is marked as real
    tokens, so the model reads the last position whatever it holds (the book's setup)."""
    width = pad_to or max(len(x) for x in ids)
    input_ids = torch.full((len(ids), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(ids), width), dtype=torch.long)
    for i, x in enumerate(ids):
        x = x[-width:]
        input_ids[i, : len(x)] = torch.tensor(x)
        mask[i, : width if pad_to else len(x)] = 1
    return input_ids, mask


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


class Top(nn.Module):
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


def build_model(cfg: TrainConfig, num_classes: int) -> GPTClassifier:
    head = dict(num_classes=num_classes, token=cfg.token, dropout=cfg.dropout)
    if cfg.init == "random":
        return GPTClassifier(preset_config(cfg.preset or "mini", **head))
    path = find_weights(cfg.init, cfg.weights)
    model = load_pretrained(path, **head)
    shape = preset_name(model.config)
    if cfg.preset and shape != cfg.preset:
        raise SpamkitError(f"the weights at {path} are {shape}-shaped, not {cfg.preset}")
    print(f"loaded {shape} GPT-2 weights from {path}")
    return model


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


def keeps(cfg: TrainConfig, val: dict[str, float], kept: dict) -> bool:
    """Whether the checkpoint should hold this epoch's weights rather than the kept epoch's."""
    if cfg.keep == "last":
        return True
    return (val["accuracy"], -val["loss"]) > (kept["val_accuracy"], -kept["val_loss"])


def autocast(cfg: TrainConfig):
    dtype = AUTOCAST_DTYPES[cfg.precision]
    return torch.autocast(cfg.device, dtype=dtype, enabled=dtype is not None)


@torch.no_grad()
def evaluate(
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


def train(cfg: TrainConfig, data_cfg: DataConfig, out_dir: str, resume: bool = False,
          force: bool = False) -> dict:
    """Train, keep the epoch `cfg.keep` picks (best validation accuracy, or the last), write the
    checkpoint.

    With `resume`, continue an interrupted run in `out_dir` from its last complete epoch, with
    the configuration it was started with. `--device auto` is resolved again on resume, so a run
    continues on whatever this machine has; the saved state is device-independent. Under
    torchrun every process runs this with the same arguments: each trains on its share of every
    batch (`cfg.batch_size` is the global batch), gradients and metrics are averaged over all of
    them, and only rank 0 prints and writes.

    `out_dir` must be new, an empty directory, or (with `force`) a checkpoint or unfinished run
    to replace: anything else there is refused before training starts."""
    if not resume and os.environ.get("RANK", "0") == "0":  # torchrun's other ranks write nothing
        check_output(out_dir, CHECKPOINT, force=force, inputs=[data_cfg.path, cfg.weights])
    saved = load_state(out_dir) if resume else None
    if saved:
        cfg, data_cfg = saved.train, saved.data
    cfg.check()
    device = resolve_device(cfg.device)
    # What actually runs; `cfg` stays as asked, so that a resume resolves `auto` afresh.
    run_cfg = replace(cfg, device=device, precision=resolve_precision(cfg.precision, device),
                      compile=resolve_compile(cfg.compile, device))
    ranks = distributed.start(device)
    if cfg.batch_size % ranks.world:
        raise SpamkitError(f"--batch-size {cfg.batch_size} is the global batch: it must divide "
                           f"evenly among {ranks.world} processes")
    torch.manual_seed(cfg.seed)
    splits = load_splits(data_cfg)
    model = GPTClassifier(saved.model) if saved else build_model(cfg, len(splits.labels))
    tokenizer = gpt2_tokenizer(model.config.context_length)
    pad_id = tokenizer.pad_id
    if cfg.char_ngrams:
        model.wte = CharNgramEmbedding(model.wte, tokenizer.encoding, cfg.char_ngrams)
    train_data, val_data, test_data = (
        Encoded.of(s, tokenizer) for s in (splits.train, splits.val, splits.test)
    )
    pad_to = resolve_pad_to(cfg, train_data.ids, model.config.context_length)

    set_trainable(model, cfg)
    model.to(device)
    optimizer = make_optimizer(model, cfg)
    scaler = torch.amp.GradScaler(device, enabled=run_cfg.precision == "fp16")
    if saved:
        progress = saved.restore(model, optimizer, scaler)
        if ranks.master:
            print(f"resuming {out_dir} after epoch {progress.epoch}")
    else:
        progress = Progress()
        # A resume point before the first epoch, so an interrupt at any time can resume.
        if ranks.master:
            save_state(out_dir, cfg, data_cfg, model.config, model, optimizer, scaler,
                       progress)
    # When only the top trains, the trunk maps a message to the same hidden states in every
    # epoch: compute them once, and each step runs (and backpropagates) the top alone.
    splits_data = [train_data, val_data, test_data]
    size = cache_size(model, splits_data, pad_to) if cfg.cache_frozen else None
    cached = size is not None and size <= CACHE_LIMIT_BYTES
    net: nn.Module = model
    if cached:
        train_data, val_data, test_data = (
            cache_trunk(model, d, run_cfg, pad_id, pad_to) for d in splits_data)
        net = Top(model)
    # dynamic=True: every batch has its own length, and one graph with a symbolic length
    # beats recompiling for each new one.
    run = torch.compile(net, dynamic=True) if run_cfg.compile else net
    step = run
    if ranks.world > 1:
        from torch.nn.parallel import DistributedDataParallel

        # The model's only buffers are --char-ngrams' lookup tables, the same on every rank:
        # nothing to broadcast before each step.
        step = DistributedDataParallel(
            run, device_ids=None if device == "cpu" else [ranks.local], broadcast_buffers=False)

    n_trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    if ranks.master:
        print(
            f"training {preset_name(model.config)} ({n_trainable / 1e6:.2f}M trainable "
            f"parameters, {cfg.trainable}) on {len(train_data.ids)} messages, "
            f"{len(splits.labels)} classes {splits.labels}, on {describe(device)}, precision "
            f"{run_cfg.precision}, compile {'on' if run_cfg.compile else 'off'}"
            + (f", frozen trunk computed once ({size / 1e6:.0f} MB)" if cached else "")
            + (f", frozen trunk not cached ({size / 1e9:.1f} GB)" if size and not cached else "")
            + (f", {ranks.world} processes" if ranks.world > 1 else "")
        )
    # Every rank draws the same permutation of the epoch (seed + epoch) and keeps every
    # world-th message of it, after repeating the first few so that all ranks run as many steps:
    # batch k of all ranks together is batch k of a single-process run with the same seed.
    sampler = DistributedSampler(range(len(train_data.ids)), num_replicas=ranks.world,
                                 rank=ranks.rank, shuffle=True, seed=cfg.seed)
    local_batch = cfg.batch_size // ranks.world
    n_batches = math.ceil(len(sampler) / local_batch)
    steps_per_epoch = math.ceil(n_batches / cfg.grad_accum)
    total_steps = min(steps_per_epoch * cfg.epochs, cfg.max_steps or math.inf)
    resumable = progress.epoch  # the epoch whose state is on disk
    try:
        for epoch in range(progress.epoch + 1, cfg.epochs + 1):
            if cfg.max_steps is not None and progress.step >= cfg.max_steps:
                break
            t0 = time.perf_counter()
            model.train()
            sampler.set_epoch(epoch)
            if ranks.world > 1:
                # Its own dropout masks on each rank, from the epoch alone, so a resumed run
                # draws the masks an uninterrupted one would.
                torch.manual_seed(cfg.seed + epoch * ranks.world + ranks.rank)
            loss_sum, correct, count = 0.0, 0, 0
            bar = tqdm(total=steps_per_epoch, desc=f"epoch {epoch}", leave=False,
                       disable=None if ranks.master else True)
            first_step_seconds = None
            for i, (inputs, mask, labels) in enumerate(
                batches(train_data, local_batch, pad_id, list(sampler), pad_to)
            ):
                last_micro_step = (i + 1) % cfg.grad_accum == 0 or i + 1 == n_batches
                if ranks.world > 1:
                    step.require_backward_grad_sync = last_micro_step  # average once per step
                inputs, mask, labels = (t.to(device) for t in (inputs, mask, labels))
                with autocast(run_cfg):
                    logits = step(inputs, mask).float()
                loss = F.cross_entropy(logits, labels)
                scaler.scale(loss / cfg.grad_accum).backward()
                loss_sum += loss.item() * len(labels)
                correct += (logits.argmax(-1) == labels).sum().item()
                count += len(labels)
                progress.seen += len(labels) * ranks.world
                if last_micro_step:
                    for group in optimizer.param_groups:
                        group["lr"] = learning_rate(cfg, progress.step, total_steps)
                    scaler.step(optimizer)
                    scaler.update()
                    optimizer.zero_grad(set_to_none=True)
                    progress.step += 1
                    first_step_seconds = first_step_seconds or time.perf_counter() - t0
                    bar.update(1)
                    bar.set_postfix(loss=f"{loss_sum / count:.3f}")
                    if cfg.max_steps is not None and progress.step >= cfg.max_steps:
                        break
            bar.close()
            train_seconds = time.perf_counter() - t0
            steps = progress.step - (progress.history[-1]["step"] if progress.history else 0)
            loss_sum, correct, count = distributed.all_sum([loss_sum, correct, count], device)
            val = evaluate(run, val_data, run_cfg, pad_id, pad_to, ranks)
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
            if ranks.master:
                print(
                    f"epoch {epoch}: train loss {record['train_loss']:.3f} acc "
                    f"{record['train_accuracy']:.2%} | val loss {val['loss']:.3f} acc "
                    f"{val['accuracy']:.2%} | {record['seconds']:.1f}s "
                    f"({train_seconds / max(steps, 1):.3f} s/step)",
                    flush=True,  # progress reaches logs and pipes as it happens
                )
            if keeps(cfg, val, progress.best):
                progress.best = {"val_accuracy": val["accuracy"], "val_loss": val["loss"],
                                 "epoch": epoch}
                progress.best_state = copy.deepcopy(model.state_dict())
            progress.epoch = epoch
            if ranks.master:
                save_state(out_dir, cfg, data_cfg, model.config, model, optimizer, scaler,
                           progress)
            resumable = epoch
    except KeyboardInterrupt:
        how = (f"spamkit train --resume --out {out_dir}" if ranks.world == 1
               else "the same command with --resume")
        raise Interrupted(f"interrupted; {out_dir} can resume after epoch {resumable}: {how}"
                          ) from None

    if progress.best_state is None:
        raise SpamkitError("no epoch ran: raise --epochs or --max-steps")
    model.load_state_dict(progress.best_state)
    final = {name: evaluate(run, d, run_cfg, pad_id, pad_to, ranks)
             for name, d in (("train", train_data), ("val", val_data), ("test", test_data))}
    distributed.stop()
    metrics = {
        "kept_epoch": progress.best["epoch"],  # whose weights the checkpoint holds
        "final": final,
        "history": progress.history,
        "split_sizes": {"train": len(train_data.ids), "val": len(val_data.ids),
                        "test": len(test_data.ids)},
    }
    if not ranks.master:
        return metrics
    print(
        f"kept epoch {progress.best['epoch']} ({cfg.keep}): train acc {final['train']['accuracy']:.2%}, "
        f"val acc {final['val']['accuracy']:.2%}, test acc {final['test']['accuracy']:.2%}"
    )
    if cfg.trainable == "lora":
        merge_lora(model)
    if cfg.char_ngrams:
        model.wte = model.wte.folded()
    training = {**asdict(run_cfg), "pad_to_tokens": pad_to}
    ckpt = Checkpoint(model.cpu().eval(), splits.labels, preset_name(model.config), data_cfg,
                      training)
    save_checkpoint(out_dir, ckpt, metrics)  # replaces out_dir, training state included
    plots.training_curves(progress.history, Path(out_dir) / "curves.png")
    print(f"checkpoint written to {out_dir} (training curves in curves.png)")
    return metrics
