"""A loopback copy of every file the paper profile downloads, at the real names and in the real layouts and formats.

Small data (a handful of tiny images) and random weights, in the formats the real files have: VOC's tar with ids
inside and outside ``ImageSets/Main``, the benchmark repository's GitHub archive, the MIT1003 zips, torchvision state
dicts, an ultralytics checkpoint (a pickle), DETR's ``config.json`` and ``model.safetensors``, DeepGaze IIE's
``deepgaze2e.pth`` (the stand-in package's model: the real keys) and its centre bias. ``overrides`` writes what
``HUMAN_SALIENCY_DOWNLOAD_OVERRIDES`` reads: the mirror, and a stand-in pin of the same kind for each published pin.
"""

from __future__ import annotations

import hashlib
import importlib
import io
import json
import sys
import tarfile
import urllib.parse
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from scipy.special import logsumexp

from human_saliency.maps.detectors import DETECTORS
from human_saliency.maps.detectors.torchvision_family import (
    _FROZEN_BN_WHEN_PRETRAINED,
    COCO_CATEGORIES,
    _freeze_batchnorm,
)
from human_saliency.maps.predictors import deepgaze_backbones_offline
from human_saliency.params import Params

ROOT = Path(__file__).resolve().parents[1]
STANDINS = ROOT / "tests" / "standins"
BENCHMARK_COMMIT = "c019297b5177037c834d80ccce4de2122eb42366"

# VOC ids: training images in Main; two masked test images, one in Main and one only in the action task (its XML
# annotates only the acting person); an unmasked id outside Main, which neither split takes.
TRAIN = {
    "2008_000015": [("bottle", (6, 4, 20, 30))],
    "2008_000019": [("dog", (4, 6, 40, 34)), ("person", (30, 2, 46, 30))],
    "2009_000012": [("car", (2, 10, 44, 32), True)],
}
TEST_IN_MAIN = {"2008_000008": [("horse", (4, 8, 40, 34)), ("person", (14, 2, 30, 26))]}
TEST_ACTION_ONLY = {"2012_000010": [("person", (10, 4, 30, 34))]}
UNMASKED_OUTSIDE_MAIN = {"2011_003276": [("person", (2, 2, 20, 20))]}
IMAGE_SIZE = (48, 36)  # width, height: DIP runs at the images' own size, detectors at the working size
MIT_STEMS = ("i05june05_static_street_boston_p1010764", "i1003543897")


@dataclass(frozen=True)
class Served:
    """One served file: the real URL it stands for, and its bytes' pins."""

    url: str
    path: Path
    kind: str  # how the real file is pinned: "md5+size", "md5", "sha256-prefix", "sha256+size", "none"

    def pin(self) -> dict[str, object] | None:
        data = self.path.read_bytes()
        sha256, md5 = hashlib.sha256(data).hexdigest(), hashlib.md5(data).hexdigest()
        return {
            "md5+size": {"md5": md5, "size": len(data)},
            "md5": {"md5": md5},
            "sha256-prefix": {"sha256": sha256[:8]},
            "sha256+size": {"sha256": sha256, "size": len(data)},
            "none": None,
        }[self.kind]


def local_path(www: Path, url: str) -> Path:
    """Where the mirror serves ``url``: <host>/<path> under ``www`` (HUMAN_SALIENCY_DOWNLOAD_OVERRIDES' layout)."""
    parts = urllib.parse.urlsplit(url)
    return www / parts.netloc / parts.path.lstrip("/")


def build_site(www: Path, params: Params, work: Path) -> list[Served]:
    """Write every file the paper profile ``params`` downloads under ``www``; return them."""
    remote, served = params.data.remote, []

    def put(url: str, data: bytes, kind: str, *, at: str | None = None) -> None:
        path = local_path(www, at or url)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        served.append(Served(url, path, kind))

    # VOC is served by the old host only: its first URL (thor) answers 404 and the mirror is used.
    put(remote.voc2012.url, voc_tar(work / "voc"), "md5+size", at=remote.voc2012.mirrors[0])
    put(remote.human_masks.url, benchmark_zip(), "none")
    put(remote.mit1003_stimuli.url, mit_stimuli_zip(), "md5")
    put(remote.mit1003_fixations.url, mit_fixations_zip(), "none")
    for name in params.study.detectors:
        for weight, data in detector_weights(name, work).items():
            kind = "none" if weight.sha256 is None else ("sha256+size" if weight.size else "sha256-prefix")
            put(weight.url, data, kind)
    put(params.fixations.centerbias.url, centerbias_npy(), "none")
    put(params.fixations.checkpoint.url, deepgaze_checkpoint(), "none")
    return served


