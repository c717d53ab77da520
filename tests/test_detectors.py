"""The detector registry: every entry builds offline, runs ONE forward pass, and yields detections + CAM activations."""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
from pathlib import Path
from urllib.parse import urlsplit

import numpy as np
import pytest
import torch

from gradcam_reference import reference_maps
from human_saliency.errors import DataError, DownloadError
from human_saliency.io.weights import WeightFile
from human_saliency.maps.cam import eigencam
from human_saliency.maps.detectors import DETECTORS, build_detector, detr, labels
from human_saliency.maps.detectors.base import rescale
from human_saliency.maps.detectors.torchvision_family import COCO_CATEGORIES, coco_weight_file

K = 5
SIZE = 72  # not a multiple of 32: the models that pad their input pad it
IMAGES = torch.rand(2, 3, SIZE, SIZE, generator=torch.Generator().manual_seed(0))
VOC = [
    "aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat", "chair", "cow",
    "diningtable", "dog", "horse", "motorbike", "person", "pottedplant", "sheep", "sofa", "train", "tvmonitor",
]  # fmt: skip


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module", params=list(DETECTORS))
def ran(request, one_thread):
    """Each registry entry, random init, run once on a 2×3×64×64 batch; counts top-level forward calls."""
    torch.manual_seed(0)
    # score_threshold=0 keeps boxes from every head (random YOLO/RetinaNet heads score ~0.01).
    with build_detector(request.param, weights="random", num_classes=K, min_size=SIZE, score_threshold=0.0) as det:
        calls = []
        handle = det.model.register_forward_hook(lambda *args: calls.append(1))
        detections, activations = det.run(IMAGES)
        handle.remove()
        yield det, detections, activations, len(calls)


def test_random_init_detections_are_well_typed(ran):
    det, detections, _, _ = ran
    assert det.weights_label == "random init"
    assert len(detections) == len(IMAGES)
    assert sum(len(d["labels"]) for d in detections) > 0
    for d in detections:
        assert set(d) == {"boxes", "scores", "labels"}
        n = len(d["labels"])
        assert d["boxes"].shape == (n, 4) and d["boxes"].dtype == torch.float32
        assert d["scores"].shape == (n,) and d["scores"].dtype == torch.float32
        assert d["labels"].dtype == torch.int64
        assert ((d["labels"] >= 1) & (d["labels"] <= K)).all()
        assert ((d["scores"] >= 0) & (d["scores"] <= 1)).all()
        assert ((d["boxes"] >= 0) & (d["boxes"] <= SIZE)).all()


def test_each_batch_goes_through_the_detector_once(ran):
    """Regression: the study's code ran every image twice (predict, then again inside EigenCAM)."""
    assert ran[3] == 1


def test_activations_are_captured_and_give_unit_range_maps(ran):
    _, _, activations, _ = ran
    values = activations.values
    assert values.ndim == 4 and values.shape[0] == len(IMAGES)
    assert values.dtype == torch.float32 and torch.isfinite(values).all()
    maps = _maps(activations)
    assert maps.shape == (len(IMAGES), SIZE, SIZE) and maps.dtype == torch.float32
    assert torch.isfinite(maps).all() and maps.min() >= 0 and maps.max() <= 1


def test_maps_equal_grad_cams_projection(ran):
    """Each detector's maps, made on its device, equal grad-cam's float64 projection resized and cropped the plain
    way (tests/gradcam_reference.py) within 1e-3 per pixel."""
    _, _, activations, _ = ran
    expected = reference_maps(
        activations.values.cpu().numpy(), (SIZE, SIZE), activations.image_size, activations.input_size
    )
    np.testing.assert_allclose(_maps(activations).cpu().numpy(), expected, rtol=0, atol=1e-3)


def test_the_grid_spans_the_image_and_a_part_of_its_last_cells(ran):
    det, _, activations, _ = ran
    rows, cols = activations.values.shape[-2:]
    stride = det.spec.cam_stride
    assert activations.input_size == (stride * rows, stride * cols)
    fixed = 300 if det.name == "ssd_vgg16" else 320 if det.name == "ssdlite_mobilenet" else SIZE  # SSDs resize
    assert activations.image_size == (fixed, fixed)
    # The grid covers the image and the padding up to a multiple of 32 (the models pad to that): with a stride
    # of 32 its last cells hold some image pixels; finer grids may end in wholly padded cells, cropped away.
    assert 0 <= stride * rows - fixed < 32


