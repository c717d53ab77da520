"""Shared test fixtures and builders."""

from collections.abc import Collection, Sequence
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image, ImageDraw
from threadpoolctl import threadpool_limits

from human_saliency.io import pins
from human_saliency.params import EmbeddedParams, load_params
from human_saliency.sources.prepare import FIXMAPS_ANCHOR, MASK_ANCHOR, STIMULI_ANCHOR, VOC_ANCHOR, prepare_dataset

from httpserver import http_server  # noqa: F401  (the loopback file server fixture)

ROOT = Path(__file__).resolve().parents[1]


def embedded_params(**changes) -> EmbeddedParams:
    """The default profile's ``data.embedded`` section with ``changes``, validated like a params file."""
    section = load_params(ROOT / "params.yaml").data.embedded.model_dump()
    return EmbeddedParams.model_validate({**section, **changes})


@pytest.fixture(scope="module")
def one_thread():
    """One torch and BLAS thread for a test module: small tensors gain nothing from more, and on a CPU shared
    with other jobs the thread pools stall; one thread is also bit-reproducible."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    with threadpool_limits(1):
        yield
    torch.set_num_threads(threads)


# Class k is drawn as a square (k even) or a disc (k odd) in FILLS[k]: class 1 a dark square, class 2 a light disc.
FILLS = ((20, 20, 20), (235, 235, 235), (200, 40, 40), (40, 160, 40), (40, 40, 200), (220, 200, 40))
BACKGROUND = (128, 128, 128)


def tiny_prepared(
    root: Path,
    *,
    train: int = 4,
    test: int = 0,
    mit1003: int = 0,
    size: tuple[int, int] = (48, 32),
    classes: Sequence[str] = ("square", "disc"),
    difficult: Collection[tuple[str, str]] = (),
    negatives: Collection[str] = (),
    mit_size: tuple[int, int] = (40, 30),
    fixations: Sequence[tuple[int, int]] = ((5, 4), (30, 20)),
    seed: int = 0,
) -> Path:
    """A tiny raw dataset in the real layouts under ``root/raw``, prepared by ``prepare_dataset`` into
    ``root/prepared`` (train.json, test.json, masks/, mit1003.json); returns ``root/prepared``.

    Running the real ``prepare`` keeps the files exactly as the pipeline writes them (``info.image_root``,
    ``voc_id``, numeric ids, ``difficult``, ``human_mask``, categories). Images are W×H = ``size`` JPEGs,
    non-square by default so that a swapped width and height shows. Train images are VOC ids
    ``2008_000001``…, test images ``2009_000001``… (prepare's rule: the test split is the images with a
    human mask). Each image holds one object per class, a square or disc with sides 3/8 of the short side
    at seeded positions (the same seed, the same bytes); a ``negatives`` id has none, a ``difficult``
    (voc id, class) object is flagged difficult. A test image's mask is 255 inside each of its objects'
    boxes, one mask file per class folder, merged by prepare. MIT1003 stimuli ``i01``… are ``mit_size``
    JPEGs with the same ``fixations`` (x, y) in each ``_fixPts`` and a Gaussian density around them as ``_fixMap``.
    A split or the MIT1003 index asked to be empty gets one filler (``2008_999999``, ``2009_999999``, ``i01``):
    prepare refuses empty ones.
    """
    raw = Path(root) / "raw"
    voc = raw / "voc" / Path(*VOC_ANCHOR)
    mask_root = raw / "human_masks" / "Image" / Path(*MASK_ANCHOR)
    stimuli_dir, fixmaps_dir = raw / "mit1003" / Path(*STIMULI_ANCHOR), raw / "mit1003" / Path(*FIXMAPS_ANCHOR)
    for folder in (voc / "JPEGImages", voc / "Annotations", voc / "ImageSets" / "Main", mask_root, stimuli_dir,
                   fixmaps_dir):  # fmt: skip
        folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    width, height = size
    side = min(width, height) * 3 // 8
    ids = [f"2008_{i:06d}" for i in range(1, train + 1)] + [f"2009_{i:06d}" for i in range(1, test + 1)]
    # prepare refuses an empty split: a split asked empty gets one filler image, drawn last so that it
    # moves no other image's objects.
    ids += ["2008_999999"] * (train == 0) + ["2009_999999"] * (test == 0)
    for voc_id in ids:
        image = Image.new("RGB", size, BACKGROUND)
        draw = ImageDraw.Draw(image)
        objects = []
        for k, name in enumerate(classes if voc_id not in negatives else ()):
            x, y = (int(v) for v in rng.integers(0, (width - side, height - side)))
            shape = draw.rectangle if k % 2 == 0 else draw.ellipse
            shape((x, y, x + side - 1, y + side - 1), fill=FILLS[k % len(FILLS)])
            objects.append((name, x, y, int((voc_id, name) in difficult)))
        image.save(voc / "JPEGImages" / f"{voc_id}.jpg", quality=95)
        (voc / "Annotations" / f"{voc_id}.xml").write_text(_voc_xml(size, objects, side), encoding="utf-8")
        if voc_id.startswith("2009"):
            for name, x, y, _ in objects or [(classes[0], 0, 0, 0)]:
                mask = np.zeros((height, width), dtype=np.uint8)
                mask[y : y + side, x : x + side] = 255 if objects else 0
                (mask_root / name).mkdir(exist_ok=True)
                Image.fromarray(mask).save(mask_root / name / f"{voc_id}.jpg", quality=95)
    (voc / "ImageSets" / "Main" / "trainval.txt").write_text("".join(f"{voc_id}\n" for voc_id in ids))
    for k in range(1, max(mit1003, 1) + 1):  # an empty MIT1003 index is refused too: one filler stimulus
        _stimulus(stimuli_dir, fixmaps_dir, f"i{k:02d}", mit_size, fixations, rng)
    prepare_dataset(raw, Path(root) / "prepared", classes=classes, on_bad_input="error", max_dropped_fraction=0.0)
    return Path(root) / "prepared"


def _voc_xml(size: tuple[int, int], objects: list[tuple[str, int, int, int]], side: int) -> str:
    """A VOC annotation: boxes 1-based and inclusive, so prepare's 0-based box is [x, y, side, side]."""
    body = "".join(
        f"<object><name>{name}</name><difficult>{flag}</difficult><truncated>0</truncated><bndbox>"
        f"<xmin>{x + 1}</xmin><ymin>{y + 1}</ymin><xmax>{x + side}</xmax><ymax>{y + side}</ymax></bndbox></object>"
        for name, x, y, flag in objects
    )
    size_xml = f"<size><width>{size[0]}</width><height>{size[1]}</height><depth>3</depth></size>"
    return f"<annotation>{size_xml}{body}</annotation>"


