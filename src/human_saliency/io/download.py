"""Resumable, verified downloads: a file appears under its final name only once its size, MD5 and check pass.

One run at a time writes a file's ``.part`` (a lock beside it). A resumed download asks for the rest only
if the server's file is unchanged (``If-Range`` with the first response's ETag or Last-Modified); every
byte received is on disk as it arrives, so an interruption loses nothing. ``timeout_s`` bounds each wait
for a byte, and a try whose body arrives slower than ``min_bytes_per_s`` over any ``timeout_s`` window is
abandoned (and retried), so a trickling server cannot hold a stage for ever.
"""

from __future__ import annotations

import hashlib
import http.client
import logging
import os
import re
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

from tqdm import tqdm

from human_saliency.errors import DataError, DownloadError
from human_saliency.io.files import exclusive_lock, write_text

log = logging.getLogger(__name__)

CHUNK = 1 << 20
# A second run waits this long for the first to finish downloading the same file, then gives up.
LOCK_WAIT_S = 600.0
# Worth another try: the server or the network may recover; anything else (404, 403) will not.
TRANSIENT_HTTP = {408, 425, 429, 500, 502, 503, 504}
_CONTENT_RANGE = re.compile(r"bytes (\d+)-\d+/(\d+|\*)")


class _Transient(Exception):
    """A failure that a retry (resuming the part file) may get past."""


class _TooLarge(Exception):
    """The download passed ``max_bytes``."""


def md5sum(path: str | os.PathLike) -> str:
    """The hex MD5 of a file, read in chunks."""
    digest = hashlib.md5()
    with open(path, "rb") as fh:
        while chunk := fh.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def fetch(
    url: str,
    dest: str | os.PathLike,
    *,
    size: int | None,
    md5: str | None,
    timeout_s: float = 60.0,
    min_bytes_per_s: float = 1024.0,
    retries: int = 3,
    backoff_s: float = 1.0,
    max_bytes: int | None = None,
    check: Callable[[Path], None] | None = None,
    lock_wait_s: float = LOCK_WAIT_S,
) -> Path:
    """Download ``url`` to ``dest`` (resuming ``dest``.part), verify size, MD5 and ``check``; return ``dest``.

    An existing ``dest`` that verifies is used as is, without any request. Transient network errors
    are retried up to ``retries`` times, waiting ``backoff_s`` × 2^attempt between tries. A download that
    passes ``max_bytes`` or fails ``check`` (a callable raising DataError) is deleted, never cached.
    """
    dest = Path(dest)
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DownloadError(f"{dest.parent}: cannot use it as a download cache folder ({exc.strerror})") from None
    lock = dest.with_name(dest.name + ".lock")
    with exclusive_lock(lock, holder=f"another run downloading {dest.name}", wait_s=lock_wait_s):
        if dest.exists():
            try:
                digest = _verify(dest, size=size, md5=md5)
            except DownloadError as exc:
                log.warning("%s; downloading it again", exc)
            else:
                log.info("%s: already downloaded and verified", dest)
                _warn_if_unpinned(url, dest, md5, digest)
                return dest

        part = dest.with_name(dest.name + ".part")

        def one_try() -> None:
            _download(
                url, part, size=size, md5=md5, timeout_s=timeout_s, min_bytes_per_s=min_bytes_per_s, max_bytes=max_bytes
            )

        try:
            _retrying(one_try, url, part, retries=retries, backoff_s=backoff_s)
        except _TooLarge:
            part.unlink(missing_ok=True)
            _validator_path(part).unlink(missing_ok=True)
            raise DownloadError(f"{url}: more than max_bytes={max_bytes} bytes; discarded") from None
        _validator_path(part).unlink(missing_ok=True)  # the part is whole: nothing left to resume

        digest = _verify(part, size=size, md5=md5, name=dest)
        if check is not None:
            try:
                check(part)
            except DataError as exc:
                part.unlink()
                raise DownloadError(f"{url}: {exc}; discarded, not cached") from None
        os.replace(part, dest)
    _warn_if_unpinned(url, dest, md5, digest)
    return dest


