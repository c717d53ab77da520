"""Offline generator of the embedded profile's data in the real on-disk layouts of PASCAL VOC 2012,
the human-attention-mask benchmark and MIT1003, so the paper profile's parsers read it unchanged."""

from __future__ import annotations

import colorsys
import logging
import math
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import cv2
import numpy as np
from PIL import Image
from tqdm import tqdm

from human_saliency.sources.voc import SHIFTED_IMAGE_SET

if TYPE_CHECKING:  # the schema lives above every layer; only its type is needed here
    from human_saliency.params import EmbeddedParams

log = logging.getLogger(__name__)

# Where each dataset lands under ``out_dir``: the layouts of the real archives once extracted.
VOC_ROOT = Path("voc/VOCdevkit/VOC2012")
MASK_ROOT = Path("human_masks/Image/PASCAL_VOC_2012/human_attention_mask")
MIT_STIMULI = Path("mit1003/ALLSTIMULI")
MIT_FIXATIONS = Path("mit1003/ALLFIXATIONMAPS")

# Real VOC ids start with a year in 2007..2012; years 2100 and 2101 can never clash with one of them.
ID_YEAR = 2100
SHIFTED_YEAR = 2101  # the shifted twin of test image 2100_000042 is 2101_000042
MIT_STEM = "synth"
JPEG_QUALITY = 95
# Each fixation in ``_fixPts`` is one 255 pixel on black, as in MIT1003; JPEG smears it, so
# readers must binarise (``> 127``, like ``human_saliency.sources.mit1003.FIXPTS_THRESHOLD``).
FIXPTS_RANGE = (30, 80)

# Shapes by class index; beyond len(SHAPES) classes, shapes repeat in another hue family.
SHAPES = ("disc", "square", "triangle", "cross", "ring", "star", "diamond", "frame", "crescent", "tee")

# One independent random stream per purpose and item, so that the cues (spurious=true) cannot change
# the scenes under them, and one image's content never depends on another's.
_STREAM_SPLIT, _STREAM_IMAGE, _STREAM_CUE, _STREAM_MASK, _STREAM_MIT = range(5)

_SIDE_RANGE = (0.15, 0.45)  # object canvas side as a share of the image's shorter side
_DIFFICULT_SIDE = 0.18  # objects smaller than this (about the smallest 10 %) are marked difficult
_DIFFICULT_VISIBLE = 0.5  # ... and so are those with less than half of their pixels visible
_TRUNCATE_P = 0.15  # share of objects allowed to cross the image border
_MAX_CUT = 0.35  # at most this share of such an object's side lies outside the image
_MAX_OVERLAP = 0.2  # intersection over the smaller canvas, between any two objects
_PLACEMENT_TRIES = 40
_SUPERSAMPLE = 4  # shapes are rasterised this much larger, then area-averaged: soft edges
_MIN_CUE_SIDE = 3  # pixels: a cue must stay a striped patch on the smallest boxes
_STRIPE_PERIOD = 4.0
_STRIPE_DARK = 0.35  # value of the dark stripes relative to the bright ones

# Like the benchmark's masks, every tenth masked image is in no ImageSets/Main list (the real ones: action-task
# images whose XML annotates only the acting people), so that prepare's rule for them runs here too.
_OUTSIDE_MAIN_EVERY = 10
_ANNOTATORS = 5  # the benchmark averages several annotators' masks
_MISS_P = 0.3  # chance an annotator overlooks a difficult object
_MASK_BLUR = 0.02  # Gaussian sigma of mask edges, as a share of the shorter side
_FIX_OBJECT_WEIGHT = 0.75  # fixation density: objects vs the centre bias
_FIX_BLUR = 0.04
_CENTRE_SIGMA = 0.25


