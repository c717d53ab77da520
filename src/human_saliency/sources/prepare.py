"""Raw layouts (VOC2012, human attention masks, MIT1003) → COCO train/test splits, merged masks, MIT index.

The study's split: test = every image with a human attention mask whose JPEG and annotation exist, listed in
``ImageSets/Main/trainval.txt`` or not (the masks also cover ``2007_*``, ``2012_*`` and late ``2011_*`` ids that only
the segmentation, layout or action tasks list); train = the Main/trainval images without a mask. An image outside
Main is marked ``"partial_annotations": true``: VOC's annotations are complete only for the images its detection task
lists (an action-task image's XML annotates only the acting people). It is scored like any other for saliency and
left out of detection AP (``human_saliency.scoring.detection_ap``); ``test.partial_annotations`` counts them.

A mask of another size than its image is resized to the image (``mask_size_mismatch="resize"``, counted in
``masks.resized``) or drops the image (``"drop"``, the ``mask_size_mismatch`` reason below).

Bad-input policy (``prepare.on_bad_input``). With ``error`` each case below stops the stage with a
DataError naming the file; with ``skip`` it is logged as a WARNING naming the file and counted
under ``skipped.<reason>`` in the summary (every reason is always present, 0 when none).

==========================  ==============================================  ===========================
reason                      case                                            with ``skip``
==========================  ==============================================  ===========================
missing_annotation          id in trainval.txt without an XML file          image skipped
missing_image               id in trainval.txt without a JPEG               image skipped
malformed_xml               malformed XML, missing/invalid required field   image skipped
unreadable_image            truncated or undecodable JPEG                   image skipped
xml_size_mismatch           XML <size> differs from the decoded image       image kept, image's size used
size_from_image             XML <size> missing, incomplete or 0             image kept, image's size used
unknown_class               object class not in ``classes``                 object dropped
objects_without_box         <object> without a <bndbox>                     object dropped
boxes_clipped               box reaches outside its image                   box clipped to the image
boxes_dropped               box under ``min_box_size`` after clipping       box dropped (never an error)
images_without_boxes        image whose every object was dropped            image kept as a negative
                                                                            (never an error)
unreadable_mask             truncated or undecodable mask file              image dropped from both splits
mask_size_mismatch          mask size differs from its image's (``drop``)   image dropped from both splits
mask_without_image          mask id without a JPEG or an XML file           mask file skipped
mask_outside_class_folder   mask file directly under the mask folder        mask file skipped
mit1003_missing_fixations   stimulus without _fixMap or _fixPts             stimulus skipped
mit1003_unreadable          undecodable stimulus, _fixMap or _fixPts        stimulus skipped
mit1003_size_mismatch       _fixMap or _fixPts size differs from stimulus   stimulus skipped
mit1003_no_fixations        _fixPts with no pixel above the threshold       stimulus skipped
==========================  ==============================================  ===========================

Not bad input: CMYK, grayscale or palette images are converted to RGB on load (counted in
``images_converted_to_rgb``); ``<difficult>``/``<truncated>`` may read 0, 1, true or false in any case;
16-bit mask PNGs are scaled to 8 bits. Always an error, whatever the policy: a missing anchor folder
(``VOCdevkit/VOC2012``, ``PASCAL_VOC_2012/human_attention_mask``, ``ALLSTIMULI``, ``ALLFIXATIONMAPS``)
or several of one, a missing trainval.txt, two VOC ids with the same numeric COCO id, an empty train
or test split or MIT1003 index, and more than ``prepare.max_dropped_fraction`` of the images (those listed,
and the masked ones outside Main) or of the masked ids dropped (the message names the counts and the commonest
reasons).

Test conditions (embedded data only): when ``ImageSets/Main/shifted.txt`` exists (the embedded
generator's planted-cue data; real VOC has no such file) the images it lists form a third split,
``test_shifted.json``: each entry carries ``twin_of``, the VOC id of the ``test.json`` image it copies
with its cues shifted. Annotations whose XML object has a ``<cue>`` carry ``cue``: {``category_id``
of the class it names, ``bbox`` [x, y, w, h] 0-based, clipped to the image}.
"""

from __future__ import annotations

import logging
import os
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm
from tqdm.contrib.logging import logging_redirect_tqdm

