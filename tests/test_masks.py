"""Human attention masks: indexing by id, pixel-wise max merge, lossless write, [0, 1] read; cue regions."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from human_saliency.errors import DataError
from human_saliency.io.files import write_json
from human_saliency.prepared.masks import cue_regions, read_mask
from human_saliency.prepared.splits import PreparedSplit
from human_saliency.sources.masks import index_masks, load_mask, merge_masks, write_mask


def test_index_masks_groups_ids_across_class_folders(tmp_path):
    for cls, voc_id in [("dog", "2008_000002"), ("cat", "2008_000002"), ("cat", "2008_000001")]:
        (tmp_path / cls).mkdir(exist_ok=True)
        Image.new("L", (4, 4)).save(tmp_path / cls / f"{voc_id}.jpg")
    (tmp_path / "cat" / "notes.txt").write_text("not a mask")
    (tmp_path / "cat" / "._2008_000001.jpg").write_bytes(b"macOS resource fork")
    (tmp_path / "stray.jpg").write_bytes(b"")  # not inside a class folder
    (tmp_path / "._stray.jpg").write_bytes(b"")
    index = index_masks(tmp_path)
    assert list(index.by_id) == ["2008_000001", "2008_000002"]
    assert index.by_id["2008_000002"] == [tmp_path / cls / "2008_000002.jpg" for cls in ("cat", "dog")]
    assert index.outside_class_folders == [tmp_path / "stray.jpg"]  # reported, not silently ignored


def test_merge_masks_is_the_pixelwise_max():
    a = np.array([[0, 10, 200], [255, 0, 7]], dtype=np.uint8)
    b = np.array([[5, 3, 100], [0, 0, 9]], dtype=np.uint8)
    merged = merge_masks([a, b])
    np.testing.assert_array_equal(merged, [[5, 10, 200], [255, 0, 9]])
    assert merged.dtype == np.uint8
    np.testing.assert_array_equal(merge_masks([a]), a)


def test_merge_masks_refuses_different_shapes():
    with pytest.raises(ValueError, match="share one shape"):
        merge_masks([np.zeros((2, 3), np.uint8), np.zeros((3, 2), np.uint8)])


def test_write_then_read_is_lossless(tmp_path):
    mask = np.arange(0, 240, dtype=np.uint8).reshape(12, 20)
    write_mask(tmp_path / "m.png", mask)
    np.testing.assert_array_equal(load_mask(tmp_path / "m.png"), mask)


def test_read_mask_is_unit_range_not_0_255(tmp_path):
    # Regression guard for the study's bug of scoring MAE against the 0–255 mask.
    write_mask(tmp_path / "m.png", np.array([[0, 51, 255]], dtype=np.uint8))
    unit = read_mask(tmp_path / "m.png")
    assert unit.dtype == np.float32
    np.testing.assert_allclose(unit, [[0.0, 0.2, 1.0]])


def test_16_bit_png_masks_are_scaled_not_clipped(tmp_path):
    # 197/65535 is a 0.3 % weight: clipping to 8 bits would read it as 197/255, 77 %.
    pixels = np.array([[0, 197, 32768, 65535]], dtype=np.uint16)
    Image.fromarray(pixels).save(tmp_path / "m.png")
    assert Image.open(tmp_path / "m.png").mode.startswith("I")
    np.testing.assert_array_equal(load_mask(tmp_path / "m.png"), [[0, 1, 128, 255]])


def test_load_mask_reads_an_rgb_jpeg_as_gray(tmp_path):
    Image.new("RGB", (6, 4), (255, 255, 255)).save(tmp_path / "m.jpg")
    mask = load_mask(tmp_path / "m.jpg")
    assert mask.shape == (4, 6) and mask.min() >= 250


def test_unreadable_mask_is_a_data_error(tmp_path):
    (tmp_path / "m.jpg").write_bytes(b"\xff\xd8\xff garbage")
    with pytest.raises(DataError, match=r"m\.jpg"):
        read_mask(tmp_path / "m.jpg")


def test_cue_regions_are_the_cue_boxes_at_the_working_size(tmp_path):
    images = [
        {"id": 1, "voc_id": "2100_000001", "file_name": "a.jpg", "width": 40, "height": 20},
        {"id": 2, "voc_id": "2100_000002", "file_name": "b.jpg", "width": 8, "height": 8},
    ]
    annotations = [
        {
            "id": 1,
            "image_id": 1,
            "category_id": 1,
            "bbox": [0, 0, 30, 20],
            "cue": {"category_id": 2, "bbox": [10, 0, 8, 4]},
        },
        {"id": 2, "image_id": 1, "category_id": 2, "bbox": [30, 10, 10, 10]},  # no cue
        {"id": 3, "image_id": 2, "category_id": 1, "bbox": [0, 0, 8, 8]},
    ]
    write_json(tmp_path / "test.json", {"info": {"image_root": "."}, "images": images, "annotations": annotations,
                                        "categories": [{"id": 1, "name": "a"}, {"id": 2, "name": "b"}]})  # fmt: skip
    regions = cue_regions(PreparedSplit.load(tmp_path / "test.json"), 10)
    expected = np.zeros((10, 10), bool)
    expected[0:2, 2:5] = True  # x 10..18 of 40 -> 2.5..4.5 of 10: columns 2 (half covered), 3, 4 (half); y 0..4 of 20
    np.testing.assert_array_equal(regions["2100_000001"], expected)
    assert not regions["2100_000002"].any()  # an image without cues: an empty region
