"""A prepared split as (image, target) pairs for training torchvision detectors at the working resolution."""

from __future__ import annotations

from typing import Any

import torch
from torchvision import tv_tensors
from torchvision.transforms import v2

from human_saliency.errors import DataError
from human_saliency.io.images import load_rgb
from human_saliency.prepared.splits import PreparedSplit

Target = dict[str, Any]
# Images ready for the model (resized, as float tensors, their boxes sanitised) are kept in memory while they fit
# in this many bytes (the embedded training set: about 60 MB at 160 px): decoding and converting dominated
# small models' steps. The paper's does not fit: prepared per step.
CACHE_BYTES = 512 * 2**20


class DetectionDataset(torch.utils.data.Dataset):
    """Yields (float image 3×size×size in [0, 1], target) for each image of ``split``, in id order.

    The target holds ``boxes`` (N×4 float32, xyxy in size×size pixels), ``labels`` (N int64 category
    ids 1..K; torchvision's index 0 is background) and ``image_id`` (int). Images are squashed to a
    square, as the study does, with PIL's bilinear resize, i.e. the same pixels the saliency and
    evaluation stages see (``datasets.resize_rgb``). With probability ``hflip`` an image and its
    boxes are mirrored. Boxes under one pixel wide or high after the resize are dropped.

    "Difficult" objects are kept as ordinary targets: VOC marks them so that *evaluation* ignores
    them, and detectron2's VOC loader trains on them too (py-faster-rcnn dropped them).
    Images without objects are kept as negatives. Prepared samples (everything before the flip, which
    is the only random step) are cached in memory when the whole split fits in ``CACHE_BYTES``.
    """

    def __init__(self, split: PreparedSplit, size: int, hflip: float = 0.0) -> None:
        self.split = split
        self.size = size
        self.prepare = v2.Compose(
            [v2.Resize((size, size)), v2.ToImage(), v2.ToDtype(torch.float32, scale=True), v2.SanitizeBoundingBoxes()]
        )
        self.flip = v2.RandomHorizontalFlip(p=hflip) if hflip > 0 else None
        fits = len(self) * 3 * size * size * torch.float32.itemsize <= CACHE_BYTES
        self._cache: dict[int, tuple[Any, Target]] | None = {} if fits else None

    def __len__(self) -> int:
        return len(self.split.images)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, Target]:
        if self._cache is None:
            prepared = self._prepared(index)
        elif (prepared := self._cache.get(index)) is None:
            prepared = self._cache[index] = self._prepared(index)
        # A flip keeps every box's size and keeps it inside the image: sanitising before it drops the same boxes.
        image, target = self.flip(*prepared) if self.flip is not None else prepared
        # Plain tensors: the tv_tensor subclasses add dispatch overhead to every op inside the model.
        return image.as_subclass(torch.Tensor), {
            "boxes": target["boxes"].as_subclass(torch.Tensor),
            "labels": target["labels"],
            "image_id": target["image_id"],
        }

    def _prepared(self, index: int) -> tuple[Any, Target]:
        """One image (float tensor, size×size) and its sanitised target at that size, before the flip."""
        entry = self.split.images[index]
        path = self.split.image_path(entry)
        image = load_rgb(path)
        if image.size != (entry["width"], entry["height"]):
            # The boxes refer to the recorded size: a different file would put them in the wrong place.
            raise DataError(
                f"{path}: image is {image.size[0]}×{image.size[1]}, "
                f"but {self.split.path} records {entry['width']}×{entry['height']}"
            )
        anns = self.split.annotations(entry["id"])
        xywh = torch.tensor([ann["bbox"] for ann in anns], dtype=torch.float32).reshape(-1, 4)
        boxes = tv_tensors.BoundingBoxes(
            xywh, format=tv_tensors.BoundingBoxFormat.XYWH, canvas_size=(image.height, image.width)
        )
        target = {
            "boxes": v2.functional.convert_bounding_box_format(boxes, new_format=tv_tensors.BoundingBoxFormat.XYXY),
            "labels": torch.tensor([ann["category_id"] for ann in anns], dtype=torch.int64),
        }
        return self.prepare(image, {**target, "image_id": int(entry["id"])})


def collate_fn(batch: list[tuple[torch.Tensor, Target]]) -> tuple[list[torch.Tensor], list[Target]]:
    """A batch as (list of images, list of targets): the input torchvision detectors take in training."""
    images, targets = zip(*batch, strict=True)
    return list(images), list(targets)
