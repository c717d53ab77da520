"""PASCAL VOC annotation parsing: one XML file → one VocAnnotation, plus the image-set lists."""

from __future__ import annotations

import os
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

from human_saliency.errors import DataError

# VOC's 20 classes in the devkit's order; category ids are 1 + the index here.
VOC_CLASSES: tuple[str, ...] = (
    "aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat", "chair", "cow",
    "diningtable", "dog", "horse", "motorbike", "person", "pottedplant", "sheep", "sofa",
    "train", "tvmonitor",
)  # fmt: skip


# An extra ImageSets/Main list that real VOC never has: the embedded generator's shifted test condition,
# one "<id> <id of the in-distribution image it copies>" per line.
SHIFTED_IMAGE_SET = "shifted"


@dataclass(frozen=True)
class VocCue:
    """A planted cue (embedded data only): the class it names and its box, 1-based inclusive pixels."""

    name: str
    xmin: int
    ymin: int
    xmax: int
    ymax: int


@dataclass(frozen=True)
class VocObject:
    """One annotated object; the box is VOC's 1-based inclusive pixel coordinates."""

    name: str
    xmin: int
    ymin: int
    xmax: int
    ymax: int
    difficult: bool
    truncated: bool
    cue: VocCue | None = None


@dataclass(frozen=True)
class VocAnnotation:
    """One annotation file: the image size it declares (None if missing or 0), its objects in file order,
    and the names of objects it lists without a ``<bndbox>``."""

    width: int | None
    height: int | None
    objects: tuple[VocObject, ...]
    objects_without_box: tuple[str, ...] = ()


def parse_annotation(path: str | os.PathLike) -> VocAnnotation:
    """Parse a VOC XML file; DataError naming the file if it is malformed or lacks a required field.

    Recoverable gaps are reported, not raised: a missing or zero ``<size>`` (the image has the real one)
    and an object without a ``<bndbox>`` (the other objects stand).
    """
    path = Path(path)
    try:
        root = ET.parse(path).getroot()
    except ET.ParseError as exc:
        raise DataError(f"{path}: malformed XML ({exc})") from None
    except OSError as exc:
        raise DataError(f"{path}: unreadable annotation ({exc.strerror or exc})") from None
    try:
        width, height = _size(root)
        nodes = list(root.iterfind("object"))
        objects = tuple(_parse_object(node) for node in nodes if node.find("bndbox") is not None)
        without_box = tuple(_text(node, "name") for node in nodes if node.find("bndbox") is None)
    except ValueError as exc:
        raise DataError(f"{path}: {exc}") from None
    return VocAnnotation(width=width, height=height, objects=objects, objects_without_box=without_box)


def _size(root: ET.Element) -> tuple[int, int] | tuple[None, None]:
    """The declared (width, height), or (None, None) when ``<size>`` or a side is missing, empty or 0."""
    size = root.find("size")
    if size is None or any(not (size.findtext(key) or "").strip() for key in ("width", "height")):
        return None, None
    width, height = _int(size, "width"), _int(size, "height")
    if width < 0 or height < 0:
        raise ValueError(f"size must not be negative, got {width}x{height}")
    return (width, height) if width and height else (None, None)


def _parse_object(node: ET.Element) -> VocObject:
    name = _text(node, "name")
    xmin, ymin, xmax, ymax = _box(node, name)
    cue = None
    if (cue_node := node.find("cue")) is not None:  # the embedded generator's planted cue; real VOC has none
        cue = VocCue(_text(cue_node, "name"), *_box(cue_node, f"cue of {name}"))
    return VocObject(
        name=name,
        xmin=xmin,
        ymin=ymin,
        xmax=xmax,
        ymax=ymax,
        difficult=_flag(node, "difficult"),
        truncated=_flag(node, "truncated"),
        cue=cue,
    )


def _box(node: ET.Element, what: str) -> tuple[int, int, int, int]:
    box = _child(node, "bndbox")
    xmin, ymin, xmax, ymax = (_int(box, key) for key in ("xmin", "ymin", "xmax", "ymax"))
    if xmax < xmin or ymax < ymin:
        raise ValueError(f"object {what!r} has an inverted box ({xmin}, {ymin}, {xmax}, {ymax})")
    return xmin, ymin, xmax, ymax


def _child(node: ET.Element, key: str) -> ET.Element:
    child = node.find(key)
    if child is None:
        raise ValueError(f"missing <{key}> in <{node.tag}>")
    return child


def _text(node: ET.Element, key: str) -> str:
    text = (_child(node, key).text or "").strip()
    if not text:
        raise ValueError(f"empty <{key}> in <{node.tag}>")
    return text


def _int(node: ET.Element, key: str) -> int:
    text = _text(node, key)
    try:
        # A few real VOC2012 files store coordinates like "273.5"; VOC's grid is whole pixels.
        return round(float(text))
    except (ValueError, OverflowError):
        raise ValueError(f"<{key}> is not a number: {text!r}") from None


_FLAGS = {"0": False, "1": True, "false": False, "true": True}


def _flag(node: ET.Element, key: str) -> bool:
    """Optional 0/1 flag (true/false in any case too, as some tools write); absent means 0, as in the devkit."""
    text = (node.findtext(key) or "").strip()
    if not text:
        return False
    if text.lower() not in _FLAGS:
        raise ValueError(f"<{key}> must be 0, 1, true or false, got {text!r}")
    return _FLAGS[text.lower()]


def read_image_set(path: str | os.PathLike) -> list[str]:
    """The ids listed in an ImageSets/Main file, deduplicated and sorted; DataError if unreadable."""
    path = Path(path)
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        raise DataError(f"{path}: image-set file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"{path}: unreadable image-set file ({exc})") from None
    # Per-class lists carry a second column (the ±1 label); the id is always the first token.
    return sorted({line.split()[0] for line in lines if line.strip()})


def read_twins(path: str | os.PathLike) -> dict[str, str]:
    """A two-column image set (``SHIFTED_IMAGE_SET``) as {id: the id it copies}; DataError if malformed."""
    path = Path(path)
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"{path}: unreadable image-set file ({exc})") from None
    twins: dict[str, str] = {}
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        fields = line.split()
        if len(fields) != 2 or fields[0] in twins:
            raise DataError(f"{path}:{number}: expected '<id> <id it copies>' once per id, got {line!r}")
        twins[fields[0]] = fields[1]
    return twins


def numeric_id(voc_id: str) -> int:
    """COCO image id from a VOC id: its digits as one integer (``2008_000123`` → 2008000123)."""
    digits = "".join(ch for ch in voc_id if ch in "0123456789")
    if not digits:
        raise DataError(f"image id {voc_id!r} has no digits to form a numeric COCO id")
    return int(digits)
