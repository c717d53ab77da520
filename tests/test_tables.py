"""Rendered tables: mean and interval per cell with its counts, the best row marked only when it beats every
other row detectably, and the experiment's Δ with its interval."""

import numpy as np
import pandas as pd

from human_saliency.experiment.report import (
    SHIFTED_CUE,
    aligned,
    experiment_caption,
    experiment_tables,
    per_image_scores,
    study_caption,
    study_tables,
)
from human_saliency.io.files import write_json
from human_saliency.maps.layout import info_path
from human_saliency.params import load_params
from human_saliency.scoring.score import scores_path, study_metrics_path
from human_saliency.scoring.statistics import paired_difference
from human_saliency.scoring.tables import (
    STUDY_TABLES,
    Column,
    TableSpec,
    cell,
    column_marks,
    has_values,
    render_experiment_table,
    render_table,
)

from conftest import ROOT, embedded_params

SPEC = TableSpec("Table X", "voc", "fixations", ("mae", "iou"))


def _summary(mean, n=10):
    return {"mean": mean, "ci_low": mean - 0.01, "ci_high": mean + 0.01, "n": n, "n_excluded": 10 - n}


def test_cell_formats_mean_interval_and_counts():
    assert cell(_summary(0.5)) == "0.5000 [0.4900, 0.5100]"
    assert cell(_summary(0.5, n=8), n_images=10) == "0.5000 [0.4900, 0.5100] (n=8)"
    assert cell(_summary(0.5), n_images=10, ties=3) == "0.5000 [0.4900, 0.5100] (3 ties)"
    assert cell({"n": 0, "n_excluded": 3}) == "n/a (0 of 3 usable)"
    assert cell({"value": 0.25, "ci_low": 0.2, "ci_high": 0.3}) == "0.2500 [0.2000, 0.3000]"
    assert cell(0.25) == "0.2500" and cell(None) == "n/a" and cell(None, missing="n/a (random init)") != "n/a"


def _marks(per_image, columns):
    rows = {row: {col: {"mean": float(np.mean(values[col]))} for col in columns} for row, values in per_image.items()}
    return rows, column_marks(rows, columns, lambda col, a, b: paired_difference(per_image[a][col], per_image[b][col]))


def test_best_row_is_bold_only_when_it_beats_every_other_row_in_the_right_direction():
    rng = np.random.default_rng(0)
    base = rng.uniform(0.2, 0.8, 50)
    per_image = {
        "a": {"mae": base + 0.1, "iou": base + 0.1},
        "b": {"mae": base, "iou": base + rng.normal(0, 0.01, 50)},
        "c": {"mae": base + 0.2, "iou": base + rng.normal(0, 0.01, 50) - 0.0005},
    }
    rows, marks = _marks(per_image, ["mae", "iou"])
    assert marks["mae"] == {"a": "", "b": "best", "c": ""}  # lower MAE is better
    assert marks["iou"] == {"a": "best", "b": "", "c": ""}
    text = render_table(SPEC, rows, {"a": "Model A"}, marks, caption="Profile: test.")
    line_a = next(line for line in text.splitlines() if "Model A" in line)
    assert "**" in line_a.split("|")[3] and "**" not in line_a.split("|")[2]
    assert "Profile: test." in text and "MAE ↓" in text


def test_overlapping_rows_are_marked_as_a_tie_not_a_winner():
    """Regression (issue 10.4): bold used to mark the best point estimate even when intervals overlapped."""
    rng = np.random.default_rng(1)
    base = rng.uniform(0.1, 0.2, 60)
    per_image = {"a": {"mae": base + rng.normal(0, 0.02, 60)}, "b": {"mae": base + rng.normal(0, 0.02, 60)}}
    rows, marks = _marks(per_image, ["mae"])
    assert set(marks["mae"].values()) == {"tied"}
    text = render_table(TableSpec("T", "voc", "fixations", ("mae",)), rows, {}, marks)
    assert "**" not in text and text.count("_0.1") == 2


AP = Column(("test", "ap50_voc"), "AP50")
MAE = Column(("test", "human_masks", "mae"), "MAE")


