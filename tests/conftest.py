"""Shared test fixtures and builders."""

from pathlib import Path

import pytest
import torch
from threadpoolctl import threadpool_limits

from human_saliency.io import pins
from human_saliency.params import EmbeddedParams, load_params

from httpserver import http_server  # noqa: F401  (the loopback file server fixture)

ROOT = Path(__file__).resolve().parents[1]


def embedded_params(**changes) -> EmbeddedParams:
    """The default profile's ``data.embedded`` section with ``changes``, validated like a params file."""
    section = load_params(ROOT / "params.yaml").data.embedded.model_dump()
    return EmbeddedParams.model_validate({**section, **changes})


@pytest.fixture(scope="module")
def one_thread():
    """One torch and BLAS thread for a test module: small tensors gain nothing from more, and on a CPU shared
    with other jobs the thread pools stall; one thread is also bit-reproducible."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    with threadpool_limits(1):
        yield
    torch.set_num_threads(threads)


@pytest.fixture(autouse=True)
def downloads_lock(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Each test records and verifies unpublished checksums in its own ``downloads.lock``, never the project's,
    and no test inherits the offline rehearsal's download overrides."""
    path = tmp_path / "downloads.lock"
    monkeypatch.setattr(pins, "LOCK_FILE", path)
    monkeypatch.delenv(pins.OVERRIDES_ENV, raising=False)
    return path
