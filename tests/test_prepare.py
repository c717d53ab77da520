"""prepare_dataset: raw layouts → COCO splits, masks paired by id, MIT1003 index, bad-input policy."""

from __future__ import annotations

import json
import logging
import random
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import human_saliency.sources.prepare as prepare_module
from human_saliency.errors import DataError
from human_saliency.prepared.splits import PreparedSplit, coco_index
from human_saliency.prepared.stimuli import PreparedStimuli
from human_saliency.sources.masks import load_mask
from human_saliency.sources.prepare import REASONS, prepare_dataset

CLASSES = ["cat", "dog"]
VOC = Path("voc/VOCdevkit/VOC2012")
MASKS = Path("human_masks/Image/PASCAL_VOC_2012/human_attention_mask")


def _xml(size, objects):
    objs = "".join(
        f"<object><name>{name}</name><difficult>{difficult}</difficult><truncated>0</truncated>"
        f"<bndbox><xmin>{x0}</xmin><ymin>{y0}</ymin><xmax>{x1}</xmax><ymax>{y1}</ymax></bndbox>{_cue(cue)}</object>"
        for name, x0, y0, x1, y1, difficult, *cue in objects
    )
    size_xml = f"<size><width>{size[0]}</width><height>{size[1]}</height><depth>3</depth></size>"
    return f"<annotation>{size_xml}{objs}</annotation>"


def _cue(cue) -> str:
    """An optional planted cue: (class, xmin, ymin, xmax, ymax) after an object's usual fields."""
    if not cue:
        return ""
    name, x0, y0, x1, y1 = cue[0]
    box = f"<xmin>{x0}</xmin><ymin>{y0}</ymin><xmax>{x1}</xmax><ymax>{y1}</ymax>"
    return f"<cue><name>{name}</name><bndbox>{box}</bndbox></cue>"


class Raw:
    """A tiny raw folder in the real layouts, written file by file so each test can break one."""

    def __init__(self, root: Path, mask_root: Path = MASKS) -> None:
        self.root = root
        self.mask_root = root / mask_root
        self.ids: list[str] = []
        for folder in ("JPEGImages", "Annotations", "ImageSets/Main"):
            (root / VOC / folder).mkdir(parents=True, exist_ok=True)
        self.mask_root.mkdir(parents=True, exist_ok=True)
        for folder in ("ALLSTIMULI", "ALLFIXATIONMAPS"):
            (root / "mit1003" / folder).mkdir(parents=True, exist_ok=True)

    def jpeg(self, voc_id: str) -> Path:
        return self.root / VOC / "JPEGImages" / f"{voc_id}.jpg"

    def xml(self, voc_id: str) -> Path:
        return self.root / VOC / "Annotations" / f"{voc_id}.xml"

    def image(self, voc_id, size=(40, 30), objects=(("cat", 5, 6, 20, 25, 0),), mode="RGB", xml_size=None, listed=True):
        """An image and its XML; ``listed=False``: outside ImageSets/Main (another task's image)."""
        if listed:
            self.ids.append(voc_id)
        colour = {"RGB": (90, 120, 150), "L": 100, "CMYK": (0, 255, 255, 0)}[mode]
        Image.new(mode, size, colour).save(self.jpeg(voc_id), quality=95)
        self.xml(voc_id).write_text(_xml(xml_size or size, objects), encoding="utf-8")

    def mask(self, cls: str, voc_id: str, size=(40, 30), box=(0, 0, 10, 10), value=255) -> Path:
        pixels = np.zeros((size[1], size[0]), dtype=np.uint8)
        pixels[box[1] : box[3], box[0] : box[2]] = value
        path = self.mask_root / cls / f"{voc_id}.jpg"
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(pixels).save(path, quality=95)
        return path

    def stimulus(self, stem, size=(32, 24), points=((3, 4), (20, 10)), fixpts=True):
        base = self.root / "mit1003"
        Image.new("RGB", size, (10, 200, 10)).save(base / "ALLSTIMULI" / f"{stem}.jpeg")
        Image.new("L", size, 60).save(base / "ALLFIXATIONMAPS" / f"{stem}_fixMap.jpg")
        if fixpts:
            pixels = np.zeros((size[1], size[0]), dtype=np.uint8)
            for x, y in points:
                pixels[y, x] = 255
            Image.fromarray(pixels).save(base / "ALLFIXATIONMAPS" / f"{stem}_fixPts.jpg", quality=95)

    def write_trainval(self, seed: int = 0) -> None:
        ids = list(self.ids)
        random.Random(seed).shuffle(ids)  # the listing order must not matter
        (self.root / VOC / "ImageSets/Main/trainval.txt").write_text("\n".join(ids) + "\n")


