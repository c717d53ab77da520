"""Resumable, verified downloads: a file appears under its final name only once its size, checksums and check pass.

Checksums: the published ones given, and for a file without a full published checksum its entry in the committed
``downloads.lock`` (recorded by its first download; :mod:`human_saliency.io.pins`). Mirrors are tried in order.

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
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import BinaryIO

from tqdm import tqdm

from human_saliency.errors import DataError, DownloadError
from human_saliency.io.files import exclusive_lock, write_text
from human_saliency.io.pins import Digest, DownloadLock, Pin, check_pin, digest, overrides

log = logging.getLogger(__name__)

CHUNK = 1 << 20
# A second run waits this long for the first to finish downloading the same file, then gives up.
LOCK_WAIT_S = 600.0
# Worth another try: the server or the network may recover; anything else (404, 403) will not.
TRANSIENT_HTTP = {408, 425, 429, 500, 502, 503, 504}
_CONTENT_RANGE = re.compile(r"bytes (\d+)-\d+/(\d+|\*)")
_HEX_PREFIX = re.compile(r"[0-9a-fA-F]{8,64}")


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
    sha256: str | None = None,
    mirrors: Sequence[str] = (),
    lockfile: DownloadLock | None = None,
    trust_first_download: bool = True,
    first_download_hint: str = "",
    timeout_s: float = 60.0,
    min_bytes_per_s: float = 1024.0,
    retries: int = 3,
    backoff_s: float = 1.0,
    max_bytes: int | None = None,
    check: Callable[[Path], None] | None = None,
    lock_wait_s: float = LOCK_WAIT_S,
) -> Path:
    """Download ``url`` (else each of ``mirrors`` in turn) to ``dest``, resuming ``dest``.part; return ``dest``.

    The file must match ``size``, ``md5`` and ``sha256`` (full or a prefix) where given, and ``check`` (a callable
    raising DataError); a file without a full published checksum must also match its entry in ``lockfile``
    (default: ``downloads.lock``), or is recorded there if it has none. With ``trust_first_download=False`` such a
    first download is recorded and kept, and then refused with a DownloadError ending in ``first_download_hint``.

    An existing ``dest`` that verifies is used as is, without any request. Transient network errors are retried
    up to ``retries`` times per URL, waiting ``backoff_s`` × 2^attempt between tries. A download that passes
    ``max_bytes``, fails ``check`` or does not verify is deleted, never cached.
    """
    if sha256 is not None and not _HEX_PREFIX.fullmatch(sha256):
        raise ValueError(f"{Path(dest).name}: sha256 must be 8 to 64 hex digits, got {sha256!r}")
    pin, urls = Pin(size=size, md5=md5, sha256=sha256), [url, *mirrors]
    redirect = overrides()
    if redirect is not None:  # the offline rehearsal: loopback mirror, stand-in pins
        pin = redirect.pins.get(url, pin)
        urls = [redirect.url(u) for u in urls]
        log.warning("%s: fetched from %s instead (download overrides in %s)", url, urls[0], redirect.source)
    lockfile = lockfile or DownloadLock()
    dest = Path(dest)
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DownloadError(f"{dest.parent}: cannot use it as a download cache folder ({exc.strerror})") from None
    lock = dest.with_name(dest.name + ".lock")
    with exclusive_lock(lock, holder=f"another run downloading {dest.name}", wait_s=lock_wait_s):
        if dest.exists():
            try:
                recorded = _accept(dest, url, pin, lockfile, name=dest, check=check)
            except DownloadError as exc:
                log.warning("%s; downloading it again", exc)
            else:
                log.info("%s: already downloaded and verified", dest)
                return _trusted(dest, recorded, trust_first_download, first_download_hint)

        part = dest.with_name(dest.name + ".part")
        _download_from_any(
            urls,
            part,
            size=pin.size,
            md5=pin.md5,
            timeout_s=timeout_s,
            min_bytes_per_s=min_bytes_per_s,
            retries=retries,
            backoff_s=backoff_s,
            max_bytes=max_bytes,
        )
        _validator_path(part).unlink(missing_ok=True)  # the part is whole: nothing left to resume
        got = digest(part)
        try:
            check_pin(dest, got, pin)
        except DownloadError:
            part.unlink()
            raise
        if check is not None:
            try:
                check(part)
            except DataError as exc:
                part.unlink()
                raise DownloadError(f"{urls[0]}: {exc}; discarded, not cached") from None
        try:
            recorded = _lock_entry(url, dest, got, pin, lockfile)
        except DownloadError:
            part.unlink()
            raise
        os.replace(part, dest)
    return _trusted(dest, recorded, trust_first_download, first_download_hint)


def _download_from_any(urls: Sequence[str], part: Path, *, retries: int, backoff_s: float, **options) -> None:
    """Fill ``part`` from the first of ``urls`` that answers (each retried); DownloadError naming every failure."""
    failures = []
    for k, url in enumerate(urls):
        try:
            _retrying(lambda url=url: _download(url, part, **options), url, part, retries=retries, backoff_s=backoff_s)
            if k:
                log.info("%s: downloaded from mirror %s", part.name, url)
            return
        except _TooLarge:
            part.unlink(missing_ok=True)
            _validator_path(part).unlink(missing_ok=True)
            raise DownloadError(f"{url}: more than max_bytes={options['max_bytes']} bytes; discarded") from None
        except DownloadError as exc:
            failures.append(str(exc))
            if k + 1 < len(urls):
                log.warning("%s; trying the next mirror, %s", exc, urls[k + 1])
    raise DownloadError("; ".join(failures) if len(failures) == 1 else f"no mirror answered: {'; '.join(failures)}")


def _accept(
    path: Path, url: str, pin: Pin, lockfile: DownloadLock, *, name: Path, check: Callable[[Path], None] | None
) -> bool:
    """Verify a cached file (deleting it on a mismatch); True if this call recorded its lock entry.

    A cached file that no entry vouches for yet (cached before the lock existed) must pass ``check`` too."""
    got = digest(path)
    try:
        check_pin(name, got, pin)
        if check is not None and not pin.full and url not in lockfile.entries():
            try:
                check(path)
            except DataError as exc:
                raise DownloadError(str(exc)) from None
        return _lock_entry(url, name, got, pin, lockfile)
    except DownloadError:
        path.unlink()
        raise


def _lock_entry(url: str, name: Path, got: Digest, pin: Pin, lockfile: DownloadLock) -> bool:
    """A file without a full published checksum must match its lock entry; record one if it has none (True)."""
    if pin.full or lockfile.verify(url, name, got):
        return False
    lockfile.record(url, name.name, got)
    log.warning(
        "%s: no published checksum; recorded its size %d, MD5 %s and SHA-256 %s in %s (its first download): "
        "commit that file so later runs verify against it",
        name,
        got.size,
        got.md5,
        got.sha256,
        lockfile.path,
    )
    return True


def _trusted(dest: Path, recorded: bool, trust: bool, hint: str) -> Path:
    """Refuse a first download that only vouches for itself unless ``trust``; say so loudly when trusted."""
    if recorded and not trust:
        raise DownloadError(f"{dest}: first download of a file with no published checksum, nothing verifies it; {hint}")
    if recorded and hint:
        log.warning("%s: used on its first download, trusted without any earlier record (trust on first use)", dest)
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


def _reason(exc: BaseException) -> str:
    """A short description of a network error (URLError hides the cause in ``reason``)."""
    reason = getattr(exc, "reason", None) or exc
    return f"{type(reason).__name__}: {reason}" if str(reason) else type(reason).__name__
