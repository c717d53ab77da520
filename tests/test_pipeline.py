"""The DVC pipeline end to end on a tiny embedded profile: repro, idempotence, targeted re-runs, remote round trip.

Slow (a few minutes): it runs the real stage scripts through `dvc` in a copy of the project.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from PIL import Image

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


def run(cwd: Path, *args: str, check: bool = True, threads: int | None = None) -> subprocess.CompletedProcess:
    """Run a command in the project copy, with this interpreter's scripts and the copy's sources first."""
    env = {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
        "PYTHONPATH": str(cwd / "src"),
        "DVC_NO_ANALYTICS": "1",
        **({"OMP_NUM_THREADS": str(threads)} if threads else {}),
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
    for title in ("Table 1", "Table 2", "Table 3", "Table 4", "Table 6", "Main experiment", "shifted cues"):
        assert title in tables
    for column in ("AP50 gap (in-distribution − shifted)", "Cue mass − area share", "trained here: Original, seed 0"):
        assert column in tables
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
    # The mask threshold decides which human masks can serve as references, in the study and the experiment.
    out = run(project, "dvc", "exp", "run", "-S", "study.mask_threshold=0.6").stdout
    evaluations = [f"evaluate@{arm}" for arm in ("erasing", "inpainting", "nontrivial", "original")]
    assert ran_stages(out) == [*evaluations, "score@ssdlite_mobilenet", "score@yolov5", "score_trained", "tables"]


def test_the_selection_threshold_reruns_only_the_experiment_downstream(project):
    out = run(project, "dvc", "exp", "run", "-S", "aug.threshold=0.2").stdout
    ran = ran_stages(out)
    assert {"augment@erasing", "augment@inpainting", "tables"} <= set(ran)
    upstream = ("download", "prepare", "fixations", "saliency@", "score@", "control", "base_saliency", "train@original")
    assert not [stage for stage in ran if stage.startswith(upstream)], ran
    assert set(ran) <= {
        "augment@erasing",
        "augment@inpainting",
        "augment@nontrivial",
        "train@erasing",
        "train@inpainting",
        "evaluate@erasing",
        "evaluate@inpainting",
        "tables",
    }


def test_bad_param_stops_the_stage_with_one_line_naming_the_key(project, tmp_path):
    bad = tmp_path / "params.yaml"
    params = yaml.safe_load((project / "params.yaml").read_text())
    params["study"]["iou_percentile"] = 120
    bad.write_text(yaml.safe_dump(params))
    result = run(
        project,
        "python",
        "stages/prepare.py",
        "--params",
        str(bad),
        "--raw",
        "data/raw",
        "--out",
        str(tmp_path / "prepared"),
        "--summary",
        str(tmp_path / "summary.json"),
        check=False,
    )
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


def _params_with(project: Path, folder: Path, **changes) -> Path:
    """A copy of the project's params with ``changes`` (dotted keys, ``__`` for ``.``) applied."""
    params = yaml.safe_load((project / "params.yaml").read_text())
    folder.mkdir(parents=True, exist_ok=True)
    for key, value in changes.items():
        _set(params, key.replace("__", "."), value)
    path = folder / "params.yaml"
    path.write_text(yaml.safe_dump(params, sort_keys=False))
    return path


def test_two_processes_write_what_one_process_writes(project, tmp_path):
    """runtime.nproc=2 relaunches the stages under torchrun (gloo): saliency and evaluation give the same bytes.

    Tolerance: none, at the same threads per process (torchrun sets 1; other thread counts pick other float
    kernels, which can move a 16-bit map level). Each process maps a strided share of the images with the
    same weights, and rank 0 merges the maps in the single-process order.
    """
    outputs = {}
    for nproc in (1, 2):
        params = _params_with(project, tmp_path / str(nproc), runtime__nproc=nproc, runtime__device="cpu")
        out = outputs[nproc] = tmp_path / str(nproc)
        result = run(project, "python", "stages/saliency.py", "--params", str(params), "--detector",
                     "ssdlite_mobilenet", "--prepared", "data/prepared", "--out", str(out / "saliency"),
                     threads=1)  # fmt: skip
        assert ("--nproc_per_node=2" in result.stderr) == (nproc == 2)
        run(project, "python", "stages/evaluate.py", "--params", str(params), "--arm", "original", "--prepared",
            "data/prepared", "--models", "models/original", "--fixations", "data/fixations", "--out",
            str(out / "evaluate"), "--metrics", str(out / "metrics.json"), threads=1)  # fmt: skip
    one, two = outputs[1], outputs[2]
    files = sorted(p.relative_to(one) for p in one.rglob("*") if p.is_file() and p.name != "params.yaml")
    assert files == sorted(p.relative_to(two) for p in two.rglob("*") if p.is_file() and p.name != "params.yaml")
    assert {
        "saliency/test.zip", "saliency/test_shifted.zip", "saliency/mit1003.zip", "evaluate/seed0/test_random.zip",
        "evaluate/seed2/test_shifted.zip", "evaluate/seed1/test_shifted/cue.csv", "metrics.json",
    } <= set(map(str, files))  # fmt: skip
    for name in files:
        assert (two / name).read_bytes() == (one / name).read_bytes(), name


