"""The embedded experiment's known answer: the default recipe's detector takes the planted shortcut.

Trained on the default profile's data (cues naming the object's class at ``data.embedded.cue_correlation``)
with the default training recipe, reduced to its first seed and to the training stage's job alone (no pipeline,
no other arm), the detector must lose at least 0.2 AP50 when every cue names another class (the shifted test).
If a change to the generator, the detector or the recipe makes the cue go unused, the embedded run stops being
a test of the instrument: this fails first. About a minute on one CPU thread (measured: AP50 0.75 in
distribution, 0.35 shifted, as the pipeline's seed 0).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from human_saliency.experiment.train import TrainRun, train_run
from human_saliency.io.mapstore import MapWriter
from human_saliency.maps.detectors import build_detector
from human_saliency.maps.saliency import compute_saliency
from human_saliency.params import load_params
from human_saliency.prepared.loaders import split_images
from human_saliency.prepared.splits import PreparedSplit
from human_saliency.scoring.detection_ap import evaluate_detections
from human_saliency.sources.embedded import generate
from human_saliency.sources.prepare import prepare_dataset

ROOT = Path(__file__).resolve().parents[1]
EPOCHS = load_params(ROOT / "params.yaml").train.epochs  # the default recipe
MIN_GAP = 0.2

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("one_thread")]


def test_default_recipe_relies_on_the_planted_cue(tmp_path):
    params = load_params(ROOT / "params.yaml")
    data = params.data.embedded.model_copy(update={"n_mit_images": 2})  # MIT1003 is not used here
    recipe, size = params.train, params.study.size
    assert data.spurious, "the default profile must plant the cue"
    generate(tmp_path / "raw", data)
    prepare_dataset(tmp_path / "raw", tmp_path / "prepared", classes=data.classes, **params.prepare.model_dump())

    train_split = PreparedSplit.load(tmp_path / "prepared" / "train.json")
    classes = len(train_split.category_names)
    # The training stage's own job, in this process, for the first seed of the default recipe.
    train_run(
        TrainRun(
            detector=recipe.detector,
            init=recipe.init,
            train_set=tmp_path / "prepared" / "train.json",
            size=size,
            cache_dir=tmp_path,
            rois_per_image=recipe.rois_per_image,
            hflip=recipe.hflip,
            epochs=EPOCHS,
            batch_size=recipe.batch_size,
            lr=recipe.lr,
            momentum=recipe.momentum,
            weight_decay=recipe.weight_decay,
            warmup_iters=recipe.warmup_iters,
            optimizer=recipe.optimizer,
            seed=recipe.seeds[0],
            device="cpu",
            num_workers=0,
            amp=False,
            checkpoint_path=tmp_path / "checkpoint.pt",
            fingerprint="known-answer",
            model_path=tmp_path / "model.pt",
        )
    )

    ap50 = {}
    for name in ("test", "test_shifted"):
        split = PreparedSplit.load(tmp_path / "prepared" / f"{name}.json")
        with (
            build_detector(
                recipe.detector,
                weights=str(tmp_path / "model.pt"),
                num_classes=classes,
                min_size=params.study.detector_min_size,
                score_threshold=params.study.score_threshold,
                proposals=params.study.proposals,
            ) as detector,
            MapWriter(tmp_path / f"{name}.zip") as writer,
        ):
            detections, _ = compute_saliency(detector, split_images(split), writer, size=size, batch_size=8)
        ap50[name] = evaluate_detections(split.data, detections)["ap50_voc"]
    assert ap50["test"] >= 0.5, f"the detector did not learn the data: {ap50}"
    assert ap50["test"] - ap50["test_shifted"] >= MIN_GAP, f"the planted cue went unused: {ap50}"