@pytest.mark.parametrize("name", ["fasterrcnn_mobilenet", "yolov5", "detr_r50"])
def test_the_grid_is_placed_over_a_200_px_image(name):
    """At 200 px, torchvision and YOLO pad to 224, and DETR's strided convolutions reach 224 too: 7×7 cells
    of 32 px, of which the last row and column hold 8 image pixels and 24 beyond it."""
    torch.manual_seed(0)
    with build_detector(name, weights="random", num_classes=K, min_size=200) as det:
        _, activations = det.run(torch.rand(1, 3, 200, 200))
    assert activations.values.shape[-2:] == (7, 7)
    assert (activations.image_size, activations.input_size) == ((200, 200), (224, 224))


def _maps(activations):
    return eigencam(
        activations.values, (SIZE, SIZE), image_size=activations.image_size, input_size=activations.input_size
    )


def test_context_manager_removes_the_hooks():
    with build_detector("ssdlite_mobilenet", weights="random", num_classes=K) as det:
        layer = det.model.get_submodule(det.spec.cam_layer)
        assert len(layer._forward_hooks) == 1
    assert len(layer._forward_hooks) == 0 and len(det.model.transform._forward_hooks) == 0
    with pytest.raises(RuntimeError, match="closed"):
        det.run(IMAGES)


def test_score_threshold_is_applied():
    torch.manual_seed(0)
    with build_detector("fasterrcnn_mobilenet", weights="random", num_classes=K, score_threshold=0.18) as det:
        detections, _ = det.run(IMAGES)
    assert all((d["scores"] >= 0.18).all() for d in detections)


def test_yolo_cam_layer_is_the_second_to_last_module():
    model = DETECTORS["yolov5"].builder(K)
    assert model.get_submodule(DETECTORS["yolov5"].cam_layer) is model.model[-2]


def test_unknown_detector_lists_the_known_ones():
    with pytest.raises(ValueError, match="known detectors: yolov5, fasterrcnn_r50"):
        build_detector("yolov8", weights="random", num_classes=K)


def test_coco_weights_need_voc_classes(tmp_path):
    with pytest.raises(ValueError, match="num_classes is 5"):
        build_detector("fasterrcnn_r50", weights="coco", num_classes=5, cache_dir=tmp_path)
    assert not any(tmp_path.iterdir())  # nothing fetched


def test_unknown_weights_value_is_a_clear_error(tmp_path):
    with pytest.raises(DataError, match="cocoo: model file not found"):
        build_detector("fasterrcnn_r50", weights=str(tmp_path / "cocoo"), num_classes=K)


def test_coco_to_voc_table_covers_voc_in_order():
    assert list(labels.COCO_NAME_TO_VOC_ID.values()) == list(range(1, 21))
    assert set(labels.COCO_NAME_TO_VOC_ID) <= set(COCO_CATEGORIES)  # every VOC class has its COCO name
    assert (
        COCO_CATEGORIES.index("airplane") == 5 and labels.COCO_NAME_TO_VOC_ID["airplane"] == VOC.index("aeroplane") + 1
    )
    mapped = labels.coco_label_map(COCO_CATEGORIES, source="torchvision")
    assert sorted(mapped[mapped > 0].tolist()) == list(range(1, 21))
    assert mapped[COCO_CATEGORIES.index("truck")] == 0  # unmapped COCO classes are dropped


def test_coco_to_voc_table_fits_ultralytics_names():
    from human_saliency.maps.detectors.yolov5 import _import_ultralytics

    _import_ultralytics()  # without its patch of PIL.Image.open, which would leak into later tests
    from ultralytics.utils import ROOT, YAML

    names = YAML.load(ROOT / "cfg/datasets/coco.yaml")["names"]
    mapped = labels.coco_label_map([names[i] for i in range(len(names))], source="coco.yaml")
    assert mapped[names_index(names, "person")] == VOC.index("person") + 1
    assert sorted(mapped[mapped > 0].tolist()) == list(range(1, 21))