from human_saliency.errors import DataError
from human_saliency.io.files import write_json
from human_saliency.io.images import decode, load_gray
from human_saliency.sources.masks import MaskIndex, index_masks, load_mask, merge_masks, resize_mask, write_mask
from human_saliency.sources.mit1003 import FIXPTS_THRESHOLD, index_stimuli, load_fixpts
from human_saliency.sources.voc import (
    SHIFTED_IMAGE_SET,
    VocAnnotation,
    numeric_id,
    parse_annotation,
    read_image_set,
    read_twins,
)

logger = logging.getLogger(__name__)

REASONS = (
    "missing_annotation",
    "missing_image",
    "malformed_xml",
    "unreadable_image",
    "xml_size_mismatch",
    "size_from_image",
    "unknown_class",
    "objects_without_box",
    "boxes_clipped",
    "boxes_dropped",
    "images_without_boxes",
    "unreadable_mask",
    "mask_size_mismatch",
    "mask_without_image",
    "mask_outside_class_folder",
    "mit1003_missing_fixations",
    "mit1003_unreadable",
    "mit1003_size_mismatch",
    "mit1003_no_fixations",
)

VOC_ANCHOR = ("VOCdevkit", "VOC2012")
# The benchmark also has Image/ImageNet/human_attention_mask, hence the two-part anchor.
MASK_ANCHOR = ("PASCAL_VOC_2012", "human_attention_mask")
STIMULI_ANCHOR = ("ALLSTIMULI",)
FIXMAPS_ANCHOR = ("ALLFIXATIONMAPS",)
IGNORED_DIRS = {"__MACOSX"}  # resource-fork folders that macOS-made zips carry
# The reasons that leave a listed image out of both splits.
DROPS_IMAGE = (
    "missing_annotation",
    "missing_image",
    "malformed_xml",
    "unreadable_image",
    "unreadable_mask",
    "mask_size_mismatch",
)


class _BadInput:
    """Applies the policy: raise under ``error``; under ``skip`` log a warning and count the reason."""

    def __init__(self, policy: str) -> None:
        self.policy = policy
        self.counts: Counter[str] = Counter(dict.fromkeys(REASONS, 0))

    def __call__(self, reason: str, message: str) -> None:
        if self.policy == "error":
            raise DataError(message)
        self.note(reason, message)

    def note(self, reason: str, message: str) -> None:
        """Count and log a case that is never an error (a policy outcome, not a defect)."""
        logger.warning("%s [%s]", message, reason)
        self.counts[reason] += 1


@dataclass
class _Split:
    images: list[dict[str, Any]] = field(default_factory=list)
    annotations: list[dict[str, Any]] = field(default_factory=list)


def prepare_dataset(
    raw_dir: Path,
    out_dir: Path,
    *,
    classes: Sequence[str],
    max_dropped_fraction: float,
    on_bad_input: str = "skip",
    min_box_size: int = 1,
    mask_size_mismatch: str = "drop",
) -> dict[str, Any]:
    """Write train.json, test.json, masks/<voc id>.png and mit1003.json into ``out_dir``; return counts.

    DataError if more than ``max_dropped_fraction`` of the VOC images or of the masked ids are dropped, or if a
    split or the MIT1003 index comes out empty. ``mask_size_mismatch``: "resize" a mask of another size than its
    image to the image's size, or "drop" the image. ``out_dir`` may be the temporary sibling of the final folder
    (fsio.atomic_dir): paths in the JSON are relative to it, so they stay valid after the rename.
    """
    classes = list(classes)
    raw_dir, out_dir = Path(raw_dir), Path(out_dir)
    voc_root = find_anchor(raw_dir, "voc", VOC_ANCHOR)
    mask_root = find_anchor(raw_dir, "human_masks", MASK_ANCHOR)
    stimuli_dir = find_anchor(raw_dir, "mit1003", STIMULI_ANCHOR)
    fixmaps_dir = find_anchor(raw_dir, "mit1003", FIXMAPS_ANCHOR)
    image_root = Path(os.path.relpath(raw_dir.resolve(), out_dir.resolve())).as_posix()
    (out_dir / "masks").mkdir(parents=True, exist_ok=True)

    bad = _BadInput(on_bad_input)
    if mask_size_mismatch not in ("resize", "drop"):
        raise ValueError(f"mask_size_mismatch must be 'resize' or 'drop', got {mask_size_mismatch!r}")
    resize = mask_size_mismatch == "resize"
    voc = _VocPreparer(raw_dir, voc_root, out_dir, classes, min_box_size, bad, resize_masks=resize)
    with logging_redirect_tqdm():
        splits = voc.run(index_masks(mask_root))
        stimuli, mit_counts = _prepare_mit1003(raw_dir, stimuli_dir, fixmaps_dir, bad)
    _check_outcome(raw_dir, splits, voc.listed, voc.masked, stimuli, bad.counts, max_dropped_fraction)

    categories = [{"id": i + 1, "name": name, "supercategory": "object"} for i, name in enumerate(classes)]
    for name, split in splits.items():
        write_json(out_dir / f"{name}.json", _coco(split, name, categories, image_root))
    write_json(out_dir / "mit1003.json", {"info": {"image_root": image_root}, "stimuli": stimuli})

    summary = {
        name: {
            "images": len(split.images),
            "objects": len(split.annotations),
            "difficult_objects": sum(ann["difficult"] for ann in split.annotations),
            "partial_annotations": sum(image["partial_annotations"] for image in split.images),
        }
        for name, split in splits.items()
    }
    per_class = Counter(ann["category_id"] for split in splits.values() for ann in split.annotations)
    summary["objects_per_class"] = {name: per_class[i + 1] for i, name in enumerate(classes)}
    summary["masks"] = {
        "ids": voc.masked,
        "images": sum(len(split.images) for name, split in splits.items() if name != "train"),
        "outside_main": voc.counts["outside_main"],
        "merged": voc.counts["masks_merged"],
        "resized": voc.counts["masks_resized"],
    }
    summary["images_converted_to_rgb"] = voc.counts["converted"]
    summary["mit1003"] = mit_counts
    summary["skipped"] = dict(bad.counts)
    logger.info(
        "prepared %d train and %d test images, %d MIT1003 stimuli; skipped: %s",
        len(splits["train"].images),
        len(splits["test"].images),
        mit_counts["stimuli"],
        {reason: n for reason, n in bad.counts.items() if n} or "none",
    )
    return summary


