"""The one image loader: full decode, truncation detected, odd JPEG modes converted to RGB."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image, ImageFile

from human_saliency.errors import DataError
from human_saliency.io.images import decode, load_gray, load_rgb


def _noisy_jpeg(path, size=(50, 40)):
    pixels = np.random.default_rng(0).integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
    Image.fromarray(pixels).save(path, quality=90)
    return path


def test_load_rgb_reads_an_rgb_jpeg(tmp_path):
    path = tmp_path / "a.jpg"
    Image.new("RGB", (30, 20), (200, 10, 10)).save(path, quality=95)
    image = load_rgb(path)
    assert image.mode == "RGB" and image.size == (30, 20)
    r, g, b = image.getpixel((15, 10))
    assert r > 180 and g < 40 and b < 40


def test_truncated_jpeg_is_an_error_naming_the_file(tmp_path):
    path = _noisy_jpeg(tmp_path / "cut.jpg")
    path.write_bytes(path.read_bytes()[: int(path.stat().st_size * 0.7)])
    with pytest.raises(DataError, match=r"cut\.jpg: unreadable image .*truncated"):
        load_rgb(path)


def test_truncation_detected_even_if_pil_was_told_to_tolerate_it(tmp_path, monkeypatch):
    monkeypatch.setattr(ImageFile, "LOAD_TRUNCATED_IMAGES", True)
    path = _noisy_jpeg(tmp_path / "cut.jpg")
    path.write_bytes(path.read_bytes()[:-40])
    with pytest.raises(DataError, match="truncated"):
        load_rgb(path)
    assert ImageFile.LOAD_TRUNCATED_IMAGES is True  # restored for whoever set it


def test_cmyk_jpeg_is_converted_to_rgb(tmp_path):
    path = tmp_path / "cmyk.jpg"
    Image.new("CMYK", (16, 12), (0, 255, 255, 0)).save(path, quality=95)  # pure red in CMYK
    assert decode(path).mode == "CMYK"
    image = load_rgb(path)
    assert image.mode == "RGB" and image.size == (16, 12)
    r, g, b = image.getpixel((8, 6))
    assert r > 230 and g < 25 and b < 25


def test_grayscale_jpeg_is_converted_to_rgb(tmp_path):
    path = tmp_path / "gray.jpg"
    Image.new("L", (16, 12), 90).save(path, quality=95)
    image = load_rgb(path)
    assert image.mode == "RGB"
    r, g, b = image.getpixel((3, 3))
    assert r == g == b and abs(r - 90) <= 2


def test_palette_image_is_converted_to_rgb(tmp_path):
    path = tmp_path / "pal.png"
    image = Image.new("P", (8, 8), 1)
    image.putpalette([0, 0, 0, 10, 200, 30] + [0] * 762)
    image.save(path)
    assert load_rgb(path).getpixel((2, 2)) == (10, 200, 30)


def test_exif_orientation_is_not_applied(tmp_path):
    # VOC boxes refer to the stored pixel grid: rotating by EXIF would misplace every box.
    path = tmp_path / "rot.jpg"
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90° CW to display"
    Image.new("RGB", (40, 10)).save(path, exif=exif)
    assert load_rgb(path).size == (40, 10)


def test_load_gray_returns_l(tmp_path):
    path = tmp_path / "rgb.jpg"
    Image.new("RGB", (10, 10), (255, 255, 255)).save(path)
    image = load_gray(path)
    assert image.mode == "L" and image.getpixel((5, 5)) >= 250


@pytest.mark.parametrize(
    ("content", "message"),
    [(None, "image file not found"), (b"", "unreadable image"), (b"not an image at all", "unreadable image")],
)
def test_missing_or_garbage_files_are_data_errors(tmp_path, content, message):
    path = tmp_path / "x.jpg"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(DataError, match=rf"x\.jpg: {message}"):
        load_rgb(path)
