"""The paper profile resolves as a DVC pipeline (without its data, which needs the internet)."""

from __future__ import annotations

import shutil

import pytest

from human_saliency.maps.detectors import STUDY_DETECTORS

from test_pipeline import PROJECT_FILES, ROOT, run

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def paper_project(tmp_path_factory):
    root = tmp_path_factory.mktemp("paper")
    for name in PROJECT_FILES:
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        copy = shutil.copytree if (ROOT / name).is_dir() else shutil.copy2
        copy(ROOT / name, root / name)
    shutil.copy2(ROOT / "configs" / "paper.yaml", root / "params.yaml")  # the documented switch
    run(root, "git", "init", "-q")
    return root


def test_paper_dag_has_every_stage_for_all_seven_detectors(paper_project):
    stages = run(paper_project, "dvc", "stage", "list", "--name-only").stdout.split()
    for detector in STUDY_DETECTORS:
        assert f"saliency@{detector}" in stages and f"score@{detector}" in stages
    for variant in ("original", "erasing", "inpainting", "nontrivial"):
        assert f"train@{variant}" in stages and f"evaluate@{variant}" in stages
    assert run(paper_project, "dvc", "dag").returncode == 0


def test_paper_dry_run_resolves_every_stage_in_order(paper_project):
    # Without --force a dry run stops at the first stage whose upstream output is missing
    # (treeverse/dvc#9818); --force plans every stage without needing any data.
    out = run(paper_project, "dvc", "repro", "--dry", "--force").stdout
    ran = [line.split("'")[1] for line in out.splitlines() if line.startswith("Running stage")]
    assert ran[0] == "download" and ran[-1] == "tables" and len(ran) == len(set(ran)) == 32
    order = [
        ("prepare", "fixations"),
        ("saliency@detr_r50", "score@detr_r50"),
        ("train@original", "base_saliency"),
        ("base_saliency", "augment@inpainting"),
        ("augment@inpainting", "train@inpainting"),
        ("train@inpainting", "evaluate@inpainting"),
    ]
    for upstream, downstream in order:
        assert ran.index(upstream) < ran.index(downstream), (upstream, downstream)
    assert "python stages/download.py --out data/raw" in out