def _happy(root: Path) -> Raw:
    raw = Raw(root)
    raw.image("2008_000003", objects=[("dog", 1, 1, 40, 30, 0), ("cat", 11, 21, 30, 25, 1)])
    raw.image("2008_000001", size=(50, 20), objects=[("cat", 5, 6, 20, 15, 0)])
    raw.image("2009_000010", size=(36, 28), objects=[("dog", 2, 3, 12, 13, 0)])
    raw.image("2008_000002", objects=[])
    raw.mask("cat", "2008_000001", size=(50, 20))
    raw.mask("cat", "2009_000010", size=(36, 28), box=(0, 0, 18, 28), value=120)
    raw.mask("dog", "2009_000010", size=(36, 28), box=(10, 0, 36, 14), value=250)
    raw.stimulus("s2")
    raw.stimulus("s1", size=(20, 16), points=((1, 1), (8, 8), (15, 12)))
    raw.write_trainval()
    return raw


def _prepare(root: Path, **kwargs) -> tuple[Path, dict]:
    """prepare_dataset with no limit on dropped images unless a test sets one (the tiny sets drop 1 in 5)."""
    out = root / "prepared"
    options = {"classes": CLASSES, "max_dropped_fraction": 1.0, **kwargs}
    return out, prepare_dataset(root / "raw", out, **options)


def _load(out: Path, name: str) -> dict:
    return json.loads((out / f"{name}.json").read_text())


def _leaves(tree):
    for value in tree.values():
        yield from _leaves(value) if isinstance(value, dict) else [value]


def test_happy_path_writes_coco_splits_by_the_study_rule(tmp_path):
    raw = _happy(tmp_path / "raw")
    out, summary = _prepare(tmp_path)
    train, test = PreparedSplit.load(out / "train.json"), PreparedSplit.load(out / "test.json")
    # Study's split rule: test = the trainval images with human masks.
    assert [image["voc_id"] for image in test.images] == ["2008_000001", "2009_000010"]
    assert [image["voc_id"] for image in train.images] == ["2008_000002", "2008_000003"]
    assert [image["id"] for image in train.images] == [2008000002, 2008000003]
    assert test.category_names == CLASSES
    assert all("human_mask" not in image for image in train.images)

    coco = coco_index(train.data)  # pycocotools accepts it
    assert sorted(coco.getImgIds()) == [2008000002, 2008000003]
    assert coco.getCatIds(catNms=["dog"]) == [2]
    anns = coco.loadAnns(coco.getAnnIds(imgIds=[2008000003]))
    # VOC (1, 1, 40, 30) inclusive on a 40x30 image → the whole image; (11, 21, 30, 25) → x 10, w 20.
    assert [(a["category_id"], a["bbox"], a["area"], a["difficult"], a["iscrowd"]) for a in anns] == [
        (2, [0, 0, 40, 30], 1200, 0, 0),
        (1, [10, 20, 20, 5], 100, 1, 0),
    ]
    assert train.annotations(2008000002) == []  # a negative image stays
    assert [a["id"] for a in test.data["annotations"]] == [1, 2]

    assert train.data["info"]["image_root"] == "../raw"
    for image in train.images + test.images:
        path = train.image_path(image)
        assert path.resolve() == raw.jpeg(image["voc_id"]).resolve()
        assert Image.open(path).size == (image["width"], image["height"])

    assert summary["train"] == {"images": 2, "objects": 2, "difficult_objects": 1, "partial_annotations": 0}
    assert summary["test"] == {"images": 2, "objects": 2, "difficult_objects": 0, "partial_annotations": 0}
    assert summary["objects_per_class"] == {"cat": 2, "dog": 2}
    assert summary["masks"] == {"ids": 2, "images": 2, "outside_main": 0, "merged": 1, "resized": 0}
    assert not any(image["partial_annotations"] for image in train.images + test.images)
    assert summary["images_converted_to_rgb"] == 0
    assert summary["skipped"] == dict.fromkeys(REASONS, 0)
    assert all(isinstance(leaf, int) for leaf in _leaves(summary))


