"""Weight files: fetched once over HTTP (or file://), SHA-256 verified (full or prefix), checkpoints read safely."""

from __future__ import annotations

import hashlib
import logging

import pytest
import torch
from torch import nn

from human_saliency.errors import DataError, DownloadError
from human_saliency.io.weights import fetch_weights, load_checkpoint, load_state, load_tensors, sha256sum

DATA = b"not really weights, but bytes all the same\n" * 1000
SHA = hashlib.sha256(DATA).hexdigest()
PATH = "/models/releases/download/v1.0/model.pth"


@pytest.fixture
def url(http_server):
    """The loopback URL of a published ``model.pth`` holding DATA."""
    return http_server.add(PATH.lstrip("/"), DATA)


def test_sha256sum_matches_hashlib(tmp_path):
    (tmp_path / "model.pth").write_bytes(DATA)
    assert sha256sum(tmp_path / "model.pth") == SHA


@pytest.mark.parametrize("pin", [SHA, SHA[:8], SHA.upper()[:12]])
def test_fetch_verifies_full_or_prefix_hash(url, http_server, tmp_path, pin):
    path = fetch_weights(url, "model.pth", tmp_path / "cache", sha256=pin)
    assert path == tmp_path / "cache" / "model.pth"
    assert path.read_bytes() == DATA
    assert [seen.path for seen in http_server.requests] == [PATH]


def test_fetch_uses_the_cached_file(url, http_server, tmp_path):
    fetch_weights(url, "model.pth", tmp_path / "cache", sha256=SHA)
    assert fetch_weights(url, "model.pth", tmp_path / "cache", sha256=SHA).read_bytes() == DATA
    assert len(http_server.requests) == 1


def test_fetch_copies_a_file_url(tmp_path):
    """file:// sources are allowed (params' WeightsFile.url), e.g. for weights on a shared disk."""
    (tmp_path / "model.pth").write_bytes(DATA)
    path = fetch_weights((tmp_path / "model.pth").as_uri(), "model.pth", tmp_path / "cache", sha256=SHA)
    assert path.read_bytes() == DATA


def test_mismatch_raises_naming_the_file_and_deletes_it(url, http_server, tmp_path):
    with pytest.raises(DownloadError, match=r"model\.pth: SHA-256 mismatch"):
        fetch_weights(url, "model.pth", tmp_path / "cache", sha256="0" * 64)
    assert not (tmp_path / "cache" / "model.pth").exists()
    fetch_weights(url, "model.pth", tmp_path / "cache", sha256=SHA)  # the next run downloads it afresh
    assert len(http_server.requests) == 2


def test_unpinned_file_logs_its_hash(url, tmp_path, caplog):
    with caplog.at_level(logging.WARNING, logger="human_saliency.io.weights"):
        fetch_weights(url, "model.pth", tmp_path / "cache")
    assert SHA in caplog.text


def test_malformed_pin_is_rejected_before_any_download(url, http_server, tmp_path):
    with pytest.raises(ValueError, match="sha256"):
        fetch_weights(url, "model.pth", tmp_path / "cache", sha256="abc")
    assert not (tmp_path / "cache").exists()
    assert http_server.requests == []


def test_checkpoint_round_trip(tmp_path):
    model = nn.Linear(3, 2)
    torch.save({"model": model.state_dict(), "epoch": 4}, tmp_path / "ckpt.pt")
    state, meta = load_checkpoint(tmp_path / "ckpt.pt")
    assert meta == {}
    fresh = nn.Linear(3, 2)
    load_state(fresh, state, tmp_path / "ckpt.pt")
    assert torch.equal(fresh.weight, model.weight)


def test_checkpoint_errors_name_the_file(tmp_path):
    with pytest.raises(DataError, match="missing.pt: weight file not found"):
        load_checkpoint(tmp_path / "missing.pt")
    (tmp_path / "junk.pt").write_bytes(b"junk")
    with pytest.raises(DataError, match="junk.pt: not a readable weight file"):
        load_checkpoint(tmp_path / "junk.pt")
    torch.save({"state": {}}, tmp_path / "nomodel.pt")
    with pytest.raises(DataError, match="nomodel.pt: checkpoint has no 'model' state dict"):
        load_checkpoint(tmp_path / "nomodel.pt")


def test_load_tensors_never_unpickles_arbitrary_objects(tmp_path):
    torch.save({"model": nn.Linear(2, 2)}, tmp_path / "pickled_module.pt")  # a whole module, not tensors
    with pytest.raises(DataError, match="pickled_module.pt"):
        load_tensors(tmp_path / "pickled_module.pt")


def test_state_that_does_not_fit_names_its_source(tmp_path):
    with pytest.raises(DataError, match="ckpt.pt: weights do not fit the model"):
        load_state(nn.Linear(3, 2), nn.Linear(3, 4).state_dict(), tmp_path / "ckpt.pt")
