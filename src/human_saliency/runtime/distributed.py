"""Multi-process runs under torchrun: launching, process-group set-up, sharding and gathering.

Everything here is a no-op in a single process, so the stage scripts run the same code either way.
"""

from __future__ import annotations

import atexit
import logging
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from pathlib import Path
from typing import Any, TypeVar

import torch
import torch.distributed as dist

from human_saliency.errors import ParamsError
from human_saliency.io.files import atomic_dir

log = logging.getLogger(__name__)
T = TypeVar("T")


def launch(nproc: int, device: torch.device) -> torch.device:
    """Run the calling script in ``nproc`` processes (``runtime.nproc``); return the device of this process.

    With ``nproc`` > 1 and no torchrun around it yet, this process is replaced by
    ``torchrun --standalone --nproc_per_node <nproc>`` running the same command line (so the call does not
    return here); each of those processes then joins the group and goes on. Already under torchrun (say a
    multi-node launch by hand, ``WORLD_SIZE`` set) or with ``nproc`` 1, the script goes on in this process.
    On CUDA each process gets GPU ``LOCAL_RANK``, so ``nproc`` may not exceed the GPUs.
    """
    if nproc > 1 and "WORLD_SIZE" not in os.environ:
        if device.type == "cuda" and torch.cuda.device_count() < nproc:
            raise ParamsError(
                f"runtime.nproc: {nproc} processes need a GPU each, but {torch.cuda.device_count()} "
                f"are visible; lower runtime.nproc"
            )
        command = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}",
                   *sys.argv]  # fmt: skip
        log.info("runtime.nproc=%d: %s", nproc, " ".join(command[1:]))
        sys.stdout.flush()
        sys.stderr.flush()
        os.execv(sys.executable, command)
    _, world, local_rank = init_from_env(device)
    if world > 1 and device.type == "cuda":
        return torch.device("cuda", local_rank)
    return device


def init_from_env(device: torch.device | None = None) -> tuple[int, int, int]:
    """Join the process group that torchrun describes in the environment; return (rank, world_size, local_rank).

    Without torchrun (no ``WORLD_SIZE`` > 1) nothing is initialised and the result is (0, 1, 0).
    On CUDA (``device``, by default CUDA when present) each process takes GPU ``LOCAL_RANK`` and the NCCL
    backend; on the CPU, gloo.
    """
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size <= 1:
        return 0, 1, 0
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    cuda = torch.cuda.is_available() if device is None else device.type == "cuda"
    if cuda:
        # Before init: NCCL and the object collectives use the current device.
        torch.cuda.set_device(local_rank)
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if cuda else "gloo")
        atexit.register(cleanup)  # leave the group however the stage ends
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


def on_main(factory: Callable[..., AbstractContextManager[T]], *args: Any) -> AbstractContextManager[T | None]:
    """``factory(*args)`` on the main process; on the others a context that gives None (nothing is made)."""
    return factory(*args) if is_main() else nullcontext()


@contextmanager
def main_first() -> Iterator[None]:
    """The main process runs the block first, then the others (so one process fills a download cache)."""
    if not is_main():
        barrier()
    yield
    if is_main():
        barrier()


@contextmanager
def shared_output_dir(out: Path) -> Iterator[Path]:
    """``fsio.atomic_dir(out)`` made by the main process; every process gets its temporary path.

    Only the main process writes the outputs there (the others may leave scratch files for it to merge,
    as sharded saliency does); on success, once every process is done, the folder becomes ``out``.
    """
    with on_main(atomic_dir, out) as tmp:
        yield broadcast_object(tmp)
        barrier()


def cleanup() -> None:
    """Leave the process group, if this process joined one (registered to run at exit by ``init_from_env``)."""
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