def _with_shifted_condition(root: Path) -> Raw:
    """The happy layout plus a shifted twin of test image 2009_000010, and cues on its objects."""
    raw = _happy(root)
    for voc_id, cue in (("2009_000010", "dog"), ("2109_000010", "cat")):
        if voc_id not in raw.ids:
            raw.image(voc_id, size=(36, 28))
        raw.xml(voc_id).write_text(_xml((36, 28), [("dog", 2, 3, 12, 13, 0, (cue, 5, 3, 8, 6))]), encoding="utf-8")
    raw.mask("cat", "2109_000010", size=(36, 28), box=(0, 0, 18, 28), value=120)
    raw.write_trainval()
    (root / VOC / "ImageSets/Main/shifted.txt").write_text("2109_000010 2009_000010\n")
    return raw


def test_shifted_condition_becomes_its_own_test_split_and_cues_are_carried(tmp_path):
    _with_shifted_condition(tmp_path / "raw")
    out, summary = _prepare(tmp_path)
    test, shifted, train = _load(out, "test"), _load(out, "test_shifted"), _load(out, "train")
    assert [im["voc_id"] for im in shifted["images"]] == ["2109_000010"]
    assert shifted["images"][0]["twin_of"] == "2009_000010" and "twin_of" not in test["images"][0]
    assert "2109_000010" not in {im["voc_id"] for im in test["images"] + train["images"]}
    assert shifted["images"][0]["human_mask"] == "masks/2109_000010.png"
    (ann,) = shifted["annotations"]
    assert ann["cue"] == {"category_id": 1, "bbox": [4, 2, 4, 4]}  # cat; 1-based inclusive -> 0-based [x, y, w, h]
    assert [a["cue"]["category_id"] for a in test["annotations"] if "cue" in a] == [2]
    assert all("cue" not in a for a in train["annotations"])
    assert summary["test_shifted"] == {"images": 1, "objects": 1, "difficult_objects": 0, "partial_annotations": 0}
    assert summary["masks"]["images"] == 3


def test_real_voc_layout_has_no_shifted_split(tmp_path):
    _happy(tmp_path / "raw")
    out, summary = _prepare(tmp_path)
    assert not (out / "test_shifted.json").exists() and "test_shifted" not in summary


def test_shifted_image_without_mask_is_always_an_error(tmp_path):
    _with_shifted_condition(tmp_path / "raw")
    (tmp_path / "raw" / MASKS / "cat" / "2109_000010.jpg").unlink()
    with pytest.raises(DataError, match="2109_000010.xml: listed in shifted.txt"):
        _prepare(tmp_path)


def test_every_masked_image_with_a_jpeg_and_xml_is_tested_those_outside_main_flagged_partial(tmp_path):
    """The study moved every masked image that has a JPEG into its test set, including ids that only another VOC
    task lists (action images annotate only the acting people): those are flagged, counted, never trained on."""
    raw = _happy(tmp_path / "raw")
    raw.image("2012_000004", objects=[("dog", 1, 1, 10, 10, 0)], listed=False)  # action task only, masked
    raw.mask("dog", "2012_000004")
    raw.image("2007_000005", listed=False)  # outside Main and unmasked: in neither split
    raw.image("2011_003001", listed=False)  # masked, but its XML is missing
    raw.xml("2011_003001").unlink()
    raw.mask("cat", "2011_003001")
    raw.write_trainval()
    out, summary = _prepare(tmp_path)

    test = {image["voc_id"]: image for image in _load(out, "test")["images"]}
    assert sorted(test) == ["2008_000001", "2009_000010", "2012_000004"]
    assert [voc_id for voc_id, image in test.items() if image["partial_annotations"]] == ["2012_000004"]
    assert _ids(out, "train") == ["2008_000002", "2008_000003"]  # Main/trainval minus the test ids
    assert (out / "masks" / "2012_000004.png").is_file()
    assert summary["test"]["partial_annotations"] == 1 and summary["train"]["partial_annotations"] == 0
    assert summary["masks"] == {"ids": 4, "images": 3, "outside_main": 1, "merged": 1, "resized": 0}
    assert summary["skipped"]["mask_without_image"] == 1


@pytest.mark.parametrize("policy", ["skip", "error"])
def test_a_mask_of_another_size_is_resized_to_its_image_when_the_policy_says_so(tmp_path, caplog, policy):
    raw = _happy(tmp_path / "raw")
    raw.image("2011_000020", size=(40, 30))
    raw.mask("cat", "2011_000020", size=(80, 60), box=(0, 0, 40, 60))  # left half, at twice the size
    raw.write_trainval()
    with caplog.at_level(logging.WARNING, logger="human_saliency.sources.prepare"):
        out, summary = _prepare(tmp_path, on_bad_input=policy, mask_size_mismatch="resize")
    assert "2011_000020" in _ids(out, "test")
    mask = load_mask(out / "masks" / "2011_000020.png")
    assert mask.shape == (30, 40) and mask[:, :18].min() > 200 and mask[:, 22:].max() < 50
    assert summary["masks"]["resized"] == 1 and summary["skipped"]["mask_size_mismatch"] == 0
    assert any("2011_000020.jpg: mask is 80x60" in record.getMessage() for record in caplog.records)


