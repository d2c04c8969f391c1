"""Several training processes acting as one (torch.distributed, DistributedDataParallel).

`torchrun` sets RANK, WORLD_SIZE and LOCAL_RANK in every process it starts; `spamkit train
--nproc N` starts torchrun itself. Without those variables training is a single process and
the helpers here change nothing.
"""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class Ranks:
    rank: int = 0  # this process among all of them
    world: int = 1  # how many processes train together
    local: int = 0  # this process among those on its machine (its GPU)

    @property
    def master(self) -> bool:
        """The one process that prints and writes files."""
        return self.rank == 0


def start(device: str) -> Ranks:
    """Join the process group torchrun set up: NCCL between GPUs, gloo between CPU processes."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world == 1:
        return Ranks()
    ranks = Ranks(int(os.environ["RANK"]), world, int(os.environ["LOCAL_RANK"]))
    if device.startswith("cuda"):
        torch.cuda.set_device(ranks.local)  # so that "cuda" means this process's own GPU
    dist.init_process_group("nccl" if device.startswith("cuda") else "gloo")
    return ranks


def stop() -> None:
    if dist.is_initialized():
        dist.destroy_process_group()


def all_sum(values: list[float], device: str) -> list[float]:
    """Sum each value over all processes (float64, so counts stay exact)."""
    if not dist.is_initialized():
        return values
    t = torch.tensor(values, dtype=torch.float64, device=device)
    dist.all_reduce(t)
    return t.tolist()


def launch(nproc: int, args: list[str]) -> tuple[int, bool]:
    """Run `spamkit ARGS` as `nproc` processes on this machine through torchrun; return its
    exit code and whether Ctrl-C stopped it.

    `--nproc` itself is left out of the workers' arguments: torchrun's parser would take it for
    an abbreviation of its own --nproc-per-node."""
    args = [a for i, a in enumerate(args) if not a.startswith("--nproc")
            and not (i and args[i - 1] == "--nproc")]
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone",
           f"--nproc-per-node={nproc}", "-m", "spamkit", *args]
    proc = subprocess.Popen(cmd)
    interrupted = False
    while True:
        try:
            return proc.wait(), interrupted
        except KeyboardInterrupt:
            # The terminal's Ctrl-C reached torchrun and the workers too: let them stop.
            interrupted = True
