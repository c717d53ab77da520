"""Augmented training sets: replace semantics, paths, annotation ids, boxes through the policy, the selection."""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from human_saliency.experiment.augment import _write_split, original_set, policy_set, selective_set
from human_saliency.experiment.erasing import erase
from human_saliency.experiment.inpainting import inpaint
from human_saliency.experiment.training_data import DetectionDataset
from human_saliency.io.files import atomic_dir, read_json
from human_saliency.io.images import load_rgb
from human_saliency.io.mapstore import MapReader, MapWriter
from human_saliency.prepared.splits import PreparedSplit, coco_index

from conftest import tiny_prepared

pytestmark = pytest.mark.usefixtures("one_thread")

WIDTH, HEIGHT = 48, 32  # the builder's default, non-square: a swapped width and height shows
A, B, C, D = "2008_000001", "2008_000002", "2008_000003", "2008_000004"


@pytest.fixture(scope="module")
def split(tmp_path_factory) -> PreparedSplit:
    """4 training images: A, B, C with a square (ids 1, 3, 5) and a disc (2, 4, 6; B's is difficult), D negative."""
    root = tmp_path_factory.mktemp("data")
    prepared = tiny_prepared(root, train=4, size=(WIDTH, HEIGHT), difficult={(B, "disc")}, negatives={D})
    return PreparedSplit.load(prepared / "train.json")


def pixels(path: Path) -> np.ndarray:
    return np.asarray(load_rgb(path))


def load_set(out: Path) -> PreparedSplit:
    """The set read back as train does, checked to be a COCO index and a training dataset."""
    augmented = PreparedSplit.load(out / "train.json")
    coco_index(augmented.data)
    dataset = DetectionDataset(augmented, size=16)  # checks each file's size against the recorded one
    for index in range(len(dataset)):
        dataset[index]
    return augmented


def assert_same_images(augmented: PreparedSplit, split: PreparedSplit) -> None:
    """Replace semantics: every training image exactly once, in id order."""
    assert [img["id"] for img in augmented.images] == [img["id"] for img in split.images]


def test_original_set_references_every_image_where_it_is(split, tmp_path):
    with atomic_dir(tmp_path / "original") as tmp:  # as the stage writes it: paths made in a temporary sibling
        counts = original_set(split, tmp)
    out = tmp_path / "original"
    augmented = load_set(out)
    assert counts == {"images": 4, "changed": 0}
    assert augmented.data["info"]["image_root"] == "."
    assert_same_images(augmented, split)
    for img, before in zip(augmented.images, split.images, strict=True):
        assert not Path(img["file_name"]).is_absolute() and not img["file_name"].startswith("images/")
        assert (out / img["file_name"]).resolve() == split.image_path(before).resolve()
        assert (img["width"], img["height"]) == (before["width"], before["height"])
    assert augmented.data["annotations"] == split.data["annotations"]
    assert list((out / "images").iterdir()) == []


def test_write_split_renumbers_annotations_by_image_then_old_id(split, tmp_path):
    """A's boxes replaced (given out of order, one added) and A resized; B's boxes all gone; C's image
    already written (selective); D untouched. Input annotations listed backwards: order must come from the ids."""
    backwards = PreparedSplit(split.path, {**split.data, "annotations": split.data["annotations"][::-1]})
    first, second = copy.deepcopy(split.annotations(split.images[0]["id"]))
    assert (first["id"], second["id"]) == (1, 2)
    added = {**first, "id": 100, "bbox": [0.0, 0.0, 3.0, 4.0], "area": 12.0}
    resized = np.full((20, 30, 3), 7, dtype=np.uint8)  # H 20, W 30: unlike the 32×48 original
    edits = {
        A: (resized, [added, {**second, "bbox": [1.0, 2.0, 5.0, 6.0]}, {**first, "bbox": [9.0, 8.0, 7.0, 6.0]}]),
        B: (pixels(split.image_path(split.images[1])), []),
        C: (None, None),
    }
    _write_split(backwards, tmp_path, edits)
    augmented = PreparedSplit.load(tmp_path / "train.json")

    assert_same_images(augmented, split)
    anns = augmented.data["annotations"]
    assert [a["id"] for a in anns] == [1, 2, 3, 4, 5]
    # (image, old id) order: A's old 1, 2, 100, then C's old 5 and 6; B keeps its entry as a negative.
    assert [(a["image_id"], a["bbox"]) for a in anns] == [
        (2008000001, [9.0, 8.0, 7.0, 6.0]),
        (2008000001, [1.0, 2.0, 5.0, 6.0]),
        (2008000001, [0.0, 0.0, 3.0, 4.0]),
        (2008000003, split.annotations(2008000003)[0]["bbox"]),
        (2008000003, split.annotations(2008000003)[1]["bbox"]),
    ]
    images = {img["voc_id"]: img for img in augmented.images}
    assert (images[A]["width"], images[A]["height"]) == (30, 20)
    np.testing.assert_array_equal(pixels(tmp_path / "images" / f"{A}.png"), resized)
    assert augmented.annotations(2008000002) == []
    for key in (A, B, C):
        assert images[key]["file_name"] == f"images/{key}.png"
    assert (images[C]["width"], images[C]["height"]) == (WIDTH, HEIGHT)
    assert not (tmp_path / "images" / f"{C}.png").exists()  # (None, None): selective_set writes it itself
    assert (tmp_path / images[D]["file_name"]).resolve() == split.image_path(split.images[3]).resolve()


