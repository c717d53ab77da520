"""Shared test fixtures."""

import pytest
import torch
from threadpoolctl import threadpool_limits

from httpserver import http_server  # noqa: F401  (the loopback file server fixture)


@pytest.fixture(scope="module")
def one_thread():
    """One torch and BLAS thread for a test module: small tensors gain nothing from more, and on a CPU shared
    with other jobs the thread pools stall; one thread is also bit-reproducible."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    with threadpool_limits(1):
        yield
    torch.set_num_threads(threads)