def overrides(served: list[Served], mirror: str) -> dict[str, object]:
    """The overrides file's content: the loopback mirror, and a stand-in pin wherever the real file has one."""
    return {"mirror": mirror, "pins": {s.url: s.pin() for s in served if s.kind != "none"}}


# --- Data ---------------------------------------------------------------------------------------------------


def _jpeg(pixels: np.ndarray, quality: int = 90) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="JPEG", quality=quality)
    return buffer.getvalue()


def _scene(seed: int, size: tuple[int, int] = IMAGE_SIZE) -> np.ndarray:
    rng = np.random.default_rng(seed)
    width, height = size
    pixels = np.full((height, width, 3), rng.integers(40, 200, 3), np.uint8)
    for _ in range(3):
        x, y = rng.integers(0, width - 8), rng.integers(0, height - 8)
        pixels[y : y + 8, x : x + 8] = rng.integers(0, 256, 3)
    return pixels


def _voc_xml(voc_id: str, objects: list[tuple], *, action: bool = False) -> str:
    """A VOC 2012 annotation as the devkit writes it (action-task images: <actions> on each person)."""
    width, height = IMAGE_SIZE
    nodes = []
    for name, (x0, y0, x1, y1), *flags in objects:
        difficult = int(bool(flags and flags[0]))
        actions = "<actions><jumping>1</jumping><phoning>0</phoning><other>0</other></actions>" if action else ""
        nodes.append(
            f"\t<object>\n\t\t<name>{name}</name>\n\t\t<pose>Unspecified</pose>\n\t\t<truncated>0</truncated>\n"
            f"\t\t<occluded>0</occluded>{actions}\n\t\t<bndbox>\n\t\t\t<xmin>{x0}</xmin>\n\t\t\t<ymin>{y0}</ymin>\n"
            f"\t\t\t<xmax>{x1}</xmax>\n\t\t\t<ymax>{y1}</ymax>\n\t\t</bndbox>\n\t\t<difficult>{difficult}</difficult>\n"
            "\t</object>\n"
        )
    return (
        f"<annotation>\n\t<folder>VOC2012</folder>\n\t<filename>{voc_id}.jpg</filename>\n\t<source>\n"
        "\t\t<database>The VOC2008 Database</database>\n\t\t<annotation>PASCAL VOC2008</annotation>\n"
        f"\t\t<image>flickr</image>\n\t</source>\n\t<size>\n\t\t<width>{width}</width>\n\t\t<height>{height}</height>\n"
        f"\t\t<depth>3</depth>\n\t</size>\n\t<segmented>0</segmented>\n{''.join(nodes)}</annotation>\n"
    )


def voc_tar(folder: Path) -> bytes:
    """``VOCtrainval_11-May-2012.tar``: VOCdevkit/VOC2012/{JPEGImages,Annotations,ImageSets/{Main,Action}}."""
    root = folder / "VOCdevkit" / "VOC2012"
    for sub in ("JPEGImages", "Annotations", "ImageSets/Main", "ImageSets/Action"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    everything = {**TRAIN, **TEST_IN_MAIN, **TEST_ACTION_ONLY, **UNMASKED_OUTSIDE_MAIN}
    for k, (voc_id, objects) in enumerate(sorted(everything.items())):
        (root / "JPEGImages" / f"{voc_id}.jpg").write_bytes(_jpeg(_scene(k)))
        action = voc_id in TEST_ACTION_ONLY or voc_id in UNMASKED_OUTSIDE_MAIN
        (root / "Annotations" / f"{voc_id}.xml").write_text(_voc_xml(voc_id, objects, action=action))
    main = sorted({**TRAIN, **TEST_IN_MAIN})
    (root / "ImageSets" / "Main" / "trainval.txt").write_text("".join(f"{i}\n" for i in main))
    (root / "ImageSets" / "Main" / "train.txt").write_text("".join(f"{i}\n" for i in main[::2]))
    (root / "ImageSets" / "Main" / "val.txt").write_text("".join(f"{i}\n" for i in main[1::2]))
    action_ids = sorted({**TEST_ACTION_ONLY, **UNMASKED_OUTSIDE_MAIN})
    (root / "ImageSets" / "Action" / "trainval.txt").write_text("".join(f"{i}\n" for i in action_ids))
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.GNU_FORMAT) as tf:
        tf.add(folder / "VOCdevkit", arcname="VOCdevkit")  # with directory entries, as the real tar has
    return buffer.getvalue()