def test_policy_flip_moves_each_box_to_its_mirrored_xywh(split, tmp_path):
    counts = policy_set(split, tmp_path, policy=[{"name": "RandomHorizontalFlip", "p": 1.0}], seed=0, min_box_size=1)
    augmented = load_set(tmp_path)
    assert counts == {"images": 4, "changed": 3}  # D, a plain negative, is its own mirror image: unchanged
    assert_same_images(augmented, split)
    expected = [
        {**a, "bbox": [WIDTH - a["bbox"][0] - a["bbox"][2], *a["bbox"][1:]], "area": a["area"]}
        for a in split.data["annotations"]
    ]
    assert augmented.data["annotations"] == expected  # categories, difficult flags and ids carried
    for img, before in zip(augmented.images, split.images, strict=True):
        changed = img["voc_id"] != D
        assert (img["file_name"] == f"images/{img['voc_id']}.png") == changed
        assert (img["width"], img["height"]) == (WIDTH, HEIGHT)
        np.testing.assert_array_equal(pixels(tmp_path / img["file_name"]), pixels(split.image_path(before))[:, ::-1])


def test_policy_resize_records_the_new_width_and_height_and_scales_the_boxes(split, tmp_path):
    # The whole image (scale 1, its own aspect ratio), resized to H 16 × W 36: x × 0.75, y × 0.5.
    step = {"name": "RandomResizedCrop", "size": [16, 36], "scale": [1.0, 1.0], "ratio": [WIDTH / HEIGHT] * 2}
    policy_set(split, tmp_path, policy=[step], seed=0, min_box_size=1)
    augmented = load_set(tmp_path)
    for img in augmented.images:
        assert (img["width"], img["height"]) == (36, 16)
        assert pixels(tmp_path / img["file_name"]).shape == (16, 36, 3)
    got = [a["bbox"] for a in augmented.data["annotations"]]
    assert got == [
        [x * 0.75, y * 0.5, w * 0.75, h * 0.5] for x, y, w, h in (a["bbox"] for a in split.data["annotations"])
    ]


def test_policy_keeps_an_image_whose_boxes_all_vanish_as_a_negative(split, tmp_path):
    # Every box is 12 px: a minimum of 13 drops them all, as a crop that cuts every object away would.
    counts = policy_set(split, tmp_path, policy=[{"name": "RandomHorizontalFlip", "p": 1.0}], seed=0, min_box_size=13)
    augmented = load_set(tmp_path)
    assert counts == {"images": 4, "changed": 3}  # D, a plain negative with no box to lose, stays as it was
    assert_same_images(augmented, split)
    assert augmented.data["annotations"] == []
    assert all((tmp_path / img["file_name"]).is_file() for img in augmented.images)


