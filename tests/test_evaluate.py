"""The main experiment's evaluation of one arm: each seed's maps on each test condition in the saliency layout, the
random-init maps, per-image scores (the cue mass among them), and numeric-only metrics over seeds and images."""

from __future__ import annotations

import contextlib
import json
import math

import numpy as np
import pandas as pd
import pytest
import torch

from human_saliency.experiment import train
from human_saliency.experiment.arms import COLUMNS
from human_saliency.experiment.evaluate import evaluate_arm
from human_saliency.io.mapstore import MapReader, MapWriter
from human_saliency.maps.layout import detections_path, info_path, maps_path, random_maps_path
from human_saliency.maps.saliency import write_random_init_maps
from human_saliency.prepared.loaders import split_images, stimuli_images
from human_saliency.prepared.masks import cue_regions, working_size_masks
from human_saliency.prepared.splits import load_conditions
from human_saliency.prepared.stimuli import PreparedStimuli

from conftest import tiny_prepared

NAME = "fasterrcnn_mobilenet"
SIZE = 64
SEED = 3  # not build_detector's default 0: the random-init maps must follow the seed given
OPTIONS = dict(size=SIZE, min_size=SIZE, batch_size=2, score_threshold=0.0, max_detections=100, proposals=None,
               iou_percentile=90.0, mask_threshold=0.5, n_boot=20, seed=SEED, device=torch.device("cpu"))  # fmt: skip

pytestmark = pytest.mark.usefixtures("one_thread")


SEEDS = (0, 1)


