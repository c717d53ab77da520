"""Saliency and fixation maps on disk: one ZIP of 16-bit grayscale PNGs per split.

Why this format: a person can unzip it and open any map in an image viewer, while DVC hashes one file per
split instead of thousands of small ones (DVC is slow with very many small files). 16 bits keep the [0, 1]
maps to 1.5e-5, far below any score difference we report. Entries are stored, not deflated: PNG is already
compressed.
"""

from __future__ import annotations

import contextlib
import os
import zipfile
from collections.abc import Iterator, Sequence
from pathlib import Path

import cv2
import numpy as np

from human_saliency.errors import DataError
from human_saliency.io.files import atomic_file

_SCALE = 65535.0


def encode_map(saliency: np.ndarray) -> bytes:
    """A [0, 1] float map as 16-bit PNG bytes."""
    if saliency.ndim != 2:
        raise ValueError(f"a map must be 2-D, got shape {saliency.shape}")
    if not np.isfinite(saliency).all() or saliency.min() < 0 or saliency.max() > 1:
        raise ValueError("a map must be finite and in [0, 1]")
    ok, buf = cv2.imencode(".png", np.round(saliency * _SCALE).astype(np.uint16))
    if not ok:
        raise ValueError("PNG encoding failed")
    return buf.tobytes()


def decode_map(data: bytes, *, name: str = "<map>") -> np.ndarray:
    """16-bit PNG bytes back to a float32 [0, 1] map."""
    array = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    if array is None or array.ndim != 2:
        raise DataError(f"{name}: not a single-channel PNG map")
    return array.astype(np.float32) / (_SCALE if array.dtype == np.uint16 else 255.0)


class MapWriter:
    """Write maps into a ZIP that appears under its final name only when closed without error."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self._atomic = atomic_file(self.path)
        self._zip: zipfile.ZipFile | None = None

    def __enter__(self) -> MapWriter:
        tmp = self._atomic.__enter__()
        self._zip = zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_STORED)
        return self

    def add(self, key: str, saliency: np.ndarray) -> None:
        """Store one map under ``key`` (an image id)."""
        self.add_png(key, encode_map(saliency))

    def add_png(self, key: str, data: bytes) -> None:
        """Store one map already encoded by :func:`encode_map` (e.g. copied from another archive)."""
        # A fixed timestamp keeps the archive byte-identical across runs, so DVC sees no change.
        info = zipfile.ZipInfo(f"{key}.png", date_time=(1980, 1, 1, 0, 0, 0))
        self._zip.writestr(info, data)

    def __exit__(self, *exc_info) -> None:
        self._zip.close()
        self._atomic.__exit__(*exc_info)


class MapReader:
    """Random access to the maps of one ZIP, by image id."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        try:
            self._zip = zipfile.ZipFile(self.path)
        except (OSError, zipfile.BadZipFile) as exc:
            raise DataError(f"{self.path}: cannot open map archive ({exc})") from None
        self._names = {name.removesuffix(".png"): name for name in self._zip.namelist()}

    def __enter__(self) -> MapReader:
        return self

    def __exit__(self, *exc_info) -> None:
        self._zip.close()

    def ids(self) -> list[str]:
        """The image ids stored, sorted."""
        return sorted(self._names)

    def __contains__(self, key: str) -> bool:
        return key in self._names

    def __getitem__(self, key: str) -> np.ndarray:
        return decode_map(self.png(key), name=f"{self.path}:{key}")

    def png(self, key: str) -> bytes:
        """The stored PNG bytes of one map, not decoded."""
        if key not in self._names:
            raise DataError(f"{self.path}: no map for image id {key!r}")
        return self._zip.read(self._names[key])

    def items(self) -> Iterator[tuple[str, np.ndarray]]:
        """(id, map) pairs in id order."""
        for key in self.ids():
            yield key, self[key]


def merge_archives(parts: Sequence[str | os.PathLike], writer: MapWriter, keys: Sequence[str]) -> None:
    """Copy the maps of ``keys``, in that order, from the archives ``parts`` into ``writer``, without re-encoding."""
    with contextlib.ExitStack() as stack:
        readers = [stack.enter_context(MapReader(part)) for part in parts]
        owner = {key: reader for reader in readers for key in reader.ids()}
        for key in keys:
            if key not in owner:
                raise DataError(f"{writer.path}: none of {len(parts)} shard archives holds image id {key!r}")
            writer.add_png(key, owner[key].png(key))