def _retrying(one_try: Callable[[], None], url: str, part: Path, *, retries: int, backoff_s: float) -> None:
    """Run ``one_try`` until it succeeds or has failed transiently ``retries`` + 1 times."""
    for attempt in range(retries + 1):
        try:
            one_try()
            return
        except _Transient as exc:
            have = part.stat().st_size if part.exists() else 0
            if attempt == retries:
                kept = f"; {have} bytes kept in {part} for the next run to resume" if have else ""
                raise DownloadError(f"{url}: {exc} (gave up after {retries + 1} tries{kept})") from None
            delay = backoff_s * 2**attempt
            log.warning("%s: %s; retrying in %.0f s from byte %d", url, exc, delay, have)
            time.sleep(delay)


def _download(
    url: str,
    part: Path,
    *,
    size: int | None,
    md5: str | None,
    timeout_s: float,
    min_bytes_per_s: float,
    max_bytes: int | None,
) -> None:
    """One try: append to ``part`` from where it stops, or start it over if resuming is not safe."""
    have = part.stat().st_size if part.exists() else 0
    if (size is not None and have > size) or (max_bytes is not None and have > max_bytes):
        have = 0  # a leftover of some other file: resuming it cannot verify
    floor = _RateFloor(timeout_s, min_bytes_per_s)
    if urllib.parse.urlsplit(url).scheme == "file":
        _copy_local(url, part, have=have, floor=floor, max_bytes=max_bytes)
        return
    validator = _validator_path(part).read_text(encoding="utf-8") if have and _validator_path(part).exists() else None
    if have and validator is None and md5 is None:
        log.info(
            "%s: nothing to tell whether the %d bytes in %s still match the server's file; starting over",
            url,
            have,
            part,
        )
        have = 0
    headers = {"Range": f"bytes={have}-"} if have else {}
    if have and validator is not None:
        headers["If-Range"] = validator  # the server sends the whole file instead if it has changed
    try:
        response = urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=timeout_s)
    except urllib.error.HTTPError as exc:
        if exc.code == 416 and have:
            # The part already holds the whole file (or more): let verification decide.
            log.info("%s: server has nothing past byte %d; verifying the part file", url, have)
            return
        if exc.code in TRANSIENT_HTTP:
            raise _Transient(f"HTTP {exc.code} {exc.reason}") from None
        raise DownloadError(f"{url}: HTTP {exc.code} {exc.reason}") from None
    except (OSError, http.client.HTTPException) as exc:
        raise _Transient(_reason(exc)) from None

    with response:
        start = _body_offset(response)
        if start != have:
            if start:  # some other range than asked for: nothing safe to append it to
                part.unlink(missing_ok=True)
                raise _Transient(f"server answered bytes from {start}, not from {have}; starting over")
            log.info("%s: server sent the whole file (Range ignored, or the file changed); starting over", url)
        _check_validator(url, part, start, validator, _validator_of(response))
        length = response.headers.get("Content-Length")
        expected = start + int(length) if length is not None else size
        if max_bytes is not None and expected is not None and expected > max_bytes:
            raise _TooLarge
        with open(part, "ab") as out:
            out.truncate(start)
            received = _stream(
                response, out, initial=start, total=expected, desc=part.name, floor=floor, limit=max_bytes
            )
    if length is not None and received < int(length):
        raise _Transient(f"connection closed after {start + received} of {expected} bytes")


def _validator_path(part: Path) -> Path:
    """Where the ETag or Last-Modified that ``part``'s bytes came with is kept."""
    return part.with_name(part.name + ".validator")


def _validator_of(response: http.client.HTTPResponse) -> str | None:
    """A strong ETag, else Last-Modified: what If-Range accepts (a weak ETag it does not)."""
    etag = response.headers.get("ETag")
    if etag and not etag.startswith("W/"):
        return etag
    return response.headers.get("Last-Modified")


def _check_validator(url: str, part: Path, start: int, stored: str | None, current: str | None) -> None:
    """Record the validator of a fresh body; refuse a continuation from a changed file."""
    if start == 0:
        if current is None:
            _validator_path(part).unlink(missing_ok=True)
        else:
            write_text(_validator_path(part), current)
    elif stored is not None and current is not None and current != stored:
        # A server that honours Range but not If-Range: the rest belongs to another version of the file.
        part.unlink()
        _validator_path(part).unlink(missing_ok=True)
        raise _Transient(f"the file changed on the server ({stored} -> {current}); starting over")