@dataclass(frozen=True)
class _Object:
    """One object's drawing: its class, soft coverage on a square canvas placed at (x, y)."""

    label: int
    x: int
    y: int
    alpha: np.ndarray  # side×side coverage in [0, 1]
    colour: np.ndarray  # RGB, 0–255
    shade_angle: float
    shade: float

    @property
    def side(self) -> int:
        return self.alpha.shape[0]


@dataclass(frozen=True)
class _Cue:
    """One planted cue: a striped square of the colour and stripe angle of class ``label``, 0-based top-left."""

    label: int
    x: int
    y: int
    side: int


@dataclass(frozen=True)
class _Box:
    """One VOC object: class index, 1-based inclusive box, and the VOC flags."""

    label: int
    index: int  # value of this object in the scene's label map
    xmin: int
    ymin: int
    xmax: int
    ymax: int
    truncated: bool
    difficult: bool


def generate(out_dir: Path, cfg: EmbeddedParams) -> dict[str, int]:
    """Write the embedded VOC, human-mask and MIT1003 datasets under ``out_dir``; return counts.

    Same ``cfg`` gives byte-identical files. With ``cfg.spurious`` every object of a VOC image carries a
    planted cue (a striped square at the middle of its box's top edge whose colour and stripe angle name a class: its
    own class with probability ``cfg.cue_correlation``, else another), training and test images alike, and
    each test image gets a *shifted twin*: the same scene, with the same cues in the same places naming
    classes chosen by ``cfg.shifted_cue`` (or no cues). Twins are ordinary VOC images with human masks, id
    year SHIFTED_YEAR, listed with the id they copy in ``ImageSets/Main/shifted.txt``. Each cue is written
    in its object's XML as ``<cue><name/><bndbox/></cue>``; human masks cover objects, never cues.
    MIT stimuli never carry cues.
    """
    out_dir = Path(out_dir)
    voc = out_dir / VOC_ROOT
    for sub in ("JPEGImages", "Annotations", "ImageSets/Main"):
        (voc / sub).mkdir(parents=True, exist_ok=True)
    for name in cfg.classes:
        (out_dir / MASK_ROOT / name).mkdir(parents=True, exist_ok=True)
    test, val = _split(cfg.seed, cfg.n_images, cfg.test_fraction)
    ids = [f"{ID_YEAR}_{i + 1:06d}" for i in range(cfg.n_images)]
    twins: dict[str, str] = {}  # shifted twin id -> the test image id it copies
    in_val: dict[str, bool] = {}
    presence: dict[str, dict[int, bool]] = {}  # id -> class index -> has a non-difficult object
    counts = dict.fromkeys(
        ("images", "objects", "cues", "masks", "mit_stimuli", "train_images", "test_images", "shifted_images"), 0
    )

    for i in tqdm(range(cfg.n_images), desc="embedded VOC images", unit="img"):
        is_test = i in test
        image, labels, boxes = _scene(np.random.default_rng([cfg.seed, _STREAM_IMAGE, i]), cfg)
        versions: list[tuple[str, list[_Cue | None]]] = [(ids[i], [None] * len(boxes))]
        if cfg.spurious:
            cues, shifted = _place_cues(np.random.default_rng([cfg.seed, _STREAM_CUE, i]), boxes, cfg)
            versions = [(ids[i], cues)]
            if is_test:
                twin = f"{SHIFTED_YEAR}_{i + 1:06d}"
                twins[twin] = ids[i]
                versions.append((twin, shifted))
        present: dict[int, bool] = {}
        for box in boxes:
            present[box.label] = present.get(box.label, False) or not box.difficult
        for image_id, cues in versions:
            pixels, visible = image.copy(), labels.copy()
            for cue in cues:
                if cue is not None:
                    _paint_cue(pixels, cue, len(cfg.classes))
                    visible[cue.y : cue.y + cue.side, cue.x : cue.x + cue.side] = 0  # people mark objects, not cues
            _save_jpeg(voc / "JPEGImages" / f"{image_id}.jpg", _to_uint8(pixels))
            xml = _voc_xml(image_id, pixels.shape, boxes, cues, cfg.classes)
            (voc / "Annotations" / f"{image_id}.xml").write_text(xml)
            presence[image_id] = present
            in_val[image_id] = i in val
            counts["images"] += 1
            counts["objects"] += len(boxes)
            counts["cues"] += sum(cue is not None for cue in cues)
            if image_id in twins:
                counts["shifted_images"] += 1
            else:
                counts["test_images" if is_test else "train_images"] += 1
            if is_test:
                # The same stream for an image and its twin: identical masks wherever the cues lie alike.
                mask_rng = np.random.default_rng([cfg.seed, _STREAM_MASK, i])
                for label in sorted(present):
                    members = [(b.index, b.difficult) for b in boxes if b.label == label]
                    mask = _human_mask(mask_rng, visible, members)
                    _save_jpeg(out_dir / MASK_ROOT / cfg.classes[label] / f"{image_id}.jpg", mask)
                    counts["masks"] += 1

    # Every tenth test image is left out of ImageSets/Main, as the benchmark's action-task images are (prepare
    # still tests them, flagged partial_annotations); its shifted twin goes with it, so that both conditions
    # score AP on the same scenes.
    outside = {ids[i] for i in _outside_main(test)}
    outside |= {twin for twin, original in twins.items() if original in outside}
    counts["outside_main"] = len(outside)
    main = voc / "ImageSets" / "Main"
    _write_image_sets(main, {key: value for key, value in in_val.items() if key not in outside}, presence, cfg.classes)
    if cfg.spurious:
        # "<twin id> <id it copies>": the first token is the id, as in every ImageSets file.
        lines = [f"{twin} {original}\n" for twin, original in sorted(twins.items())]
        (main / f"{SHIFTED_IMAGE_SET}.txt").write_text("".join(lines))

    (out_dir / MIT_STIMULI).mkdir(parents=True, exist_ok=True)
    (out_dir / MIT_FIXATIONS).mkdir(parents=True, exist_ok=True)
    for j in tqdm(range(cfg.n_mit_images), desc="embedded MIT1003 stimuli", unit="img"):
        rng = np.random.default_rng([cfg.seed, _STREAM_MIT, j])
        image, labels, _ = _scene(rng, cfg)
        fixmap, fixpts = _fixations(rng, labels)
        stem = f"{MIT_STEM}_{j + 1:04d}"
        _save_jpeg(out_dir / MIT_STIMULI / f"{stem}.jpeg", _to_uint8(image))
        _save_jpeg(out_dir / MIT_FIXATIONS / f"{stem}_fixMap.jpg", fixmap)
        _save_jpeg(out_dir / MIT_FIXATIONS / f"{stem}_fixPts.jpg", fixpts)
        counts["mit_stimuli"] += 1

    log.info("embedded data in %s: %s", out_dir, counts)
    return counts


