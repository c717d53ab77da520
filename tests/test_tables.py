"""Rendered tables: mean and interval per cell, the best value of a column in bold, direction-aware."""

from human_saliency.scoring.tables import TableSpec, cell, render_table

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