def _with_shifted_twins(prepared) -> None:
    """Give test.json's objects a planted cue (its top-left quarter) and write test_shifted.json: a twin of each
    test image (same file, ``twin_of``), as prepare writes for the embedded data."""
    path = prepared / "test.json"
    data = json.loads(path.read_text())
    for ann in data["annotations"]:
        x, y, w, h = ann["bbox"]
        ann["cue"] = {"category_id": ann["category_id"], "bbox": [x, y, max(w // 2, 1), max(h // 2, 1)]}
    path.write_text(json.dumps(data))
    twins = {**data, "images": [], "annotations": []}
    for image in data["images"]:
        twin_id = image["id"] + 10**7  # 2009_000001 → 2019_000001, the numeric id of its VOC id
        voc_id = f"{str(twin_id)[:4]}_{str(twin_id)[4:]}"
        twins["images"].append({**image, "id": twin_id, "voc_id": voc_id, "twin_of": image["voc_id"]})
        twins["annotations"] += [
            {**ann, "id": ann["id"] + 1000, "image_id": twin_id} for ann in data["annotations"]
            if ann["image_id"] == image["id"]
        ]  # fmt: skip
    (prepared / "test_shifted.json").write_text(json.dumps(twins))


@pytest.fixture(scope="module")
def evaluated(tmp_path_factory, one_thread) -> dict:
    """Two saved, untrained 2-class models (seeds 0 and 1) evaluated on 3 non-square test images and their shifted
    twins, with hand-made fixation maps, and on 2 MIT1003 stimuli."""
    root = tmp_path_factory.mktemp("evaluate")
    prepared = tiny_prepared(root, train=0, test=3, mit1003=2)
    _with_shifted_twins(prepared)
    conditions = load_conditions(prepared)
    models = {}
    for seed in SEEDS:
        torch.manual_seed(seed)
        model = train.build_model(NAME, init="random", num_classes=2, size=SIZE, cache_dir=None)
        train.save_model(model, root / f"model{seed}.pt", meta={"detector": NAME})
        models[seed] = root / f"model{seed}.pt"
    rng = np.random.default_rng(0)
    for name, split in conditions.items():
        with MapWriter(root / f"fixations_{name}.zip") as writer:
            for image in split.images:
                writer.add(image["voc_id"], rng.random((SIZE, SIZE)))
    with contextlib.ExitStack() as stack:
        fixations = {name: stack.enter_context(MapReader(root / f"fixations_{name}.zip")) for name in conditions}
        result = evaluate_arm(
            NAME, models, conditions,
            masks={name: working_size_masks(split, SIZE) for name, split in conditions.items()},
            cues={name: cue_regions(split, SIZE) for name, split in conditions.items()},
            fixations=fixations, stimuli=stimuli_images(PreparedStimuli.load(prepared / "mit1003.json")),
            out_dir=root / "out", label="trained here: Original", **OPTIONS,
        )  # fmt: skip
    return {"result": result, "out": root / "out", "conditions": conditions, "root": root}


def leaves(tree: dict):
    for value in tree.values():
        yield from leaves(value) if isinstance(value, dict) else [value]


def test_writes_each_seeds_maps_in_the_saliency_layout(evaluated):
    for seed in SEEDS:
        folder = evaluated["out"] / f"seed{seed}"
        for name, split in evaluated["conditions"].items():
            ids = sorted(image["voc_id"] for image in split.images)
            for path in (maps_path(folder, name), random_maps_path(folder, name)):
                with MapReader(path) as maps:
                    assert maps.ids() == ids
                    assert all(maps[key].shape == (SIZE, SIZE) for key in ids)
            assert isinstance(json.loads(detections_path(folder, name).read_text()), list)
            assert {p.name for p in (folder / name).iterdir()} == {f"{r}.csv" for r in COLUMNS}
        with MapReader(maps_path(folder, "mit1003")) as maps:
            assert maps.ids() == ["i01", "i02"]
        info = json.loads(info_path(folder).read_text())
        assert info["weights"] == f"trained here: Original, seed {seed}" and info["counts"]["test"]["images"] == 3
    assert (
        maps_path(evaluated["out"] / "seed0", "test").read_bytes()
        != maps_path(evaluated["out"] / "seed1", "test").read_bytes()
    )  # each seed's model maps its own


def test_random_init_maps_are_those_of_write_random_init_maps_with_the_same_seed(evaluated):
    """The randomisation check compares against the one random-init writer, seeded as every random init is."""
    refs = split_images(evaluated["conditions"]["test"])
    scoring = ("score_threshold", "max_detections", "proposals", "iou_percentile", "mask_threshold", "n_boot")
    options = {k: v for k, v in OPTIONS.items() if k not in scoring}
    with MapWriter(evaluated["root"] / "random.zip") as writer:
        write_random_init_maps(NAME, refs, writer, num_classes=2, **options)
    expected = (evaluated["root"] / "random.zip").read_bytes()
    for seed in SEEDS:
        assert random_maps_path(evaluated["out"] / f"seed{seed}", "test").read_bytes() == expected


def test_cue_mass_is_scored_against_the_cue_area_share(evaluated):
    frame = pd.read_csv(evaluated["out"] / "seed0" / "test" / "cue.csv", index_col="id")
    scored = frame[frame["degenerate"].isna() & frame["reference"].isna()]
    assert len(scored) > 0
    assert np.allclose(scored["excess"], scored["mass"] - scored["area"], atol=1e-5)
    assert ((scored["area"] > 0) & (scored["area"] < 0.25)).all()


def test_returns_only_finite_numbers_per_condition_with_the_gap_and_each_seed(evaluated):
    result = evaluated["result"]
    assert set(result) == {"seeds", "test", "test_shifted", "shift_gap", "per_seed"}
    assert result["seeds"] == 2 and set(result["per_seed"]) == {"seed0", "seed1"}
    for name in ("test", "test_shifted"):
        assert set(result[name]) == {"ap50_voc", *COLUMNS}
        assert set(result[name]["cue"]) == {"mass", "area", "excess"}
        assert set(result["per_seed"]["seed0"][name]) == {"ap50_voc", "ap_coco", "ap50_coco"}
    gap = result["shift_gap"]["ap50_voc"]
    assert gap["mean"] == pytest.approx(result["test"]["ap50_voc"]["mean"] - result["test_shifted"]["ap50_voc"]["mean"])
    values = list(leaves(result))
    assert all(isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v) for v in values)
    json.dumps(result, allow_nan=False)  # a DVC metrics file