def test_experiment_table_shows_each_delta_with_its_interval_and_star():
    comparison = {
        "original": {"seeds": 3, "test": {"ap50_voc": _summary(0.8), "human_masks": {"mae": _summary(0.2)}}},
        "erasing": {
            "seeds": 3,
            "test": {
                "ap50_voc": _summary(0.7),
                "ap50_voc_delta": {"mean": -0.1, "ci_low": -0.15, "ci_high": -0.05},
                "human_masks": {"mae": _summary(0.21), "mae_delta": {"mean": 0.01, "ci_low": -0.01, "ci_high": 0.03}},
            },
        },
    }
    text = render_experiment_table(
        "Main", comparison, columns=[AP, MAE], labels={"erasing": "Selective erasing"}, changed={"erasing": 12}
    )
    erasing = next(line for line in text.splitlines() if "Selective erasing" in line)
    assert "-0.1000 [-0.1500, -0.0500]*" in erasing  # excludes 0: detectable
    assert "+0.0100 [-0.0100, +0.0300] " in erasing or erasing.rstrip("| ").endswith("+0.0300]")  # no star
    assert "| 12 " in erasing and "| 3 " in erasing


def test_experiment_table_stars_a_starred_column_whose_own_interval_excludes_zero():
    gap = Column(("shift_gap", "ap50_voc"), "gap", star=True)
    comparison = {
        "original": {"seeds": 3, "shift_gap": {"ap50_voc": {"mean": 0.49, "ci_low": 0.32, "ci_high": 0.61}}},
        "erasing": {"seeds": 3, "shift_gap": {"ap50_voc": {"mean": 0.05, "ci_low": -0.02, "ci_high": 0.11}}},
    }
    text = render_experiment_table("Main", comparison, columns=[gap], labels={}, changed={})
    assert "0.4900 [0.3200, 0.6100]*" in text
    assert "0.0500 [-0.0200, 0.1100] " in text and "0.1100]*" not in text


def test_experiment_table_rows_follow_the_arms_with_labels_changed_counts_and_seeds():
    from human_saliency.experiment.arms import ARMS

    comparison = {
        arm: {"seeds": 3, "test": {"ap50_voc": _summary(0.5), "human_masks": {"mae": _summary(0.2)}}} for arm in ARMS
    }
    text = render_experiment_table(
        "Main", comparison, columns=[AP, MAE], labels=ARMS, changed={"erasing": 4, "nontrivial": 9}
    )
    rows = [line.split("|")[1:4] for line in text.splitlines() if line.startswith("| ") and "Training set" not in line]
    assert [[cell.strip() for cell in row] for row in rows] == [
        ["Original", "0", "3"],
        ["Selective erasing", "4", "3"],
        ["Selective inpainting", "0", "3"],
        ["Non-trivial transformations", "9", "3"],
    ]


def test_experiment_table_shows_n_a_for_a_missing_or_unusable_value():
    comparison = {
        "original": {"seeds": 1, "test": {"ap50_voc": _summary(0.5), "human_masks": {}}},
        "erasing": {
            "seeds": 1,
            "test": {
                "ap50_voc": None,
                "human_masks": {"mae": {"n": 0, "n_excluded": 10}, "mae_delta": {"mean": float("nan")}},
            },
        },
    }
    text = render_experiment_table("Main", comparison, columns=[AP, MAE], labels={}, changed={})
    original = next(line for line in text.splitlines() if line.startswith("| original"))
    erasing = next(line for line in text.splitlines() if line.startswith("| erasing"))
    assert [c.strip() for c in original.split("|")[4:8]] == ["0.5000 [0.4900, 0.5100]", "", "n/a", ""]
    assert [c.strip() for c in erasing.split("|")[4:8]] == ["n/a", "", "n/a (0 of 10 usable)", "n/a"]


def test_cue_table_marks_no_best_row_and_stars_the_excess_whose_interval_excludes_zero():
    spec = next(spec for spec in STUDY_TABLES if spec.dataset == "voc" and spec.reference == "cue")
    rows = {
        "a": {"n_images": 10, "mass": _summary(0.15), "area": _summary(0.012), "excess": _summary(0.14)},
        "b": {"n_images": 10, "mass": _summary(0.012), "area": _summary(0.012), "excess": _summary(0.0)},
    }
    text = render_table(spec, rows, {}, {})
    assert "0.1400 [0.1300, 0.1500]*" in text and "0.0000 [-0.0100, 0.0100]*" not in text
    assert "**" not in text and "Cue area share" in text and "not that the detector's decision relies on it" in text


