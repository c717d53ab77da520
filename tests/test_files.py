"""Atomic outputs: an interrupted stage leaves its previous output, or nothing, never half a result."""

import pytest

from human_saliency.errors import DataError
from human_saliency.io.files import atomic_dir, atomic_file, read_json, write_json


def test_atomic_dir_replaces_only_on_success(tmp_path):
    out = tmp_path / "out"
    with atomic_dir(out) as tmp:
        (tmp / "a.txt").write_text("first")
    assert (out / "a.txt").read_text() == "first"

    with pytest.raises(RuntimeError), atomic_dir(out) as tmp:
        (tmp / "a.txt").write_text("half-written")
        raise RuntimeError("interrupted")
    assert (out / "a.txt").read_text() == "first"
    assert sorted(p.name for p in tmp_path.iterdir()) == [".out.lock", "out"]


def test_atomic_file_leaves_no_temp_on_failure(tmp_path):
    target = tmp_path / "m.json"
    with pytest.raises(KeyboardInterrupt), atomic_file(target) as tmp:
        tmp.write_text("{")
        raise KeyboardInterrupt
    assert list(tmp_path.iterdir()) == []


def test_write_json_is_deterministic(tmp_path):
    write_json(tmp_path / "a.json", {"b": 1, "a": {"d": 2.5, "c": 0}})
    assert (tmp_path / "a.json").read_text() == '{\n  "a": {\n    "c": 0,\n    "d": 2.5\n  },\n  "b": 1\n}\n'
    assert read_json(tmp_path / "a.json") == {"a": {"c": 0, "d": 2.5}, "b": 1}


def test_atomic_dir_sweeps_temporary_folders_left_by_killed_runs(tmp_path):
    # kill -9 (or a power cut) skips every cleanup: the next run of the stage removes what was left.
    stale = tmp_path / ".out.tmp-k1ll3d"
    (stale / "deep").mkdir(parents=True)
    (stale / "deep" / "big.bin").write_bytes(b"x" * 1000)
    (tmp_path / ".out.tmp-f1le").write_text("left by atomic_file")
    (tmp_path / ".other.tmp-1234").mkdir()  # another output's: not this run's to judge

    with atomic_dir(tmp_path / "out") as tmp:
        (tmp / "a.txt").write_text("new")
    assert sorted(p.name for p in tmp_path.iterdir()) == [".other.tmp-1234", ".out.lock", "out"]


def test_two_runs_writing_one_output_at_once_is_a_one_line_error(tmp_path):
    out = tmp_path / "out"
    with atomic_dir(out) as tmp:
        (tmp / "a.txt").write_text("first run")
        message = rf"{tmp_path}/.out.lock: held by another run writing {out}$"
        with pytest.raises(DataError, match=message), atomic_dir(out):
            pass
        assert tmp.is_dir()  # the second run neither swept nor touched the first one's folder
    assert (out / "a.txt").read_text() == "first run"
