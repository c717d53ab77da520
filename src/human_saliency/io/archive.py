"""Safe extraction of tar (plain, gz, bz2) and zip archives: all members land inside the target, or none.

Only regular files and folders are extracted, one by one, by this module: links, devices and fifos are
refused outright (the datasets hold none), so no path is ever resolved through an archive's own link,
whatever ``tarfile``'s extraction filters do on a given 3.11 patch release (CVE-2025-4517). Every member is
listed and checked before the first byte is written: names (no absolute path, no ``..``), types, a file
and a folder of one name, a member listed twice, encrypted or unreadable zip members, and the size caps.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import stat
import tarfile
import zipfile
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path, PureWindowsPath
from typing import BinaryIO

from human_saliency.errors import DataError
from human_saliency.io.files import make_temp_dir

log = logging.getLogger(__name__)

TAR_SUFFIXES = (".tar", ".tar.gz", ".tgz", ".tar.bz2")
ZIP_SUFFIXES = (".zip",)
ARCHIVE_SUFFIXES = TAR_SUFFIXES + ZIP_SUFFIXES
CHUNK = 1 << 20
# Below this size a member's own ratio says little (a short text file of spaces deflates 100-fold);
# such members still count toward the whole archive's ratio.
RATIO_FLOOR = 1 << 20

_TAR_KINDS = {
    tarfile.SYMTYPE: "symbolic link",
    tarfile.LNKTYPE: "hard link",
    tarfile.CHRTYPE: "character device",
    tarfile.BLKTYPE: "block device",
    tarfile.FIFOTYPE: "fifo",
}
_MODE_KINDS = {
    stat.S_IFLNK: "symbolic link",
    stat.S_IFCHR: "character device",
    stat.S_IFBLK: "block device",
    stat.S_IFIFO: "fifo",
    stat.S_IFSOCK: "socket",
}
_ZIP_METHODS = {zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED, zipfile.ZIP_BZIP2, zipfile.ZIP_LZMA}


@dataclass(frozen=True)
class _Member:
    """One member to write: its stored name (for messages), its path parts, and how to read it."""

    name: str
    parts: tuple[str, ...]
    is_dir: bool
    open: Callable[[], BinaryIO] | None


def extract(archive: str | os.PathLike, dest_dir: str | os.PathLike, *, max_bytes: int, max_ratio: float) -> int:
    """Extract ``archive`` into ``dest_dir`` (merging with what is there) and return its member count.

    Refused (DataError naming the archive and member): members that are not regular files or folders,
    more than ``max_bytes`` in all, or expanding more than ``max_ratio``-fold (each zip member of at least
    RATIO_FLOOR bytes, and the archive as a whole). Members are written to a temporary folder beside
    ``dest_dir`` and moved into place only once the whole archive has been read, so a corrupt or unsafe
    archive leaves ``dest_dir`` as it was.
    """
    archive, dest_dir = Path(archive), Path(dest_dir)
    if not archive.is_file():
        raise DataError(f"{archive}: archive not found")
    label = str(archive)
    read = _reader(label)
    dest_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = make_temp_dir(dest_dir.parent, f".{dest_dir.name}.extract-")
    try:
        with _reading(label), read(archive, label, max_bytes, max_ratio) as members:
            _check_tree(label, members)
            root = os.path.realpath(tmp)
            for member in members:
                _write(label, root, member)
        if dest_dir.exists():
            _merge(tmp, dest_dir)
        else:
            os.replace(tmp, dest_dir)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    log.info("%s: extracted %d members into %s", archive, len(members), dest_dir)
    return len(members)


def check_archive(path: str | os.PathLike, *, name: str | None = None) -> None:
    """Read the whole member listing of ``path`` (typed by ``name``, default its own name), with the checks
    ``extract`` makes on names and types; DataError if it is not a whole archive (an error page, a body cut
    short). Member data is not read: a corrupt member still fails its CRC or stream check at extraction."""
    label = name or str(path)
    with _reading(label), _reader(label)(Path(path), label, None, None):
        pass


def _reader(label: str) -> Callable[..., contextlib.AbstractContextManager[list[_Member]]]:
    """The member lister for an archive named ``label``, by its suffix."""
    lowered = label.lower()
    if lowered.endswith(TAR_SUFFIXES):
        return _tar_members
    if lowered.endswith(ZIP_SUFFIXES):
        return _zip_members
    raise DataError(f"{label}: unsupported archive type; expected one of {', '.join(ARCHIVE_SUFFIXES)}")


class _Budget:
    """Running totals against the caps: total bytes and the whole archive's expansion ratio."""

    def __init__(self, name: str, packed: int, max_bytes: int | None, max_ratio: float | None) -> None:
        self.name, self.packed, self.max_bytes, self.max_ratio = name, max(packed, 1), max_bytes, max_ratio
        self.total = 0

    def add(self, size: int) -> None:
        self.total += size
        if self.max_bytes is not None and self.total > self.max_bytes:
            raise DataError(f"{self.name}: members hold more than max_bytes={self.max_bytes} bytes")
        if self.max_ratio is not None and self.total >= RATIO_FLOOR and self.total > self.max_ratio * self.packed:
            fold = self.total // self.packed
            raise DataError(f"{self.name}: expands {fold}-fold, over max_ratio={self.max_ratio:g}")


