"""Scoring detector maps: per-image rows, degenerate maps counted not averaged, references at working size."""

import numpy as np
import pandas as pd
import pytest

from human_saliency.io.files import write_json
from human_saliency.io.mapstore import MapReader, MapWriter
from human_saliency.maps.layout import MIT1003, detections_path, maps_path, random_maps_path
from human_saliency.prepared.loaders import resize_map, resize_points
from human_saliency.prepared.masks import working_size_masks
from human_saliency.prepared.splits import SHIFTED, TEST, PreparedSplit
from human_saliency.prepared.stimuli import PreparedStimuli
from human_saliency.scoring.score import (
    STUDY_METRICS,
    absent,
    min_max_for_mae,
    pair_metrics,
    score_cue,
    score_detector,
    score_maps,
    scores_path,
    study_summaries,
    summarize_scores,
    write_scores,
)
from human_saliency.sources.mit1003 import load_fixmap

from conftest import tiny_prepared

SIZE = 16


def test_rows_per_image_and_degenerate_maps_excluded():
    rng = np.random.default_rng(0)
    maps = {"a": rng.random((8, 8)), "b": np.zeros((8, 8)), "c": rng.random((8, 8))}
    refs = {"a": maps["a"], "b": rng.random((8, 8)), "c": 1 - maps["c"]}
    frame = score_maps(maps, refs.items(), pair_metrics())
    assert list(frame.index) == ["a", "b", "c"]
    assert frame.loc["a", "mae"] == 0 and frame.loc["a", "cc"] == pytest.approx(1)
    assert frame.loc["c", "cc"] == pytest.approx(-1)
    assert frame.loc["b", "degenerate"] == "constant" and np.isnan(frame.loc["b", "cc"])

    summary = summarize_scores(frame, n_boot=50)
    assert summary["n_images"] == 3 and summary["n_degenerate_maps"] == 1
    assert summary["cc"]["n"] == 2 and summary["cc"]["n_excluded"] == 1
    assert summary["cc"]["mean"] == pytest.approx(0)


def test_summary_without_usable_images_has_no_nan():
    frame = score_maps({"a": np.zeros((4, 4))}, [("a", np.ones((4, 4)))], pair_metrics())
    summary = summarize_scores(frame, n_boot=10)
    assert summary["mae"] == {"n": 0, "n_excluded": 1}


def test_mae_against_a_density_uses_its_min_max_form():
    # density / max in [0.5, 1] -> min-max [0, 1]: identical to the detector's map, so MAE 0 and IoU 1
    detector = np.array([[0.0, 1.0], [0.5, 0.25]])
    density = 0.5 + detector / 2
    metrics = min_max_for_mae(pair_metrics())
    assert metrics["mae"](detector, density) == 0
    assert metrics["iou"](detector, density) == 1
    assert metrics["cc"](detector, density) == pytest.approx(1)


def test_resize_points_keeps_each_fixation():
    points = np.zeros((100, 50), dtype=bool)
    points[0, 0] = points[99, 49] = points[50, 25] = True
    small = resize_points(points, 10)
    assert small.shape == (10, 10)
    assert sorted(zip(*np.nonzero(small), strict=True)) == [(0, 0), (5, 5), (9, 9)]


def test_a_mask_empty_once_binarised_excludes_its_image_from_every_metric_of_the_table():
    """Regression (issue 10.2): an empty mask gave NaN in the localisation columns only, so the columns of one
    table averaged different images."""
    from human_saliency.scoring.score import mask_metrics, mask_problem, pair_metrics

    maps = {"a": np.eye(4), "b": np.eye(4)}
    refs = [("a", np.full((4, 4), 0.3)), ("b", np.eye(4))]  # a: under the 0.5 threshold everywhere
    frame = score_maps(maps, refs, {**pair_metrics(), **mask_metrics()}, reference_problem=mask_problem(0.5))
    assert frame.loc["a", "reference"] == "constant" and frame.loc["b", "reference"] == ""
    weak = np.full((4, 4), 0.3)
    weak[0, 0] = 0.4  # not constant, but empty once binarised
    frame = score_maps(maps, [("a", weak), ("b", np.eye(4))], {**pair_metrics(), **mask_metrics()},
                       reference_problem=mask_problem(0.5))  # fmt: skip
    assert frame.loc["a", "reference"] == "empty_mask"
    metrics = frame.columns.drop(["degenerate", "reference"])
    assert frame.loc["a", metrics].isna().all() and frame.loc["b", metrics].notna().all()
    summary = summarize_scores(frame, n_boot=10)
    assert summary["n_degenerate_references"] == 1
    assert {summary[name]["n"] for name in ("mae", "cc", "pointing_game")} == {1}  # one n for every column


