"""archive.extract: good archives merge into place; unsafe or damaged ones raise DataError, leave nothing."""

from __future__ import annotations

import io
import os
import stat
import tarfile
import zipfile
from pathlib import Path

import pytest

from human_saliency.errors import DataError
from human_saliency.io import archive as archive_module
from human_saliency.io.archive import check_archive

CAPS = {"max_bytes": 10**9, "max_ratio": 100.0}


def extract(archive, dest, **caps):
    """archive.extract with generous caps unless a test sets its own."""
    return archive_module.extract(archive, dest, **{**CAPS, **caps})


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
    "info, kind",
    [
        (_link("top/link", "../../outside"), "symbolic link"),
        (_link("top/link", "/etc/passwd"), "symbolic link"),
        (_link("top/alias.txt", "ok.txt"), "symbolic link"),  # even one that stays inside: the data needs none
        (_link("top/hard", "../outside.txt", tarfile.LNKTYPE), "hard link"),
        (_link("top/hard", "top/ok.txt", tarfile.LNKTYPE), "hard link"),
    ],
    ids=["relative-symlink", "absolute-symlink", "inside-symlink", "escaping-hardlink", "inside-hardlink"],
)
def test_tar_link_members_are_refused(tmp_path, info, kind):
    archive = _tar_with(tmp_path / "links.tar", info)

    with pytest.raises(DataError, match=f"links.tar: unsafe member '{info.name}': {kind}"):
        extract(archive, tmp_path / "out")
    assert not (tmp_path / "out").exists()
    assert _leftovers(tmp_path) == []


