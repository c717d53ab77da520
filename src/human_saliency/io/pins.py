"""What a downloaded file must hash to: published pins, the committed ``downloads.lock``, and the rehearsal's overrides.

A file with a published checksum (a full MD5 or SHA-256) is verified against it. Every other file (no checksum
published, or only a prefix such as torchvision's 8 hex digits in a file name) is also verified against its entry
in ``downloads.lock``, a JSON file at the project root keyed by URL: the first download of such a file records its
size and SHA-256 there, later downloads must match. Commit the file after the first real run, so every later run
and every clone verifies against what that run got. It is neither a DVC dependency nor an output: recording an
entry re-runs nothing.

``HUMAN_SALIENCY_DOWNLOAD_OVERRIDES`` names a JSON file that redirects every download to a loopback mirror and
replaces published pins; only the offline rehearsal (tests/test_rehearsal.py) sets it, and every download it
touches logs a WARNING.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import os
import urllib.parse
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

from human_saliency.errors import DataError, DownloadError
from human_saliency.io.files import exclusive_lock, write_text

log = logging.getLogger(__name__)

# At the project root, where DVC runs every stage (tests point it elsewhere).
LOCK_FILE = Path("downloads.lock")
OVERRIDES_ENV = "HUMAN_SALIENCY_DOWNLOAD_OVERRIDES"
_ABOUT = (
    "Size and SHA-256 of each downloaded file that has no published checksum, recorded by its first download "
    "and verified by every later one (human_saliency.io.pins). Commit this file; delete an entry only to accept "
    "a file that changed upstream."
)
CHUNK = 1 << 20


@dataclass(frozen=True)
class Pin:
    """What a file must match: its size, MD5 and SHA-256 (full or a prefix of at least 8 hex digits); None: unknown."""

    size: int | None = None
    md5: str | None = None
    sha256: str | None = None

    @property
    def full(self) -> bool:
        """Whether a full published checksum pins the file (then it needs no lock entry)."""
        return (self.md5 is not None and len(self.md5) == 32) or (self.sha256 is not None and len(self.sha256) == 64)


@dataclass(frozen=True)
class Digest:
    """A file's size, MD5 and SHA-256, from one read."""

    size: int
    md5: str
    sha256: str


def digest(path: str | os.PathLike) -> Digest:
    """Size, MD5 and SHA-256 of a file, read once in chunks."""
    md5, sha256 = hashlib.md5(), hashlib.sha256()
    size = 0
    with open(path, "rb") as fh:
        while chunk := fh.read(CHUNK):
            md5.update(chunk)
            sha256.update(chunk)
            size += len(chunk)
    return Digest(size=size, md5=md5.hexdigest(), sha256=sha256.hexdigest())


def check_pin(name: str | os.PathLike, got: Digest, pin: Pin) -> None:
    """DownloadError naming ``name`` if ``got`` differs from ``pin`` (size first, then MD5, then SHA-256)."""
    if pin.size is not None and got.size != pin.size:
        raise DownloadError(f"{name}: size mismatch: expected {pin.size} bytes, got {got.size}")
    if pin.md5 is not None and got.md5 != pin.md5.lower():
        raise DownloadError(f"{name}: MD5 mismatch: expected {pin.md5}, got {got.md5}")
    if pin.sha256 is not None and not got.sha256.startswith(pin.sha256.lower()):
        raise DownloadError(f"{name}: SHA-256 mismatch: expected {pin.sha256}, got {got.sha256}")


class DownloadLock:
    """The committed record of files without a published checksum: URL → filename, size, SHA-256, date recorded."""

    def __init__(self, path: str | os.PathLike | None = None) -> None:
        self.path = Path(path) if path is not None else LOCK_FILE

    def entries(self) -> dict[str, dict[str, Any]]:
        """Every entry by URL ({} when the file does not exist yet)."""
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return {}
        try:
            files = json.loads(text)["files"]
            if not isinstance(files, dict):
                raise TypeError("'files' is not a mapping")
        except (ValueError, KeyError, TypeError) as exc:
            raise DataError(f"{self.path}: not a downloads lock ({exc}); restore it from git") from None
        return files

    def verify(self, url: str, name: str | os.PathLike, got: Digest) -> bool:
        """Check ``got`` against the entry of ``url``; False when there is none. DownloadError on a mismatch."""
        entry = self.entries().get(url)
        if entry is None:
            return False
        if got.size != entry.get("size") or got.sha256 != entry.get("sha256"):
            raise DownloadError(
                f"{name}: does not match its entry in {self.path} (size {entry.get('size')}, SHA-256 "
                f"{entry.get('sha256')}, recorded {entry.get('recorded', '?')}): got size {got.size}, SHA-256 "
                f"{got.sha256}; if the file changed upstream on purpose, delete that entry to record the new one"
            )
        return True

    def record(self, url: str, filename: str, got: Digest) -> None:
        """Add the entry of ``url`` (under a file lock, written atomically); an existing entry is verified instead."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        guard = self.path.with_name(f".{self.path.name}.flock")
        with exclusive_lock(guard, holder=f"another run recording in {self.path}", wait_s=60.0):
            if self.verify(url, filename, got):  # another run recorded it meanwhile
                return
            files = self.entries()
            files[url] = {"filename": filename, "size": got.size, "sha256": got.sha256, "recorded": _today()}
            write_text(self.path, json.dumps({"about": _ABOUT, "files": files}, indent=2, sort_keys=True) + "\n")


def _today() -> str:
    return date.today().isoformat()


# --- The offline rehearsal's overrides --------------------------------------------------------------------


@dataclass(frozen=True)
class Overrides:
    """Where every download goes instead (``mirror``/<host>/<path>) and the pins that replace published ones."""

    source: str
    mirror: str
    pins: dict[str, Pin]

    def url(self, url: str) -> str:
        """The mirror's URL of ``url``: same host (as a folder) and path, so files keep their real names."""
        parts = urllib.parse.urlsplit(url)
        if parts.scheme not in ("http", "https"):
            return url
        query = f"?{parts.query}" if parts.query else ""
        return f"{self.mirror.rstrip('/')}/{parts.netloc}{parts.path}{query}"


def overrides() -> Overrides | None:
    """The overrides named by ``HUMAN_SALIENCY_DOWNLOAD_OVERRIDES``, or None (always, outside the rehearsal)."""
    source = os.environ.get(OVERRIDES_ENV)
    return _load_overrides(source) if source else None


@functools.cache
def _load_overrides(source: str) -> Overrides:
    try:
        raw = json.loads(Path(source).read_text(encoding="utf-8"))
        pins = {url: Pin(**{k: pin.get(k) for k in ("size", "md5", "sha256")}) for url, pin in raw["pins"].items()}
        return Overrides(source=source, mirror=str(raw["mirror"]), pins=pins)
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise DataError(f"{source} (${OVERRIDES_ENV}): unreadable download overrides ({exc})") from None
