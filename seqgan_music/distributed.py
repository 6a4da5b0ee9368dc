"""Data-parallel training with PyTorch's own engine (torch.distributed, DistributedDataParallel).

``torchrun --nproc_per_node=K -m seqgan_music train ...`` sets RANK, WORLD_SIZE and LOCAL_RANK;
:func:`init_from_env` joins the process group (nccl on CUDA, gloo on CPU) and picks this rank's
device. Without those variables everything runs as a single process.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

from seqgan_music.device import resolve_device


@dataclass(frozen=True)
class DistInfo:
    """This process's place in the job: rank (0 writes files), world size, and its device."""

    rank: int = 0
    world: int = 1
    device: torch.device = torch.device("cpu")

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.world > 1


def launched_by_torchrun() -> bool:
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def init_from_env(device: str = "auto") -> DistInfo:
    """Join the process group torchrun describes; single-process info when not under torchrun."""
    if not launched_by_torchrun():
        return DistInfo(device=resolve_device(device))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    dev = resolve_device(device)
    if dev.type == "cuda":
        dev = torch.device("cuda", local_rank)
        torch.cuda.set_device(dev)
    if not dist.is_initialized():
        dist.init_process_group("nccl" if dev.type == "cuda" else "gloo")
    return DistInfo(dist.get_rank(), dist.get_world_size(), dev)


def mean_across_ranks(values: list[float], info: DistInfo) -> list[float]:
    """Average a list of numbers over all ranks (identity in a single process)."""
    if not info.enabled or not values:
        return values
    t = torch.tensor(values, dtype=torch.float64, device=info.device)
    dist.all_reduce(t)
    return (t / info.world).tolist()


def all_true(flag: bool, info: DistInfo) -> bool:
    """True only when ``flag`` holds on every rank (so all ranks skip or take a step together)."""
    if not info.enabled:
        return flag
    t = torch.tensor([1.0 if flag else 0.0], device=info.device)
    dist.all_reduce(t, op=dist.ReduceOp.MIN)
    return bool(t.item() > 0.5)


def barrier(info: DistInfo) -> None:
    if info.enabled:
        dist.barrier()
