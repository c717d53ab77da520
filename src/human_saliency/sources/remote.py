"""Fetch the study's real archives into the download cache and extract them into the raw-data folder."""

from __future__ import annotations

import functools
import hashlib
import logging
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from human_saliency.errors import DataError
from human_saliency.io.archive import check_archive, extract
from human_saliency.io.download import fetch, md5sum
from human_saliency.io.files import write_json

if TYPE_CHECKING:  # the schema lives above every layer; only its type is needed here
    from human_saliency.params import RemoteParams, SourceSpec

log = logging.getLogger(__name__)

MANIFEST = "SOURCES.json"


def cache_path(cache_dir: str | os.PathLike, spec: SourceSpec) -> Path:
    """Where the archive of ``spec`` is cached: ``<cache_dir>/<hash of its url>/<filename>``.

    Keyed by the URL, so a source moved to a new URL (a new release, a mirror) is downloaded again.
    """
    return Path(cache_dir) / hashlib.sha256(spec.url.encode("utf-8")).hexdigest()[:16] / spec.filename


def fetch_sources(remote: RemoteParams, raw_dir: str | os.PathLike) -> dict[str, dict[str, Any]]:
    """Download, verify and extract every source of ``remote`` into ``raw_dir/<dest>/``.

    Writes and returns the manifest ``raw_dir/SOURCES.json``: per source its url and mirrors, filename, size,
    md5 of the very file extracted, whether params pinned its md5 (else ``downloads.lock`` verified it), its dest
    folder and member count.
    """
    raw_dir = Path(raw_dir)
    manifest: dict[str, dict[str, Any]] = {}
    for name, spec in remote.sources().items():
        log.info("%s: %s", name, spec.url)
        path = fetch(
            spec.url,
            cache_path(remote.cache_dir, spec),
            size=spec.size,
            md5=spec.md5,
            mirrors=spec.mirrors,
            timeout_s=remote.timeout_s,
            min_bytes_per_s=remote.min_bytes_per_s,
            retries=remote.retries,
            max_bytes=remote.max_bytes,
            # A pinned file is the one params name; an unpinned one might be an error page or cut short.
            check=None if spec.md5 else functools.partial(check_archive, name=spec.filename),
        )
        members = _extract(path, raw_dir / spec.dest, remote, pinned=spec.md5 is not None)
        manifest[name] = {
            "url": spec.url,
            "mirrors": list(spec.mirrors),
            "filename": spec.filename,
            "size": path.stat().st_size,
            # fetch has checked a pinned md5, so only an unpinned file needs hashing again
            "md5": spec.md5 or md5sum(path),
            "pinned": spec.md5 is not None,
            "dest": spec.dest,
            "members": members,
        }
    write_json(raw_dir / MANIFEST, manifest)
    return manifest


def _extract(path: Path, dest: Path, remote: RemoteParams, *, pinned: bool) -> int:
    """Extract a cached archive; one that fails and is unpinned leaves the cache, so the next run fetches it."""
    try:
        return extract(path, dest, max_bytes=remote.max_bytes, max_ratio=remote.max_ratio)
    except DataError as exc:
        if pinned:
            raise
        path.unlink()
        raise DataError(
            f"{exc}; as the source is unpinned, deleted it from the cache: the next run downloads it again"
        ) from None