def _mask(seed: int, box: tuple[int, int, int, int], scale: int = 1) -> bytes:
    """A weighted attention mask (grayscale JPEG): a blurred box, ``scale`` times the image's size."""
    width, height = IMAGE_SIZE
    weights = np.zeros((height, width), np.float64)
    x0, y0, x1, y1 = box
    weights[y0:y1, x0:x1] = 0.6 + 0.4 * np.random.default_rng(seed).random()
    mask = Image.fromarray(np.uint8(255 * weights)).resize((width * scale, height * scale), Image.BILINEAR)
    return _jpeg(np.asarray(mask.convert("L")), quality=95)


def benchmark_zip() -> bytes:
    """GitHub's archive of ML-Interpretability-Evaluation-Benchmark at the pinned commit: one top folder
    ``<repo>-<commit>``, the VOC masks under Image/PASCAL_VOC_2012/human_attention_mask/<class>/<id>.jpg, and the
    ImageNet masks beside them (a decoy for the anchor). One mask is at twice its image's size."""
    top = f"ML-Interpretability-Evaluation-Benchmark-{BENCHMARK_COMMIT}"
    voc = f"{top}/Image/PASCAL_VOC_2012/human_attention_mask"
    members = {
        f"{top}/README.md": b"# ML-Interpretability-Evaluation-Benchmark\n",
        f"{voc}/horse/2008_000008.jpg": _mask(1, TEST_IN_MAIN["2008_000008"][0][1], scale=2),
        f"{voc}/person/2008_000008.jpg": _mask(2, TEST_IN_MAIN["2008_000008"][1][1]),
        f"{voc}/person/2012_000010.jpg": _mask(3, TEST_ACTION_ONLY["2012_000010"][0][1]),
        f"{top}/Image/ImageNet/human_attention_mask/n01443537/n01443537_1.jpg": _mask(4, (0, 0, 9, 9)),
    }
    return _zip(members, folders=True)


def _zip(members: dict[str, bytes], *, folders: bool = False) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as zf:
        if folders:  # GitHub's archives list every folder
            for name in sorted({n.rsplit("/", k)[0] + "/" for n in members for k in range(1, n.count("/") + 1)}):
                zf.writestr(name, b"")
        for name, data in members.items():
            zf.writestr(name, data)
    return buffer.getvalue()


def mit_stimuli_zip() -> bytes:
    size = (40, 30)
    return _zip({f"ALLSTIMULI/{stem}.jpeg": _jpeg(_scene(10 + k, size)) for k, stem in enumerate(MIT_STEMS)})


def mit_fixations_zip() -> bytes:
    width, height = 40, 30
    members = {}
    for k, stem in enumerate(MIT_STEMS):
        rng = np.random.default_rng(20 + k)
        points = np.zeros((height, width), np.uint8)
        points[rng.integers(0, height, 12), rng.integers(0, width, 12)] = 255
        density = np.uint8(255 * np.exp(-((np.mgrid[:height, :width] - [[[15]], [[20]]]) ** 2).sum(0) / 200))
        members[f"ALLFIXATIONMAPS/{stem}_fixMap.jpg"] = _jpeg(density)
        members[f"ALLFIXATIONMAPS/{stem}_fixPts.jpg"] = _jpeg(points, quality=95)
    return _zip(members)


# --- Weights -------------------------------------------------------------------------------------------------


def _torch_bytes(obj: object) -> bytes:
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    return buffer.getvalue()


def detector_weights(name: str, work: Path) -> dict:
    """The COCO weight files of registry entry ``name`` in their real formats, random weights."""
    spec = DETECTORS[name]
    torch.manual_seed(len(name))
    if spec.family == "torchvision":  # the zoo's state dict; torchvision's R-CNNs and RetinaNet freeze BatchNorm
        model = spec.builder(len(COCO_CATEGORIES))
        if name in _FROZEN_BN_WHEN_PRETRAINED:
            _freeze_batchnorm(model)
        return {spec.coco_weights[0]: _torch_bytes(model.state_dict())}
    if spec.family == "ultralytics":
        return {spec.coco_weights[0]: _yolo_checkpoint(spec)}
    return _detr_files(spec, work / "detr")


