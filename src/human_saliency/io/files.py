"""Atomic writes: every output appears whole under its final name, or not at all."""

from __future__ import annotations

import contextlib
import fcntl
import glob
import json
import logging
import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from human_saliency.errors import DataError

log = logging.getLogger(__name__)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


# mkdtemp/mkstemp create private (0700/0600) paths; outputs get the usual permissions instead.
_DIR_MODE = 0o777 & ~_umask()
_FILE_MODE = 0o666 & ~_umask()


def make_temp_dir(parent: str | os.PathLike, prefix: str) -> Path:
    """A new empty folder under ``parent`` with the usual (not private) permissions."""
    tmp = Path(tempfile.mkdtemp(prefix=prefix, dir=parent))
    tmp.chmod(_DIR_MODE)
    return tmp


@contextlib.contextmanager
def exclusive_lock(path: str | os.PathLike, *, holder: str, wait_s: float = 0.0) -> Iterator[None]:
    """Hold an exclusive ``flock`` on the file ``path`` (created if missing) while the block runs.

    If another process holds it, wait up to ``wait_s``, then raise DataError naming the lock and its
    ``holder``. The lock file stays: deleting it would let a third process lock a new file while a second
    still holds the old one. The kernel drops the lock when its holder dies, even by kill -9.
    """
    path = Path(path)
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, _FILE_MODE)
    except OSError as exc:
        raise DataError(f"{path}: cannot create the lock file ({exc.strerror})") from None
    try:
        deadline, waiting = time.monotonic() + wait_s, False
        while not _try_lock(fd):
            if time.monotonic() >= deadline:
                waited = f"; gave up waiting after {wait_s:g} s" if wait_s else ""
                raise DataError(f"{path}: held by {holder}{waited}")
            if not waiting:
                log.info("%s: held by %s; waiting up to %g s", path, holder, wait_s)
                waiting = True
            time.sleep(min(0.25, max(wait_s / 20, 0.01)))
        yield
    finally:
        os.close(fd)


def _try_lock(fd: int) -> bool:
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


@contextlib.contextmanager
def atomic_dir(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary sibling folder that replaces ``path`` only if the block succeeds.

    One run at a time: the lock ``.<name>.lock`` beside ``path`` is held throughout, and a second run is
    a DataError naming it. Holding it, every ``.<name>.tmp-*`` sibling is a leftover of a run that died
    without cleaning up (kill -9, a power cut), and is removed first.
    """
    final = Path(path)
    final.parent.mkdir(parents=True, exist_ok=True)
    with exclusive_lock(final.with_name(f".{final.name}.lock"), holder=f"another run writing {final}"):
        _sweep(final)
        tmp = make_temp_dir(final.parent, f".{final.name}.tmp-")
        try:
            yield tmp
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        if final.exists():
            shutil.rmtree(final)
        os.replace(tmp, final)


def _sweep(final: Path) -> None:
    """Remove the temporary siblings of ``final`` that interrupted runs left."""
    for stale in final.parent.glob(f".{glob.escape(final.name)}.tmp-*"):
        log.warning("%s: removing what an interrupted run left", stale)
        if stale.is_dir() and not stale.is_symlink():
            shutil.rmtree(stale)
        else:
            stale.unlink()


@contextlib.contextmanager
def atomic_file(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary sibling path that replaces ``path`` only if the block succeeds."""
    final = Path(path)
    final.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{final.name}.tmp-", dir=final.parent)
    os.close(fd)
    tmp = Path(name)
    tmp.chmod(_FILE_MODE)
    try:
        yield tmp
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    os.replace(tmp, final)


def write_text(path: str | os.PathLike, text: str) -> None:
    """Write ``text`` to ``path`` atomically."""
    with atomic_file(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def write_json(path: str | os.PathLike, obj: Any) -> None:
    """Write ``obj`` as indented, key-sorted JSON to ``path`` atomically."""
    write_text(path, json.dumps(obj, indent=2, sort_keys=True) + "\n")


def read_json(path: str | os.PathLike) -> Any:
    """Read a JSON file."""
    with open(path, encoding="utf-8") as fh:
        return json.load(fh)
