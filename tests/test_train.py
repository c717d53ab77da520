"""The training engine: model set-up, one epoch, per-epoch checkpoints, exact resume, the saved model's round trip."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
from torchvision.ops import FrozenBatchNorm2d

from human_saliency.errors import HumanSaliencyError
from human_saliency.experiment import train
from human_saliency.experiment.training_data import DetectionDataset, collate_fn
from human_saliency.io.weights import load_tensors, sha256sum
from human_saliency.maps.detectors import DETECTORS, build_detector
from human_saliency.maps.detectors.torchvision_family import COCO_CATEGORIES, coco_weight_file
from human_saliency.prepared.splits import PreparedSplit
from human_saliency.runtime.pool import run_each

from conftest import tiny_prepared

K = 2
SIZE = 64
NAME = "fasterrcnn_mobilenet"
FIT = dict(
    epochs=2, batch_size=4, lr=0.01, momentum=0.9, weight_decay=1e-4, warmup_iters=2, seed=3,
    device="cpu", num_workers=0,
)  # fmt: skip


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> DetectionDataset:
    """8 grey 64-px images, each with a dark square (class 1) and a light disc (class 2), hflip 0.5."""
    prepared = tiny_prepared(tmp_path_factory.mktemp("data"), train=8, size=(SIZE, SIZE))
    return DetectionDataset(PreparedSplit.load(prepared / "train.json"), SIZE, hflip=0.5)


def _model(seed: int = 0) -> torch.nn.Module:
    torch.manual_seed(seed)
    return train.build_model(NAME, init="random", num_classes=K, size=SIZE, cache_dir=None)


def _states_equal(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.allclose(sa[k].float(), sb[k].float(), atol=1e-6, rtol=0) for k in sa)


def test_lr_factor_warms_up_linearly_then_decays_by_cosine():
    factor = lambda i: train.lr_factor(i, total_iters=110, warmup_iters=10)  # noqa: E731
    assert factor(0) == pytest.approx(0.001)
    assert factor(5) == pytest.approx(0.001 + 0.999 * 0.5)
    assert factor(10) == pytest.approx(1.0)
    assert factor(60) == pytest.approx(0.5)  # half-way through the 100 decay iterations: (1 + cos(π/2)) / 2
    assert factor(110) == pytest.approx(0.0)
    assert train.lr_factor(0, total_iters=5, warmup_iters=0) == 1.0


def test_random_init_model_is_in_train_mode_at_the_working_size():
    model = _model()
    assert model.training
    assert model.roi_heads.box_predictor.cls_score.out_features == K + 1
    assert model.transform.min_size == (SIZE,) and model.transform.max_size == SIZE
    assert model.roi_heads.fg_bg_sampler.batch_size_per_image == 512  # torchvision's default
    assert all(p.requires_grad for p in model.parameters())
    cheap = train.build_model(NAME, init="random", num_classes=K, size=SIZE, cache_dir=None, rois_per_image=64)
    assert cheap.roi_heads.fg_bg_sampler.batch_size_per_image == 64


def test_coco_init_replaces_the_head_and_freezes_the_early_backbone(tmp_path, monkeypatch):
    torch.manual_seed(1)
    state = {k: v for k, v in DETECTORS[NAME].builder(len(COCO_CATEGORIES)).state_dict().items() if "tracked" not in k}
    torch.save(state, tmp_path / "zoo.tmp")
    published = (tmp_path / "zoo.tmp").rename(tmp_path / f"zoo-{sha256sum(tmp_path / 'zoo.tmp')[:8]}.pth")
    spec = dataclasses.replace(DETECTORS[NAME], coco_weights=(coco_weight_file(published.as_uri()),))
    monkeypatch.setitem(DETECTORS, NAME, spec)

    model = train.build_model(NAME, init="coco", num_classes=K, size=SIZE, cache_dir=tmp_path / "cache")
    assert model.training and model.transform.min_size == (SIZE,)
    assert model.roi_heads.box_predictor.cls_score.out_features == K + 1
    assert torch.equal(model.state_dict()["rpn.head.conv.0.0.weight"], state["rpn.head.conv.0.0.weight"])
    assert any(isinstance(m, FrozenBatchNorm2d) for m in model.modules())
    frozen = {n.split(".")[2] for n, p in model.named_parameters() if not p.requires_grad}
    assert frozen == {str(block) for block in range(7)}  # the first 3 of MobileNetV3's 6 stages, as torchvision

    # Regression: a model fine-tuned from COCO (FrozenBatchNorm2d, no num_batches_tracked) must reload
    # through the registry, which builds plain BatchNorm2d layers.
    train.save_model(model, tmp_path / "model.pt", meta={"init": "coco"})
    images = torch.rand(1, 3, SIZE, SIZE)
    with torch.inference_mode():
        expected = model.eval()(list(images))[0]
    with (
        build_detector(NAME, weights=str(tmp_path / "model.pt"), num_classes=K, min_size=SIZE) as det,
        torch.inference_mode(),
    ):
        got = det.model(list(images))[0]
    assert len(expected["scores"]) > 0
    assert all(torch.allclose(got[k], expected[k], atol=1e-4) for k in ("boxes", "scores"))


def test_steps_on_one_batch_reduce_the_loss(dataset):
    model = _model()
    images, targets = collate_fn([dataset[i] for i in range(4)])
    optimizer = torch.optim.SGD(model.parameters(), lr=0.02, momentum=0.9)
    losses = [
        train.train_one_epoch(model, optimizer, [(images, targets)], torch.device("cpu"), step)["loss"]
        for step in range(12)
    ]
    assert set(train.train_one_epoch(model, optimizer, [(images, targets)], torch.device("cpu"), 12)) == {
        "loss", "loss_classifier", "loss_box_reg", "loss_objectness", "loss_rpn_box_reg",
    }  # fmt: skip
    assert np.mean(losses[-3:]) < 0.7 * np.mean(losses[:3])


class _Exploding(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.w = torch.nn.Parameter(torch.ones(1))

    def forward(self, images, targets):
        return {"loss_a": self.w * float("nan")}


def test_non_finite_loss_names_epoch_and_iteration():
    model = _Exploding()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    batches = [([torch.zeros(3, 8, 8)], [{}])] * 2
    with pytest.raises(HumanSaliencyError, match="loss is nan at epoch 4, iteration 0 .*loss_a=nan"):
        train.train_one_epoch(model, optimizer, batches, torch.device("cpu"), 4)


class _Live:
    """Records what dvclive's Live would log."""

    def __init__(self):
        self.step, self.rows = 0, []

    def log_metric(self, name, value):
        self.rows.append((self.step, name, value))

    def next_step(self):
        self.step += 1


