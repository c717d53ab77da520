"""The embedded generator writes the real datasets' layouts, deterministically, with sound annotations."""

from __future__ import annotations

import colorsys
import hashlib
import re
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from human_saliency.sources.embedded import (
    FIXPTS_RANGE,
    MASK_ROOT,
    MIT_FIXATIONS,
    MIT_STIMULI,
    VOC_ROOT,
    _object_colour,
    generate,
)
from human_saliency.sources.voc import SHIFTED_IMAGE_SET, parse_annotation, read_twins

from conftest import embedded_params

CFG = embedded_params(
    seed=7, n_images=20, test_fraction=0.3, n_mit_images=4, min_size=64, max_size=96, spurious=False, object_opacity=1.0
)
SPURIOUS = CFG.model_copy(update={"spurious": True, "cue_correlation": 0.7})
SPLITS = ("trainval", "train", "val")


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, dict[str, int]]]:
    """The small config generated twice as is, twice with the planted cues on, and once with correlation 1."""
    out = {}
    for name, cfg in (
        ("a", CFG),
        ("b", CFG),
        ("spurious", SPURIOUS),
        ("spurious_again", SPURIOUS),
        ("always", SPURIOUS.model_copy(update={"cue_correlation": 1.0, "shifted_cue": "random"})),
    ):
        root = tmp_path_factory.mktemp(name)
        out[name] = (root, generate(root, cfg))
    return out


@pytest.fixture(scope="module")
def root(runs: dict[str, tuple[Path, dict[str, int]]]) -> Path:
    return runs["a"][0]