def _body_offset(response: http.client.HTTPResponse) -> int:
    """The file offset the response body starts at: from Content-Range for a 206, else 0."""
    if response.status != 206:
        return 0
    content_range = response.headers.get("Content-Range", "")
    match = _CONTENT_RANGE.match(content_range)
    if match is None:
        raise _Transient(f"206 response with an unusable Content-Range {content_range!r}")
    return int(match.group(1))


def _copy_local(url: str, part: Path, *, have: int, floor: _RateFloor, max_bytes: int | None) -> None:
    """Copy a ``file://`` source into ``part``, continuing after ``have`` bytes."""
    source = Path(urllib.request.url2pathname(urllib.parse.urlsplit(url).path))
    try:
        src = open(source, "rb")  # noqa: SIM115 (closed by the with below; opened here to name the failure)
    except OSError as exc:
        raise DownloadError(f"{url}: cannot read {source}: {exc.strerror}") from None
    with src, open(part, "ab") as out:
        total = source.stat().st_size
        start = have if have <= total else 0
        out.truncate(start)
        src.seek(start)
        _stream(src, out, initial=start, total=total, desc=part.name, floor=floor, limit=max_bytes)


class _RateFloor:
    """Ends a try whose body arrives slower than ``min_bytes_per_s`` over a ``window_s`` window."""

    def __init__(self, window_s: float, min_bytes_per_s: float) -> None:
        self.window_s, self.min_bytes_per_s = window_s, min_bytes_per_s
        self.start, self.count = time.monotonic(), 0

    def update(self, n: int) -> None:
        self.count += n
        elapsed = time.monotonic() - self.start
        if elapsed < self.window_s:
            return
        if self.count < self.min_bytes_per_s * elapsed:
            raise _Transient(f"slower than {self.min_bytes_per_s:g} B/s over {self.window_s:g} s")
        self.start, self.count = time.monotonic(), 0


def _stream(
    src: BinaryIO, out: BinaryIO, *, initial: int, total: int | None, desc: str, floor: _RateFloor, limit: int | None
) -> int:
    """Copy ``src`` to ``out`` as bytes arrive, under a progress bar; return the bytes copied.

    ``read1`` returns what one receive brings instead of waiting for a whole chunk, and each piece is
    flushed to the file at once: an interruption loses nothing that arrived.
    """
    copied = 0
    with tqdm(total=total, initial=initial, unit="B", unit_scale=True, unit_divisor=1024, desc=desc) as bar:
        while True:
            try:
                chunk = src.read1(CHUNK)
            except (OSError, http.client.HTTPException) as exc:  # what arrived stays in the part file
                raise _Transient(_reason(exc)) from None
            if not chunk:
                return copied
            if limit is not None and initial + copied + len(chunk) > limit:
                raise _TooLarge
            out.write(chunk)
            out.flush()
            copied += len(chunk)
            bar.update(len(chunk))
            floor.update(len(chunk))


def _verify(path: Path, *, size: int | None, md5: str | None, name: Path | None = None) -> str:
    """Check size then MD5; on a mismatch delete ``path`` and raise. Returns the computed MD5."""
    name = name or path
    actual_size = path.stat().st_size
    if size is not None and actual_size != size:
        path.unlink()
        raise DownloadError(f"{name}: size mismatch: expected {size} bytes, got {actual_size}")
    digest = md5sum(path)
    if md5 is not None and digest != md5.lower():
        path.unlink()
        raise DownloadError(f"{name}: MD5 mismatch: expected {md5}, got {digest}")
    return digest


def _warn_if_unpinned(url: str, dest: Path, md5: str | None, digest: str) -> None:
    if md5 is None:
        log.warning(
            "%s: source is unpinned (no md5 in params); %s has size %d and MD5 %s: pin them to "
            "make the download reproducible",
            url,
            dest.name,
            dest.stat().st_size,
            digest,
        )


def _reason(exc: BaseException) -> str:
    """A short description of a network error (URLError hides the cause in ``reason``)."""
    reason = getattr(exc, "reason", None) or exc
    return f"{type(reason).__name__}: {reason}" if str(reason) else type(reason).__name__
