"""Multi-process runs: the helpers in one process, and 2 gloo processes under torchrun vs 1 process.

This file is also the worker script that torchrun starts (see ``_worker``): one launch runs both the
saliency and the training job, because starting the processes costs more than the jobs themselves.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn
from torchvision.ops import FrozenBatchNorm2d

from human_saliency.errors import DataError, ParamsError
from human_saliency.experiment import train
from human_saliency.experiment.training_data import DetectionDataset
from human_saliency.io.files import read_json, write_json
from human_saliency.io.mapstore import MapWriter, merge_archives
from human_saliency.io.weights import load_tensors
from human_saliency.maps.detectors import build_detector
from human_saliency.maps.saliency import compute_saliency
from human_saliency.prepared.loaders import split_images
from human_saliency.prepared.splits import PreparedSplit
from human_saliency.runtime import distributed

from conftest import tiny_prepared

SIZE = 64
NAME = "fasterrcnn_mobilenet"
FIT = dict(epochs=1, lr=0.01, momentum=0.9, weight_decay=1e-4, warmup_iters=0, seed=3, device="cpu", num_workers=0)
LAUNCH_TIMEOUT_S = 120
SPLIT = Path("prepared", "train.json")  # where tiny_prepared writes a split, under its root


def run_saliency(split: Path, maps: Path) -> tuple[list[dict], dict[str, int]]:
    """A random-init detector's maps of ``split`` into ``maps`` (rank 0's writer; None on the others)."""
    torch.manual_seed(0)
    with build_detector(NAME, weights="random", num_classes=2, min_size=SIZE, score_threshold=0.0) as detector:
        refs = split_images(PreparedSplit.load(split))
        if not distributed.is_main():
            return compute_saliency(detector, refs, None, size=SIZE, batch_size=2)
        with MapWriter(maps) as writer:
            return compute_saliency(detector, refs, writer, size=SIZE, batch_size=2)


def freeze_batchnorm(module: nn.Module) -> nn.Module:
    """Swap each BatchNorm2d for a FrozenBatchNorm2d holding its statistics, as a COCO-initialised backbone has."""
    for name, child in module.named_children():
        if isinstance(child, nn.BatchNorm2d):
            frozen = FrozenBatchNorm2d(child.num_features, eps=child.eps)
            frozen.load_state_dict(child.state_dict())
            setattr(module, name, frozen)
        else:
            freeze_batchnorm(child)
    return module


def fresh_model() -> nn.Module:
    """The Faster R-CNN from a seeded random init, with frozen BatchNorm."""
    torch.manual_seed(0)
    return freeze_batchnorm(train.build_model(NAME, init="random", num_classes=2, size=SIZE, cache_dir=None))


def run_training(split: Path, checkpoint: Path, batch_size: int) -> tuple[nn.Module, dict]:
    """One epoch (one step) from :func:`fresh_model`."""
    model = fresh_model()
    dataset = DetectionDataset(PreparedSplit.load(split), SIZE)
    result = train.fit(model, dataset, **FIT, batch_size=batch_size, checkpoint_path=checkpoint, fingerprint="f")
    return model, result


def _worker(data: Path, out: Path) -> None:
    """One torchrun process: the saliency and the training job, 2 images per batch per process."""
    torch.set_num_threads(1)
    rank, _, _ = distributed.init_from_env()
    detections, counts = run_saliency(data / "saliency" / SPLIT, out / "maps.zip")
    model, result = run_training(data / "train" / SPLIT, out / "checkpoint.pt", batch_size=2)
    torch.save(dict(model.named_parameters()), out / f"parameters-{rank}.pt")
    if distributed.is_main():
        write_json(out / "results.json", {"detections": detections, "counts": counts, "history": result["history"]})
    distributed.cleanup()


def _torchrun(data: Path, out: Path) -> None:
    """Launch 2 gloo processes on a free port; kill the whole process group if they hang."""
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
               __file__, str(data), str(out)]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1", "CUDA_VISIBLE_DEVICES": ""}
    proc = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True)  # fmt: skip
    try:
        output, _ = proc.communicate(timeout=LAUNCH_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        pytest.fail(f"torchrun did not finish within {LAUNCH_TIMEOUT_S} s")
    assert proc.returncode == 0, output[-4000:]


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, Path]:
    """The data, then the 2-process run (torchrun) and the 1-process run (in this process) of both jobs."""
    data = tmp_path_factory.mktemp("data")
    # Square images: at 64 px every anchor and proposal fits the samplers' quotas (see the training test).
    tiny_prepared(data / "saliency", train=5, size=(SIZE, SIZE))  # odd: the two shards differ in size
    tiny_prepared(data / "train", train=4, size=(SIZE, SIZE))
    two, one = tmp_path_factory.mktemp("two"), tmp_path_factory.mktemp("one")
    _torchrun(data, two)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as the workers: the same kernels, hence the same bits
    try:
        detections, counts = run_saliency(data / "saliency" / SPLIT, one / "maps.zip")
        model, result = run_training(data / "train" / SPLIT, one / "checkpoint.pt", batch_size=4)
    finally:
        torch.set_num_threads(threads)
    torch.save(dict(model.named_parameters()), one / "parameters-0.pt")
    write_json(one / "results.json", {"detections": detections, "counts": counts, "history": result["history"]})
    torch.save(dict(fresh_model().named_parameters()), one / "start.pt")
    return {"two": two, "one": one}


def test_shard_is_strided_and_near_equal():
    items = list(range(7))
    assert [distributed.shard(items, r, 3) for r in range(3)] == [[0, 3, 6], [1, 4], [2, 5]]
    assert distributed.shard(items, 0, 1) == items
    assert distributed.shard([0], 1, 2) == []
    with pytest.raises(ValueError, match="rank 2 is outside 0..1"):
        distributed.shard(items, 2, 2)


def test_helpers_are_no_ops_in_a_single_process(monkeypatch):
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    assert distributed.init_from_env() == (0, 1, 0)
    assert distributed.is_main() and distributed.world_size() == 1
    assert distributed.gather_objects({"a": 1}) == [{"a": 1}]
    assert distributed.broadcast_object("x") == "x"
    distributed.barrier()
    distributed.cleanup()


def test_launch_with_more_processes_than_gpus_names_the_param(monkeypatch):
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    with pytest.raises(ParamsError, match=r"runtime.nproc: 2 processes need a GPU each, but 1 are visible"):
        distributed.launch(2, torch.device("cuda"))


def test_launch_of_one_process_goes_on_here(monkeypatch):
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    assert distributed.launch(1, torch.device("cpu")) == torch.device("cpu")


def test_merge_archives_names_a_missing_map(tmp_path):
    with MapWriter(tmp_path / "part.zip") as part:
        part.add("a", np.zeros((2, 2)))
    with pytest.raises(DataError, match="none of 1 shard archives holds image id 'b'"), \
         MapWriter(tmp_path / "all.zip") as writer:  # fmt: skip
        merge_archives([tmp_path / "part.zip"], writer, ["a", "b"])
    assert not (tmp_path / "all.zip").exists()


@pytest.mark.slow  # two processes under torchrun
def test_saliency_from_two_processes_is_byte_identical_to_one(runs):
    """5 images in batches of 2: shards of 3 and 2 images, merged back into the single-process order."""
    assert (runs["two"] / "maps.zip").read_bytes() == (runs["one"] / "maps.zip").read_bytes()
    assert not [p.name for p in runs["two"].iterdir() if "shard" in p.name]  # the shard archives are gone
    two, one = (read_json(runs[k] / "results.json") for k in ("two", "one"))
    assert one["counts"] == {"images": 5, "no_detections": 0}
    assert len({d["image_id"] for d in one["detections"]}) == 5
    assert two["detections"] == one["detections"] and two["counts"] == one["counts"]


@pytest.mark.slow  # two processes under torchrun
def test_training_two_by_two_matches_one_by_four(runs):
    """DDP over 2 processes × 2 images takes the step of 1 process × 4 images, within a stated tolerance.

    One epoch of 4 images is one step for both, so both see the same 4 images. DDP averages the two
    processes' gradients, which equals the 4-image gradient only when each loss is a per-image-weighted
    mean and nothing depends on the batch. So BatchNorm is frozen here, as in a COCO-initialised backbone
    (trainable BatchNorm normalises by per-process batch statistics: then 2×2 ≠ 1×4 by design). At 64 px
    every anchor and proposal fits the samplers' quotas, so no sampling RNG is involved. What remains:
    the RPN's box loss is divided by the anchors sampled over the whole batch, whose number differs
    between images, so a mean of 2-image means is not the 4-image mean (measured: 0.2 % on that term,
    4e-5 on the total loss); and float32 rounding of the weights, about 1e-4 of one step's change.
    Tolerances: each logged loss within 1 % (one process's half batch alone is off by up to 100 %), and
    the step within 1e-3 of its norm (without gradient averaging, a half-batch step is off by about 7 %).
    """
    two, one = (read_json(runs[k] / "results.json")["history"] for k in ("two", "one"))
    assert [h["epoch"] for h in two] == [0]
    assert two[0] == pytest.approx(one[0], rel=1e-2)

    start = torch.load(runs["one"] / "start.pt")
    ranks = [torch.load(runs["two"] / f"parameters-{r}.pt") for r in (0, 1)]
    single = torch.load(runs["one"] / "parameters-0.pt")
    assert all(torch.equal(ranks[0][k], ranks[1][k]) for k in start)  # DDP keeps the processes in step
    step_two, step_one = (torch.cat([(p[k] - start[k]).flatten() for k in start]) for p in (ranks[0], single))
    assert step_one.norm() > 0
    assert (step_two - step_one).norm() <= 1e-3 * step_one.norm()

    checkpoint = load_tensors(runs["two"] / "checkpoint.pt")  # written by rank 0 alone
    assert checkpoint["epoch"] == 1 and len(checkpoint["rng"]) == 2
    assert all(torch.equal(checkpoint["model"][k], v) for k, v in ranks[0].items())


if __name__ == "__main__":
    _worker(Path(sys.argv[1]), Path(sys.argv[2]))