@pytest.mark.parametrize(
    "kind, words",
    [(tarfile.CHRTYPE, "character device"), (tarfile.BLKTYPE, "block device"), (tarfile.FIFOTYPE, "fifo")],
)
def test_tar_device_and_fifo_members_are_refused(tmp_path, kind, words):
    device = tarfile.TarInfo("top/dev")
    device.type = kind
    archive = _tar_with(tmp_path / "dev.tar", device)

    with pytest.raises(DataError, match=f"dev.tar: unsafe member 'top/dev': {words}"):
        extract(archive, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def _path_max_chain(path: Path, dest: Path) -> Path:
    """CVE-2025-4517 (gh-135034): directory symlinks whose resolved path passes PATH_MAX, so ``realpath``
    stops expanding them and the ``data`` filter (before 3.11.13) lets a link through to ``dest``'s parent.
    No member name holds ``..`` or starts with ``/``."""
    steps = "abcdefghijklmnop"
    component = "d" * ((os.pathconf(dest.parent, "PC_PATH_MAX") - len(str(dest)) - 1) // (len(steps) + 1))
    with tarfile.open(path, "w") as tf:

        def add(name: str, kind: bytes = tarfile.REGTYPE, link: str = "", data: bytes = b"") -> None:
            info = tarfile.TarInfo(name)
            info.type, info.linkname, info.size, info.mode = kind, link, len(data), 0o777
            tf.addfile(info, io.BytesIO(data) if data else None)

        parent = ""
        for step in steps:
            add(os.path.join(parent, component), tarfile.DIRTYPE)
            add(os.path.join(parent, step), tarfile.SYMTYPE, component)
            parent = os.path.join(parent, component)
        long_link = os.path.join(*steps, "l" * 254)
        add(long_link, tarfile.SYMTYPE, os.path.join(*[".."] * len(steps)))
        add("escape", tarfile.SYMTYPE, os.path.join(long_link, ".."))
        add("flaglink", tarfile.LNKTYPE, "escape/flag")
        add("flaglink", data=b"overwritten")
        add("escape/newfile", data=b"new")
    return path


def test_path_max_symlink_chain_writes_nothing_outside(tmp_path):
    out = tmp_path / "out"
    flag = tmp_path / "flag"
    flag.write_text("original")
    archive = _path_max_chain(tmp_path / "chain.tar", out)

    with pytest.raises(DataError, match="chain.tar: unsafe member '.*': symbolic link"):
        extract(archive, out)
    assert flag.read_text() == "original"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["chain.tar", "flag"]


def test_tar_extraction_needs_no_extraction_filter(tmp_path, monkeypatch):
    # Python 3.11.0-3.11.3 have no filter= argument and 3.11.4-3.11.12's data filter can be fooled
    # (CVE-2025-4517): members are written one by one, never through extractall or extract.
    def unusable(*args, **kwargs):
        raise AssertionError("tarfile's own extraction differs between 3.11 patch releases")

    monkeypatch.setattr(tarfile.TarFile, "extractall", unusable)
    monkeypatch.setattr(tarfile.TarFile, "extract", unusable)
    archive = _tar(tmp_path / "a.tar", MEMBERS)

    assert extract(archive, tmp_path / "out") == 2
    assert (tmp_path / "out/top/sub/b.txt").read_bytes() == b"beta"


def _zip_special(path: Path, mode: int, data: bytes = b"../../outside") -> Path:
    """A zip with an ordinary file and a member whose Unix mode (external_attr) is ``mode``."""
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("top/ok.txt", b"ok")
        info = zipfile.ZipInfo("top/special")
        info.create_system = 3  # Unix, so the mode bits mean what they say
        info.external_attr = mode << 16
        zf.writestr(info, data)
    return path


@pytest.mark.parametrize(
    "mode, words",
    [
        (stat.S_IFLNK | 0o777, "symbolic link"),
        (stat.S_IFCHR | 0o600, "character device"),
        (stat.S_IFIFO | 0o600, "fifo"),
    ],
)
def test_zip_link_and_device_members_are_refused(tmp_path, mode, words):
    archive = _zip_special(tmp_path / "special.zip", mode)

    with pytest.raises(DataError, match=f"special.zip: unsafe member 'top/special': {words}"):
        extract(archive, tmp_path / "out")
    assert not (tmp_path / "out").exists()
    assert _leftovers(tmp_path) == []


def test_zip_member_with_ordinary_unix_mode_is_extracted(tmp_path):
    archive = _zip_special(tmp_path / "plain.zip", stat.S_IFREG | 0o644, b"data")

    assert extract(archive, tmp_path / "out") == 2
    assert (tmp_path / "out/top/special").read_bytes() == b"data"


@pytest.mark.parametrize(
    "make",
    [
        lambda p: _tar(p / "clash.tar", {"top/a": b"file", "top/a/b.txt": b"inside"}),
        lambda p: _tar(p / "clash.tar", {"top/a/b.txt": b"inside", "top/a": b"file"}),
        lambda p: _zip(p / "clash.zip", {"top/a": b"file", "top/a/b.txt": b"inside"}),
    ],
    ids=["tar-file-first", "tar-folder-first", "zip"],
)
def test_file_and_folder_of_one_name_is_refused(tmp_path, make):
    archive = make(tmp_path)

    with pytest.raises(DataError, match=f"{archive.name}: member 'top/a' is both a file and a folder"):
        extract(archive, tmp_path / "out")
    assert not (tmp_path / "out").exists()
    assert _leftovers(tmp_path) == []


def test_a_member_twice_is_refused(tmp_path):
    archive = _tar(tmp_path / "twice.tar", {"top/a.txt": b"one"})
    with tarfile.open(archive, "a") as tf:
        info = tarfile.TarInfo("top/a.txt")
        info.size = 3
        tf.addfile(info, io.BytesIO(b"two"))

    with pytest.raises(DataError, match="twice.tar: member 'top/a.txt' appears twice"):
        extract(archive, tmp_path / "out")


def _patch_zip(path: Path, *, flag_bits: int | None = None, method: int | None = None) -> Path:
    """Rewrite the flag bits or compression method of every local and central header."""
    data = bytearray(path.read_bytes())
    for signature, flags_at in ((b"PK\x03\x04", 6), (b"PK\x01\x02", 8)):
        start = data.find(signature)
        while start != -1:
            if flag_bits is not None:
                data[start + flags_at : start + flags_at + 2] = flag_bits.to_bytes(2, "little")
            if method is not None:
                data[start + flags_at + 2 : start + flags_at + 4] = method.to_bytes(2, "little")
            start = data.find(signature, start + 4)
    path.write_bytes(bytes(data))
    return path


def test_encrypted_zip_member_is_a_data_error(tmp_path):
    archive = _patch_zip(_zip(tmp_path / "enc.zip", {"top/a.txt": b"secret"}), flag_bits=0x1)

    with pytest.raises(DataError, match="enc.zip: member 'top/a.txt' is encrypted"):
        extract(archive, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_deflate64_zip_member_is_a_data_error(tmp_path):
    archive = _patch_zip(_zip(tmp_path / "d64.zip", {"top/a.txt": b"data"}), method=9)

    with pytest.raises(DataError, match="d64.zip: member 'top/a.txt' uses compression method 9 .deflate64."):
        extract(archive, tmp_path / "out")
    assert not (tmp_path / "out").exists()


# --- size caps: a small archive must not fill the disk -------------------------------------------------

ZEROS = bytes(2 << 20)  # 2 MiB that deflate squeezes about 1000-fold


def test_zip_bomb_member_over_the_ratio_is_refused(tmp_path):
    archive = _zip(tmp_path / "bomb.zip", {"top/ok.txt": b"ok", "top/zeros.bin": ZEROS})
    assert archive.stat().st_size < 20_000

    with pytest.raises(DataError, match=r"bomb.zip: member 'top/zeros.bin' expands \d+-fold, over max_ratio=100"):
        extract(archive, tmp_path / "out")
    assert not (tmp_path / "out").exists()
    assert _leftovers(tmp_path) == []


def test_many_small_members_over_the_ratio_are_refused(tmp_path):
    # No single member is large enough to judge alone; together they expand about 50-fold.
    archive = _zip(tmp_path / "many.zip", {f"top/{k}.txt": bytes(50_000) for k in range(25)})

    with pytest.raises(DataError, match=r"many.zip: expands \d+-fold, over max_ratio=10"):
        extract(archive, tmp_path / "out", max_ratio=10)


@pytest.mark.parametrize("mode, suffix", [("w", ".tar"), ("w:gz", ".tar.gz")])
def test_total_size_over_the_cap_is_refused(tmp_path, mode, suffix):
    archive = _tar(tmp_path / f"big{suffix}", {"top/a.bin": bytes(6000), "top/b.bin": bytes(6000)}, mode)

    with pytest.raises(DataError, match=rf"big{suffix}: members hold more than max_bytes=10000 bytes"):
        extract(archive, tmp_path / "out", max_bytes=10_000, max_ratio=1e6)
    assert not (tmp_path / "out").exists()


def test_compressed_tar_over_the_ratio_is_refused(tmp_path):
    archive = _tar(tmp_path / "bomb.tar.gz", {"top/zeros.bin": ZEROS}, "w:gz")

    with pytest.raises(DataError, match=r"bomb.tar.gz: expands \d+-fold, over max_ratio=100"):
        extract(archive, tmp_path / "out")


def test_real_sized_members_pass_the_default_like_caps(tmp_path):
    # JPEG-like incompressible data in a zip and an uncompressed tar stay near 1-fold.
    noise = os.urandom(3 << 20)
    assert extract(_zip(tmp_path / "j.zip", {"top/a.jpg": noise}), tmp_path / "o1") == 1
    assert extract(_tar(tmp_path / "t.tar", {"top/a.jpg": noise, "top/b.xml": b"<a/>" * 10}), tmp_path / "o2") == 2


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


@pytest.mark.parametrize(
    "make",
    [
        lambda p: _tar(p / "a.tar", MEMBERS),
        lambda p: _tar(p / "a.tar.bz2", MEMBERS, "w:bz2"),
        lambda p: _zip(p / "a.zip", MEMBERS),
    ],
    ids=["tar", "tar.bz2", "zip"],
)
def test_check_archive_accepts_a_whole_archive(tmp_path, make):
    check_archive(make(tmp_path))


@pytest.mark.parametrize(
    "data",
    [b"<!DOCTYPE html><html><body>Rate limit exceeded</body></html>", b""],
    ids=["html-page", "empty"],
)
@pytest.mark.parametrize("name", ["a.zip", "a.tar", "a.tar.gz"])
def test_check_archive_refuses_what_is_not_one(tmp_path, data, name):
    part = tmp_path / "download.part"
    part.write_bytes(data)
    with pytest.raises(DataError, match=f"{name}: truncated or corrupt archive"):
        check_archive(part, name=name)


def test_check_archive_refuses_a_cut_zip_and_tar(tmp_path):
    for archive in (_zip(tmp_path / "c.zip", BIG), _tar(tmp_path / "c.tar", BIG)):
        _truncate(archive, archive.stat().st_size // 2)
        with pytest.raises(DataError, match=f"{archive.name}: truncated or corrupt archive"):
            check_archive(archive)
