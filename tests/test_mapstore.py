"""Map archives: lossless enough, deterministic, atomic, and by id."""

import hashlib

import numpy as np
import pytest

from human_saliency.errors import DataError
from human_saliency.io.mapstore import MapReader, MapWriter


def _write(path, maps):
    with MapWriter(path) as writer:
        for key, value in maps.items():
            writer.add(key, value)


def test_round_trip_keeps_16_bit_precision(tmp_path):
    rng = np.random.default_rng(0)
    maps = {"2008_000002": rng.random((20, 30)), "2008_000001": np.zeros((5, 5))}
    _write(tmp_path / "m.zip", maps)
    with MapReader(tmp_path / "m.zip") as reader:
        assert reader.ids() == ["2008_000001", "2008_000002"]
        for key, value in maps.items():
            assert reader[key].dtype == np.float32
            np.testing.assert_allclose(reader[key], value, atol=1 / 65535)


def test_archive_is_byte_identical_across_runs(tmp_path):
    maps = {"a": np.linspace(0, 1, 64).reshape(8, 8)}
    _write(tmp_path / "1.zip", maps)
    _write(tmp_path / "2.zip", maps)
    digest = [hashlib.md5((tmp_path / f"{i}.zip").read_bytes()).hexdigest() for i in (1, 2)]
    assert digest[0] == digest[1]


def test_failed_write_leaves_no_archive(tmp_path):
    with pytest.raises(ValueError), MapWriter(tmp_path / "m.zip") as writer:
        writer.add("ok", np.zeros((4, 4)))
        writer.add("bad", np.full((4, 4), 2.0))
    assert list(tmp_path.iterdir()) == []


def test_unknown_id_and_corrupt_archive_name_the_file(tmp_path):
    _write(tmp_path / "m.zip", {"a": np.zeros((2, 2))})
    with MapReader(tmp_path / "m.zip") as reader, pytest.raises(DataError, match="m.zip: no map for image id 'b'"):
        reader["b"]
    (tmp_path / "bad.zip").write_bytes(b"not a zip")
    with pytest.raises(DataError, match="bad.zip: cannot open map archive"):
        MapReader(tmp_path / "bad.zip")