def _yolo_checkpoint(spec) -> bytes:
    """Like yolov5su.pt: a pickled dict holding the whole model in half precision with its class names."""
    from ultralytics.utils import ROOT as ULTRALYTICS
    from ultralytics.utils import YAML

    model = spec.builder(80)
    model.names = YAML.load(ULTRALYTICS / "cfg/datasets/coco.yaml")["names"]
    meta = {
        "date": "2024-01-01T00:00:00",
        "version": "8.4.0",
        "license": "AGPL-3.0",
        "docs": "https://docs.ultralytics.com",
    }
    return _torch_bytes({**meta, "epoch": -1, "best_fitness": None, "model": model.half(), "ema": None, "updates": None,
                         "optimizer": None, "train_args": {}, "train_metrics": {}, "train_results": {}})  # fmt: skip


def _detr_files(spec, folder: Path) -> dict:
    """``model.safetensors`` as the installed transformers writes a random DETR R50, and ``config.json`` in the
    format of the hub's file at the pinned revision (transformers 4.x keys; ``use_pretrained_backbone: true``)."""
    from transformers import DetrConfig, DetrForObjectDetection

    names = ["N/A", *COCO_CATEGORIES[1:]]
    config = DetrConfig(
        num_labels=len(names),
        id2label=dict(enumerate(names)),
        label2id={n: i for i, n in enumerate(names)},
        use_pretrained_backbone=False,  # a stand-in: never fetch timm's weights to make it
    )
    DetrForObjectDetection(config).save_pretrained(folder)
    hub_config = {
        "_name_or_path": "facebook/detr-resnet-50", "activation_dropout": 0.0, "activation_function": "relu",
        "architectures": ["DetrForObjectDetection"], "attention_dropout": 0.0, "auxiliary_loss": False,
        "backbone": "resnet50", "bbox_cost": 5, "bbox_loss_coefficient": 5, "class_cost": 1,
        "classifier_dropout": 0.0, "d_model": 256, "decoder_attention_heads": 8, "decoder_ffn_dim": 2048,
        "decoder_layerdrop": 0.0, "decoder_layers": 6, "dice_loss_coefficient": 1, "dilation": False, "dropout": 0.1,
        "encoder_attention_heads": 8, "encoder_ffn_dim": 2048, "encoder_layerdrop": 0.0, "encoder_layers": 6,
        "eos_coefficient": 0.1, "giou_cost": 2, "giou_loss_coefficient": 2,
        "id2label": {str(i): n for i, n in enumerate(names)}, "init_std": 0.02, "init_xavier_std": 1.0,
        "is_encoder_decoder": True, "label2id": {n: i for i, n in enumerate(names)}, "mask_loss_coefficient": 1,
        "max_position_embeddings": 1024, "model_type": "detr", "num_channels": 3, "num_hidden_layers": 6,
        "num_queries": 100, "position_embedding_type": "sine", "scale_embedding": False, "torch_dtype": "float32",
        "transformers_version": "4.26.0.dev0", "use_pretrained_backbone": True, "use_timm_backbone": True,
    }  # fmt: skip
    config_file, weights_file = spec.coco_weights
    return {
        config_file: (json.dumps(hub_config, indent=2, sort_keys=True) + "\n").encode(),
        weights_file: (folder / "model.safetensors").read_bytes(),
    }


def centerbias_npy(size: int = 1024) -> bytes:
    """Like centerbias_mit1003.npy: a 1024×1024 float64 log density peaking mid-image."""
    ys, xs = np.mgrid[:size, :size] - (size - 1) / 2
    log_density = -0.5 * (ys**2 / (size / 4) ** 2 + xs**2 / (size / 3) ** 2)
    buffer = io.BytesIO()
    np.save(buffer, log_density - logsumexp(log_density))
    return buffer.getvalue()


def deepgaze_checkpoint() -> bytes:
    """deepgaze2e.pth with the real keys and shapes: the stand-in package's DeepGazeIIE, random weights."""
    sys.path.insert(0, str(STANDINS))
    saved = {name: module for name, module in sys.modules.items() if name.split(".")[0] == "deepgaze_pytorch"}
    for name in saved:
        del sys.modules[name]
    try:
        torch.manual_seed(0)
        with deepgaze_backbones_offline():
            model = importlib.import_module("deepgaze_pytorch").DeepGazeIIE(pretrained=False)
        return _torch_bytes(model.state_dict())
    finally:
        sys.path.remove(str(STANDINS))
        for name in [name for name in sys.modules if name.split(".")[0] == "deepgaze_pytorch"]:
            del sys.modules[name]
        sys.modules.update(saved)