def test_fit_checkpoints_every_epoch_and_resumes_exactly(dataset, tmp_path, monkeypatch):
    straight = _model()
    live = _Live()
    result = train.fit(straight, dataset, **FIT, checkpoint_path=tmp_path / "a.pt", fingerprint="f", live=live)
    assert result["start_epoch"] == 0 and [h["epoch"] for h in result["history"]] == [0, 1]
    assert {(step, name) for step, name, _ in live.rows} >= {(0, "train/loss"), (1, "train/loss"), (1, "train/lr")}
    saved = load_tensors(tmp_path / "a.pt")
    assert saved["epoch"] == 2 and saved["fingerprint"] == "f"
    assert {"model", "optimizer", "scheduler", "scaler", "rng", "history"} <= set(saved)

    # The same run, interrupted during its second epoch, leaves the first epoch's checkpoint ...
    real_epoch = train.train_one_epoch

    def interrupted(model, optimizer, loader, device, epoch, **kwargs):
        if epoch == 1:
            raise KeyboardInterrupt
        return real_epoch(model, optimizer, loader, device, epoch, **kwargs)

    monkeypatch.setattr(train, "train_one_epoch", interrupted)
    with pytest.raises(KeyboardInterrupt):
        train.fit(_model(), dataset, **FIT, checkpoint_path=tmp_path / "b.pt", fingerprint="f")
    assert load_tensors(tmp_path / "b.pt")["epoch"] == 1
    monkeypatch.setattr(train, "train_one_epoch", real_epoch)

    # ... and a second call (a fresh process would build a new model) carries on to the same weights.
    resumed = _model(seed=99)
    live = _Live()
    result = train.fit(resumed, dataset, **FIT, checkpoint_path=tmp_path / "b.pt", fingerprint="f", live=live)
    assert result["start_epoch"] == 1 and [h["epoch"] for h in result["history"]] == [0, 1]
    assert {step for step, _, _ in live.rows} == {1}
    assert _states_equal(resumed, straight)

    # A finished checkpoint trains no more: the call only loads its weights.
    done = _model(seed=98)
    result = train.fit(done, dataset, **FIT, checkpoint_path=tmp_path / "b.pt", fingerprint="f")
    assert result["start_epoch"] == 2 and len(result["history"]) == 2
    assert _states_equal(done, straight)