def test_dropping_more_than_max_dropped_fraction_of_the_masked_images_is_an_error(tmp_path):
    """If the benchmark's masks do not fit their images, dropping them all would leave a tiny test split."""
    raw = _happy(tmp_path / "raw")
    for number in range(3, 7):
        voc_id = f"2010_00000{number}"
        raw.image(voc_id)
        raw.mask("dog", voc_id, size=(30, 40))
    raw.write_trainval()
    message = (
        r"dropped 4 of 6 images with human masks \(66.7%\), more than prepare.max_dropped_fraction=0.5: "
        "mask_size_mismatch 4"
    )
    with pytest.raises(DataError, match=message):
        _prepare(tmp_path, max_dropped_fraction=0.5, mask_size_mismatch="drop")
    _, summary = _prepare(tmp_path, max_dropped_fraction=0.5, mask_size_mismatch="resize")
    assert summary["masks"]["resized"] == 4 and summary["test"]["images"] == 6


def test_masks_written_at_image_size_and_merged_by_pixelwise_max(tmp_path):
    raw = _happy(tmp_path / "raw")
    out, _ = _prepare(tmp_path)
    test = PreparedSplit.load(out / "test.json")
    by_id = {image["voc_id"]: image for image in test.images}
    merged_path = test.mask_path(by_id["2009_000010"])
    assert merged_path == out / "masks" / "2009_000010.png"
    merged = load_mask(merged_path)
    cat = load_mask(raw.mask_root / "cat" / "2009_000010.jpg")
    dog = load_mask(raw.mask_root / "dog" / "2009_000010.jpg")
    np.testing.assert_array_equal(merged, np.maximum(cat, dog))
    assert merged.shape == (28, 36)
    assert abs(int(merged[5, 5]) - 120) <= 3 and abs(int(merged[5, 20]) - 250) <= 3  # cat only / overlap
    assert sorted(p.name for p in (out / "masks").iterdir()) == ["2008_000001.png", "2009_000010.png"]


def test_masks_paired_by_id_not_listing_order(tmp_path):
    # The study zipped two directory listings. Here class-folder order (cat < dog) differs from id
    # order and trainval.txt is shuffled; each mask has its own image's size and a value tied to its id.
    raw = Raw(tmp_path / "raw")
    expected = {}
    for k in range(6):
        voc_id = f"2010_{k:06d}"
        size = (30 + 3 * k, 20 + 2 * k)
        raw.image(voc_id, size=size)
        cls = "dog" if k < 3 else "cat"
        raw.mask(cls, voc_id, size=size, box=(0, 0, *size), value=40 * k + 20)
        expected[voc_id] = 40 * k + 20
    raw.image("2010_000099")  # one image for the train split
    raw.stimulus("s1")
    raw.write_trainval(seed=3)
    out, summary = _prepare(tmp_path)
    assert summary["skipped"]["mask_size_mismatch"] == 0
    for image in PreparedSplit.load(out / "test.json").images:
        mask = load_mask(out / image["human_mask"])
        assert mask.shape == (image["height"], image["width"])
        assert abs(int(mask.mean()) - expected[image["voc_id"]]) <= 2


def test_mit1003_index(tmp_path):
    _happy(tmp_path / "raw")
    out, summary = _prepare(tmp_path)
    prepared = PreparedStimuli.load(out / "mit1003.json")
    s1, s2 = prepared.stimuli
    assert (s1["id"], s1["width"], s1["height"], s1["n_fixations"]) == ("s1", 20, 16, 3)
    assert s1["file_name"] == "mit1003/ALLSTIMULI/s1.jpeg"
    assert s1["fixpts"] == "mit1003/ALLFIXATIONMAPS/s1_fixPts.jpg"
    assert prepared.resolve(s2["fixmap"]).is_file() and s2["n_fixations"] == 2
    assert summary["mit1003"] == {"stimuli": 2, "fixations": 5, "converted_to_rgb": 0}


def test_output_is_deterministic(tmp_path):
    _happy(tmp_path / "raw")
    first, _ = _prepare(tmp_path)
    second = tmp_path / "again"
    prepare_dataset(tmp_path / "raw", second, classes=CLASSES, max_dropped_fraction=0.0)
    for name in ("train.json", "test.json", "mit1003.json", "masks/2009_000010.png"):
        assert (first / name).read_bytes() == (second / name).read_bytes()