def names_index(names: dict[int, str], name: str) -> int:
    return next(i for i, n in names.items() if n == name)


def test_non_coco_names_are_rejected():
    with pytest.raises(DataError, match="lack the COCO classes"):
        labels.coco_label_map(["disc", "square"], source="my.pt")


def _serve_as(monkeypatch, name: str, files: tuple[WeightFile, ...]) -> None:
    monkeypatch.setitem(DETECTORS, name, dataclasses.replace(DETECTORS[name], coco_weights=files))


def _on_loopback(server, real_url: str, data: bytes, name: str | None = None) -> str:
    """Serve ``data`` at the path of the registry's ``real_url`` (file name replaced by ``name``); its URL."""
    path = urlsplit(real_url).path.lstrip("/")
    if name is not None:
        path = f"{path.rsplit('/', 1)[0]}/{name}"
    return server.add(path, data)


def _requested(server) -> list[str]:
    return [seen.path for seen in server.requests]


def _torch_bytes(obj) -> bytes:
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    return buffer.getvalue()


def test_torchvision_coco_weights_download_from_a_loopback_zoo(http_server, tmp_path, monkeypatch):
    name = "fasterrcnn_mobilenet"
    torch.manual_seed(1)
    # Like the zoo's file: saved from a FrozenBatchNorm2d backbone, so no num_batches_tracked entries.
    state = {k: v for k, v in DETECTORS[name].builder(len(COCO_CATEGORIES)).state_dict().items() if "tracked" not in k}
    data = _torch_bytes(state)
    # The zoo's name and path (models/<arch>-<SHA-256 prefix>.pth), with the stand-in's own hash prefix.
    (real,) = DETECTORS[name].coco_weights
    filename = real.filename.replace(real.sha256, hashlib.sha256(data).hexdigest()[:8])
    url = _on_loopback(http_server, real.url, data, filename)
    assert urlsplit(url).path == f"/models/{filename}"
    _serve_as(monkeypatch, name, (coco_weight_file(url),))

    cache = tmp_path / "cache"
    with build_detector(name, weights="coco", num_classes=20, cache_dir=cache, min_size=SIZE) as det:
        assert det.weights_label == "COCO-pretrained"
        assert all(torch.equal(v, det.model.state_dict()[k]) for k, v in state.items())
        assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in det.model.modules())  # frozen, as torchvision's
        detections, _ = det.run(IMAGES)
    assert (cache / filename).read_bytes() == data
    assert all(((d["labels"] >= 1) & (d["labels"] <= 20)).all() for d in detections)
    assert _requested(http_server) == [urlsplit(url).path]
    build_detector(name, weights="coco", num_classes=20, cache_dir=cache).close()
    assert len(http_server.requests) == 1  # the cached file verified: no second download

    corrupt = bytearray(data)
    corrupt[len(corrupt) // 2] ^= 0xFF
    http_server.add(urlsplit(url).path.lstrip("/"), bytes(corrupt))
    with pytest.raises(DownloadError, match=f"{filename}: SHA-256 mismatch"):
        build_detector(name, weights="coco", num_classes=20, cache_dir=tmp_path / "fresh")
    assert not (tmp_path / "fresh" / filename).exists()


def test_checkpoint_path_loads_the_trained_model(tmp_path):
    torch.manual_seed(2)
    trained = DETECTORS["ssdlite_mobilenet"].builder(K + 1)
    torch.save({"model": trained.state_dict(), "epoch": 3}, tmp_path / "best.pt")
    with build_detector("ssdlite_mobilenet", weights=str(tmp_path / "best.pt"), num_classes=K) as det:
        assert det.weights_label == "fine-tuned: best.pt"
        assert all(torch.equal(v, det.model.state_dict()[k]) for k, v in trained.state_dict().items())
    with pytest.raises(DataError, match="best.pt: weights do not fit the model"):
        build_detector("ssdlite_mobilenet", weights=str(tmp_path / "best.pt"), num_classes=K + 1)


def _yolo_release_standin(http_server):
    from ultralytics.utils import ROOT, YAML

    model = DETECTORS["yolov5"].builder(80)
    model.names = YAML.load(ROOT / "cfg/datasets/coco.yaml")["names"]
    data = _torch_bytes({"model": model.half(), "ema": None})  # a whole pickled model, as the release's file
    (real,) = DETECTORS["yolov5"].coco_weights
    url = _on_loopback(http_server, real.url, data)
    assert urlsplit(url).path.endswith("/releases/download/v8.4.0/yolov5su.pt")
    return model, data, dataclasses.replace(real, url=url)


def test_yolo_first_download_is_recorded_and_unpickled_only_once_checked(
    http_server, tmp_path, monkeypatch, downloads_lock
):
    """No SHA-256 is published for yolov5su.pt: its first download is recorded in downloads.lock and refused (a
    pickle runs code); the next run finds the entry, which now verifies the cached file, and loads it."""
    model, data, served = _yolo_release_standin(http_server)
    digest = hashlib.sha256(data).hexdigest()
    cache = tmp_path / "cache"
    _serve_as(monkeypatch, "yolov5", (served,))
    with pytest.raises(DownloadError, match="yolov5su.pt: first download .* it is a pickle.*trust_unverified_pickles"):
        build_detector("yolov5", weights="coco", num_classes=20, cache_dir=cache)
    assert (cache / "yolov5su.pt").read_bytes() == data
    assert json.loads(downloads_lock.read_text())["files"][served.url]["sha256"] == digest

    with build_detector("yolov5", weights="coco", num_classes=20, cache_dir=cache, min_size=SIZE) as det:
        assert det.weights_label == "COCO-pretrained"
        assert next(det.model.parameters()).dtype == torch.float32
        detections, activations = det.run(IMAGES)
    assert activations.values.shape[:2] == (2, model.model[-2].cv3.conv.out_channels)
    assert len(http_server.requests) == 1  # the cached file matched its entry: no second download

    # A different file at the same URL (a fresh cache) no longer matches the entry: refused before unpickling.
    http_server.add(urlsplit(served.url).path.lstrip("/"), data[:-1] + bytes([data[-1] ^ 1]))
    with pytest.raises(DownloadError, match="yolov5su.pt: does not match its entry in"):
        build_detector("yolov5", weights="coco", num_classes=20, cache_dir=tmp_path / "fresh")


def test_yolo_first_download_loads_when_the_user_trusts_it(http_server, tmp_path, monkeypatch, caplog):
    _, _, served = _yolo_release_standin(http_server)
    _serve_as(monkeypatch, "yolov5", (served,))
    with caplog.at_level("WARNING"):
        build_detector(
            "yolov5", weights="coco", num_classes=20, cache_dir=tmp_path, trust_unverified_pickles=True
        ).close()
    assert any("trust on first use" in record.message for record in caplog.records)


def test_detr_coco_folder_loads_without_backbone_download(http_server, tmp_path, monkeypatch):
    from transformers import DetrConfig, DetrForObjectDetection

    # A small DETR with the real config's 91 COCO id → name entries, saved as the hub serves it.
    config = DetrConfig(
        num_labels=len(COCO_CATEGORIES),
        id2label=dict(enumerate(COCO_CATEGORIES)),
        backbone="resnet10t",
        d_model=32,
        encoder_layers=1,
        decoder_layers=1,
        encoder_ffn_dim=32,
        decoder_ffn_dim=32,
        encoder_attention_heads=2,
        decoder_attention_heads=2,
        num_queries=10,
    )
    DetrForObjectDetection(config).save_pretrained(tmp_path / "hub")
    files = []
    for real in DETECTORS["detr_r50"].coco_weights:  # config.json, model.safetensors under resolve/<revision>/
        data = (tmp_path / "hub" / Path(real.filename).name).read_bytes()
        url = _on_loopback(http_server, real.url, data)
        files.append(dataclasses.replace(real, url=url, sha256=hashlib.sha256(data).hexdigest(), size=len(data)))
    _serve_as(monkeypatch, "detr_r50", tuple(files))
    cache = tmp_path / "cache"

    with build_detector("detr_r50", weights="coco", num_classes=20, cache_dir=cache, min_size=SIZE) as det:
        detections, activations = det.run(IMAGES)
    assert activations.values.shape[:2] == (2, 512)  # resnet10t's C5
    assert all(((d["labels"] >= 1) & (d["labels"] <= 20)).all() for d in detections)
    revision = detr.REVISION
    assert _requested(http_server) == [
        f"/facebook/detr-resnet-50/resolve/{revision}/{f}" for f in ("config.json", "model.safetensors")
    ]
    folder = cache / f"detr-resnet-50-{revision[:12]}"
    # The download lock files (flock) stay beside what they guard; nothing else is left there.
    assert sorted(p.name for p in folder.iterdir() if p.suffix != ".lock") == ["config.json", "model.safetensors"]
    build_detector("detr_r50", weights="coco", num_classes=20, cache_dir=cache).close()
    assert len(http_server.requests) == 2  # both files came from the cache


def test_detr_files_are_pinned_by_size_and_sha256_at_the_revision():
    config, weights = DETECTORS["detr_r50"].coco_weights
    assert (config.size, config.sha256) == (4_592, "e7bcf3992363f27717a863f14b193140ad2e41d4338ee012730e58a92cae17e6")
    assert (weights.size, weights.sha256) == (
        166_587_896,
        "830f5e2eeaada8c8c8281779dcc8ab12833972eb8514ed0a35be6c1d4420ad81",
    )
    assert all(f"/resolve/{detr.REVISION}/" in f.url for f in (config, weights))


def test_rescale_follows_short_side_and_long_side_cap():
    images = torch.zeros(1, 3, 100, 200)
    assert rescale(images, (50, 1000))[0].shape[-2:] == (50, 100)
    assert rescale(images, (150, 240))[0].shape[-2:] == (120, 240)  # capped by the long side
    same, scale = rescale(images, (100, 1333))
    assert same is images and scale == (1.0, 1.0)


def test_yolov5_leaves_pil_open_alone_regression():
    """ultralytics patches PIL.Image.open on import (and pip-installs a plugin on unreadable images)."""
    from PIL import Image

    pil_open = Image.open
    build_detector("yolov5", weights="random", num_classes=2, min_size=64).close()
    assert Image.open is pil_open


def test_every_detector_shares_one_post_processing():
    """Regression (issue 10.6): Table 1 compared detectors capped at 100 to 300 boxes per image; now every
    model keeps the same number before ours, and ours keeps the best max_detections above one threshold."""
    from human_saliency.maps.detectors.base import MODEL_DETECTIONS_CAP

    for name in ("fasterrcnn_r50", "retinanet_r50", "ssd_vgg16", "ssdlite_mobilenet", "maskrcnn_r50"):
        with build_detector(name, weights="random", num_classes=K, max_detections=5) as det:
            heads = det.model.roi_heads if hasattr(det.model, "roi_heads") else det.model
            assert heads.detections_per_img == MODEL_DETECTIONS_CAP, name
    with build_detector(
        "fasterrcnn_r50", weights="random", num_classes=K, score_threshold=0.3, max_detections=2
    ) as det:
        scores = torch.tensor([0.2, 0.9, 0.5, 0.95, 0.31])
        out = det._finish(torch.zeros(5, 4), scores, torch.ones(5, dtype=torch.int64), height=10, width=10)
    assert out["scores"].tolist() == pytest.approx([0.95, 0.9])  # the two best above 0.3


def test_proposals_set_how_many_boxes_an_r_cnn_head_scores_and_never_change_its_maps():
    """study.proposals: the box head scores at most that many RPN proposals an image; the CAM layer (before the
    heads) sees the same input, so the maps are the same bytes."""
    scored, kept, maps = {}, {}, {}
    for proposals in (None, 7):
        with build_detector(
            "fasterrcnn_r50", weights="random", num_classes=K, min_size=SIZE, proposals=proposals
        ) as det:
            kept[proposals] = det.model.rpn.post_nms_top_n()
            head = det.model.roi_heads.box_head
            hook = head.register_forward_hook(lambda module, args, out, key=proposals: scored.update({key: len(out)}))
            _, activations = det.run(IMAGES)
            hook.remove()
            maps[proposals] = eigencam(
                activations.values, (SIZE, SIZE), image_size=activations.image_size, input_size=activations.input_size
            )
    assert kept == {None: 1000, 7: 7}  # None: torchvision's own
    assert scored[7] == 7 * len(IMAGES) < scored[None]
    assert torch.equal(maps[None], maps[7])