def _stimulus(stimuli_dir: Path, fixmaps_dir: Path, stem: str, size, points, rng) -> None:
    """One MIT1003 stimulus with its ``_fixPts`` (one white pixel per fixation) and ``_fixMap`` (σ = 3 px)."""
    width, height = size
    pixels = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(stimuli_dir / f"{stem}.jpeg", quality=95)
    fixpts = np.zeros((height, width), dtype=np.uint8)
    density = np.zeros((height, width))
    rows, cols = np.mgrid[:height, :width]
    for x, y in points:
        fixpts[y, x] = 255
        density += np.exp(-((cols - x) ** 2 + (rows - y) ** 2) / (2 * 3.0**2))
    Image.fromarray(fixpts).save(fixmaps_dir / f"{stem}_fixPts.jpg", quality=95)
    Image.fromarray(np.round(255 * density / density.max()).astype(np.uint8)).save(
        fixmaps_dir / f"{stem}_fixMap.jpg", quality=95
    )


@pytest.fixture(autouse=True)
def downloads_lock(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Each test records and verifies unpublished checksums in its own ``downloads.lock``, never the project's,
    and no test inherits the offline rehearsal's download overrides."""
    path = tmp_path / "downloads.lock"
    monkeypatch.setattr(pins, "LOCK_FILE", path)
    monkeypatch.delenv(pins.OVERRIDES_ENV, raising=False)
    return path