def test_a_table_of_a_condition_the_profile_lacks_has_no_values():
    assert not has_values({"a": {"n_images": 0}, "b": {"n_images": 0}}, ["ap50_voc"])
    assert not has_values({"a": {"n_images": 5, "mass": {"n": 0, "n_excluded": 5}}}, ["mass"])
    assert has_values({"a": {"n_images": 5, "ap50_voc": {"value": 0.0}}}, ["ap50_voc"])


def test_a_column_every_arm_shares_has_no_delta():
    area = Column(("test", "cue", "area"), "area", delta=False)
    comparison = {arm: {"seeds": 3, "test": {"cue": {"area": _summary(0.012)}}} for arm in ("original", "erasing")}
    text = render_experiment_table("Main", comparison, columns=[area, MAE], labels={}, changed={})
    header = next(line for line in text.splitlines() if "Training set" in line)
    assert [c.strip() for c in header.split("|")[1:-1]] == [
        "Training set",
        "Images changed",
        "Seeds",
        "area",
        "MAE",
        "Δ",
    ]


# The write-up (experiment.report): captions, which tables appear, and how two rows' per-image scores are paired.

PARAMS = load_params(ROOT / "params.yaml")


def test_study_caption_names_what_the_shifted_twins_carry_only_with_a_shifted_condition():
    with_shifted = study_caption(PARAMS, "DeepGaze", shifted=True)
    assert f"Shifted cues: {SHIFTED_CUE[PARAMS.data.embedded.shifted_cue]}." in with_shifted
    assert "Fixation predictor: DeepGaze." in with_shifted and f"seed {PARAMS.train.seeds[0]}" in with_shifted
    assert "Shifted cues" not in study_caption(PARAMS, "DeepGaze", shifted=False)
    none = PARAMS.model_copy(
        update={"data": PARAMS.data.model_copy(update={"embedded": embedded_params(shifted_cue="none")})}
    )
    assert study_caption(none, "DeepGaze", shifted=True).endswith("Shifted cues: each test image's twin without cues.")


def test_experiment_caption_names_the_base_maps_seed_only_for_the_original_arm_maps():
    def caption(base):
        return experiment_caption(PARAMS.model_copy(update={"aug": PARAMS.aug.model_copy(update={"base": base})}))

    assert f"base maps: original (seed {PARAMS.train.seeds[0]})." in caption("original")
    assert "base maps: coco." in caption("coco")


def _arm(cue_mass=None, shifted=False):
    cue = {"area": _summary(0.01)} | ({"mass": _summary(cue_mass)} if cue_mass is not None else {})
    conditions = {name: {"ap50_voc": _summary(0.5), "cue": cue} for name in ("test", "test_shifted")[: 1 + shifted]}
    return {"seeds": 3, **conditions} | ({"shift_gap": {"ap50_voc": _summary(0.2)}} if shifted else {})


def _titles(sections):
    return [section.splitlines()[0].removeprefix("### ") for section in sections]


def test_experiment_tables_name_both_conditions_and_show_the_gap_when_there_is_a_shifted_one():
    comparison = {arm: _arm(cue_mass=0.05, shifted=True) for arm in ("original", "erasing")}
    sections = experiment_tables(comparison, ["test", "test_shifted"], changed={}, caption="Setup.", predictor="DG")
    assert _titles(sections) == [
        "Main experiment: detection accuracy in distribution and with shifted cues",
        "Main experiment, in-distribution test: saliency alignment with human attention masks",
        "Main experiment, in-distribution test: saliency alignment with predicted fixations (DG)",
        "Main experiment, shifted-cue test: saliency alignment with human attention masks",
        "Main experiment, shifted-cue test: saliency alignment with predicted fixations (DG)",
        "Main experiment: EigenCAM mass on the planted cue",
    ]
    assert "AP50 gap (in-distribution − shifted)" in sections[0] and "the model relies on the cue" in sections[0]
    assert "0.2000 [0.1900, 0.2100]*" in sections[0]
    assert "Cue mass, shifted-cue test" in sections[-1] and sections[-1].count("Cue area share") == 1


