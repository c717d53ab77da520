"""Multi-process runs under torchrun: process-group set-up, sharding and gathering; no-ops in a single process."""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from typing import Any, TypeVar

import torch
import torch.distributed as dist

log = logging.getLogger(__name__)
T = TypeVar("T")


def init_from_env() -> tuple[int, int, int]:
    """Join the process group that torchrun describes in the environment; return (rank, world_size, local_rank).

    Without torchrun (no ``WORLD_SIZE`` > 1) nothing is initialised and the result is (0, 1, 0).
    On CUDA each process takes GPU ``LOCAL_RANK`` and the NCCL backend; on the CPU, gloo.
    """
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size <= 1:
        return 0, 1, 0
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if torch.cuda.is_available():
        # Before init: NCCL and the object collectives use the current device.
        torch.cuda.set_device(local_rank)
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if torch.cuda.is_available() else "gloo")
    rank = dist.get_rank()
    log.info("process %d of %d (local rank %d, backend %s)", rank, world_size, local_rank, dist.get_backend())
    return rank, world_size, local_rank


def _active() -> bool:
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def rank() -> int:
    """This process's rank (0 in a single process)."""
    return dist.get_rank() if _active() else 0


def world_size() -> int:
    """The number of processes (1 in a single process)."""
    return dist.get_world_size() if _active() else 1


def is_main() -> bool:
    """Whether this process writes the outputs: rank 0, or the only process."""
    return rank() == 0


def barrier() -> None:
    """Wait until every process gets here."""
    if _active():
        dist.barrier()


def cleanup() -> None:
    """Leave the process group (call once at the end of a distributed run)."""
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def shard(items: Sequence[T], rank: int, world_size: int) -> list[T]:
    """Every ``world_size``-th item from ``rank`` on: deterministic parts whose sizes differ by at most one."""
    if not 0 <= rank < world_size:
        raise ValueError(f"rank {rank} is outside 0..{world_size - 1}")
    return list(items[rank::world_size])


def gather_objects(obj: Any) -> list[Any]:
    """Every process's ``obj`` (picklable), in rank order, on every process; ``[obj]`` in a single process."""
    if not _active():
        return [obj]
    gathered: list[Any] = [None] * dist.get_world_size()
    dist.all_gather_object(gathered, obj)
    return gathered


def broadcast_object(obj: Any) -> Any:
    """Rank 0's ``obj`` on every process (what the others pass is ignored)."""
    if not _active():
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=0)
    return box[0]