def test_a_constant_fixation_map_is_a_degenerate_reference_and_is_counted():
    frame = score_maps({"a": np.eye(4), "b": np.eye(4)}, [("a", np.ones((4, 4))), ("b", np.eye(4))], pair_metrics())
    assert frame.loc["a", "reference"] == "constant" and np.isnan(frame.loc["a", "cc"])
    assert summarize_scores(frame, n_boot=5)["n_degenerate_references"] == 1


def test_ties_of_the_top_region_are_counted():
    sparse = np.zeros((10, 10))
    sparse[:2, :2] = 1.0  # 4 % positive: its top 10 % is tied at 0
    dense = np.arange(100, dtype=float).reshape(10, 10) / 99
    frame = score_maps({"a": sparse, "b": dense}, [("a", dense), ("b", dense)], pair_metrics(), iou_percentile=90.0)
    assert frame["iou_tied"].tolist() == [True, False]
    assert summarize_scores(frame, n_boot=5)["n_top_ties"] == 1


@pytest.fixture(scope="module")
def detector_scores(tmp_path_factory) -> dict:
    """score_detector on a saliency folder laid out as saliency@<detector> writes it, for 3 VOC test images in two
    conditions (``test`` with random-init maps, as trained weights have; ``test_shifted``, the same maps, without)
    and 2 MIT1003 stimuli (prepared as prepare writes them). Maps made by hand: VOC 1's map is its human mask, its
    random-init map too, and its predicted fixations a density whose min-max is that mask; VOC 2's map is constant;
    MIT 1's map is 1 exactly at its two fixations, MIT 2's its own fixation map. VOC 1 alone has a cue, its
    top-left 4×4 pixels; each condition's detections are its ground truth."""
    root = tmp_path_factory.mktemp("score")
    prepared = tiny_prepared(root, train=0, test=3, size=(48, 32), mit1003=2, mit_size=(40, 30),
                             fixations=((5, 4), (30, 20)))  # fmt: skip
    split = PreparedSplit.load(prepared / "test.json")
    masks = working_size_masks(split, SIZE)
    stimuli = PreparedStimuli.load(prepared / "mit1003.json")
    v1, v2, v3 = masks
    rng = np.random.default_rng(0)
    points = np.zeros((SIZE, SIZE))
    points[4 * SIZE // 30, 5 * SIZE // 40] = points[20 * SIZE // 30, 30 * SIZE // 40] = 1.0  # (x, y) (5, 4), (30, 20)
    fixmap = resize_map(load_fixmap(stimuli.resolve(stimuli.stimuli[1]["fixmap"])), SIZE)
    voc_maps = {v1: masks[v1], v2: np.zeros((SIZE, SIZE)), v3: rng.random((SIZE, SIZE))}
    voc_fixations = {v1: 0.5 + masks[v1] / 2, v2: rng.random((SIZE, SIZE)), v3: rng.random((SIZE, SIZE))}
    saliency, fixations = root / "saliency", root / "fixations"
    archives = {
        maps_path(saliency, TEST): voc_maps,
        maps_path(saliency, SHIFTED): voc_maps,
        random_maps_path(saliency, TEST): {v1: masks[v1], v2: rng.random((SIZE, SIZE)), v3: rng.random((SIZE, SIZE))},
        maps_path(saliency, MIT1003): {"i01": points, "i02": (fixmap - fixmap.min()) / (fixmap.max() - fixmap.min())},
        maps_path(fixations, TEST): voc_fixations,
        maps_path(fixations, SHIFTED): voc_fixations,
        maps_path(fixations, MIT1003): {"i01": rng.random((SIZE, SIZE)), "i02": rng.random((SIZE, SIZE))},
    }
    for path, maps in archives.items():
        path.parent.mkdir(exist_ok=True)
        with MapWriter(path) as writer:
            for key, value in maps.items():
                writer.add(key, value)
    truth = [{"image_id": a["image_id"], "category_id": a["category_id"], "bbox": a["bbox"], "score": 1.0}
             for a in split.data["annotations"]]  # fmt: skip
    cue = np.zeros((SIZE, SIZE), bool)
    cue[:4, :4] = True
    cues = {v1: cue, v2: np.zeros_like(cue), v3: np.zeros_like(cue)}
    for name in (TEST, SHIFTED):
        write_json(detections_path(saliency, name), truth)
    frames = score_detector(saliency, fixations, stimuli, masks={TEST: masks, SHIFTED: masks},
                            cues={TEST: cues, SHIFTED: cues}, size=SIZE, iou_percentile=90.0,
                            mask_threshold=0.5)  # fmt: skip
    return {"frames": frames, "voc": [v1, v2, v3], "saliency": saliency, "split": split}


def test_score_detector_gives_one_frame_per_dataset_and_reference_with_a_row_per_image(detector_scores):
    frames, voc = detector_scores["frames"], detector_scores["voc"]
    assert list(frames) == [
        ("voc", "human_masks"),
        ("voc", "fixations"),
        ("voc", "cue"),
        ("voc", "randomisation"),  # the test condition has random-init maps, the shifted one not
        ("voc_shifted", "human_masks"),
        ("voc_shifted", "fixations"),
        ("voc_shifted", "cue"),
        ("mit1003", "fixations"),
        ("mit1003", "human_fixmaps"),
        ("mit1003", "human_fixpts"),
    ]
    for (dataset, _), frame in frames.items():
        assert list(frame.index) == (["i01", "i02"] if dataset == "mit1003" else voc)
    assert set(frames[("voc", "human_masks")].columns) == {
        "degenerate", "reference", "mae", "iou", "iou_study", "cc", "sim", "kld", "pointing_game", "relevance_mass",
        "relevance_rank", "iou_tied",
    }  # fmt: skip
    assert set(frames[("voc", "randomisation")].columns) == {"degenerate", "reference", "cc"}
    assert set(frames[("mit1003", "human_fixpts")].columns) == {"degenerate", "reference", "nss", "auc_judd"}


def test_score_detector_a_map_equal_to_its_reference_scores_perfectly(detector_scores):
    frames, (v1, _, _) = detector_scores["frames"], detector_scores["voc"]
    masks, fixations = frames[("voc", "human_masks")], frames[("voc", "fixations")]
    assert masks.loc[v1, "mae"] == pytest.approx(0, abs=1e-4) and masks.loc[v1, "iou"] == 1.0
    assert masks.loc[v1, "cc"] == pytest.approx(1, abs=1e-6)
    # Against a density, MAE and IoU use its min-max form: 0.5 + mask / 2 scores as the mask itself.
    assert fixations.loc[v1, "mae"] == pytest.approx(0, abs=1e-4) and fixations.loc[v1, "iou"] == 1.0
    assert frames[("voc", "randomisation")].loc[v1, "cc"] == pytest.approx(1, abs=1e-6)
    fixmaps = frames[("mit1003", "human_fixmaps")]
    assert fixmaps.loc["i02", "mae"] == pytest.approx(0, abs=1e-4) and fixmaps.loc["i02", "cc"] == pytest.approx(1)
    # 1 at the 2 fixated pixels of 16×16, else 0: every fixation above every other pixel; NSS = √((1 − p) / p).
    fixpts = frames[("mit1003", "human_fixpts")]
    assert fixpts.loc["i01", "auc_judd"] == 1.0
    assert fixpts.loc["i01", "nss"] == pytest.approx(np.sqrt(SIZE * SIZE / 2 - 1))


def test_score_detector_excludes_and_counts_a_constant_map(detector_scores):
    frames, (_, v2, _) = detector_scores["frames"], detector_scores["voc"]
    for dataset, reference in (("voc", "human_masks"), ("voc", "fixations"), ("voc_shifted", "human_masks")):
        frame = frames[(dataset, reference)]
        assert frame.loc[v2, "degenerate"] == "constant"
        metrics = frame.columns.drop(["degenerate", "reference", "iou_tied"])
        assert frame.loc[v2, metrics].isna().all()
        assert frame.drop(index=v2)[metrics].notna().all().all()
        summary = summarize_scores(frame, n_boot=10)
        assert summary["n_images"] == 3 and summary["n_degenerate_maps"] == 1
        assert summary["mae"]["n"] == 2 and summary["mae"]["n_excluded"] == 1
    assert frames[("voc", "randomisation")].loc[v2, "degenerate"] == "constant"


def test_score_detector_scores_the_cue_of_each_condition(detector_scores):
    frames, (v1, v2, _) = detector_scores["frames"], detector_scores["voc"]
    for dataset in ("voc", "voc_shifted"):
        cue = frames[(dataset, "cue")]
        assert cue.loc[v1, "area"] == 16 / 256 and cue.loc[v2, "reference"] == "no_cue"


def test_study_summaries_give_every_declared_record_with_the_randomisation_check_in_the_human_masks_one(
    detector_scores,
):
    frames, saliency, split = detector_scores["frames"], detector_scores["saliency"], detector_scores["split"]
    summaries = study_summaries(frames, saliency, {TEST: split, SHIFTED: split}, n_boot=10)
    assert set(summaries) == set(STUDY_METRICS)  # the randomisation frame is no record of its own
    masks = summaries[("voc", "human_masks")]
    assert masks["randomisation_cc"] == summarize_scores(frames[("voc", "randomisation")], n_boot=10)["cc"]
    assert masks["cc"] == summarize_scores(frames[("voc", "human_masks")], n_boot=10)["cc"]
    assert "randomisation_cc" not in summaries[("voc_shifted", "human_masks")]
    for dataset in ("voc", "voc_shifted"):  # the detections are the ground truth
        assert summaries[(dataset, "detection")]["ap50_voc"]["value"] == 1.0
        assert summaries[(dataset, "detection")]["n_images"] == 3


def test_study_summaries_give_a_condition_the_profile_lacks_an_empty_record(detector_scores):
    frames, saliency, split = detector_scores["frames"], detector_scores["saliency"], detector_scores["split"]
    in_distribution = {key: frame for key, frame in frames.items() if key[0] != "voc_shifted"}
    summaries = study_summaries(in_distribution, saliency, {TEST: split}, n_boot=10)
    assert set(summaries) == set(STUDY_METRICS)
    for reference in ("detection", "human_masks", "fixations", "cue"):
        assert summaries[("voc_shifted", reference)] == absent()
    assert summaries[("voc", "detection")]["n_images"] == 3


def test_write_scores_writes_each_table_where_scores_path_says(detector_scores, tmp_path):
    frames = detector_scores["frames"]
    write_scores(tmp_path, frames)
    assert sorted(path.name for path in tmp_path.iterdir()) == sorted(
        scores_path(tmp_path, *key).name for key in frames
    )
    written = pd.read_csv(scores_path(tmp_path, "voc", "cue"), index_col="id")
    assert list(written.index) == detector_scores["voc"]
    np.testing.assert_allclose(written["area"], frames[("voc", "cue")]["area"], rtol=1e-5)


def test_cue_mass_area_share_and_excess_and_an_image_without_a_cue_is_excluded(tmp_path):
    region = np.zeros((SIZE, SIZE), bool)
    region[:4, :4] = True  # 16 of 256 pixels
    on_cue = np.zeros((SIZE, SIZE))
    on_cue[:4, :4] = 1.0
    spread = np.full((SIZE, SIZE), 0.5)
    spread[0, 0] = 1.0  # not constant; nearly uniform
    with MapWriter(tmp_path / "maps.zip") as writer:
        for key, value in {"a": on_cue, "b": spread, "c": on_cue}.items():
            writer.add(key, value)
    with MapReader(tmp_path / "maps.zip") as maps:
        frame = score_cue(maps, [("a", region), ("b", region), ("c", np.zeros_like(region))])
    assert frame.loc["a", "mass"] == pytest.approx(1.0, abs=1e-4) and frame.loc["a", "area"] == 16 / 256
    assert frame.loc["a", "excess"] == pytest.approx(1.0 - 16 / 256, abs=1e-4)
    assert frame.loc["b", "mass"] == pytest.approx(16 / 256, abs=0.01)  # a map that ignores the cue: its area share
    assert frame.loc["c", "reference"] == "no_cue" and frame.loc["c", ["mass", "area", "excess"]].isna().all()
    assert summarize_scores(frame, n_boot=10)["mass"]["n_excluded"] == 1
