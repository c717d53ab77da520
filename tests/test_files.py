"""Atomic outputs: an interrupted stage leaves its previous output, or nothing, never half a result."""

import pytest

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
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


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
