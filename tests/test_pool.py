"""Runs in spawned processes: results in job order, threads pinned whatever the pool size, failures raised."""

import os

import pytest

from human_saliency.errors import HumanSaliencyError
from human_saliency.runtime.pool import run_each


def _threads_and_square(job: int) -> tuple[int, int, int]:
    import torch

    return job * job, torch.get_num_threads(), os.getpid()


def _fail_on_two(job: int) -> int:
    if job == 2:
        raise HumanSaliencyError("job 2 cannot run")
    return job


def _die(job: int) -> int:
    os._exit(3)


def test_results_come_back_in_job_order_each_from_its_own_process_with_the_threads_asked():
    results = run_each(_threads_and_square, [3, 1, 2], processes=2, threads=1)
    assert [square for square, _, _ in results] == [9, 1, 4]
    assert {threads for _, threads, _ in results} == {1}
    assert len({pid for _, _, pid in results} | {os.getpid()}) == 4  # a fresh process per run


def test_a_failing_run_raises_its_exception_here():
    with pytest.raises(HumanSaliencyError, match="job 2 cannot run"):
        run_each(_fail_on_two, [1, 2, 3], processes=1, threads=1)


def test_a_run_whose_process_dies_is_an_error_naming_it():
    with pytest.raises(HumanSaliencyError, match=r"seed 7: its process ended without a result \(exit code 3\)"):
        run_each(_die, [7], processes=1, threads=1, names=["seed 7"])
