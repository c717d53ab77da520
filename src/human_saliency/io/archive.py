"""Safe extraction of tar (plain, gz, bz2) and zip archives: all members land inside the target, or none."""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import tarfile
import zipfile
import zlib
from collections.abc import Iterator
from pathlib import Path, PureWindowsPath

from human_saliency.errors import DataError
from human_saliency.io.files import make_temp_dir

log = logging.getLogger(__name__)

TAR_SUFFIXES = (".tar", ".tar.gz", ".tgz", ".tar.bz2")
ZIP_SUFFIXES = (".zip",)


def extract(archive: str | os.PathLike, dest_dir: str | os.PathLike) -> int:
    """Extract ``archive`` into ``dest_dir`` (merging with what is there) and return its member count.

    Members are written to a temporary folder beside ``dest_dir`` and moved into place only once the
    whole archive has been read, so a corrupt or unsafe archive leaves ``dest_dir`` as it was.
    """
    archive, dest_dir = Path(archive), Path(dest_dir)
    if not archive.is_file():
        raise DataError(f"{archive}: archive not found")
    name = archive.name.lower()
    if name.endswith(TAR_SUFFIXES):
        extract_into = _extract_tar
    elif name.endswith(ZIP_SUFFIXES):
        extract_into = _extract_zip
    else:
        known = ", ".join(TAR_SUFFIXES + ZIP_SUFFIXES)
        raise DataError(f"{archive}: unsupported archive type; expected one of {known}")

    dest_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = make_temp_dir(dest_dir.parent, f".{dest_dir.name}.extract-")
    try:
        count = extract_into(archive, tmp)
        if dest_dir.exists():
            _merge(tmp, dest_dir)
        else:
            os.replace(tmp, dest_dir)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    log.info("%s: extracted %d members into %s", archive, count, dest_dir)
    return count


def _extract_tar(archive: Path, out: Path) -> int:
    with _reading(archive), tarfile.open(archive, "r:*") as tf:
        members = tf.getmembers()
        _check_tar_end(archive, tf)
        for member in members:
            _check_name(archive, member.name)
        try:
            # The "data" filter refuses links that leave ``out``, device files and the like.
            tf.extractall(out, filter="data")
        except tarfile.FilterError as exc:
            raise DataError(f"{archive}: unsafe member {exc.tarinfo.name!r}: {exc}") from None
    return len(members)


def _check_tar_end(archive: Path, tf: tarfile.TarFile) -> None:
    """Require the zero block that ends a tar after its last member.

    Tar has no index, so a file cut at a member boundary would otherwise read as a shorter archive.
    """
    tf.fileobj.seek(tf.offset)
    block = tf.fileobj.read(tarfile.BLOCKSIZE)
    if len(block) < tarfile.BLOCKSIZE or block.count(0) != tarfile.BLOCKSIZE:
        raise DataError(f"{archive}: truncated or corrupt archive (no end-of-archive marker)")


def _extract_zip(archive: Path, out: Path) -> int:
    with _reading(archive), zipfile.ZipFile(archive) as zf:
        members = zf.infolist()
        for member in members:
            _check_name(archive, member.filename)
        zf.extractall(out)
    return len(members)


@contextlib.contextmanager
def _reading(archive: Path) -> Iterator[None]:
    """Turn the many ways a damaged archive fails to read into one DataError naming it."""
    try:
        yield
    except (tarfile.ReadError, zipfile.BadZipFile, zlib.error, EOFError) as exc:
        raise DataError(f"{archive}: truncated or corrupt archive ({exc})") from None
    except OSError as exc:
        if exc.errno is not None:  # a real I/O failure (disk full, permissions), not bad data
            raise
        # gzip and bz2 report bad streams as OSError without an errno
        raise DataError(f"{archive}: truncated or corrupt archive ({exc})") from None


def _check_name(archive: Path, name: str) -> None:
    """Refuse member names that are absolute or climb out with ``..``."""
    if name.startswith(("/", "\\")) or PureWindowsPath(name).drive:
        raise DataError(f"{archive}: unsafe member {name!r}: absolute path")
    if ".." in PureWindowsPath(name).parts:  # splits on both / and \
        raise DataError(f"{archive}: unsafe member {name!r}: '..' in path")


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