@pytest.fixture(scope="module")
def base_maps(tmp_path_factory, split) -> MapReader:
    """A seeded random 16×16 working-size map per training image."""
    path = tmp_path_factory.mktemp("maps") / "train.zip"
    rng = np.random.default_rng(1)
    with MapWriter(path) as writer:
        for img in split.images:
            writer.add(img["voc_id"], rng.random((16, 16)))
    with MapReader(path) as reader:
        yield reader


def selection(split: PreparedSplit, chosen: set[str]) -> pd.DataFrame:
    keys = [img["voc_id"] for img in split.images]
    return pd.DataFrame(
        {
            "id": keys,
            "score": [0.25 * i for i in range(len(keys))],
            "selected": [k in chosen for k in keys],
            "skipped": [""] * len(keys),
        }
    ).set_index("id")


def test_selective_set_replaces_only_the_selected_images(split, base_maps, tmp_path):
    table = selection(split, {A, C})
    counts = selective_set(split, tmp_path, selection=table, base_maps=base_maps, fraction=0.1, fill=0)
    augmented = load_set(tmp_path)
    assert counts == {
        "images": 4,
        "changed": 2,
        "selected": 2,
        "skipped_degenerate_base_maps": 0,
        "skipped_degenerate_fixation_maps": 0,
        "erase_shortfall_images": 0,  # random maps: every pixel is salient
        "erase_shortfall_pixels": 0,
    }
    assert_same_images(augmented, split)
    for img, before in zip(augmented.images, split.images, strict=True):
        original = pixels(split.image_path(before))
        assert (img["width"], img["height"]) == (before["width"], before["height"])
        if img["voc_id"] in (A, C):
            assert img["file_name"] == f"images/{img['voc_id']}.png"
            erased, mask = erase(original, base_maps[img["voc_id"]], fraction=0.1, fill=0)
            np.testing.assert_array_equal(pixels(tmp_path / img["file_name"]), erased)
            assert mask.sum() == round(0.1 * WIDTH * HEIGHT)
        else:
            assert (tmp_path / img["file_name"]).resolve() == split.image_path(before).resolve()
    assert augmented.data["annotations"] == split.data["annotations"]  # erasing moves no box
    written = pd.read_csv(tmp_path / "selection.csv", index_col="id", keep_default_na=False, dtype={"skipped": str})
    pd.testing.assert_frame_equal(written, table)


def test_selective_set_inpaints_the_erased_pixels_when_asked(split, base_maps, tmp_path):
    options = {"method": "telea", "radius": 2.0}
    selective_set(
        split, tmp_path, selection=selection(split, {B}), base_maps=base_maps, fraction=0.1, fill=0, inpainting=options
    )
    erased, mask = erase(pixels(split.image_path(split.images[1])), base_maps[B], fraction=0.1, fill=0)
    np.testing.assert_array_equal(pixels(tmp_path / "images" / f"{B}.png"), inpaint(erased, mask, **options))
    assert options == {"method": "telea", "radius": 2.0}  # the caller's options are not consumed


def test_selective_set_with_nothing_selected_equals_the_original_set(split, base_maps, tmp_path):
    original_set(split, tmp_path / "original")
    table = selection(split, set())
    counts = selective_set(split, tmp_path / "erasing", selection=table, base_maps=base_maps, fraction=0.1, fill=0)
    assert counts["images"] == 4 and counts["changed"] == counts["selected"] == 0
    load_set(tmp_path / "erasing")
    assert read_json(tmp_path / "erasing" / "train.json") == read_json(tmp_path / "original" / "train.json")
    assert list((tmp_path / "erasing" / "images").iterdir()) == []
    assert (tmp_path / "erasing" / "selection.csv").is_file()


def test_images_the_policy_leaves_as_they_were_are_not_counted_as_changed(split, tmp_path):
    """Regression (issue 10.8): the non-trivial arm counted every image as changed, even those the policy
    passed through unchanged; they keep their original file."""
    counts = policy_set(split, tmp_path, policy=[{"name": "RandomHorizontalFlip", "p": 0.0}], seed=0, min_box_size=1)
    augmented = load_set(tmp_path)
    assert counts == {"images": 4, "changed": 0}
    assert augmented.data["annotations"] == split.data["annotations"]
    for img, before in zip(augmented.images, split.images, strict=True):
        assert (tmp_path / img["file_name"]).resolve() == split.image_path(before).resolve()
