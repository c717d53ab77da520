"""The DVC pipeline end to end on a tiny embedded profile: repro, idempotence, targeted re-runs, remote round trip.

Slow (a few minutes): it runs the real stage scripts through `dvc` in a copy of the project.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
PROJECT_FILES = ["dvc.yaml", "params.yaml", "stages", "src", ".dvc/config", ".dvcignore", ".gitignore"]
TINY = {
    "data.embedded.n_images": 24,
    "data.embedded.n_mit_images": 6,
    "data.embedded.min_size": 64,
    "data.embedded.max_size": 80,
    "study.detectors": ["ssdlite_mobilenet", "yolov5"],
    "study.size": 64,
    "study.detector_min_size": 64,
    "study.bootstrap": 20,
    "study.overlays": 1,
    "train.epochs": 1,
    "train.batch_size": 4,
    "train.warmup_iters": 2,
}

pytestmark = pytest.mark.slow


def _set(tree: dict, dotted: str, value) -> None:
    *parents, leaf = dotted.split(".")
    for key in parents:
        tree = tree[key]
    tree[leaf] = value


def run(cwd: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    """Run a command in the project copy, with this interpreter's scripts and the copy's sources first."""
    env = {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
        "PYTHONPATH": str(cwd / "src"),
        "DVC_NO_ANALYTICS": "1",
    }
    result = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True)
    if check and result.returncode != 0:
        raise AssertionError(f"{' '.join(args)} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")
    return result


def ran_stages(output: str) -> list[str]:
    return sorted(line.split("'")[1] for line in output.splitlines() if line.startswith("Running stage"))


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Path:
    """A git + DVC copy of the project with tiny params, reproduced once."""
    root = tmp_path_factory.mktemp("project")
    for name in PROJECT_FILES:
        source = ROOT / name
        target = root / name
        target.parent.mkdir(parents=True, exist_ok=True)
        if source.is_dir():
            shutil.copytree(source, target, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
        else:
            shutil.copy2(source, target)
    params = yaml.safe_load((root / "params.yaml").read_text())
    for key, value in TINY.items():
        _set(params, key, value)
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    run(root, "git", "init", "-q")
    run(root, "git", "-c", "user.name=t", "-c", "user.email=t@t", "add", "-A")
    run(root, "git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "tiny project")
    run(root, "dvc", "repro")
    return root


def test_repro_fills_the_tables_and_leaves_a_clean_status(project):
    tables = (project / "metrics" / "tables.md").read_text()
    for title in ("Table 1", "Table 2", "Table 3", "Table 4", "Main experiment"):
        assert title in tables
    for arm in ("Original", "Selective erasing", "Selective inpainting", "Non-trivial transformations"):
        assert arm in tables
    assert "SSDlite320" in tables and "random init" in tables and "spectral residual" in tables
    assert "Data and pipelines are up to date." in run(project, "dvc", "status").stdout
    assert ran_stages(run(project, "dvc", "repro").stdout) == []


def test_metrics_are_numeric_and_shown_by_dvc(project):
    shown = run(project, "dvc", "metrics", "show", "--json").stdout
    assert "metrics/study/voc/human_masks/ssdlite_mobilenet.json" in shown
    assert "metrics/prepare.json" in shown


def test_a_score_param_reruns_only_scoring(project):
    out = run(project, "dvc", "exp", "run", "-S", "study.mask_threshold=0.6").stdout
    assert ran_stages(out) == ["score@ssdlite_mobilenet", "score@yolov5", "tables"]


def test_the_selection_threshold_reruns_only_the_experiment_downstream(project):
    out = run(project, "dvc", "exp", "run", "-S", "aug.threshold=0.2").stdout
    ran = ran_stages(out)
    assert {"augment@erasing", "augment@inpainting", "tables"} <= set(ran)
    upstream = ("download", "prepare", "fixations", "saliency@", "score@", "control", "base_saliency", "train@original")
    assert not [stage for stage in ran if stage.startswith(upstream)], ran
    assert set(ran) <= {"augment@erasing", "augment@inpainting", "augment@nontrivial", "train@erasing",
                        "train@inpainting", "evaluate@erasing", "evaluate@inpainting", "tables"}


def test_bad_param_stops_the_stage_with_one_line_naming_the_key(project, tmp_path):
    bad = tmp_path / "params.yaml"
    params = yaml.safe_load((project / "params.yaml").read_text())
    params["study"]["iou_percentile"] = 120
    bad.write_text(yaml.safe_dump(params))
    result = run(project, "python", "stages/prepare.py", "--params", str(bad), "--raw", "data/raw",
                 "--out", str(tmp_path / "prepared"), "--summary", str(tmp_path / "summary.json"), check=False)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1].startswith("error: ")
    assert "study.iou_percentile" in result.stderr


def test_local_remote_round_trip(project, tmp_path):
    remote = tmp_path / "remote"
    run(project, "dvc", "remote", "add", "-d", "--local", "roundtrip", str(remote))
    run(project, "dvc", "push")
    shutil.rmtree(project / ".dvc" / "cache")
    for out in ("data", "models"):
        shutil.rmtree(project / out)
    run(project, "dvc", "pull")
    assert "Data and pipelines are up to date." in run(project, "dvc", "status").stdout
    assert ran_stages(run(project, "dvc", "repro").stdout) == []
