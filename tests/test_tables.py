"""Rendered tables: mean and interval per cell, the best value of a column in bold, direction-aware."""

from human_saliency.experiment.arms import ARMS, CONTROL
from human_saliency.scoring.tables import TableSpec, cell, render_experiment_table, render_table

SPEC = TableSpec("Table X", "voc", "fixations", ("mae", "iou"))


def _summary(mean, excluded=0):
    return {"mean": mean, "ci_low": mean - 0.01, "ci_high": mean + 0.01, "n": 10, "n_excluded": excluded}


def test_cell_formats_mean_interval_and_exclusions():
    assert cell(_summary(0.5)) == ("0.5000 [0.4900, 0.5100]", 0.5)
    assert cell(_summary(0.5, excluded=2))[0].endswith("(2 excl.)")
    assert cell({"n": 0, "n_excluded": 3})[0] == "n/a (0 of 3 usable)"
    assert cell(0.25) == ("0.2500", 0.25)


def test_best_is_bold_in_the_right_direction():
    rows = {"a": {"mae": _summary(0.2), "iou": _summary(0.3)}, "b": {"mae": _summary(0.1), "iou": _summary(0.1)}}
    text = render_table(SPEC, rows, {"a": "Model A"}, caption="Profile: test.")
    line_a = next(line for line in text.splitlines() if "Model A" in line)
    line_b = next(line for line in text.splitlines() if line.startswith("| b"))
    assert "**0.3000" in line_a and "**" not in line_a.split("|")[2]  # IoU: higher is better
    assert "**0.1000" in line_b.split("|")[2]  # MAE: lower is better
    assert "Profile: test." in text and "MAE ↓" in text


ARM_RESULTS = {  # (AP50 VOC, MAE, IoU, CC, randomisation CC) per arm, in ARMS order: every Δ distinct
    "original": (0.50, 0.30, 0.20, 0.10, 0.40),
    "erasing": (0.45, 0.25, 0.27, 0.16, 0.30),
    "inpainting": (0.58, 0.33, 0.22, 0.01, 0.35),
    "nontrivial": (0.61, 0.30, 0.12, 0.19, 0.45),
}


def _result(ap50, mae, iou, cc, randomisation):
    summaries = {"n_images": 10, "n_degenerate_maps": 0, "mae": _summary(mae), "iou": _summary(iou), "cc": _summary(cc)}
    return {"ap50_voc": ap50, "ap_coco": ap50 / 2, "ap50_coco": ap50, "human_masks": summaries,
            "fixations": summaries, "randomisation_cc": _summary(randomisation)}  # fmt: skip


def _experiment(results, **kwargs) -> tuple[list[str], dict[str, list[str]]]:
    """The experiment table rendered as the stage does, parsed: (headers, cells by row label)."""
    changed = {"erasing": 3, "inpainting": 3, "nontrivial": 10}
    text = render_experiment_table("Main", results, changed, reference="human_masks", labels=ARMS, control=CONTROL,
                                   **kwargs)  # fmt: skip
    lines = [line for line in text.splitlines() if line.startswith("|")]
    headers, *rows = ([cell.strip() for cell in line.strip("|").split("|")] for line in lines[:1] + lines[2:])
    return headers, {row[0]: row[1:] for row in rows}


def test_experiment_table_rows_follow_the_arms_with_their_labels_and_changed_counts():
    headers, rows = _experiment({arm: _result(*values) for arm, values in ARM_RESULTS.items()}, caption="Setup.")
    assert list(rows) == ["Original", "Selective erasing", "Selective inpainting", "Non-trivial transformations"]
    assert list(rows) == [ARMS[arm] for arm in ARMS]
    assert [row[0] for row in rows.values()] == ["0", "3", "3", "10"]  # the control changes nothing
    assert headers == ["Training set", "Images changed", "AP50 VOC ↑", "Δ", "AP COCO ↑", "MAE ↓", "Δ",
                       "IoU top-10% ↑", "Δ", "CC ↑", "Δ", "Randomisation CC ↓"]  # fmt: skip


def test_experiment_table_delta_is_arm_minus_control_for_ap_and_each_column():
    _, rows = _experiment({arm: _result(*values) for arm, values in ARM_RESULTS.items()})
    # Columns after the label: changed, AP50, Δ, AP COCO, MAE, Δ, IoU, Δ, CC, Δ, randomisation CC.
    deltas = {label: [row[i] for i in (2, 5, 7, 9)] for label, row in rows.items()}
    assert deltas == {
        "Original": ["+0.0000", "+0.0000", "+0.0000", "+0.0000"],
        "Selective erasing": ["-0.0500", "-0.0500", "+0.0700", "+0.0600"],
        "Selective inpainting": ["+0.0800", "+0.0300", "+0.0200", "-0.0900"],
        "Non-trivial transformations": ["+0.1100", "+0.0000", "-0.0800", "+0.0900"],
    }


def test_experiment_table_cells_show_the_mean_and_its_interval():
    results = {arm: _result(*values) for arm, values in ARM_RESULTS.items()}
    results["erasing"]["human_masks"]["mae"] = _summary(0.25, excluded=2)
    _, rows = _experiment(results)
    erasing = rows["Selective erasing"]
    assert erasing[1] == "0.4500" and erasing[3] == "0.2250"  # AP50 VOC, AP COCO: plain numbers
    assert erasing[4] == "0.2500 [0.2400, 0.2600] (2 excl.)"
    assert erasing[6] == "0.2700 [0.2600, 0.2800]" and erasing[10] == "0.3000 [0.2900, 0.3100]"


def test_experiment_table_shows_n_a_for_a_missing_value():
    """No usable image for a metric, or a value absent from an arm's metrics: n/a in its cell and its Δ."""
    results = {arm: _result(*values) for arm, values in ARM_RESULTS.items()}
    results["erasing"]["human_masks"]["iou"] = {"n": 0, "n_excluded": 10}
    results["original"]["human_masks"]["cc"] = {"n": 0, "n_excluded": 10}  # the control's: every arm's Δ
    del results["inpainting"]["randomisation_cc"], results["inpainting"]["ap_coco"]
    results["nontrivial"]["ap50_voc"] = None
    del results["nontrivial"]["human_masks"]["mae"]
    _, rows = _experiment(results)
    assert rows["Selective erasing"][6:8] == ["n/a (0 of 10 usable)", "n/a"]
    assert [row[9] for row in rows.values()] == ["n/a"] * 4
    assert rows["Selective inpainting"][3] == "n/a" and rows["Selective inpainting"][10] == "n/a"
    assert rows["Non-trivial transformations"][1:3] == ["n/a", "n/a"]
    assert rows["Non-trivial transformations"][4:6] == ["n/a", "n/a"]
    assert rows["Selective erasing"][4:6] == ["0.2500 [0.2400, 0.2600]", "-0.0500"]  # the rest as before