def test_real_archive_nesting_with_a_decoy_mask_folder(tmp_path):
    root = tmp_path / "raw"
    nested = Path("human_masks/ML-Interpretability-Evaluation-Benchmark-master/Image/PASCAL_VOC_2012")
    raw = Raw(root, mask_root=nested / "human_attention_mask")
    # The real benchmark also has an ImageNet human_attention_mask folder.
    (root / nested.parent / "ImageNet" / "human_attention_mask").mkdir(parents=True)
    raw.image("2008_000001")
    raw.image("2008_000002")
    raw.mask("cat", "2008_000001")
    raw.stimulus("s1")
    raw.write_trainval()
    out, summary = _prepare(tmp_path)
    assert summary["test"]["images"] == 1


@pytest.mark.parametrize("policy", ["skip", "error"])
@pytest.mark.parametrize("missing", ["voc", "human_masks", "mit1003/ALLSTIMULI", "mit1003/ALLFIXATIONMAPS"])
def test_missing_anchor_is_always_an_error_naming_raw_dir(tmp_path, policy, missing):
    _happy(tmp_path / "raw")
    target = tmp_path / "raw" / missing
    target.rename(target.with_name("_moved"))
    with pytest.raises(DataError, match=str(tmp_path / "raw")):
        _prepare(tmp_path, on_bad_input=policy)


def test_two_anchor_matches_are_an_error_listing_them(tmp_path):
    _happy(tmp_path / "raw")
    (tmp_path / "raw/voc/copy/VOCdevkit/VOC2012").mkdir(parents=True)
    with pytest.raises(DataError, match=r"found 2 \(.*copy/VOCdevkit/VOC2012.*\) VOCdevkit/VOC2012 folders"):
        _prepare(tmp_path)


# --- the bad-input policy: each case under "skip" (warn, count, go on) and "error" (stop) ---------------


def _run_case(tmp_path, caplog, policy, break_it):
    raw = _happy(tmp_path / "raw")
    culprit = break_it(raw)
    raw.write_trainval()
    if policy == "error":
        with pytest.raises(DataError, match=Path(culprit).name):
            _prepare(tmp_path, on_bad_input="error")
        return None, None
    with caplog.at_level(logging.WARNING, logger="human_saliency.sources.prepare"):
        out, summary = _prepare(tmp_path)
    assert any(Path(culprit).name in record.getMessage() for record in caplog.records)
    return out, summary


def _ids(out, split):
    return [image["voc_id"] for image in _load(out, split)["images"]]