@contextlib.contextmanager
def _tar_members(path: Path, name: str, max_bytes: int | None, max_ratio: float | None) -> Iterator[list[_Member]]:
    budget = _Budget(name, path.stat().st_size, max_bytes, max_ratio)
    with tarfile.open(path, "r:*") as tf:
        members = []
        for info in tf:  # headers one at a time, so a bomb stops at the header that passes a cap
            if not (info.isreg() or info.isdir()):
                raise _unsafe_kind(name, info.name, _TAR_KINDS.get(info.type, f"special member of type {info.type!r}"))
            parts = _parts(name, info.name)
            budget.add(info.size)
            opener = None if info.isdir() else (lambda info=info: tf.extractfile(info))
            if parts:
                members.append(_Member(info.name, parts, info.isdir(), opener))
        _check_tar_end(name, tf)
        yield members


def _unsafe_kind(archive: str, member: str, kind: str) -> DataError:
    return DataError(f"{archive}: unsafe member {member!r}: {kind} (only files and folders are extracted)")


def _check_tar_end(name: str, tf: tarfile.TarFile) -> None:
    """Require the zero block that ends a tar after its last member.

    Tar has no index, so a file cut at a member boundary would otherwise read as a shorter archive.
    """
    tf.fileobj.seek(tf.offset)
    block = tf.fileobj.read(tarfile.BLOCKSIZE)
    if len(block) < tarfile.BLOCKSIZE or block.count(0) != tarfile.BLOCKSIZE:
        raise DataError(f"{name}: truncated or corrupt archive (no end-of-archive marker)")


@contextlib.contextmanager
def _zip_members(path: Path, name: str, max_bytes: int | None, max_ratio: float | None) -> Iterator[list[_Member]]:
    budget = _Budget(name, path.stat().st_size, max_bytes, max_ratio)
    with zipfile.ZipFile(path) as zf:
        members = []
        for info in zf.infolist():
            kind = stat.S_IFMT(info.external_attr >> 16) if info.create_system == 3 else 0
            if kind in _MODE_KINDS:
                raise _unsafe_kind(name, info.filename, _MODE_KINDS[kind])
            if info.flag_bits & 0x1:
                raise DataError(f"{name}: member {info.filename!r} is encrypted; cannot extract it")
            if info.compress_type not in _ZIP_METHODS:
                method = zipfile.compressor_names.get(info.compress_type, "unknown")
                raise DataError(
                    f"{name}: member {info.filename!r} uses compression method {info.compress_type} ({method}), "
                    "which Python's zipfile cannot read"
                )
            parts = _parts(name, info.filename)
            _check_ratio(name, info, max_ratio)
            budget.add(info.file_size)
            is_dir = info.is_dir() or kind == stat.S_IFDIR
            opener = None if is_dir else (lambda info=info: zf.open(info))
            if parts:
                members.append(_Member(info.filename, parts, is_dir, opener))
        yield members


