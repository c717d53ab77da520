"""The offline rehearsal of the paper profile: its whole DAG, end to end to metrics/tables.md, on loopback copies of
every file it downloads (tests/paper_site.py: the real names, layouts and formats; tiny images, random weights).

What differs from `cp configs/paper.yaml params.yaml && dvc repro` on a GPU machine with the internet:
- HUMAN_SALIENCY_DOWNLOAD_OVERRIDES sends every download to the loopback mirror (<host>/<path> of the real URL) and
  replaces each published pin with the stand-in's pin of the same kind (the files differ: random weights);
- deepgaze_pytorch is the stand-in package (tests/standins; the real one is not on PyPI);
- params.yaml is configs/paper.yaml except REDUCED (each reduction justified there), the documented way to change a
  setting (as `dvc exp run -S` would).
Slow: minutes (see README, "Offline rehearsal").
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import yaml

from human_saliency.io.pins import OVERRIDES_ENV
from human_saliency.maps.detectors import DETECTORS
from human_saliency.params import load_params

from httpserver import FileServer
from paper_site import STANDINS, TEST_ACTION_ONLY, TEST_IN_MAIN, TRAIN, build_site, overrides
from test_pipeline import PROJECT_FILES, ROOT, _set, ran_stages

pytestmark = pytest.mark.slow
log = logging.getLogger(__name__)

PAPER = ROOT / "configs" / "paper.yaml"
# The paper profile's settings that this CPU cannot run in minutes, reduced; nothing else differs.
REDUCED = {
    # Deep Image Prior: 4,001 iterations take about an hour per batch of images on this CPU even at 48×36 px
    # (0.9 s an iteration measured on 2 shared cores); each iteration runs the same code, so 2 show it works.
    "inpaint.iterations": 2,
    # Fine-tuning: 5 epochs × 4 arms of Faster R-CNN R50-FPN steps at 512 px took 9 of this rehearsal's minutes
    # here (28 s a step on 2 shared cores); every epoch runs the same code, and tests/test_train.py covers what
    # spans epochs (the schedule, resuming).
    "train.epochs": 1,
}
PAPER_PARAMS = load_params(PAPER)
# Each downloaded file: the name it is cached (and named in errors) under, and its real URL.
DOWNLOADS = {
    **{spec.filename: spec.url for spec in PAPER_PARAMS.data.remote.sources().values()},
    **{Path(f.filename).name: f.url for name in PAPER_PARAMS.study.detectors for f in DETECTORS[name].coco_weights},
    **{f.filename: f.url for f in (PAPER_PARAMS.fixations.centerbias, PAPER_PARAMS.fixations.checkpoint)},
}


def _run(cwd: Path, env: dict[str, str], *args: str, check: bool = True) -> subprocess.CompletedProcess:
    result = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True)
    if check and result.returncode != 0:
        raise AssertionError(f"{' '.join(args)} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")
    return result


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """The loopback mirror serving every file the paper profile downloads, and the overrides pointing at it."""
    root = tmp_path_factory.mktemp("site")
    served = build_site(root / "www", PAPER_PARAMS, root / "work")
    with FileServer(root / "www") as server:
        path = root / "overrides.json"
        path.write_text(json.dumps(overrides(served, server.url("")), indent=2))
        yield server, served, path


@pytest.fixture(scope="module")
def rehearsal(site, tmp_path_factory):
    """A git + DVC copy of the project on the paper profile (with REDUCED), reproduced once from nothing."""
    server, served, overrides_path = site
    root = tmp_path_factory.mktemp("paper")
    for name in [*PROJECT_FILES, "downloads.lock"]:
        target = root / name
        target.parent.mkdir(parents=True, exist_ok=True)
        copy = shutil.copytree if (ROOT / name).is_dir() else shutil.copy2
        copy(ROOT / name, target)
    params = yaml.safe_load(PAPER.read_text())
    for key, value in REDUCED.items():
        _set(params, key, value)
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    env = {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
        # The optional deepgaze_pytorch, "installed": the stand-in with the real package's layout and keys.
        "PYTHONPATH": os.pathsep.join([str(root / "src"), str(STANDINS)]),
        "DVC_NO_ANALYTICS": "1",
        OVERRIDES_ENV: str(overrides_path),
    }
    _run(root, env, "git", "init", "-q")
    _run(root, env, "git", "-c", "user.name=t", "-c", "user.email=t@t", "add", "-A")
    _run(root, env, "git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "paper profile")
    started = time.monotonic()
    result = _run(root, env, "dvc", "repro")
    elapsed = time.monotonic() - started
    (root / "rehearsal_seconds.txt").write_text(f"{elapsed:.0f}\n")
    print(f"\nrehearsal: dvc repro of the paper profile took {elapsed:.0f} s", file=sys.stderr)
    return root, env, result.stdout


def test_the_paper_profile_runs_end_to_end_to_the_tables(rehearsal, site):
    root, env, stdout = rehearsal
    server, served, _ = site
    every_stage = _run(root, env, "dvc", "stage", "list", "--name-only").stdout.split()
    assert ran_stages(stdout) == sorted(every_stage)  # every stage of the paper DAG ran
    tables = (root / "metrics" / "tables.md").read_text()
    for title in ("Table 1", "Table 2", "Table 3", "Table 4", "Main experiment"):
        assert title in tables
    for name in PAPER_PARAMS.study.detectors:
        assert DETECTORS[name].label in tables, name
    assert "DeepGaze IIE" in tables and "COCO-pretrained" in tables
    assert "Data and pipelines are up to date." in _run(root, env, "dvc", "status").stdout

    # The study's split: both masked images tested, the action-only one flagged; train = Main minus test.
    prepared = json.loads((root / "metrics" / "prepare.json").read_text())
    assert prepared["test"]["images"] == len(TEST_IN_MAIN) + len(TEST_ACTION_ONLY)
    assert prepared["test"]["partial_annotations"] == len(TEST_ACTION_ONLY)
    assert prepared["train"]["images"] == len(TRAIN)
    assert prepared["masks"]["outside_main"] == 1 and prepared["masks"]["resized"] == 1
    detection = json.loads((root / "metrics" / "study" / "voc" / "detection" / "fasterrcnn_r50.json").read_text())
    assert detection["n_images"] == 1 and detection["n_images_partial_annotations"] == 1

    # VOC's first URL (thor) does not answer here: its mirror (the old host) served the same checked bytes.
    voc = PAPER_PARAMS.data.remote.voc2012
    asked = [seen.path for seen in server.requests]
    thor, host = (f"/{urlsplit(u).netloc}{urlsplit(u).path}" for u in (voc.url, voc.mirrors[0]))
    assert asked.index(thor) < asked.index(host)

    # Every file without a full published checksum was recorded by its first download, and nothing else.
    recorded = json.loads((root / "downloads.lock").read_text())["files"]
    assert set(recorded) == {s.url for s in served if s.kind in ("none", "sha256-prefix")}


@pytest.mark.parametrize("name", list(DOWNLOADS))
def test_a_changed_byte_in_any_served_file_stops_the_run_with_one_line_naming_it(rehearsal, site, name, tmp_path):
    root, env, _ = rehearsal
    _, served, _ = site
    (file,) = [s for s in served if s.url == DOWNLOADS[name]]
    for cached in [*(root / ".cache").rglob(name)]:  # as on a machine that has not downloaded it yet
        cached.unlink()
    _flip_a_byte(file.path)
    try:
        result = _run(root, env, "python", *_stage_fetching(file.url), str(tmp_path / "out"), check=False)
    finally:
        _flip_a_byte(file.path)
    assert result.returncode == 2, result.stderr[-3000:]
    errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and errors == result.stderr.strip().splitlines()[-1:], result.stderr[-3000:]
    assert f"/{name}: " in errors[0] and ("mismatch" in errors[0] or "does not match" in errors[0]), errors[0]
    assert not [p for p in (root / ".cache").rglob(name) if p.is_file()]  # never cached
    assert not (tmp_path / "out").exists()


def _stage_fetching(url: str) -> list[str]:
    """The stage command (all but its --out value) whose first download is ``url``."""
    if url in {spec.url for spec in PAPER_PARAMS.data.remote.sources().values()}:
        return ["stages/download.py", "--out"]
    for name in PAPER_PARAMS.study.detectors:
        if url in {f.url for f in DETECTORS[name].coco_weights}:
            return ["stages/saliency.py", "--detector", name, "--prepared", "data/prepared", "--out"]
    return ["stages/fixations.py", "--prepared", "data/prepared", "--out"]


def _flip_a_byte(path: Path) -> None:
    """Invert one byte in the middle of the file, in place (the same call undoes it)."""
    with open(path, "r+b") as fh:
        fh.seek(path.stat().st_size // 2)
        byte = fh.read(1)
        fh.seek(-1, os.SEEK_CUR)
        fh.write(bytes([byte[0] ^ 0xFF]))
