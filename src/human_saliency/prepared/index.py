"""The prepared JSON indexes (COCO splits, the MIT1003 index): read and checked in one place."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from human_saliency.errors import DataError
from human_saliency.io.files import read_json


def read_prepared_json(path: Path, *, what: str, required: tuple[str, ...]) -> dict[str, Any]:
    """A prepared JSON index with ``required`` top-level keys and ``info.image_root``; DataError naming the file."""
    try:
        data = read_json(path)
    except FileNotFoundError:
        raise DataError(f"{path}: {what} not found") from None
    except ValueError as exc:
        raise DataError(f"{path}: not valid JSON ({exc})") from None
    if not isinstance(data, dict) or any(key not in data for key in required):
        raise DataError(f"{path}: not a {what} (needs {', '.join(required)})")
    if "image_root" not in data.get("info", {}):
        raise DataError(f"{path}: info.image_root is missing")
    return data