def _check_outcome(
    raw_dir: Path,
    splits: dict[str, _Split],
    listed: int,
    masked: int,
    stimuli: list[dict[str, Any]],
    counts: Counter[str],
    max_dropped_fraction: float,
) -> None:
    """Stop rather than hand the next stages too little: mass drops of images or of masked ids, an empty split,
    no MIT1003 stimulus."""
    dropped = listed - sum(len(split.images) for split in splits.values())
    if dropped > max_dropped_fraction * listed:
        raise DataError(
            f"{raw_dir}: dropped {dropped} of {listed} images ({dropped / listed:.1%}), more than "
            f"prepare.max_dropped_fraction={max_dropped_fraction:g}: {_top_reasons(counts, DROPS_IMAGE)}"
        )
    lost = masked - sum(len(split.images) for name, split in splits.items() if name != "train")  # test conditions
    if masked and lost > max_dropped_fraction * masked:
        raise DataError(
            f"{raw_dir}: dropped {lost} of {masked} images with human masks ({lost / masked:.1%}), more than "
            f"prepare.max_dropped_fraction={max_dropped_fraction:g}: "
            f"{_top_reasons(counts, DROPS_IMAGE + ('mask_without_image',))}"
        )
    why = {
        "train": "every listed image was dropped or has a human mask",
        "test": "no listed image with a human mask was kept",
    }
    for name, split in splits.items():
        if not split.images:
            reasons = _top_reasons(counts, DROPS_IMAGE + ("mask_without_image", "mask_outside_class_folder"))
            raise DataError(f"{raw_dir}: the {name} split is empty ({why[name]}): {reasons}")
    if not stimuli:
        mit_reasons = tuple(reason for reason in REASONS if reason.startswith("mit1003_"))
        raise DataError(f"{raw_dir}: no MIT1003 stimulus is usable: {_top_reasons(counts, mit_reasons)}")


def _top_reasons(counts: Counter[str], reasons: Sequence[str], top: int = 3) -> str:
    """The commonest of ``reasons`` with their counts, e.g. ``malformed_xml 3, unreadable_image 1``."""
    found = sorted(((counts[r], r) for r in reasons if counts[r]), key=lambda item: -item[0])[:top]
    return ", ".join(f"{reason} {n}" for n, reason in found) or "no file was skipped"