def test_experiment_tables_leave_out_the_cue_table_when_no_arm_has_cue_mass():
    comparison = {arm: _arm() for arm in ("original", "erasing")}
    sections = experiment_tables(comparison, ["test"], changed={}, caption="Setup.", predictor="DG")
    assert _titles(sections) == [
        "Main experiment: detection accuracy",
        "Main experiment, test split: saliency alignment with human attention masks",
        "Main experiment, test split: saliency alignment with predicted fixations (DG)",
    ]
    assert "gap" not in sections[0] and "Setup." in sections[0]
    with_cue = experiment_tables({**comparison, "erasing": _arm(cue_mass=0.05)}, ["test"], changed={}, caption="",
                                 predictor="DG")  # fmt: skip
    assert _titles(with_cue)[-1] == "Main experiment: EigenCAM mass on the planted cue"
    assert "Cue mass, test" in with_cue[-1]


def test_aligned_pairs_two_rows_by_image_and_reads_the_randomisation_check_from_its_own_table():
    a = {"": pd.DataFrame({"mae": [0.1, 0.2]}, index=["x", "y"]), "randomisation": pd.DataFrame({"cc": [0.5]}, ["x"])}
    b = {"": pd.DataFrame({"mae": [0.4, 0.3]}, index=["y", "x"])}
    left, right = aligned(a, b, "mae")
    np.testing.assert_array_equal(left, [0.1, 0.2])
    np.testing.assert_array_equal(right, [0.3, 0.4])  # b's rows in a's image order
    assert all(np.isnan(side).all() for side in aligned(a, b, "randomisation_cc"))  # b has no randomisation check
    np.testing.assert_array_equal(aligned(a, a, "randomisation_cc")[0], [0.5])


def test_per_image_scores_read_the_randomisation_check_with_the_human_masks_only(tmp_path):
    frame = pd.DataFrame({"cc": [0.5]}, index=pd.Index(["x"], name="id"))
    for dataset, reference in [("voc", "human_masks"), ("voc", "fixations"), ("voc", "randomisation"),
                               ("voc_shifted", "human_masks")]:  # fmt: skip
        frame.to_csv(scores_path(tmp_path, dataset, reference))
    assert list(per_image_scores(tmp_path, "voc", "human_masks")) == ["", "randomisation"]
    assert list(per_image_scores(tmp_path, "voc", "fixations")) == [""]
    assert list(per_image_scores(tmp_path, "voc_shifted", "human_masks")) == [""]  # pretrained: no check


def test_study_tables_show_only_tables_with_values_and_mark_the_best_row(tmp_path):
    """Two rows scored on the VOC fixations only: that table alone appears, labelled from info.json, its best
    row marked by the paired per-image difference."""
    folders = {"good": tmp_path / "saliency" / "good", "bad": tmp_path / "saliency" / "bad"}
    spec = next(spec for spec in STUDY_TABLES if (spec.dataset, spec.reference) == ("voc", "fixations"))
    base = np.random.default_rng(0).uniform(0.2, 0.4, 40)
    ids = pd.Index([f"2009_{i:06d}" for i in range(40)], name="id")
    for row, shift in (("good", 0.0), ("bad", 0.3)):
        folders[row].mkdir(parents=True)
        write_json(info_path(folders[row]), {"label": row.title(), "weights": "COCO"})
        values = dict.fromkeys(spec.columns, base + shift)
        scores = tmp_path / "scores" / row
        scores.mkdir(parents=True)
        pd.DataFrame(values, index=ids).to_csv(scores_path(scores, "voc", "fixations"))
        record = {"n_images": 40} | {column: {"mean": float(v.mean()), "n": 40} for column, v in values.items()}
        for other in STUDY_TABLES:
            write_json(study_metrics_path(tmp_path / "metrics", other.dataset, other.reference, row),
                       record if other is spec else {"n_images": 0})  # fmt: skip
    study = PARAMS.study.model_copy(update={"bootstrap": 200})
    sections = study_tables(study, folders, {}, metrics=tmp_path / "metrics", scores=tmp_path / "scores")
    assert _titles(sections) == ["Table 3: detectors vs predicted eye fixations, VOC test split"]
    cells = {line.split("|")[1].strip(): line.split("|")[2:-1] for line in sections[0].splitlines()[4:]}
    assert list(cells) == ["Good (COCO)", "Bad (COCO)"]
    mae, cc = spec.columns.index("mae"), spec.columns.index("cc")
    assert cells["Good (COCO)"][mae].strip().startswith("**")  # lower MAE, detectably
    assert cells["Bad (COCO)"][cc].strip().startswith("**") and "**" not in cells["Good (COCO)"][cc]
