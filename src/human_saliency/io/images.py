"""The one image loader every stage uses: full decode (truncation is an error), then RGB or L."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

from PIL import Image, ImageFile

from human_saliency.errors import DataError


@contextlib.contextmanager
def _strict_truncation() -> Iterator[None]:
    """Make PIL fail on truncated files even if some other library switched that check off."""
    previous = ImageFile.LOAD_TRUNCATED_IMAGES
    ImageFile.LOAD_TRUNCATED_IMAGES = False
    try:
        yield
    finally:
        ImageFile.LOAD_TRUNCATED_IMAGES = previous


def decode(path: str | os.PathLike) -> Image.Image:
    """Open and fully decode an image in its stored mode; DataError if unreadable or truncated.

    EXIF orientation is deliberately not applied: VOC boxes and the human masks refer to the
    stored pixel grid.
    """
    path = Path(path)
    try:
        with _strict_truncation(), Image.open(path) as image:
            image.load()  # decoding every scan is the only way to notice a truncated JPEG
            return image.copy()
    except FileNotFoundError:
        raise DataError(f"{path}: image file not found") from None
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
        raise DataError(f"{path}: unreadable image ({' '.join(str(exc).split())})") from None


def to_rgb(image: Image.Image) -> Image.Image:
    """The image as 8-bit RGB (CMYK, grayscale, palette and alpha images are converted)."""
    return image if image.mode == "RGB" else image.convert("RGB")


def load_rgb(path: str | os.PathLike) -> Image.Image:
    """Load an image as 8-bit RGB, fully decoded; DataError naming the file if it is unreadable."""
    return to_rgb(decode(path))


def load_gray(path: str | os.PathLike) -> Image.Image:
    """Load an image as 8-bit grayscale (L), fully decoded; DataError naming the file if unreadable."""
    image = decode(path)
    return image if image.mode == "L" else image.convert("L")