def _hashes(root: Path) -> dict[str, str]:
    return {
        str(path.relative_to(root)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(root.rglob("*"))
        if path.is_file()
    }


def _objects(root: Path, image_id: str) -> list[dict[str, object]]:
    tree = ET.parse(root / VOC_ROOT / "Annotations" / f"{image_id}.xml").getroot()
    return [
        {
            "name": node.findtext("name"),
            "difficult": node.findtext("difficult") == "1",
            "truncated": node.findtext("truncated") == "1",
            "box": tuple(int(node.findtext(f"bndbox/{key}")) for key in ("xmin", "ymin", "xmax", "ymax")),
        }
        for node in tree.iterfind("object")
    ]


def _mask_ids(root: Path) -> dict[str, list[str]]:
    """Class folders per image id that has masks."""
    index: dict[str, list[str]] = {}
    for path in sorted((root / MASK_ROOT).glob("*/*.jpg")):
        index.setdefault(path.stem, []).append(path.parent.name)
    return index


def _ids(n: int) -> list[str]:
    return [f"2100_{i:06d}" for i in range(1, n + 1)]


def test_same_params_give_byte_identical_files(runs):
    assert _hashes(runs["a"][0]) == _hashes(runs["b"][0])
    assert runs["a"][1] == runs["b"][1]
    assert _hashes(runs["spurious"][0]) == _hashes(runs["spurious_again"][0])


def test_layout_is_the_real_datasets_layout(root, runs):
    ids = _ids(CFG.n_images)
    voc = root / VOC_ROOT
    assert sorted(p.name for p in (voc / "JPEGImages").iterdir()) == [f"{i}.jpg" for i in ids]
    assert sorted(p.name for p in (voc / "Annotations").iterdir()) == [f"{i}.xml" for i in ids]
    expected_sets = {f"{s}.txt" for s in SPLITS} | {f"{c}_{s}.txt" for c in CFG.classes for s in SPLITS}
    assert {p.name for p in (voc / "ImageSets" / "Main").iterdir()} == expected_sets
    listed = (voc / "ImageSets/Main/trainval.txt").read_text().split()
    train = (voc / "ImageSets/Main/train.txt").read_text().split()
    val = (voc / "ImageSets/Main/val.txt").read_text().split()
    assert sorted(train + val) == listed
    # Like the benchmark's action-task images, one masked image is in no Main list (every tenth masked image).
    (outside,) = sorted(set(ids) - set(listed))
    assert outside in _mask_ids(root) and listed == [i for i in ids if i != outside]
    assert {p.name for p in (root / MASK_ROOT).iterdir()} == set(CFG.classes)
    stems = [f"synth_{j:04d}" for j in range(1, CFG.n_mit_images + 1)]
    assert sorted(p.name for p in (root / MIT_STIMULI).iterdir()) == [f"{s}.jpeg" for s in stems]
    assert sorted(p.name for p in (root / MIT_FIXATIONS).iterdir()) == sorted(
        [f"{s}_fixMap.jpg" for s in stems] + [f"{s}_fixPts.jpg" for s in stems]
    )
    assert {p.relative_to(root).parts[0] for p in root.iterdir()} == {"voc", "human_masks", "mit1003"}
    assert all(re.fullmatch(r"2100_\d{6}", i) for i in ids)  # VOC-like, never a real VOC year


def test_counts_match_the_files(root, runs):
    counts = runs["a"][1]
    masks = _mask_ids(root)
    n_objects = sum(len(_objects(root, i)) for i in _ids(CFG.n_images))
    assert counts == {
        "images": CFG.n_images,
        "objects": n_objects,
        "cues": 0,
        "masks": sum(len(v) for v in masks.values()),
        "mit_stimuli": CFG.n_mit_images,
        "test_images": round(CFG.test_fraction * CFG.n_images),
        "train_images": CFG.n_images - round(CFG.test_fraction * CFG.n_images),
        "shifted_images": 0,
        "outside_main": 1,
    }
    assert len(masks) == counts["test_images"]  # the split rule: test = the images with masks


def test_annotations_are_voc_xml_with_boxes_inside_the_image(root):
    for image_id in _ids(CFG.n_images):
        tree = ET.parse(root / VOC_ROOT / "Annotations" / f"{image_id}.xml").getroot()
        assert tree.tag == "annotation"
        assert tree.findtext("folder") == "VOC2012"
        assert tree.findtext("filename") == f"{image_id}.jpg"
        assert tree.find("source/database") is not None
        assert tree.findtext("segmented") == "0"
        with Image.open(root / VOC_ROOT / "JPEGImages" / f"{image_id}.jpg") as image:
            assert image.mode == "RGB"
            width, height = image.size
        assert (int(tree.findtext("size/width")), int(tree.findtext("size/height"))) == (width, height)
        assert tree.findtext("size/depth") == "3"
        assert CFG.min_size <= min(width, height) and max(width, height) <= CFG.max_size
        objects = tree.findall("object")
        assert 1 <= len(objects) <= CFG.max_objects
        for node in objects:
            assert node.findtext("name") in CFG.classes
            assert node.findtext("pose") == "Unspecified"
            assert node.findtext("truncated") in ("0", "1") and node.findtext("difficult") in ("0", "1")
            xmin, ymin, xmax, ymax = (int(node.findtext(f"bndbox/{k}")) for k in ("xmin", "ymin", "xmax", "ymax"))
            assert 1 <= xmin <= xmax <= width and 1 <= ymin <= ymax <= height


def test_difficult_and_truncated_flags_mark_a_minority_and_truncated_boxes_touch_the_border(tmp_path):
    cfg = embedded_params(seed=3, n_images=120, n_mit_images=2, min_size=48, max_size=64)
    generate(tmp_path, cfg)
    objects, touching = [], []
    for image_id in _ids(cfg.n_images):
        size = ET.parse(tmp_path / VOC_ROOT / "Annotations" / f"{image_id}.xml").getroot().find("size")
        width, height = int(size.findtext("width")), int(size.findtext("height"))
        for obj in _objects(tmp_path, image_id):
            xmin, ymin, xmax, ymax = obj["box"]
            objects.append(obj)
            touching.append(xmin == 1 or ymin == 1 or xmax == width or ymax == height)
    difficult = np.mean([o["difficult"] for o in objects])
    truncated = np.array([o["truncated"] for o in objects])
    assert 0.02 < difficult < 0.3
    assert 0.02 < truncated.mean() < 0.3
    assert np.array(touching)[truncated].all()


def test_masks_are_soft_grayscale_at_image_size_and_high_on_their_class(root):
    for image_id, classes in _mask_ids(root).items():
        with Image.open(root / VOC_ROOT / "JPEGImages" / f"{image_id}.jpg") as image:
            size = image.size
        objects = _objects(root, image_id)
        assert sorted(classes) == sorted({o["name"] for o in objects})
        for name in classes:
            with Image.open(root / MASK_ROOT / name / f"{image_id}.jpg") as mask_file:
                assert mask_file.mode == "L" and mask_file.size == size
                mask = np.asarray(mask_file, dtype=np.float32) / 255
            assert mask.max() > 0.6
            assert ((mask > 0.05) & (mask < 0.95)).mean() > 0.01  # soft edges, not a binary mask
            # The mask's mass lies inside this class's boxes (grown by a few pixels of blur).
            inside = np.zeros_like(mask, dtype=bool)
            for obj in objects:
                if obj["name"] == name:
                    xmin, ymin, xmax, ymax = obj["box"]
                    inside[max(ymin - 6, 0) : ymax + 5, max(xmin - 6, 0) : xmax + 5] = True
            assert mask[inside].sum() > 0.95 * mask.sum()


def test_image_with_two_classes_has_a_mask_in_each_class_folder(root):
    masks = _mask_ids(root)
    two_class = [i for i in masks if len({o["name"] for o in _objects(root, i)}) >= 2]
    assert two_class, "the small config should contain a test image with two classes"
    for image_id in two_class:
        for name in {o["name"] for o in _objects(root, image_id)}:
            assert (root / MASK_ROOT / name / f"{image_id}.jpg").is_file()


def test_class_image_sets_use_the_devkit_format_and_agree_with_the_xml(root):
    main = root / VOC_ROOT / "ImageSets" / "Main"
    for name in CFG.classes:
        lines = (main / f"{name}_trainval.txt").read_text().splitlines()
        assert [line.split()[0] for line in lines] == (main / "trainval.txt").read_text().split()
        for line in lines:
            image_id, flag = line.split()
            assert line == f"{image_id} {int(flag):2d}"
            present = [o for o in _objects(root, image_id) if o["name"] == name]
            expected = -1 if not present else (1 if any(not o["difficult"] for o in present) else 0)
            assert int(flag) == expected


def _cues(root: Path, image_id: str) -> list[tuple[str, object]]:
    """(object class, its VocCue) for every object of an image."""
    return [
        (obj.name, obj.cue) for obj in parse_annotation(root / VOC_ROOT / "Annotations" / f"{image_id}.xml").objects
    ]


def _pixels(root: Path, path: str) -> np.ndarray:
    with Image.open(root / path) as image:
        return np.asarray(image, dtype=np.int16)


def test_without_spurious_there_are_no_cues_and_no_shifted_condition(root):
    assert not (root / VOC_ROOT / "ImageSets" / "Main" / f"{SHIFTED_IMAGE_SET}.txt").exists()
    assert all(cue is None for i in _ids(CFG.n_images) for _, cue in _cues(root, i))


def test_every_object_carries_a_cue_inside_its_box_at_the_top_middle(runs):
    spurious, counts = runs["spurious"]
    plain = runs["a"][0]
    ids = _ids(CFG.n_images)
    assert counts["cues"] == counts["objects"] > 0
    for image_id in ids:
        # The scene under the cues is the plain one: same objects, same boxes.
        assert _objects(spurious, image_id) == _objects(plain, image_id)
        for obj, (name, cue) in zip(_objects(spurious, image_id), _cues(spurious, image_id), strict=True):
            xmin, ymin, xmax, ymax = obj["box"]
            assert cue is not None and cue.name in CFG.classes and name == obj["name"]
            assert xmin <= cue.xmin <= cue.xmax <= xmax and cue.ymin == ymin and cue.ymax <= ymax
            side = cue.xmax - cue.xmin + 1
            assert side == cue.ymax - cue.ymin + 1
            assert side == min(
                xmax - xmin + 1, ymax - ymin + 1, max(3, round(0.3 * min(xmax - xmin + 1, ymax - ymin + 1)))
            )
            assert abs((cue.xmin + cue.xmax) - (xmin + xmax)) <= 1  # centred on the top edge
            # The cue is painted: the JPEG differs from the plain scene there (a saturated striped patch).
            region = (slice(cue.ymin - 1, cue.ymax), slice(cue.xmin - 1, cue.xmax))
            before = _pixels(plain, VOC_ROOT / "JPEGImages" / f"{image_id}.jpg")[region]
            after = _pixels(spurious, VOC_ROOT / "JPEGImages" / f"{image_id}.jpg")[region]
            assert np.abs(after - before).mean() > 20


def test_cue_names_the_object_class_at_the_configured_rate(runs):
    agree = [name == cue.name for i in _ids(CFG.n_images) for name, cue in _cues(runs["spurious"][0], i)]
    assert 0.5 < np.mean(agree) < 0.95  # correlation 0.7 over a few dozen objects
    always = [name == cue.name for i in _ids(CFG.n_images) for name, cue in _cues(runs["always"][0], i)]
    assert all(always)


def test_shifted_twins_copy_the_test_images_with_the_cues_naming_other_classes(runs):
    spurious, counts = runs["spurious"]
    twins = read_twins(spurious / VOC_ROOT / "ImageSets" / "Main" / f"{SHIFTED_IMAGE_SET}.txt")
    test_ids = sorted(i for i in _mask_ids(spurious) if i.startswith("2100_"))
    assert sorted(twins.values()) == test_ids and len(twins) == counts["shifted_images"] == counts["test_images"]
    trainval = (spurious / VOC_ROOT / "ImageSets" / "Main" / "trainval.txt").read_text().split()
    # Every tenth test image is left out of Main (an action-task image, as in the benchmark), its twin with it.
    outside = set(_ids(CFG.n_images) + sorted(twins)) - set(trainval)
    assert outside and {twins.get(i, i) for i in outside if i in twins} <= outside
    assert trainval == sorted(set(_ids(CFG.n_images) + sorted(twins)) - outside)
    assert set(_mask_ids(spurious)) == set(test_ids) | set(twins)  # every twin has masks: it is a test image
    for twin, original in twins.items():
        assert twin == "2101" + original[4:]
        assert _objects(spurious, twin) == _objects(spurious, original)
        pairs = zip(_cues(spurious, twin), _cues(spurious, original), strict=True)
        for (name, shifted), (_, trained) in pairs:
            assert shifted.name != name  # "other": never the object's own class
            assert (shifted.xmin, shifted.ymin, shifted.xmax, shifted.ymax) == (
                trained.xmin, trained.ymin, trained.xmax, trained.ymax
            )  # fmt: skip
        # Same scene: JPEG codes 16×16 blocks on their own (the decoder's chroma upsampling reaches one pixel
        # past a block), so all pixels away from the blocks that hold a cue are identical.
        a = _pixels(spurious, VOC_ROOT / "JPEGImages" / f"{twin}.jpg")
        b = _pixels(spurious, VOC_ROOT / "JPEGImages" / f"{original}.jpg")
        outside = np.ones(a.shape[:2], bool)
        for _, cue in _cues(spurious, twin):
            y0, x0 = max((cue.ymin - 1) // 16 * 16 - 2, 0), max((cue.xmin - 1) // 16 * 16 - 2, 0)
            outside[y0 : (cue.ymax + 15) // 16 * 16 + 2, x0 : (cue.xmax + 15) // 16 * 16 + 2] = False
        assert outside.mean() > 0.5 and (a == b).all(axis=2)[outside].all()
        for name in _mask_ids(spurious)[twin]:
            assert (spurious / MASK_ROOT / name / f"{twin}.jpg").read_bytes() == (
                spurious / MASK_ROOT / name / f"{original}.jpg"
            ).read_bytes()
    # "random" twins may name any class, the object's own included.
    always = runs["always"][0]
    names = [
        c.name == n for t in read_twins(always / VOC_ROOT / "ImageSets/Main/shifted.txt") for n, c in _cues(always, t)
    ]
    assert 0 < np.mean(names) < 1


def test_human_masks_cover_the_objects_and_not_the_cues(runs):
    spurious, plain = runs["spurious"][0], runs["a"][0]
    for image_id, classes in _mask_ids(spurious).items():
        for name in classes:
            mask = _pixels(spurious, MASK_ROOT / name / f"{image_id}.jpg") / 255
            for _, cue in _cues(spurious, image_id):
                # Soft edges spill into small cues, but the binarised mask (>= 0.5) never holds one.
                assert mask[cue.ymin - 1 : cue.ymax, cue.xmin - 1 : cue.xmax].mean() < 0.5
                assert mask[(cue.ymin + cue.ymax) // 2 - 1, (cue.xmin + cue.xmax) // 2 - 1] < 0.5
            if image_id.startswith("2100_"):  # the plain scene's mask, minus the cues, is the same mask
                before = _pixels(plain, MASK_ROOT / name / f"{image_id}.jpg") / 255
                assert np.abs(mask - before).mean() < 0.05


def test_spurious_changes_only_voc_files_and_adds_the_twins(runs):
    plain, spurious = runs["a"][0], runs["spurious"][0]
    before, after = _hashes(plain), _hashes(spurious)
    assert set(before) <= set(after)
    added = {Path(path).stem for path in set(after) - set(before)} - {SHIFTED_IMAGE_SET}
    assert all(stem.startswith("2101_") for stem in added)
    for path in before:  # MIT1003 never carries cues
        if path.startswith("mit1003"):
            assert before[path] == after[path]


def test_fixation_points_lie_where_the_fixation_density_is_high(root):
    for stimulus in sorted((root / MIT_STIMULI).glob("*.jpeg")):
        with Image.open(stimulus) as image:
            size = image.size
        with Image.open(root / MIT_FIXATIONS / f"{stimulus.stem}_fixMap.jpg") as fixmap_file:
            assert fixmap_file.mode == "L" and fixmap_file.size == size
            fixmap = np.asarray(fixmap_file, dtype=np.float32)
        with Image.open(root / MIT_FIXATIONS / f"{stimulus.stem}_fixPts.jpg") as fixpts_file:
            assert fixpts_file.mode == "L" and fixpts_file.size == size
            points = np.asarray(fixpts_file) > 127  # readers threshold: JPEG smears single pixels
        assert fixmap.max() >= 250
        assert FIXPTS_RANGE[0] - 10 <= points.sum() <= FIXPTS_RANGE[1]  # a few picks may coincide
        assert fixmap[points].mean() > 2 * fixmap.mean()


def test_classes_beyond_the_shapes_get_disjoint_hue_families():
    rng = np.random.default_rng(0)
    hues = {label: [colorsys.rgb_to_hsv(*(_object_colour(rng, label, 12) / 255))[0] for _ in range(50)]
            for label in (0, 10)}  # fmt: skip
    # Classes 0 and 10 share a shape (10 shapes), so their colours must not overlap.
    assert max(hues[0]) < min(hues[10])
