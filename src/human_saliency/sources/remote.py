"""Fetch the study's real archives into the download cache and extract them into the raw-data folder."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from human_saliency.io.archive import extract
from human_saliency.io.download import fetch, md5sum
from human_saliency.io.files import write_json

if TYPE_CHECKING:  # the schema lives above every layer; only its type is needed here
    from human_saliency.params import RemoteParams

log = logging.getLogger(__name__)

MANIFEST = "SOURCES.json"


def fetch_sources(remote: RemoteParams, raw_dir: str | os.PathLike) -> dict[str, dict[str, Any]]:
    """Download, verify and extract every source of ``remote`` into ``raw_dir/<dest>/``.

    Writes and returns the manifest ``raw_dir/SOURCES.json``: per source its url, filename, size,
    computed md5, whether params pinned its md5, its dest folder and member count.
    """
    raw_dir = Path(raw_dir)
    cache = Path(remote.cache_dir)
    manifest: dict[str, dict[str, Any]] = {}
    for name, spec in remote.sources().items():
        log.info("%s: %s", name, spec.url)
        path = fetch(
            spec.url,
            cache / spec.filename,
            size=spec.size,
            md5=spec.md5,
            timeout_s=remote.timeout_s,
            retries=remote.retries,
        )
        members = extract(path, raw_dir / spec.dest, max_bytes=remote.max_bytes, max_ratio=remote.max_ratio)
        manifest[name] = {
            "url": spec.url,
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