@pytest.mark.parametrize("policy", ["skip", "error"])
def test_truncated_jpeg(tmp_path, caplog, policy):
    def cut(raw):
        raw.image("2011_000001")
        path = raw.jpeg("2011_000001")
        pixels = np.random.default_rng(0).integers(0, 256, (30, 40, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(path, quality=90)
        path.write_bytes(path.read_bytes()[:-60])
        return path

    out, summary = _run_case(tmp_path, caplog, policy, cut)
    if policy == "skip":
        assert summary["skipped"]["unreadable_image"] == 1
        assert "2011_000001" not in _ids(out, "train") + _ids(out, "test")


@pytest.mark.parametrize("policy", ["skip", "error"])
@pytest.mark.parametrize("mode", ["CMYK", "L"])
def test_cmyk_and_grayscale_jpegs_are_converted_not_errors(tmp_path, policy, mode):
    raw = _happy(tmp_path / "raw")
    raw.image("2011_000002", mode=mode)
    raw.write_trainval()
    out, summary = _prepare(tmp_path, on_bad_input=policy)
    assert "2011_000002" in _ids(out, "train")
    assert summary["images_converted_to_rgb"] == 1
    assert sum(summary["skipped"].values()) == 0


@pytest.mark.parametrize("policy", ["skip", "error"])
@pytest.mark.parametrize(
    "xml",
    [
        "<annotation><size><width>40",
        "<annotation><object><bndbox><xmin>1</xmin><ymin>1</ymin><xmax>5</xmax><ymax>5</ymax></bndbox></object>"
        "</annotation>",  # an object without <name>
    ],
)
def test_malformed_xml_or_missing_field(tmp_path, caplog, policy, xml):
    def corrupt(raw):
        raw.image("2011_000003")
        raw.xml("2011_000003").write_text(xml)
        return raw.xml("2011_000003")

    out, summary = _run_case(tmp_path, caplog, policy, corrupt)
    if policy == "skip":
        assert summary["skipped"]["malformed_xml"] == 1
        assert "2011_000003" not in _ids(out, "train")


@pytest.mark.parametrize("policy", ["skip", "error"])
def test_box_outside_image_is_clipped_or_dropped(tmp_path, caplog, policy):
    def overflow(raw):
        # 40x30 image: the cat spills over the right and bottom edges, the dog lies wholly outside.
        raw.image("2011_000004", objects=[("cat", 31, 21, 55, 45, 0), ("dog", 50, 1, 60, 10, 0)])
        raw.image("2011_000005", objects=[("dog", 0, 0, 0, 12, 0)])  # clipped to zero width
        return raw.xml("2011_000004")

    out, summary = _run_case(tmp_path, caplog, policy, overflow)
    if policy == "skip":
        train = PreparedSplit.load(out / "train.json")
        anns = train.annotations(2011000004)
        assert [(a["category_id"], a["bbox"], a["area"]) for a in anns] == [(1, [30, 20, 10, 10], 100)]
        assert train.annotations(2011000005) == []
        assert "2011_000005" in _ids(out, "train")  # left without boxes, kept as a negative
        assert summary["skipped"]["boxes_clipped"] == 3
        assert summary["skipped"]["boxes_dropped"] == 2
        assert summary["skipped"]["images_without_boxes"] == 1


@pytest.mark.parametrize("policy", ["skip", "error"])
def test_min_box_size_drops_small_boxes_under_both_policies(tmp_path, policy):
    raw = _happy(tmp_path / "raw")
    raw.image("2011_000006", objects=[("cat", 5, 5, 7, 20, 0), ("dog", 5, 5, 20, 20, 0)])  # 3 px wide cat
    raw.write_trainval()
    out, summary = _prepare(tmp_path, on_bad_input=policy, min_box_size=4)
    anns = PreparedSplit.load(out / "train.json").annotations(2011000006)
    assert [a["bbox"] for a in anns] == [[4, 4, 16, 16]]
    assert summary["skipped"]["boxes_dropped"] == 1


@pytest.mark.parametrize("policy", ["skip", "error"])
def test_size_mismatched_mask_drops_the_image_from_both_splits(tmp_path, caplog, policy):
    def mismatch(raw):
        raw.image("2011_000007", size=(40, 30))
        return raw.mask("cat", "2011_000007", size=(30, 40))

    out, summary = _run_case(tmp_path, caplog, policy, mismatch)
    if policy == "skip":
        assert summary["skipped"]["mask_size_mismatch"] == 1
        assert "2011_000007" not in _ids(out, "train") + _ids(out, "test")
        assert not (out / "masks" / "2011_000007.png").exists()


@pytest.mark.parametrize("policy", ["skip", "error"])
def test_unreadable_mask_drops_the_image(tmp_path, caplog, policy):
    def garbage(raw):
        raw.image("2011_000008")
        path = raw.mask("cat", "2011_000008")
        path.write_bytes(b"\xff\xd8\xff not a jpeg")
        return path

    out, summary = _run_case(tmp_path, caplog, policy, garbage)
    if policy == "skip":
        assert summary["skipped"]["unreadable_mask"] == 1
        assert "2011_000008" not in _ids(out, "train") + _ids(out, "test")


@pytest.mark.parametrize("policy", ["skip", "error"])
@pytest.mark.parametrize("cause", ["not_listed", "no_jpeg"])
def test_mask_without_image(tmp_path, caplog, policy, cause):
    def orphan(raw):
        if cause == "no_jpeg":
            raw.image("2011_000009")
            raw.jpeg("2011_000009").unlink()
        return raw.mask("dog", "2011_000009")

    out, summary = _run_case(tmp_path, caplog, policy, orphan)
    if policy == "skip":
        assert summary["skipped"]["mask_without_image"] == 1
        assert summary["skipped"]["missing_image"] == (cause == "no_jpeg")
        assert summary["test"]["images"] == 2
        assert not (out / "masks" / "2011_000009.png").exists()


@pytest.mark.parametrize("policy", ["skip", "error"])
def test_listed_image_without_jpeg(tmp_path, caplog, policy):
    def no_jpeg(raw):
        raw.image("2011_000010")
        raw.jpeg("2011_000010").unlink()
        return raw.jpeg("2011_000010")

    out, summary = _run_case(tmp_path, caplog, policy, no_jpeg)
    if policy == "skip":
        assert summary["skipped"]["missing_image"] == 1
        assert summary["train"]["images"] == 2


@pytest.mark.parametrize("policy", ["skip", "error"])
def test_listed_image_without_xml(tmp_path, caplog, policy):
    def no_xml(raw):
        raw.image("2011_000011")
        raw.xml("2011_000011").unlink()
        return raw.xml("2011_000011")

    out, summary = _run_case(tmp_path, caplog, policy, no_xml)
    if policy == "skip":
        assert summary["skipped"]["missing_annotation"] == 1


@pytest.mark.parametrize("policy", ["skip", "error"])
def test_xml_size_disagreeing_with_image_trusts_the_image(tmp_path, caplog, policy):
    def wrong_size(raw):
        raw.image("2011_000012", size=(40, 30), xml_size=(500, 375), objects=[("cat", 1, 1, 60, 20, 0)])
        return raw.xml("2011_000012")

    out, summary = _run_case(tmp_path, caplog, policy, wrong_size)
    if policy == "skip":
        image = next(i for i in _load(out, "train")["images"] if i["voc_id"] == "2011_000012")
        assert (image["width"], image["height"]) == (40, 30)
        assert summary["skipped"]["xml_size_mismatch"] == 1
        anns = PreparedSplit.load(out / "train.json").annotations(2011000012)
        assert anns[0]["bbox"] == [0, 0, 40, 20]  # clipped to the real image, not the XML's size


@pytest.mark.parametrize("policy", ["skip", "error"])
def test_unknown_class_object(tmp_path, caplog, policy):
    def unknown(raw):
        raw.image("2011_000013", objects=[("zebra", 1, 1, 10, 10, 0), ("dog", 1, 1, 10, 10, 0)])
        return raw.xml("2011_000013")

    out, summary = _run_case(tmp_path, caplog, policy, unknown)
    if policy == "skip":
        assert summary["skipped"]["unknown_class"] == 1
        anns = PreparedSplit.load(out / "train.json").annotations(2011000013)
        assert [a["category_id"] for a in anns] == [2]


@pytest.mark.parametrize("policy", ["skip", "error"])
@pytest.mark.parametrize("case", ["mit1003_missing_fixations", "mit1003_size_mismatch", "mit1003_no_fixations"])
def test_mit1003_bad_stimuli(tmp_path, caplog, policy, case):
    def spoil(raw):
        if case == "mit1003_missing_fixations":
            raw.stimulus("bad", fixpts=False)
        elif case == "mit1003_no_fixations":
            raw.stimulus("bad", points=())
        else:
            raw.stimulus("bad")
            Image.new("L", (5, 5)).save(raw.root / "mit1003/ALLFIXATIONMAPS/bad_fixMap.jpg")
        return raw.root / "mit1003" / "bad"

    out, summary = _run_case(tmp_path, caplog, policy, spoil)
    if policy == "skip":
        assert summary["skipped"][case] == 1
        assert summary["mit1003"]["stimuli"] == 2


@pytest.mark.parametrize("policy", ["skip", "error"])
@pytest.mark.parametrize("size", ["", "<size><width>0</width><height>0</height></size>"], ids=["missing", "0x0"])
def test_missing_or_zero_xml_size_takes_the_image_size(tmp_path, caplog, policy, size):
    def no_size(raw):
        raw.image("2011_000014", size=(40, 30), objects=[("cat", 1, 1, 60, 20, 0)])
        xml = raw.xml("2011_000014")
        declared = "<size><width>40</width><height>30</height><depth>3</depth></size>"
        xml.write_text(xml.read_text().replace(declared, size))
        return xml

    out, summary = _run_case(tmp_path, caplog, policy, no_size)
    if policy == "skip":
        image = next(i for i in _load(out, "train")["images"] if i["voc_id"] == "2011_000014")
        assert (image["width"], image["height"]) == (40, 30)
        assert summary["skipped"]["size_from_image"] == 1
        assert PreparedSplit.load(out / "train.json").annotations(2011000014)[0]["bbox"] == [0, 0, 40, 20]


@pytest.mark.parametrize("policy", ["skip", "error"])
def test_object_without_bndbox_drops_that_object_only(tmp_path, caplog, policy):
    def boxless(raw):
        raw.image("2011_000015", objects=[("dog", 2, 2, 12, 12, 0)])
        xml = raw.xml("2011_000015")
        xml.write_text(xml.read_text().replace("</annotation>", "<object><name>cat</name></object></annotation>"))
        return xml

    out, summary = _run_case(tmp_path, caplog, policy, boxless)
    if policy == "skip":
        assert summary["skipped"]["objects_without_box"] == 1
        anns = PreparedSplit.load(out / "train.json").annotations(2011000015)
        assert [a["category_id"] for a in anns] == [2]


def test_difficult_true_and_false_are_flags_not_errors(tmp_path):
    raw = _happy(tmp_path / "raw")
    raw.image("2011_000016", objects=[("dog", 2, 2, 12, 12, "True"), ("cat", 2, 2, 12, 12, "false")])
    raw.write_trainval()
    out, summary = _prepare(tmp_path, on_bad_input="error")
    anns = PreparedSplit.load(out / "train.json").annotations(2011000016)
    assert [a["difficult"] for a in anns] == [1, 0]


@pytest.mark.parametrize("policy", ["skip", "error"])
def test_mask_outside_a_class_folder_is_named_and_counted(tmp_path, caplog, policy):
    def stray(raw):
        path = raw.mask("cat", "2008_000002")
        return path.rename(raw.mask_root / path.name)

    out, summary = _run_case(tmp_path, caplog, policy, stray)
    if policy == "skip":
        assert summary["skipped"]["mask_outside_class_folder"] == 1
        assert summary["test"]["images"] == 2


# --- nothing passes silently: empty splits and mass drops stop the stage ------------------------------


def test_every_masked_image_dropped_is_an_error_not_an_empty_test_split(tmp_path):
    raw = Raw(tmp_path / "raw")
    raw.image("2008_000001")
    raw.image("2008_000002")
    raw.mask("cat", "2008_000002", size=(30, 40))  # a stale mask archive: no size fits
    raw.stimulus("s1")
    raw.write_trainval()
    with pytest.raises(DataError, match=r"the test split is empty .*mask_size_mismatch 1"):
        _prepare(tmp_path)


def test_no_mask_matching_any_image_is_an_error(tmp_path):
    raw = Raw(tmp_path / "raw")
    raw.image("2008_000001")
    raw.mask("cat", "2012_000009")  # an id outside trainval
    raw.stimulus("s1")
    raw.write_trainval()
    with pytest.raises(DataError, match=r"the test split is empty .*mask_without_image 1"):
        _prepare(tmp_path)


def test_an_empty_train_split_is_an_error(tmp_path):
    raw = Raw(tmp_path / "raw")
    raw.image("2008_000001")
    raw.mask("cat", "2008_000001")
    raw.stimulus("s1")
    raw.write_trainval()
    with pytest.raises(DataError, match="the train split is empty"):
        _prepare(tmp_path)


def test_no_usable_mit1003_stimulus_is_an_error(tmp_path):
    raw = _happy(tmp_path / "raw")
    for path in (raw.root / "mit1003" / "ALLFIXATIONMAPS").glob("*_fixPts.jpg"):
        path.unlink()
    with pytest.raises(DataError, match=r"no MIT1003 stimulus is usable: mit1003_missing_fixations 2"):
        _prepare(tmp_path)


def _two_unreadable(raw):
    for voc_id in ("2011_000017", "2011_000018"):
        raw.image(voc_id)
        raw.jpeg(voc_id).write_bytes(b"not a jpeg")
    raw.image("2011_000019")
    raw.xml("2011_000019").write_text("<annotation>")


def test_dropping_more_than_max_dropped_fraction_is_an_error_naming_the_reasons(tmp_path):
    raw = _happy(tmp_path / "raw")
    _two_unreadable(raw)
    raw.write_trainval()
    message = (
        r"dropped 3 of 7 images \(42.9%\), more than prepare.max_dropped_fraction=0.4: "
        "unreadable_image 2, malformed_xml 1"
    )
    with pytest.raises(DataError, match=message):
        _prepare(tmp_path, max_dropped_fraction=0.4)
    _, summary = _prepare(tmp_path, max_dropped_fraction=0.5)
    assert summary["train"]["images"] + summary["test"]["images"] == 4


def test_policy_table_lists_every_reason():
    first_words = [line.split(maxsplit=1)[0] for line in prepare_module.__doc__.splitlines() if line.strip()]
    assert [word for word in first_words if word in REASONS] == list(REASONS)


def test_shifted_twins_count_as_masked_images_that_were_kept(tmp_path):
    """Regression: the masked-ids drop check counted only test.json, so every shifted twin read as dropped."""
    _with_shifted_condition(tmp_path / "raw")
    _, summary = _prepare(tmp_path, max_dropped_fraction=0.0)
    assert summary["masks"]["images"] == summary["masks"]["ids"]