def find_anchor(raw_dir: Path, subdir: str, anchor: tuple[str, ...]) -> Path:
    """The one folder under ``raw_dir/subdir`` whose path ends with ``anchor``; DataError otherwise."""
    base = Path(raw_dir) / subdir
    wanted = "/".join(anchor)
    if not base.is_dir():
        raise DataError(f"{raw_dir}: no {subdir}/ folder (expected {subdir}/**/{wanted})")
    found = []
    for dirpath, dirnames, _ in os.walk(base):
        for name in sorted(dirnames):
            candidate = Path(dirpath, name)
            if name in IGNORED_DIRS:
                dirnames.remove(name)
            elif candidate.parts[-len(anchor) :] == anchor:
                found.append(candidate)
                dirnames.remove(name)  # nothing to find inside a match, and VOC's are large
    if len(found) != 1:
        what = "no" if not found else f"{len(found)} ({', '.join(str(p) for p in sorted(found))})"
        raise DataError(f"{raw_dir}: found {what} {wanted} folders under {base}, expected exactly one")
    return found[0]


def _stems(folder: Path, suffix: str) -> set[str]:
    """Stems of the files in ``folder`` with ``suffix``, from one directory listing."""
    try:
        with os.scandir(folder) as entries:
            return {e.name[: -len(suffix)] for e in entries if e.name.endswith(suffix) and e.is_file()}
    except FileNotFoundError:
        raise DataError(f"{folder}: folder not found") from None


