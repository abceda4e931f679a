"""Several processes training one model with PyTorch's DistributedDataParallel: the process group
from torchrun's environment, and the few collectives the trainer needs. With one process (the
default) nothing here communicates and the trainer takes its single-device fast path.

Launch with ``vae-explorer train --nproc N ...`` (one machine) or torchrun itself:
``torchrun --nproc-per-node N [--nnodes ... --rdzv-endpoint ...] -m explorer.cli train ...``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

from explorer.errors import ExplorerError


@dataclass
class World:
    """This process's place among the training processes."""

    rank: int = 0
    size: int = 1
    local_rank: int = 0
    backend: str | None = None
    owns_group: bool = False  # this module started the process group and ends it

    @property
    def main(self) -> bool:
        """Rank 0: the one process that writes metrics, checkpoints and status."""
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.size > 1

    def describe(self) -> str:
        if not self.distributed:
            return "single process"
        return f"{self.size} processes, DistributedDataParallel over {self.backend}"

    def barrier(self) -> None:
        if self.distributed:
            dist.barrier()

    def sum(self, t: torch.Tensor) -> torch.Tensor:
        """Sum of ``t`` over all processes (in place; returned)."""
        if self.distributed:
            dist.all_reduce(t, op=dist.ReduceOp.SUM)
        return t

    def any(self, flag: bool, device: torch.device) -> bool:
        """True on every process when ``flag`` is true on any (e.g. a stop request)."""
        if not self.distributed:
            return flag
        return bool(self.sum(torch.tensor([float(flag)], device=device)).item() > 0)

    def close(self) -> None:
        if self.owns_group and dist.is_initialized():
            dist.destroy_process_group()


def join(device_type: str) -> World:
    """The World from torchrun's environment (RANK, WORLD_SIZE, LOCAL_RANK): joins the process
    group (NCCL for CUDA, gloo otherwise) when there is more than one process."""
    size = int(os.environ.get("WORLD_SIZE", "1"))
    if size <= 1:
        return World()
    rank, local_rank = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
    backend = "nccl" if device_type == "cuda" else "gloo"
    if dist.is_initialized():
        return World(dist.get_rank(), dist.get_world_size(), local_rank, dist.get_backend())
    if not dist.is_available():
        raise ExplorerError("this PyTorch build has no torch.distributed; train with one process")
    if device_type == "cuda":
        if local_rank >= torch.cuda.device_count():
            raise ExplorerError(
                f"process {rank} wants GPU {local_rank} but this machine has "
                f"{torch.cuda.device_count()}; use --nproc at most the number of GPUs"
            )
        torch.cuda.set_device(local_rank)
    dist.init_process_group(backend=backend)
    return World(rank, size, local_rank, backend, owns_group=True)