def test_fit_with_another_fingerprint_starts_afresh(dataset, tmp_path, caplog):
    first = _model()
    train.fit(first, dataset, **{**FIT, "epochs": 1}, checkpoint_path=tmp_path / "c.pt", fingerprint="old")
    again = _model()
    with caplog.at_level("INFO", logger="human_saliency.experiment.train"):
        result = train.fit(again, dataset, **{**FIT, "epochs": 1}, checkpoint_path=tmp_path / "c.pt", fingerprint="new")
    assert result["start_epoch"] == 0
    assert "fingerprint old, not new); starting afresh" in caplog.text
    assert load_tensors(tmp_path / "c.pt")["fingerprint"] == "new"
    assert _states_equal(again, first)  # the same seed from scratch: the same run


def test_fit_with_adam_uses_it_and_resumes_its_state(dataset, tmp_path):
    compact = dict(FIT, epochs=1, lr=1e-3, optimizer="adam")
    torch.manual_seed(0)
    model = train.build_model("fasterrcnn_compact", init="random", num_classes=K, size=SIZE, cache_dir=None)
    train.fit(model, dataset, **compact, checkpoint_path=tmp_path / "adam.pt", fingerprint="a")
    state = load_tensors(tmp_path / "adam.pt")["optimizer"]["state"]
    assert {"exp_avg", "exp_avg_sq"} <= set(next(iter(state.values())))  # Adam's moments, not SGD's momentum


def test_saved_model_reloads_through_the_registry_and_runs(tmp_path):
    model = _model()
    train.save_model(model, tmp_path / "model.pt", meta={"detector": NAME, "epochs": 2})
    resize = {"min_size": [SIZE], "max_size": SIZE}
    assert load_tensors(tmp_path / "model.pt")["meta"] == {"detector": NAME, "epochs": 2, "resize": resize}
    with build_detector(NAME, weights=str(tmp_path / "model.pt"), num_classes=K, min_size=SIZE) as det:
        assert all(torch.equal(v, det.model.state_dict()[k]) for k, v in model.state_dict().items())
        detections, activations = det.run(torch.rand(2, 3, SIZE, SIZE))
    assert len(detections) == 2 and activations.values.ndim == 4


def test_a_reloaded_model_is_tested_at_the_scale_it_was_trained_at(tmp_path):
    """Regression (issue 10.5): the trained model was rebuilt with the library's default resize (800 px for
    the R50), so it was tested on objects larger than it learned; its training resize now travels with it."""
    model = _model()
    assert model.transform.min_size == (SIZE,) and model.transform.max_size == SIZE
    train.save_model(model, tmp_path / "model.pt", meta={})
    for asked in (None, 320):  # the library default, or any other scale asked for, is overridden
        with build_detector(NAME, weights=str(tmp_path / "model.pt"), num_classes=K, min_size=asked) as det:
            assert det.model.transform.min_size == (SIZE,) and det.model.transform.max_size == SIZE


def _runs(prepared, out, seeds) -> list[train.TrainRun]:
    return [
        train.TrainRun(
            detector="fasterrcnn_compact", init="random", train_set=prepared / "train.json", size=SIZE, cache_dir=out,
            rois_per_image=16, hflip=0.5, epochs=1, batch_size=4, lr=1e-3, momentum=0.9, weight_decay=0.0,
            warmup_iters=1, optimizer="adam", seed=seed, device="cpu", num_workers=0, amp=False,
            checkpoint_path=out / f"ckpt{seed}" / "last.pt", fingerprint=f"seed {seed}",
            model_path=out / f"seed{seed}" / "model.pt", meta={"arm": "original"},
        )
        for seed in seeds
    ]  # fmt: skip


@pytest.mark.slow
def test_seeds_trained_in_a_pool_give_the_same_models_whatever_the_pool_size(tmp_path):
    """Each run pins its threads and starts from its seed in a fresh process: 1 or 2 runs at once, the same bytes."""
    prepared = tiny_prepared(tmp_path / "data", train=8, size=(SIZE, SIZE))
    models = {}
    for processes in (1, 2):
        out = tmp_path / str(processes)
        histories = run_each(train.train_run, _runs(prepared, out, (0, 1)), processes=processes, threads=1)
        assert [len(history) for history in histories] == [1, 1]
        assert not (out / "ckpt0" / "last.pt").exists()  # a finished run drops its checkpoint
        models[processes] = {seed: load_tensors(out / f"seed{seed}" / "model.pt") for seed in (0, 1)}
    for seed in (0, 1):
        one, two = models[1][seed]["model"], models[2][seed]["model"]
        assert all(torch.equal(one[key], two[key]) for key in one)
        assert models[1][seed]["meta"]["seed"] == seed and models[1][seed]["meta"]["arm"] == "original"
    assert not torch.equal(
        models[1][0]["model"]["backbone.body.0.0.weight"], models[1][1]["model"]["backbone.body.0.0.weight"]
    )