def test_training_under_torchrun_writes_once_from_rank_0(project, tmp_path):
    """2 processes × 2 images a step, the seeds one after another: one model per seed, one set of curves, the world
    size in each model's record.

    (That 2 × 2 takes the step of 1 × 4 is tested in test_distributed.py, where BatchNorm is frozen; the
    embedded profile trains BatchNorm from scratch, whose per-process batch statistics differ by design.)
    """
    params = _params_with(project, tmp_path, runtime__nproc=2, runtime__device="cpu", train__batch_size=2,
                          train__seeds=[0, 5])  # fmt: skip
    model, live = tmp_path / "model", tmp_path / "live"
    run(project, "python", "stages/train.py", "--params", str(params), "--arm", "original",
        "--train-set", "data/augmented/original/train.json", "--out", str(model), "--live", str(live))  # fmt: skip
    assert sorted(p.name for p in model.iterdir()) == ["seed0", "seed5"]
    for seed in (0, 5):
        saved = torch.load(model / f"seed{seed}" / "model.pt", map_location="cpu", weights_only=True)
        assert saved["meta"]["world_size"] == 2 and saved["meta"]["batch_size"] == 2 and saved["meta"]["seed"] == seed
        assert [p.name for p in (model / f"seed{seed}").iterdir()] == ["model.pt"]
        assert not (project / ".cache" / "checkpoints" / "original" / f"seed{seed}" / "last.pt").exists()
    history = json.loads((live / "metrics.json").read_text())
    assert history["step"] == 0 and all(math.isfinite(history[f"seed{s}"]["train"]["loss"]) for s in (0, 5))


def test_dip_inpainting_shares_its_images_between_processes(project, tmp_path):
    """augment@inpainting with DIP under 2 processes: the same set, each image from its own seed.

    Tolerance: one grey level. Every image keeps its seed whichever process takes it, so results are the
    same up to float round-off, which differs only for an image that lands alone in a batch (other
    convolution kernels); 3 iterations cannot grow that past one level.
    """
    sets = {}
    for nproc in (1, 2):
        params = _params_with(project, tmp_path / str(nproc), runtime__nproc=nproc, runtime__device="cpu",
                              inpaint__method="dip", inpaint__iterations=3, inpaint__batch_size=2)  # fmt: skip
        sets[nproc] = tmp_path / str(nproc) / "set"
        run(project, "python", "stages/augment.py", "--params", str(params), "--arm", "inpainting",
            "--prepared", "data/prepared", "--base-saliency", "data/base_saliency", "--fixations", "data/fixations",
            "--out", str(sets[nproc]), "--summary", str(tmp_path / str(nproc) / "summary.json"), threads=1)  # fmt: skip
    one, two = sets[1], sets[2]
    assert (two / "train.json").read_bytes() == (one / "train.json").read_bytes()
    assert (two / "selection.csv").read_bytes() == (one / "selection.csv").read_bytes()
    changed = sorted(p.name for p in (one / "images").iterdir())
    assert changed and changed == sorted(p.name for p in (two / "images").iterdir())
    for name in changed:
        a, b = (np.asarray(Image.open(s / "images" / name), dtype=int) for s in (one, two))
        assert np.abs(a - b).max() <= 1, name


def test_an_error_in_the_processes_still_names_the_file(project, tmp_path):
    params = _params_with(project, tmp_path, runtime__nproc=2, runtime__device="cpu")
    result = run(project, "python", "stages/saliency.py", "--params", str(params), "--detector", "yolov5",
                 "--prepared", str(tmp_path / "missing"), "--out", str(tmp_path / "out"), check=False)  # fmt: skip
    assert result.returncode != 0
    assert "error: " in result.stderr and "missing" in result.stderr
    assert not (tmp_path / "out").exists()