def _split(seed: int, n_images: int, test_fraction: float) -> tuple[set[int], set[int]]:
    """Indices of the test images (those given masks) and of VOC's own ``val`` list (an unrelated half)."""
    rng = np.random.default_rng([seed, _STREAM_SPLIT])
    n_test = min(n_images - 1, max(1, round(test_fraction * n_images)))
    test = set(rng.permutation(n_images)[:n_test].tolist())
    val = set(rng.permutation(n_images)[: n_images // 2].tolist())
    return test, val


def _outside_main(test: set[int]) -> set[int]:
    """The test images (indices) left out of ImageSets/Main: every ``_OUTSIDE_MAIN_EVERY``-th in index order."""
    return set(sorted(test)[::_OUTSIDE_MAIN_EVERY])


def _scene(rng: np.random.Generator, cfg: EmbeddedParams) -> tuple[np.ndarray, np.ndarray, list[_Box]]:
    """One float RGB image (not yet clipped), its label map (0 background, k+1 object k) and its VOC boxes."""
    width = int(rng.integers(cfg.min_size, cfg.max_size + 1))
    height = int(rng.integers(cfg.min_size, cfg.max_size + 1))
    objects = _layout(rng, width, height, len(cfg.classes), cfg.max_objects)
    image = _background(rng, width, height)
    labels = np.zeros((height, width), np.uint8)
    for k, obj in enumerate(objects, start=1):
        _paint_object(image, labels, obj, k, rng, cfg.object_opacity)
    boxes = [box for k, obj in enumerate(objects, start=1) if (box := _annotate(obj, labels, k)) is not None]
    return image, labels, boxes


def _to_uint8(image: np.ndarray) -> np.ndarray:
    return np.clip(np.round(image), 0, 255).astype(np.uint8)


def _layout(rng: np.random.Generator, width: int, height: int, n_classes: int, max_objects: int) -> list[_Object]:
    """Place 1..max_objects objects with limited overlap; some may cross the border."""
    short = min(width, height)
    objects: list[_Object] = []
    for _ in range(int(rng.integers(1, max_objects + 1))):
        label = int(rng.integers(n_classes))
        side = round(rng.uniform(*_SIDE_RANGE) * short)
        slack = round(_MAX_CUT * side) if rng.random() < _TRUNCATE_P else 0
        for _attempt in range(_PLACEMENT_TRIES):
            x = int(rng.integers(-slack, width - side + slack + 1))
            y = int(rng.integers(-slack, height - side + slack + 1))
            if all(_overlap((x, y, side), (o.x, o.y, o.side)) <= _MAX_OVERLAP for o in objects):
                break
        else:
            continue  # no room left: this image keeps fewer objects
        objects.append(
            _Object(
                label=label,
                x=x,
                y=y,
                alpha=_render_shape(SHAPES[label % len(SHAPES)], side, rng),
                colour=_object_colour(rng, label, n_classes),
                shade_angle=float(rng.uniform(0, 2 * math.pi)),
                shade=float(rng.uniform(0.1, 0.3)),
            )
        )
    return objects


def _overlap(a: tuple[int, int, int], b: tuple[int, int, int]) -> float:
    """Intersection of two squares (x, y, side) over the smaller one's area."""
    ix = min(a[0] + a[2], b[0] + b[2]) - max(a[0], b[0])
    iy = min(a[1] + a[2], b[1] + b[2]) - max(a[1], b[1])
    return max(ix, 0) * max(iy, 0) / min(a[2], b[2]) ** 2


def _circle(radius: float = 1.0, cx: float = 0.0, cy: float = 0.0, n: int = 48) -> np.ndarray:
    t = np.linspace(0, 2 * math.pi, n, endpoint=False)
    return np.stack([cx + radius * np.cos(t), cy + radius * np.sin(t)], axis=1)


def _star(n: int = 5, inner: float = 0.45) -> np.ndarray:
    t = np.linspace(0, 2 * math.pi, 2 * n, endpoint=False) - math.pi / 2
    r = np.where(np.arange(2 * n) % 2 == 0, 1.0, inner)
    return np.stack([r * np.cos(t), r * np.sin(t)], axis=1)


_SQUARE = np.array([[-1, -1], [1, -1], [1, 1], [-1, 1]], float)
_ARM = 0.33
# Each shape: polygons in unit coordinates, painted in order with coverage 1 (fill) or 0 (cut out).
# The first polygon is the outline that is scaled to fill the object's canvas.
_POLYGONS: dict[str, list[tuple[np.ndarray, int]]] = {
    "disc": [(_circle(), 1)],
    "square": [(_SQUARE, 1)],
    "triangle": [(np.array([[0, -1], [1, 0.75], [-1, 0.75]], float), 1)],
    "cross": [(np.array([[-_ARM, -1], [_ARM, -1], [_ARM, -_ARM], [1, -_ARM], [1, _ARM], [_ARM, _ARM], [_ARM, 1],
                         [-_ARM, 1], [-_ARM, _ARM], [-1, _ARM], [-1, -_ARM], [-_ARM, -_ARM]], float), 1)],
    "ring": [(_circle(), 1), (_circle(0.55), 0)],
    "star": [(_star(), 1)],
    "diamond": [(np.array([[0, -1], [1, 0], [0, 1], [-1, 0]], float), 1)],
    "frame": [(_SQUARE, 1), (_SQUARE * 0.6, 0)],
    "crescent": [(_circle(), 1), (_circle(0.85, cx=0.5, cy=-0.15), 0)],
    "tee": [(np.array([[-1, -1], [1, -1], [1, -0.4], [0.3, -0.4], [0.3, 1], [-0.3, 1], [-0.3, -0.4],
                       [-1, -0.4]], float), 1)],
}  # fmt: skip


def _render_shape(shape: str, side: int, rng: np.random.Generator) -> np.ndarray:
    """A side×side soft coverage map of one shape, slightly rotated and stretched."""
    theta = rng.uniform(-12, 12) * math.pi / 180  # small: a square must not turn into a diamond
    aspect = rng.uniform(0.85, 1.15)
    transform = np.array([[math.cos(theta), -math.sin(theta)], [math.sin(theta), math.cos(theta)]])
    transform = transform @ np.diag([aspect, 1 / aspect])
    polygons = [(points @ transform.T, fill) for points, fill in _POLYGONS[shape]]
    size = side * _SUPERSAMPLE
    lo, hi = polygons[0][0].min(axis=0), polygons[0][0].max(axis=0)
    scale = (size - 1) / float((hi - lo).max())
    offset = (size - 1) / 2 - (lo + hi) / 2 * scale
    canvas = np.zeros((size, size), np.uint8)
    for points, fill in polygons:
        cv2.fillPoly(canvas, [np.round(points * scale + offset).astype(np.int32)], 255 * fill)
    return cv2.resize(canvas, (side, side), interpolation=cv2.INTER_AREA).astype(np.float32) / 255


def _hsv(hue: float, saturation: float, value: float) -> np.ndarray:
    return np.array(colorsys.hsv_to_rgb(hue % 1.0, saturation, value), np.float32) * 255


def _object_colour(rng: np.random.Generator, label: int, n_classes: int) -> np.ndarray:
    """A saturated colour; any hue while shapes alone tell classes apart, else the class's hue family."""
    families = math.ceil(n_classes / len(SHAPES))
    band = label // len(SHAPES)
    hue = (band + rng.uniform(0.1, 0.9)) / families if families > 1 else rng.random()
    return _hsv(hue, rng.uniform(0.6, 1.0), rng.uniform(0.6, 1.0))


def _smooth_noise(rng: np.random.Generator, height: int, width: int, cells: int, channels: int) -> np.ndarray:
    """Low-frequency noise in about [-1, 1]: a coarse random grid upsampled bicubically."""
    coarse = rng.normal(0, 0.5, (cells, cells, channels)).astype(np.float32)
    return cv2.resize(coarse, (width, height), interpolation=cv2.INTER_CUBIC).reshape(height, width, channels)


def _background(rng: np.random.Generator, width: int, height: int) -> np.ndarray:
    """A dull textured background: base colour, gradient, blotches, grain and thin clutter."""
    base = _hsv(rng.random(), rng.uniform(0.05, 0.3), rng.uniform(0.3, 0.6))
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    angle = rng.uniform(0, 2 * math.pi)
    ramp = ((xx / width - 0.5) * math.cos(angle) + (yy / height - 0.5) * math.sin(angle)) * rng.uniform(20, 60)
    image = (
        base
        + ramp[..., None]
        + 25 * _smooth_noise(rng, height, width, 5, 3)
        + rng.normal(0, 6, (height, width, 1)).astype(np.float32)
    )
    short = min(width, height)
    # Clutter is thin lines and arcs, so it never looks like a filled class shape.
    for _ in range(int(rng.integers(3, 9))):
        colour = tuple(float(c) for c in base + rng.uniform(-50, 50, 3))
        thickness = int(rng.integers(1, 3))
        if rng.random() < 0.5:
            p, q = rng.integers(0, [width, height], size=(2, 2))
            cv2.line(image, (int(p[0]), int(p[1])), (int(q[0]), int(q[1])), colour, thickness)
        else:
            centre = tuple(int(c) for c in rng.integers(0, [width, height]))
            axes = tuple(int(a) for a in rng.integers(3, max(4, short // 8), size=2))
            start = float(rng.uniform(0, 360))
            cv2.ellipse(image, centre, axes, float(rng.uniform(0, 180)), start, start + rng.uniform(90, 270),
                        colour, thickness)  # fmt: skip
    return image


def _paint_object(
    image: np.ndarray, labels: np.ndarray, obj: _Object, index: int, rng: np.random.Generator, opacity: float
) -> None:
    """Composite one shaded, grainy object over ``image`` at ``opacity`` and claim its pixels in ``labels``."""
    height, width = labels.shape
    x0, y0 = max(obj.x, 0), max(obj.y, 0)
    x1, y1 = min(obj.x + obj.side, width), min(obj.y + obj.side, height)
    alpha = obj.alpha[y0 - obj.y : y1 - obj.y, x0 - obj.x : x1 - obj.x]
    yy, xx = np.mgrid[y0:y1, x0:x1].astype(np.float32)
    centre = obj.side / 2
    ramp = (xx - obj.x - centre) * math.cos(obj.shade_angle) + (yy - obj.y - centre) * math.sin(obj.shade_angle)
    shade = 1 + obj.shade * ramp / obj.side + rng.normal(0, 0.04, alpha.shape).astype(np.float32)
    region = image[y0:y1, x0:x1]
    region += opacity * alpha[..., None] * (obj.colour * shade[..., None] - region)
    labels[y0:y1, x0:x1][alpha > 0.5] = index


def _annotate(obj: _Object, labels: np.ndarray, index: int) -> _Box | None:
    """The VOC box of an object's visible pixels, with its truncated and difficult flags."""
    visible = labels == index
    if not visible.any():  # hidden by later objects; the overlap limit makes this rare
        return None
    height, width = labels.shape
    ys, xs = np.nonzero(visible)
    solid = obj.alpha > 0.5
    inside = solid[max(-obj.y, 0) : height - obj.y, max(-obj.x, 0) : width - obj.x].sum()
    short = min(width, height)
    return _Box(
        label=obj.label,
        index=index,
        xmin=int(xs.min()) + 1,  # VOC pixel coordinates are 1-based and inclusive
        ymin=int(ys.min()) + 1,
        xmax=int(xs.max()) + 1,
        ymax=int(ys.max()) + 1,
        truncated=bool(inside < solid.sum()),
        difficult=bool(obj.side < _DIFFICULT_SIDE * short or visible.sum() < _DIFFICULT_VISIBLE * solid.sum()),
    )


def _place_cues(
    rng: np.random.Generator, boxes: list[_Box], cfg: EmbeddedParams
) -> tuple[list[_Cue], list[_Cue | None]]:
    """Each box's cue as trained (and tested in distribution) and in the shifted twin, same place and size.

    A cue is a square of ``cfg.cue_size`` × the box's shorter side, inside the box at the middle of its
    top edge. Measured with the compact Faster R-CNN (objects at 0.5 opacity, correlation 0.95, 16 epochs,
    one seed each; AP50 with the cue as trained vs with another class's): it classifies from a fixed grid
    of features pooled inside each proposal, so a cue is taken when it sits in the same place of every
    box. A random corner: 0.72 vs 0.69; a random place: 0.72 vs 0.61; always the top-left corner (two
    places under horizontal flips): 0.83 vs 0.64; the top middle: 0.93 vs 0.42; the box centre: 0.88 vs
    0.25, but there it sits on the object's middle, where a saliency map cannot tell it from the object.
    Outside the box a cue is ignored (an earlier probe). Every draw is made for every box, so no setting
    changes another's draws.
    """
    n_classes = len(cfg.classes)
    cues: list[_Cue] = []
    shifted: list[_Cue | None] = []
    for box in boxes:
        width, height = box.xmax - box.xmin + 1, box.ymax - box.ymin + 1
        side = min(width, height, max(_MIN_CUE_SIDE, round(cfg.cue_size * min(width, height))))
        x, y = box.xmin - 1 + (width - side) // 2, box.ymin - 1
        own = rng.random() < cfg.cue_correlation
        other = (box.label + 1 + int(rng.integers(n_classes - 1))) % n_classes
        anywhere = int(rng.integers(n_classes))
        cues.append(_Cue(box.label if own else other, x, y, side))
        twin = {"other": other, "random": anywhere, "none": None}[cfg.shifted_cue]
        shifted.append(None if twin is None else _Cue(twin, x, y, side))
    return cues, shifted


def _paint_cue(image: np.ndarray, cue: _Cue, n_classes: int) -> None:
    """An opaque striped square whose hue and stripe angle both name the class: easy to learn, hard to miss."""
    angle = math.pi * cue.label / n_classes
    yy, xx = np.mgrid[0 : cue.side, 0 : cue.side].astype(np.float32)
    stripes = np.sin(2 * math.pi * (xx * math.cos(angle) + yy * math.sin(angle)) / _STRIPE_PERIOD) > 0
    colour = _hsv(cue.label / n_classes, 1.0, 1.0)
    image[cue.y : cue.y + cue.side, cue.x : cue.x + cue.side] = colour * np.where(stripes, 1.0, _STRIPE_DARK)[..., None]


def _human_mask(rng: np.random.Generator, labels: np.ndarray, members: list[tuple[int, bool]]) -> np.ndarray:
    """A soft mask over the given objects (label index, difficult), averaged over simulated annotators."""
    height, width = labels.shape
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (3, 3))
    total = np.zeros((height, width), np.float32)
    for _ in range(_ANNOTATORS):
        marked = [index for index, difficult in members if not difficult or rng.random() >= _MISS_P]
        drawn = np.isin(labels, marked).astype(np.uint8)
        grow = int(rng.integers(-1, 3))  # each annotator paints a little inside or outside the edge
        if grow > 0:
            drawn = cv2.dilate(drawn, kernel, iterations=grow)
        elif grow < 0:
            drawn = cv2.erode(drawn, kernel)
        dx, dy = (int(v) for v in rng.integers(-2, 3, size=2))
        total += cv2.warpAffine(drawn, np.float32([[1, 0, dx], [0, 1, dy]]), (width, height))
    mask = cv2.GaussianBlur(total / _ANNOTATORS, (0, 0), _MASK_BLUR * min(width, height))
    mask *= 0.9 + 0.1 * np.clip(_smooth_noise(rng, height, width, 4, 1)[..., 0], -1, 1)
    return np.clip(np.round(mask * 255), 0, 255).astype(np.uint8)


def _fixations(rng: np.random.Generator, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A fixation density (objects plus a centre bias, 0–255) and points sampled from it (255 each)."""
    height, width = labels.shape
    objects = cv2.GaussianBlur((labels > 0).astype(np.float32), (0, 0), _FIX_BLUR * min(width, height))
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float64)
    centre = np.exp(
        -0.5 * (((xx - (width - 1) / 2) / (_CENTRE_SIGMA * width)) ** 2
                + ((yy - (height - 1) / 2) / (_CENTRE_SIGMA * height)) ** 2)
    )  # fmt: skip
    density = _FIX_OBJECT_WEIGHT * objects / objects.sum() + (1 - _FIX_OBJECT_WEIGHT) * centre / centre.sum()
    fixmap = np.round(density / density.max() * 255).astype(np.uint8)
    n_points = int(rng.integers(FIXPTS_RANGE[0], FIXPTS_RANGE[1] + 1))
    picks = rng.choice(density.size, size=n_points, p=(density / density.sum()).ravel())
    points = np.zeros((height, width), np.uint8)
    points.flat[picks] = 255
    return fixmap, points


def _save_jpeg(path: Path, pixels: np.ndarray) -> None:
    """Save H×W×3 as RGB or H×W as L; a fixed quality and no metadata keep the bytes reproducible."""
    Image.fromarray(pixels).save(path, format="JPEG", quality=JPEG_QUALITY)


def _voc_xml(
    image_id: str, shape: tuple[int, ...], boxes: list[_Box], cues: list[_Cue | None], classes: list[str]
) -> str:
    """One annotation in the VOC2012 XML schema (tab-indented, no XML declaration, like the originals).

    An object's planted cue, if any, is one extra ``<cue>`` child holding the class it names and its
    box in VOC's 1-based inclusive pixels; VOC readers that do not know it skip it.
    """
    height, width, depth = shape
    root = ET.Element("annotation")
    ET.SubElement(root, "folder").text = "VOC2012"
    ET.SubElement(root, "filename").text = f"{image_id}.jpg"
    source = ET.SubElement(root, "source")
    ET.SubElement(source, "database").text = "human-saliency embedded generator"
    ET.SubElement(source, "annotation").text = "synthetic"
    ET.SubElement(source, "image").text = "synthetic"
    size = ET.SubElement(root, "size")
    for key, value in (("width", width), ("height", height), ("depth", depth)):
        ET.SubElement(size, key).text = str(value)
    ET.SubElement(root, "segmented").text = "0"
    for box, cue in zip(boxes, cues, strict=True):
        node = ET.SubElement(root, "object")
        ET.SubElement(node, "name").text = classes[box.label]
        ET.SubElement(node, "pose").text = "Unspecified"
        ET.SubElement(node, "truncated").text = str(int(box.truncated))
        ET.SubElement(node, "difficult").text = str(int(box.difficult))
        bndbox = ET.SubElement(node, "bndbox")
        for key in ("xmin", "ymin", "xmax", "ymax"):
            ET.SubElement(bndbox, key).text = str(getattr(box, key))
        if cue is not None:
            cue_node = ET.SubElement(node, "cue")
            ET.SubElement(cue_node, "name").text = classes[cue.label]
            cue_box = ET.SubElement(cue_node, "bndbox")
            corners = (cue.x + 1, cue.y + 1, cue.x + cue.side, cue.y + cue.side)
            for key, value in zip(("xmin", "ymin", "xmax", "ymax"), corners, strict=True):
                ET.SubElement(cue_box, key).text = str(value)
    ET.indent(root, space="\t")
    return ET.tostring(root, encoding="unicode") + "\n"


def _write_image_sets(
    main: Path, in_val: dict[str, bool], presence: dict[str, dict[int, bool]], classes: list[str]
) -> None:
    """ImageSets/Main: trainval/train/val id lists and per-class lists labelled 1, 0 (difficult only) or -1."""
    ids = sorted(in_val)
    splits = {
        "trainval": ids,
        "train": [image_id for image_id in ids if not in_val[image_id]],
        "val": [image_id for image_id in ids if in_val[image_id]],
    }
    for split, members in splits.items():
        (main / f"{split}.txt").write_text("".join(f"{image_id}\n" for image_id in members))
        for label, name in enumerate(classes):
            # The devkit's "%s %2d" format: "<id>  1", "<id>  0", "<id> -1".
            lines = [f"{image_id} {_class_flag(presence[image_id], label):2d}\n" for image_id in members]
            (main / f"{name}_{split}.txt").write_text("".join(lines))


def _class_flag(present: dict[int, bool], label: int) -> int:
    if label not in present:
        return -1
    return 1 if present[label] else 0