class _VocPreparer:
    """One pass over trainval: parse, decode, clip, pair masks by id, sort into the two splits."""

    def __init__(
        self,
        raw_dir: Path,
        voc_root: Path,
        out_dir: Path,
        classes: list[str],
        min_box_size: int,
        bad: _BadInput,
        *,
        resize_masks: bool,
    ) -> None:
        self.raw_dir, self.voc_root, self.out_dir = raw_dir, voc_root, out_dir
        self.category_ids = {name: i + 1 for i, name in enumerate(classes)}
        self.min_box_size = min_box_size
        self.bad = bad
        self.resize_masks = resize_masks
        self.twins: dict[str, str] = {}  # shifted test condition: id -> the test id it copies
        self.counts: Counter[str] = Counter(masks_merged=0, converted=0, outside_main=0, masks_resized=0)
        self.listed = 0  # the images that should reach a split: Main/trainval's, and the masked ones outside it
        self.masked = 0  # the ids with a mask in a class folder

    def run(self, mask_index: MaskIndex) -> dict[str, _Split]:
        main = read_image_set(self.voc_root / "ImageSets" / "Main" / "trainval.txt")
        shifted = self.voc_root / "ImageSets" / "Main" / f"{SHIFTED_IMAGE_SET}.txt"
        self.twins = read_twins(shifted) if shifted.is_file() else {}
        jpegs = _stems(self.voc_root / "JPEGImages", ".jpg")
        xmls = _stems(self.voc_root / "Annotations", ".xml")
        # Stray and orphan masks first: a cheap check, so the error policy fails before the long loop.
        for path in mask_index.outside_class_folders:
            self.bad("mask_outside_class_folder", f"{path}: mask file is not inside a class folder; skipped")
        masks = mask_index.by_id
        self.masked = len(masks)
        for voc_id, paths in masks.items():
            if voc_id not in jpegs or voc_id not in xmls:
                for path in paths:
                    what = "JPEG" if voc_id not in jpegs else "annotation"
                    self.bad("mask_without_image", f"{path}: mask has no image (no {what} of that id)")
        in_main = set(main)
        outside = sorted(voc_id for voc_id in masks if voc_id not in in_main and voc_id in jpegs and voc_id in xmls)
        self.counts["outside_main"] = len(outside)
        ids = sorted(main + outside)
        self.listed = len(ids)
        _check_numeric_ids(ids)

        splits = {"train": _Split(), "test": _Split()}
        if shifted.is_file():
            splits["test_shifted"] = _Split()
        for voc_id in tqdm(ids, desc="VOC trainval + masked", unit="img"):
            if voc_id not in xmls:
                message = f"{self._xml(voc_id)}: annotation listed in trainval.txt is missing"
                self.bad("missing_annotation", message)
            elif voc_id not in jpegs:
                self.bad("missing_image", f"{self._jpeg(voc_id)}: image listed in trainval.txt is missing")
            else:
                self._image(voc_id, masks.get(voc_id, []), splits, partial=voc_id not in in_main)
        return splits

    def _xml(self, voc_id: str) -> Path:
        return self.voc_root / "Annotations" / f"{voc_id}.xml"

    def _jpeg(self, voc_id: str) -> Path:
        return self.voc_root / "JPEGImages" / f"{voc_id}.jpg"

    def _image(self, voc_id: str, mask_paths: list[Path], splits: dict[str, _Split], *, partial: bool) -> None:
        xml_path, jpeg_path = self._xml(voc_id), self._jpeg(voc_id)
        try:
            annotation = parse_annotation(xml_path)
        except DataError as exc:
            self.bad("malformed_xml", str(exc))
            return
        try:
            image = decode(jpeg_path)
        except DataError as exc:
            self.bad("unreadable_image", str(exc))
            return
        width, height = image.size
        self.counts["converted"] += image.mode != "RGB"
        if annotation.width is None:
            message = f"{xml_path}: no usable <size>; using {jpeg_path.name}'s {width}x{height}"
            self.bad("size_from_image", message)
        elif (annotation.width, annotation.height) != (width, height):
            self.bad(
                "xml_size_mismatch",
                f"{xml_path}: declares {annotation.width}x{annotation.height} but {jpeg_path.name} is "
                f"{width}x{height}; using the image's size",
            )
        entry = {
            "id": numeric_id(voc_id),
            "voc_id": voc_id,
            "file_name": jpeg_path.relative_to(self.raw_dir).as_posix(),
            "width": width,
            "height": height,
            # Outside Main, VOC's XML may annotate only some objects: no detection AP on it (see the docstring).
            "partial_annotations": partial,
        }
        if voc_id in self.twins:
            if not mask_paths:
                raise DataError(f"{xml_path}: listed in {SHIFTED_IMAGE_SET}.txt (a test condition) without human masks")
            entry["twin_of"] = self.twins[voc_id]
        if mask_paths:
            mask = self._mask(mask_paths, jpeg_path, width, height)
            if mask is None:
                return
            entry["human_mask"] = f"masks/{voc_id}.png"
            write_mask(self.out_dir / entry["human_mask"], mask)
        split = splits["test_shifted" if voc_id in self.twins else "test" if mask_paths else "train"]
        split.images.append(entry)
        split.annotations.extend(self._boxes(annotation, xml_path, entry["id"], width, height))

    def _mask(self, paths: list[Path], jpeg_path: Path, width: int, height: int) -> np.ndarray | None:
        """The merged mask of one image, or None if a mask file is unreadable, or of another size under "drop"."""
        masks = []
        for path in paths:
            try:
                mask = load_mask(path)
            except DataError as exc:
                self.bad("unreadable_mask", f"{exc}; dropping {jpeg_path.name} from both splits")
                return None
            if mask.shape != (height, width):
                found = f"{path}: mask is {mask.shape[1]}x{mask.shape[0]} but {jpeg_path.name} is {width}x{height}"
                if not self.resize_masks:
                    self.bad("mask_size_mismatch", f"{found}; dropping the image from both splits")
                    return None
                logger.warning("%s; resized to the image (prepare.mask_size_mismatch: resize)", found)
                mask = resize_mask(mask, width, height)
                self.counts["masks_resized"] += 1
            masks.append(mask)
        self.counts["masks_merged"] += len(masks) > 1
        return merge_masks(masks)

    def _boxes(
        self, annotation: VocAnnotation, xml_path: Path, image_id: int, width: int, height: int
    ) -> list[dict[str, Any]]:
        """COCO annotations of one image: 0-based [x, y, w, h] clipped to the image (ids set later)."""
        kept = []
        for name in annotation.objects_without_box:
            self.bad("objects_without_box", f"{xml_path}: {name} object has no <bndbox>; dropped")
        for obj in annotation.objects:
            if obj.name not in self.category_ids:
                self.bad("unknown_class", f"{xml_path}: object class {obj.name!r} is not a prepared class")
                continue
            # VOC boxes are 1-based and inclusive: pixel columns xmin..xmax are xmin-1 .. xmax (exclusive).
            box = (obj.xmin - 1, obj.ymin - 1, obj.xmax, obj.ymax)
            x0, y0 = max(box[0], 0), max(box[1], 0)
            x1, y1 = min(box[2], width), min(box[3], height)
            if (x0, y0, x1, y1) != box:
                self.bad(
                    "boxes_clipped",
                    f"{xml_path}: {obj.name} box ({obj.xmin}, {obj.ymin}, {obj.xmax}, {obj.ymax}) "
                    f"reaches outside the {width}x{height} image; clipped",
                )
            w, h = x1 - x0, y1 - y0
            if w < self.min_box_size or h < self.min_box_size:
                self.bad.note(
                    "boxes_dropped",
                    f"{xml_path}: {obj.name} box is {max(w, 0)}x{max(h, 0)} after clipping, "
                    f"under min_box_size={self.min_box_size}; dropped",
                )
                continue
            ann = {
                "image_id": image_id,
                "category_id": self.category_ids[obj.name],
                "bbox": [x0, y0, w, h],
                "area": w * h,
                "iscrowd": 0,
                "difficult": int(obj.difficult),
                "truncated": int(obj.truncated),
            }
            if obj.cue is not None:
                if obj.cue.name in self.category_ids:
                    cue = (obj.cue.xmin - 1, obj.cue.ymin - 1, obj.cue.xmax, obj.cue.ymax)
                    cx0, cy0 = max(cue[0], 0), max(cue[1], 0)
                    cx1, cy1 = min(cue[2], width), min(cue[3], height)
                    bbox = [cx0, cy0, max(cx1 - cx0, 0), max(cy1 - cy0, 0)]
                    ann["cue"] = {"category_id": self.category_ids[obj.cue.name], "bbox": bbox}
                else:
                    self.bad("unknown_class", f"{xml_path}: cue class {obj.cue.name!r} is not a prepared class")
            kept.append(ann)
        if (annotation.objects or annotation.objects_without_box) and not kept:
            self.bad.note("images_without_boxes", f"{xml_path}: no box left; kept as a negative image")
        return kept


