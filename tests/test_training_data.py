"""DetectionDataset: boxes follow the squash-resize and the flip; difficult objects stay; sizes are checked."""

from __future__ import annotations

import pytest
import torch
from PIL import Image

from human_saliency.errors import DataError
from human_saliency.experiment.training_data import DetectionDataset, collate_fn
from human_saliency.io.files import write_json
from human_saliency.prepared.splits import PreparedSplit


def _split(tmp_path, annotations, *, size=(80, 40), recorded=None) -> PreparedSplit:
    """One image of ``size`` (w, h), left half black, right half white, with the given annotations.

    Not conftest's ``tiny_prepared``: these tests need what a prepared split never holds, or that JPEG would
    blur: exact 0/1 pixels on either side of the edge (a lossless PNG), hand-placed boxes such as a sub-pixel
    sliver, and a recorded size unlike the file's.
    """
    (tmp_path / "raw").mkdir()
    image = Image.new("RGB", size, (255, 255, 255))
    image.paste((0, 0, 0), (0, 0, size[0] // 2, size[1]))
    image.save(tmp_path / "raw" / "a.png")
    width, height = recorded or size
    data = {
        "info": {"image_root": "raw"},
        "images": [{"id": 7, "voc_id": "2000_000007", "file_name": "a.png", "width": width, "height": height}],
        "annotations": [
            {"id": i, "image_id": 7, "iscrowd": 0, "area": 1, **ann} for i, ann in enumerate(annotations, start=1)
        ],
        "categories": [{"id": 1, "name": "disc"}, {"id": 2, "name": "square"}],
    }
    write_json(tmp_path / "train.json", data)
    return PreparedSplit.load(tmp_path / "train.json")


BOX = {"bbox": [10, 4, 20, 8], "category_id": 2, "difficult": 0}  # xyxy (10, 4, 30, 12) in the 80×40 image


def test_resize_squashes_image_and_scales_boxes(tmp_path):
    image, target = DetectionDataset(_split(tmp_path, [BOX]), size=40)[0]
    assert image.shape == (3, 40, 40) and image.dtype == torch.float32
    assert type(image) is torch.Tensor and type(target["boxes"]) is torch.Tensor
    assert image.min() == 0.0 and image.max() == 1.0
    # x scales by 40/80, y by 40/40.
    assert torch.allclose(target["boxes"], torch.tensor([[5.0, 4.0, 15.0, 12.0]]))
    assert target["boxes"].dtype == torch.float32
    assert target["labels"].tolist() == [2] and target["labels"].dtype == torch.int64
    assert target["image_id"] == 7


def test_hflip_mirrors_pixels_and_boxes(tmp_path):
    split = _split(tmp_path, [BOX])
    plain, _ = DetectionDataset(split, size=40)[0]
    flipped, target = DetectionDataset(split, size=40, hflip=1.0)[0]
    assert torch.equal(flipped, plain.flip(-1))
    assert flipped[:, :, 0].min() == 1.0  # the white half is now on the left
    assert torch.allclose(target["boxes"], torch.tensor([[40 - 15.0, 4.0, 40 - 5.0, 12.0]]))


def test_difficult_objects_are_kept_and_sub_pixel_boxes_dropped(tmp_path):
    difficult = {"bbox": [50, 20, 10, 10], "category_id": 1, "difficult": 1}
    sliver = {"bbox": [70, 0, 1, 30], "category_id": 1, "difficult": 0}  # half a pixel wide at size 40
    _, target = DetectionDataset(_split(tmp_path, [BOX, difficult, sliver]), size=40)[0]
    assert target["labels"].tolist() == [2, 1]
    assert torch.allclose(target["boxes"][1], torch.tensor([25.0, 20.0, 30.0, 30.0]))


def test_negative_image_has_empty_target(tmp_path):
    image, target = DetectionDataset(_split(tmp_path, []), size=32)[0]
    assert image.shape == (3, 32, 32)
    assert target["boxes"].shape == (0, 4) and target["labels"].shape == (0,)


def test_image_size_unlike_the_recorded_one_is_an_error(tmp_path):
    dataset = DetectionDataset(_split(tmp_path, [BOX], recorded=(80, 41)), size=40)
    with pytest.raises(DataError, match=r"a.png: image is 80×40, but .*train.json records 80×41"):
        dataset[0]


def test_collate_keeps_lists(tmp_path):
    dataset = DetectionDataset(_split(tmp_path, [BOX]), size=40)
    images, targets = collate_fn([dataset[0], dataset[0]])
    assert isinstance(images, list) and len(images) == 2 and images[0].shape == (3, 40, 40)
    assert [t["image_id"] for t in targets] == [7, 7]


def test_cached_images_give_the_same_samples_as_decoding_each_time(tmp_path, monkeypatch):
    import human_saliency.experiment.training_data as training_data

    split = _split(tmp_path, [BOX])
    cached = DetectionDataset(split, size=40, hflip=0.5)
    assert cached._cache is not None
    monkeypatch.setattr(training_data, "CACHE_BYTES", 0)
    uncached = DetectionDataset(split, size=40, hflip=0.5)
    assert uncached._cache is None
    for seed in range(4):  # both flip outcomes, and the cache hit after the first
        torch.manual_seed(seed)
        image_a, target_a = cached[0]
        torch.manual_seed(seed)
        image_b, target_b = uncached[0]
        assert torch.equal(image_a, image_b) and torch.equal(target_a["boxes"], target_b["boxes"])
        assert target_a["image_id"] == target_b["image_id"] == 7