def _check_ratio(name: str, info: zipfile.ZipInfo, max_ratio: float | None) -> None:
    if max_ratio is not None and info.file_size >= RATIO_FLOOR and info.file_size > max_ratio * info.compress_size:
        fold = info.file_size // max(info.compress_size, 1)
        raise DataError(f"{name}: member {info.filename!r} expands {fold}-fold, over max_ratio={max_ratio:g}")


@contextlib.contextmanager
def _reading(name: str) -> Iterator[None]:
    """Turn the many ways a damaged archive fails to read into one DataError naming it."""
    try:
        yield
    except (tarfile.ReadError, zipfile.BadZipFile, zlib.error, EOFError) as exc:
        raise DataError(f"{name}: truncated or corrupt archive ({exc})") from None
    except OSError as exc:
        if exc.errno is not None:  # a real I/O failure (disk full, permissions), not bad data
            raise
        # gzip and bz2 report bad streams as OSError without an errno
        raise DataError(f"{name}: truncated or corrupt archive ({exc})") from None


def _parts(archive: str, name: str) -> tuple[str, ...]:
    """The relative path of a member as parts; refuse names that are absolute or climb out with ``..``."""
    if name.startswith(("/", "\\")) or PureWindowsPath(name).drive:
        raise DataError(f"{archive}: unsafe member {name!r}: absolute path")
    if ".." in PureWindowsPath(name).parts:  # splits on both / and \
        raise DataError(f"{archive}: unsafe member {name!r}: '..' in path")
    return tuple(part for part in name.split("/") if part not in ("", "."))


def _check_tree(archive: str, members: list[_Member]) -> None:
    """Refuse a member listed twice and a name that is both a file and a folder (explicitly or as a parent)."""
    files: dict[tuple[str, ...], str] = {}
    folders: set[tuple[str, ...]] = set()
    for member in members:
        folders.update(member.parts[:k] for k in range(1, len(member.parts)))
        if member.is_dir:
            folders.add(member.parts)
        elif member.parts in files:
            raise DataError(f"{archive}: member {member.name!r} appears twice")
        else:
            files[member.parts] = member.name
    clashes = sorted(files.keys() & folders)
    if clashes:
        raise DataError(f"{archive}: member {files[clashes[0]]!r} is both a file and a folder")


def _write(archive: str, root: str, member: _Member) -> None:
    """Write one member under the folder ``root`` (a real path), after checking where its folder really is."""
    target = Path(root).joinpath(*member.parts)
    folder = target if member.is_dir else target.parent
    if os.path.commonpath([root, os.path.realpath(folder)]) != root:
        raise DataError(f"{archive}: unsafe member {member.name!r}: resolves outside the extraction folder")
    folder.mkdir(parents=True, exist_ok=True)
    if member.is_dir:
        return
    # O_EXCL and O_NOFOLLOW: never write through something already there, a link least of all.
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o666)
    with os.fdopen(fd, "wb") as dst, member.open() as src:
        shutil.copyfileobj(src, dst, CHUNK)


def _merge(src: Path, dst: Path) -> None:
    """Move the tree ``src`` into the existing folder ``dst``; entries in ``src`` win."""
    for entry in src.iterdir():
        target = dst / entry.name
        if entry.is_dir() and not entry.is_symlink() and target.is_dir() and not target.is_symlink():
            _merge(entry, target)
            continue
        if target.is_dir() and not target.is_symlink():
            shutil.rmtree(target)
        elif target.exists() or target.is_symlink():
            target.unlink()
        os.replace(entry, target)