def _check_numeric_ids(ids: list[str]) -> None:
    """Two VOC ids with the same digits would collide as COCO ids: a layout error, never skipped."""
    seen: dict[int, str] = {}
    for voc_id in ids:
        number = numeric_id(voc_id)
        if number in seen:
            raise DataError(f"image ids {seen[number]!r} and {voc_id!r} map to the same COCO id {number}")
        seen[number] = voc_id


def _coco(split: _Split, name: str, categories: list[dict], image_root: str) -> dict[str, Any]:
    """A split as a COCO dict, images and annotations sorted by image id, annotation ids from 1."""
    images = sorted(split.images, key=lambda image: image["id"])
    # sorted() is stable, so objects keep their XML order within an image.
    annotations = sorted(split.annotations, key=lambda ann: ann["image_id"])
    for ann_id, ann in enumerate(annotations, start=1):
        ann["id"] = ann_id
    return {
        "info": {"description": f"PASCAL VOC layout, {name} split", "split": name, "image_root": image_root},
        "licenses": [],
        "categories": categories,
        "images": images,
        "annotations": annotations,
    }


def _prepare_mit1003(
    raw_dir: Path, stimuli_dir: Path, fixmaps_dir: Path, bad: _BadInput
) -> tuple[list[dict[str, Any]], dict[str, int]]:
    """Index MIT1003: each readable stimulus whose _fixMap and _fixPts match its size."""
    entries, converted, fixations = [], 0, 0
    for stimulus in tqdm(index_stimuli(stimuli_dir, fixmaps_dir), desc="MIT1003", unit="img"):
        if stimulus.fixmap is None or stimulus.fixpts is None:
            message = f"{stimulus.image}: no _fixMap.jpg or _fixPts.jpg in {fixmaps_dir}"
            bad("mit1003_missing_fixations", message)
            continue
        try:
            image = decode(stimulus.image)
            fixmap = load_gray(stimulus.fixmap)
            points = load_fixpts(stimulus.fixpts)
        except DataError as exc:
            bad("mit1003_unreadable", str(exc))
            continue
        width, height = image.size
        if fixmap.size != (width, height) or points.shape != (height, width):
            bad(
                "mit1003_size_mismatch",
                f"{stimulus.fixmap}: fixation map {fixmap.size[0]}x{fixmap.size[1]} or points "
                f"{points.shape[1]}x{points.shape[0]} differ from the {width}x{height} stimulus",
            )
            continue
        n_fixations = int(points.sum())
        if n_fixations == 0:
            bad("mit1003_no_fixations", f"{stimulus.fixpts}: no pixel above {FIXPTS_THRESHOLD}")
            continue
        converted += image.mode != "RGB"
        fixations += n_fixations
        entries.append(
            {
                "id": stimulus.stem,
                "file_name": stimulus.image.relative_to(raw_dir).as_posix(),
                "fixmap": stimulus.fixmap.relative_to(raw_dir).as_posix(),
                "fixpts": stimulus.fixpts.relative_to(raw_dir).as_posix(),
                "width": width,
                "height": height,
                "n_fixations": n_fixations,
            }
        )
    counts = {"stimuli": len(entries), "fixations": fixations, "converted_to_rgb": converted}
    return entries, counts
