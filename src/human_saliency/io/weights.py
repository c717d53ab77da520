"""Model weight files: fetched once into a cache, verified by SHA-256, and checkpoints loaded safely."""

from __future__ import annotations

import hashlib
import logging
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from human_saliency.errors import DataError
from human_saliency.io.download import fetch
from human_saliency.io.pins import DownloadLock

log = logging.getLogger(__name__)

_HEX_PREFIX = re.compile(r"[0-9a-fA-F]{8,64}")


@dataclass(frozen=True)
class WeightFile:
    """One published weight file: where it lives, its cache name, its SHA-256 (full, a prefix, or None) and size
    (None: unpublished), and whether loading it unpickles code (then an unverified copy is not loaded by default)."""

    url: str
    filename: str
    sha256: str | None = None
    size: int | None = None
    pickle: bool = False


def sha256sum(path: str | os.PathLike) -> str:
    """The hex SHA-256 of a file."""
    with open(path, "rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()


def fetch_weights(
    url: str,
    filename: str,
    cache_dir: str | os.PathLike,
    sha256: str | None = None,
    *,
    size: int | None = None,
    pickle: bool = False,
    trust_unverified_pickles: bool = False,
    lockfile: DownloadLock | None = None,
) -> Path:
    """Download ``url`` once into ``cache_dir/filename``, verified by ``sha256`` (full or prefix) and ``size``.

    A file with no full published SHA-256 is verified against its ``downloads.lock`` entry, recorded by its first
    download (:func:`human_saliency.io.download.fetch`). A file that does not verify is deleted (the next run
    downloads it afresh) and DownloadError names it. A ``pickle`` (unpickling runs code from the file) that nothing
    verifies yet, its first download, is recorded and then refused unless ``trust_unverified_pickles``.
    """
    if sha256 is not None and not _HEX_PREFIX.fullmatch(sha256):
        raise ValueError(f"{filename}: sha256 must be 8 to 64 hex digits, got {sha256!r}")
    hint = (
        f"it is a pickle, and unpickling runs code from the file: check the SHA-256 recorded in downloads.lock "
        f"against {url}'s publisher and run again (the entry is then its pin), or set "
        f"study.trust_unverified_pickles: true to load it on first use"
    )
    dest = fetch(
        url,
        Path(cache_dir) / filename,
        size=size,
        md5=None,
        sha256=sha256,
        lockfile=lockfile,
        trust_first_download=not pickle or trust_unverified_pickles,
        first_download_hint=hint if pickle else "",
    )
    return dest


def load_tensors(path: str | os.PathLike) -> Any:
    """``torch.load`` with ``weights_only=True`` (no code runs from the file) onto the CPU; DataError if unreadable."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: weight file not found")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # a corrupt file surfaces as any of a dozen types (struct.error, UnpicklingError, …)
        raise DataError(f"{path}: not a readable weight file: {' '.join(str(exc).split())[:200]}") from None


def load_checkpoint(path: str | os.PathLike) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """The model state dict of a training checkpoint (a dict with a "model" entry) and its "meta" (or {})."""
    checkpoint = load_tensors(path)
    if not isinstance(checkpoint, dict) or not isinstance(checkpoint.get("model"), dict):
        raise DataError(f"{path}: checkpoint has no 'model' state dict")
    return checkpoint["model"], checkpoint.get("meta") or {}


def load_state(model: nn.Module, state: dict[str, torch.Tensor], source: str | os.PathLike) -> None:
    """Load ``state`` into ``model`` strictly; a mismatch is a DataError naming ``source``."""
    try:
        model.load_state_dict(state)
    except RuntimeError as exc:
        first = str(exc).splitlines()[1].strip() if "\n" in str(exc) else str(exc)
        raise DataError(f"{source}: weights do not fit the model ({first[:200]})") from None
