"""Resumable, verified downloads: a file appears under its final name only once its size and MD5 check out."""

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
from pathlib import Path
from typing import BinaryIO

from tqdm import tqdm

from human_saliency.errors import DownloadError

log = logging.getLogger(__name__)

CHUNK = 1 << 20
# Worth another try: the server or the network may recover; anything else (404, 403) will not.
TRANSIENT_HTTP = {408, 425, 429, 500, 502, 503, 504}
_CONTENT_RANGE = re.compile(r"bytes (\d+)-\d+/(\d+|\*)")


class _Transient(Exception):
    """A failure that a retry (resuming the part file) may get past."""


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
    retries: int = 3,
    backoff_s: float = 1.0,
) -> Path:
    """Download ``url`` to ``dest`` (resuming ``dest``.part), verify size then MD5, and return ``dest``.

    An existing ``dest`` that verifies is used as is, without any request. Transient network errors
    are retried up to ``retries`` times, waiting ``backoff_s`` × 2^attempt between tries.
    """
    dest = Path(dest)
    if dest.exists():
        try:
            digest = _verify(dest, size=size, md5=md5)
        except DownloadError as exc:
            log.warning("%s; downloading it again", exc)
        else:
            log.info("%s: already downloaded and verified", dest)
            _warn_if_unpinned(url, dest, md5, digest)
            return dest

    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    for attempt in range(retries + 1):
        try:
            _download(url, part, size=size, timeout_s=timeout_s)
            break
        except _Transient as exc:
            have = part.stat().st_size if part.exists() else 0
            if attempt == retries:
                kept = f"; {have} bytes kept in {part} for the next run to resume" if have else ""
                raise DownloadError(f"{url}: {exc} (gave up after {retries + 1} tries{kept})") from None
            delay = backoff_s * 2**attempt
            log.warning("%s: %s; retrying in %.0f s from byte %d", url, exc, delay, have)
            time.sleep(delay)

    digest = _verify(part, size=size, md5=md5, name=dest)
    os.replace(part, dest)
    _warn_if_unpinned(url, dest, md5, digest)
    return dest


def _download(url: str, part: Path, *, size: int | None, timeout_s: float) -> None:
    """One try: append to ``part`` from where it stops, or start it over if the source cannot resume."""
    have = part.stat().st_size if part.exists() else 0
    if size is not None and have > size:  # a leftover of some other file: resuming it cannot verify
        have = 0
    if urllib.parse.urlsplit(url).scheme == "file":
        _copy_local(url, part, have=have)
        return
    request = urllib.request.Request(url, headers={"Range": f"bytes={have}-"} if have else {})
    try:
        response = urllib.request.urlopen(request, timeout=timeout_s)
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
            log.info("%s: server ignored the Range request; starting over", url)
        length = response.headers.get("Content-Length")
        expected = start + int(length) if length is not None else size
        with open(part, "ab") as out:
            out.truncate(start)
            received = _stream(response, out, initial=start, total=expected, desc=part.name)
    if length is not None and received < int(length):
        raise _Transient(f"connection closed after {start + received} of {expected} bytes")


def _body_offset(response: http.client.HTTPResponse) -> int:
    """The file offset the response body starts at: from Content-Range for a 206, else 0."""
    if response.status != 206:
        return 0
    content_range = response.headers.get("Content-Range", "")
    match = _CONTENT_RANGE.match(content_range)
    if match is None:
        raise _Transient(f"206 response with an unusable Content-Range {content_range!r}")
    return int(match.group(1))


def _copy_local(url: str, part: Path, *, have: int) -> None:
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
        _stream(src, out, initial=start, total=total, desc=part.name)


def _stream(src: BinaryIO, out: BinaryIO, *, initial: int, total: int | None, desc: str) -> int:
    """Copy ``src`` to ``out`` in chunks under a byte progress bar; return the bytes copied."""
    copied = 0
    with tqdm(total=total, initial=initial, unit="B", unit_scale=True, unit_divisor=1024, desc=desc) as bar:
        while True:
            try:
                chunk = src.read(CHUNK)
            except (OSError, http.client.HTTPException) as exc:  # what arrived stays in the part file
                raise _Transient(_reason(exc)) from None
            if not chunk:
                return copied
            out.write(chunk)
            copied += len(chunk)
            bar.update(len(chunk))


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
