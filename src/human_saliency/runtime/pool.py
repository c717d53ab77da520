"""Independent runs (one training run per seed) in spawned processes, each with a fixed number of torch threads.

Each run gets a fresh interpreter and ``threads`` torch threads whatever the number of runs at once, so its
result does not depend on the pool size: only the thread count can change float round-off, and it is fixed.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import traceback
from collections.abc import Callable, Sequence
from multiprocessing.connection import Connection, wait
from typing import Any, TypeVar

from human_saliency.errors import HumanSaliencyError

log = logging.getLogger(__name__)
J = TypeVar("J")
R = TypeVar("R")


def set_threads(threads: int) -> None:
    """Pin this process's thread pools: torch's intra-op (``threads``) and inter-op (1), and the BLAS and OpenMP
    pools numpy uses (``threads``). On a shared CPU a pool wider than the free cores stalls: the EigenCAM SVD of a
    small model's maps ran 3× slower with numpy's OpenBLAS at 2 threads than at 1 on a loaded 2-core machine."""
    import torch
    from threadpoolctl import threadpool_limits

    torch.set_num_threads(threads)
    threadpool_limits(limits=threads)  # stays in force for the rest of the process
    # Fails once inter-op work has run (or it was set): the intra-op threads are what shape results.
    with contextlib.suppress(RuntimeError):
        torch.set_num_interop_threads(1)


def run_each(
    fn: Callable[[J], R],
    jobs: Sequence[J],
    *,
    processes: int,
    threads: int,
    names: Sequence[str] | None = None,
) -> list[R]:
    """``[fn(job) for job in jobs]``, each call in its own spawned process, at most ``processes`` at once.

    ``fn`` and the jobs must be picklable (``fn`` a module-level function). Each process pins its torch
    threads to ``threads`` before calling ``fn``. The first run that fails stops the others (terminated) and
    its exception is raised here, after its traceback is logged; a process that dies without a word (killed,
    out of memory) raises HumanSaliencyError with its exit code. Ctrl-C or SIGTERM here terminates every run.
    """
    if processes < 1 or threads < 1:
        raise ValueError(f"processes and threads must be >= 1, got {processes} and {threads}")
    names = list(names) if names is not None else [f"run {k}" for k in range(len(jobs))]
    context = multiprocessing.get_context("spawn")
    pending = list(range(len(jobs)))
    running: dict[Connection, tuple[int, Any]] = {}
    results: list[Any] = [None] * len(jobs)
    try:
        while pending or running:
            while pending and len(running) < processes:
                index = pending.pop(0)
                receiver, sender = context.Pipe(duplex=False)
                process = context.Process(
                    target=_child, args=(sender, fn, jobs[index], threads, names[index]), name=names[index]
                )
                process.start()
                sender.close()  # the child holds the only sending end: EOF here when it dies
                running[receiver] = (index, process)
                log.info("%s: started (process %d; %d running)", names[index], process.pid, len(running))
            for receiver in wait(list(running)):
                index, process = running.pop(receiver)
                try:
                    status, payload = receiver.recv()
                except EOFError:
                    process.join()
                    raise HumanSaliencyError(
                        f"{names[index]}: its process ended without a result (exit code {process.exitcode})"
                    ) from None
                finally:
                    receiver.close()
                process.join()
                if status == "error":
                    exc, text = payload
                    log.error("%s failed:\n%s", names[index], text)
                    raise exc
                results[index] = payload
                log.info("%s: done", names[index])
    finally:
        for receiver, (_, process) in running.items():
            process.terminate()
            process.join()
            receiver.close()
    return results


def _child(sender: Connection, fn: Callable[[Any], Any], job: Any, threads: int, name: str) -> None:
    """One run in a spawned process: pin the threads, call ``fn``, send ("ok", result) or ("error", (exc, tb))."""
    logging.basicConfig(level=logging.INFO, format=f"%(asctime)s %(levelname)s [{name}] %(name)s: %(message)s")
    set_threads(threads)
    try:
        message = ("ok", fn(job))
    except BaseException as exc:  # reported to the parent, which raises it
        message = ("error", (exc, traceback.format_exc()))
    try:
        sender.send(message)
    except Exception:  # an exception that does not pickle: send its text instead
        status, payload = message
        sender.send((status, (HumanSaliencyError(f"{name}: {payload[0]!r}"), payload[1])))
    finally:
        sender.close()
