"""archive.extract: good archives merge into place; unsafe or damaged ones raise DataError, leave nothing."""

from __future__ import annotations

import io
import tarfile
import zipfile
from pathlib import Path

import pytest

from human_saliency.errors import DataError
from human_saliency.io.archive import extract


def _tar(path: Path, members: dict[str, bytes], mode: str = "w") -> Path:
    with tarfile.open(path, mode) as tf:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    return path


def _tar_with(path: Path, *infos: tarfile.TarInfo) -> Path:
    """A tar holding one ordinary file plus the given special members (links, devices)."""
    with tarfile.open(path, "w") as tf:
        ok = tarfile.TarInfo("top/ok.txt")
        ok.size = 2
        tf.addfile(ok, io.BytesIO(b"ok"))
        for info in infos:
            tf.addfile(info)
    return path


def _zip(path: Path, members: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return path


def _link(name: str, target: str, kind: bytes = tarfile.SYMTYPE) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = target
    return info


def _leftovers(folder: Path) -> list[str]:
    """Temporary extraction folders left beside a destination."""
    return [p.name for p in folder.iterdir() if ".extract-" in p.name]


MEMBERS = {"top/a.txt": b"alpha", "top/sub/b.txt": b"beta"}


@pytest.mark.parametrize("suffix, mode", [(".tar", "w"), (".tar.gz", "w:gz"), (".tgz", "w:gz"), (".tar.bz2", "w:bz2")])
def test_tar_kinds_extract_and_count_members(tmp_path, suffix, mode):
    archive = _tar(tmp_path / f"a{suffix}", MEMBERS, mode)

    assert extract(archive, tmp_path / "out") == 2
    assert (tmp_path / "out/top/a.txt").read_bytes() == b"alpha"
    assert (tmp_path / "out/top/sub/b.txt").read_bytes() == b"beta"
    assert _leftovers(tmp_path) == []


def test_two_zips_merge_into_one_existing_folder(tmp_path):
    first = _zip(tmp_path / "ALLSTIMULI.zip", {"ALLSTIMULI/i1.jpeg": b"1", "shared/x.txt": b"old"})
    second = _zip(tmp_path / "ALLFIXATIONMAPS.zip", {"ALLFIXATIONMAPS/i1_fixMap.jpg": b"2", "shared/x.txt": b"new"})
    out = tmp_path / "mit1003"

    assert extract(first, out) == 2
    assert extract(second, out) == 2
    assert (out / "ALLSTIMULI/i1.jpeg").read_bytes() == b"1"
    assert (out / "ALLFIXATIONMAPS/i1_fixMap.jpg").read_bytes() == b"2"
    assert (out / "shared/x.txt").read_bytes() == b"new"  # the later archive wins
    assert _leftovers(tmp_path) == []


@pytest.mark.parametrize(
    "name, reason",
    [("../evil.txt", "'..'"), ("top/../../evil.txt", "'..'"), ("/tmp/evil.txt", "absolute")],
)
def test_tar_member_escaping_dest_is_refused(tmp_path, name, reason):
    archive = _tar(tmp_path / "bad.tar", {"top/fine.txt": b"x", name: b"evil"})
    out = tmp_path / "out"

    with pytest.raises(DataError, match=f"bad.tar: unsafe member '{name}': {reason}"):
        extract(archive, out)
    assert not out.exists()  # not even the safe member was left behind
    assert not (tmp_path / "evil.txt").exists()
    assert _leftovers(tmp_path) == []


@pytest.mark.parametrize(
    "info",
    [
        _link("top/link", "../../outside"),
        _link("top/link", "/etc/passwd"),
        _link("top/hard", "../outside.txt", tarfile.LNKTYPE),
    ],
    ids=["relative-symlink", "absolute-symlink", "hardlink"],
)
def test_tar_link_leaving_dest_is_refused(tmp_path, info):
    archive = _tar_with(tmp_path / "links.tar", info)

    with pytest.raises(DataError, match=f"links.tar: unsafe member '{info.name}'"):
        extract(archive, tmp_path / "out")
    assert not (tmp_path / "out").exists()
    assert _leftovers(tmp_path) == []


def test_tar_device_file_is_refused(tmp_path):
    device = tarfile.TarInfo("top/dev")
    device.type = tarfile.CHRTYPE
    archive = _tar_with(tmp_path / "dev.tar", device)

    with pytest.raises(DataError, match="dev.tar: unsafe member 'top/dev'"):
        extract(archive, tmp_path / "out")


def test_tar_symlink_inside_dest_is_kept(tmp_path):
    archive = _tar_with(tmp_path / "ok.tar", _link("top/alias.txt", "ok.txt"))

    assert extract(archive, tmp_path / "out") == 2
    assert (tmp_path / "out/top/alias.txt").read_bytes() == b"ok"


@pytest.mark.parametrize("name", ["../evil.txt", "/evil.txt", "a\\..\\..\\evil.txt"])
def test_zip_member_escaping_dest_is_refused(tmp_path, name):
    archive = _zip(tmp_path / "bad.zip", {"top/fine.txt": b"x", name: b"evil"})

    with pytest.raises(DataError, match="bad.zip: unsafe member"):
        extract(archive, tmp_path / "out")
    assert not (tmp_path / "out").exists()
    assert _leftovers(tmp_path) == []


def _truncate(path: Path, keep: int) -> Path:
    path.write_bytes(path.read_bytes()[:keep])
    return path


BIG = {"top/a.bin": bytes(range(256)) * 40, "top/b.bin": bytes(reversed(range(256))) * 40}


@pytest.mark.parametrize(
    "make",
    [
        lambda p: _truncate(_tar(p / "t.tar", BIG), 512 + 5000),  # inside the first member's data
        lambda p: _truncate(_tar(p / "t.tar", BIG), 512 + 10240),  # exactly after the first member
        lambda p: _truncate(_tar(p / "t.tar.gz", BIG, "w:gz"), 200),
        lambda p: _truncate(_zip(p / "t.zip", BIG), 300),
        lambda p: _truncate(_zip(p / "t.zip", BIG), -10),
    ],
    ids=["tar-mid-member", "tar-at-member-boundary", "tar.gz", "zip-head", "zip-tail"],
)
def test_truncated_archive_raises_data_error_naming_it(tmp_path, make):
    archive = make(tmp_path)
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("untouched")

    with pytest.raises(DataError, match=f"{archive.name}: truncated or corrupt"):
        extract(archive, out)
    assert [p.name for p in out.iterdir()] == ["keep.txt"]
    assert _leftovers(tmp_path) == []


def test_corrupt_zip_member_fails_crc_check(tmp_path):
    archive = _zip(tmp_path / "c.zip", {"a.txt": b"hello world" * 100})
    with zipfile.ZipFile(archive) as zf:
        info = zf.getinfo("a.txt")
    data = bytearray(archive.read_bytes())
    start = info.header_offset + 30 + len(info.filename)  # the local header is 30 bytes + name
    data[start + 5] ^= 0xFF
    archive.write_bytes(bytes(data))

    with pytest.raises(DataError, match="c.zip: truncated or corrupt"):
        extract(archive, tmp_path / "out")


def test_unsupported_and_missing_archives_are_named(tmp_path):
    rar = tmp_path / "a.rar"
    rar.write_bytes(b"x")
    with pytest.raises(DataError, match="a.rar: unsupported archive type"):
        extract(rar, tmp_path / "out")
    with pytest.raises(DataError, match="gone.zip: archive not found"):
        extract(tmp_path / "gone.zip", tmp_path / "out")
