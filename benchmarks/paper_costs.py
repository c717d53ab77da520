"""Benchmark: per-image costs of the paper profile's heavy steps on this machine, for the README's GPU-hours formula.

Measured (seconds per image, or per iteration, at the paper profile's settings, random weights, random pixels):
- ``saliency/<detector>``: one forward pass and EigenCAM of each study detector on 512×512 images, at the
  library's own internal size (``study.detector_min_size: null``), ``--batch`` images at once;
- ``train_step``: one SGD step of the Faster R-CNN R50-FPN at 512 px, batch 4, per image;
- ``dip_iteration``: one Deep Image Prior iteration on one VOC-size image (500×375).
- ``deepgaze_iie``: where ``deepgaze_pytorch`` (the pinned commit) is importable, one prediction at 512×512 by the real
  model with random weights (the cost does not depend on them), built as the pipeline builds it; and always an
  estimate from the FLOPs of its four backbones at half the working size (DeepGaze IIE runs them on the image
  downsampled by 2) divided by the FLOP rate this machine reaches on the ResNet-50 among them. The estimate leaves
  out the 120 readout networks and their Gaussian blurs, which the measurement shows are not negligible on a CPU.

    python benchmarks/paper_costs.py --threads 2          # this CPU
    python benchmarks/paper_costs.py --device cuda        # a GPU: per-image costs for the README's formula
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from datetime import date

os.environ.setdefault("TQDM_DISABLE", "1")

import torch
from torch.utils.flop_counter import FlopCounterMode

VOC_SIZE = (375, 500)  # a typical VOC 2012 image, height × width


DEVICE = "cpu"


def _sync() -> None:
    if DEVICE.startswith("cuda"):
        torch.cuda.synchronize()


def best_of(repeats: int, fn) -> float:
    """The fastest of ``repeats`` timed calls of ``fn`` after one warm-up call (oneDNN or cuDNN picks its kernels)."""
    fn()
    _sync()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        _sync()
        times.append(time.perf_counter() - start)
    return min(times)


def detector_cost(name: str, size: int, batch: int, repeats: int) -> float:
    from human_saliency.maps.cam import eigencam
    from human_saliency.maps.detectors import build_detector

    images = torch.rand(batch, 3, size, size, generator=torch.Generator().manual_seed(0)).to(DEVICE)
    with build_detector(name, weights="random", num_classes=20, min_size=None).to(DEVICE) as detector:

        def once() -> None:
            _, activations = detector.run(images)
            eigencam(activations, (size, size))

        return best_of(repeats, once) / batch


def train_step_cost(size: int, repeats: int, batch: int = 4) -> float:
    from human_saliency.maps.detectors import DETECTORS

    torch.manual_seed(0)
    model = DETECTORS["fasterrcnn_r50"].builder(21)
    model.transform.min_size, model.transform.max_size = (size,), size
    model.to(DEVICE).train()
    optimizer = torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9)
    images = [torch.rand(3, size, size, device=DEVICE) for _ in range(batch)]
    box = torch.tensor([[40.0, 50.0, 300.0, 400.0]], device=DEVICE)
    targets = [{"boxes": box, "labels": torch.tensor([3], device=DEVICE)} for _ in range(batch)]

    def once() -> None:
        losses = model(images, targets)
        optimizer.zero_grad()
        sum(losses.values()).backward()
        optimizer.step()

    return best_of(repeats, once) / batch


def dip_iteration_cost(repeats: int, iterations: int = 3) -> float:
    import numpy as np

    from human_saliency.experiment.dip import dip_inpaint_batch

    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (*VOC_SIZE, 3), dtype=np.uint8)
    mask = rng.random(VOC_SIZE) < 0.025

    def once() -> None:
        dip_inpaint_batch([image], [mask], iterations=iterations, lr=1e-3, seed=0, device=DEVICE, batch_size=1)

    return best_of(repeats, once) / iterations


def _flops(model: torch.nn.Module, side: int) -> int:
    with FlopCounterMode(display=False) as counter, torch.inference_mode():
        model.eval()(torch.rand(1, 3, side, side))
    return counter.get_total_flops()


def deepgaze_estimate(size: int, repeats: int) -> dict[str, float]:
    """DeepGaze IIE's backbones (ShapeNet-C = a ResNet-50, EfficientNet-B5, DenseNet-201, ResNeXt-50) at size/2."""
    import timm
    import torchvision.models as tvm

    side = size // 2
    backbones = {
        "resnet50": tvm.resnet50(weights=None),
        "efficientnet_b5": timm.create_model("efficientnet_b5", pretrained=False),
        "densenet201": tvm.densenet201(weights=None),
        "resnext50_32x4d": tvm.resnext50_32x4d(weights=None),
    }
    flops = {name: _flops(model, side) for name, model in backbones.items()}
    images = torch.rand(1, 3, side, side)
    with torch.inference_mode():
        seconds = best_of(repeats, lambda: backbones["resnet50"](images))
    rate = flops["resnet50"] / seconds
    return {
        "gflops_per_image": sum(flops.values()) / 1e9,
        "cpu_gflop_per_s": rate / 1e9,
        "seconds_per_image": sum(flops.values()) / rate,
    }


def deepgaze_measured(size: int, repeats: int) -> float | None:
    """Seconds per image of the real DeepGaze IIE (random weights), or None where the package is not installed."""
    import importlib.util

    import numpy as np

    if importlib.util.find_spec("deepgaze_pytorch") is None:
        return None
    import deepgaze_pytorch

    from human_saliency.maps.predictors import DeepGazeIIE, deepgaze_backbones_offline

    with deepgaze_backbones_offline():
        model = deepgaze_pytorch.DeepGazeIIE(pretrained=False)
    predictor = DeepGazeIIE(model, np.zeros((1024, 1024)), DEVICE)
    images = np.random.default_rng(0).integers(0, 256, (1, size, size, 3), dtype=np.uint8)
    return best_of(repeats, lambda: predictor.predict(images))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=512, help="working size (paper: 512)")
    parser.add_argument("--batch", type=int, default=2, help="images per detector forward pass")
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--only", nargs="*", default=None, help="measure only these keys (e.g. dip_iteration)")
    parser.add_argument("--device", default="cpu", help="cpu, or cuda to measure a GPU's costs")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    global DEVICE
    DEVICE = args.device

    wanted = set(args.only) if args.only else None
    costs: dict[str, object] = {}

    def measure(key: str, fn) -> None:
        if wanted is None or key in wanted or key.split("/")[0] in wanted:
            costs[key] = fn()
            print(f"{key}: {costs[key]}", flush=True)

    from human_saliency.maps.detectors import STUDY_DETECTORS

    for name in STUDY_DETECTORS:
        measure(f"saliency/{name}", lambda name=name: detector_cost(name, args.size, args.batch, args.repeats))
    measure("train_step", lambda: train_step_cost(args.size, args.repeats))
    measure("dip_iteration", lambda: dip_iteration_cost(args.repeats))
    measure("deepgaze_iie", lambda: deepgaze_estimate(args.size, args.repeats))
    measure("deepgaze_iie_measured", lambda: deepgaze_measured(args.size, args.repeats))
    record = {
        "date": date.today().isoformat(),
        "machine": f"{platform.machine()} {platform.processor() or ''} {os.cpu_count()} cores".strip(),
        "device": torch.cuda.get_device_name() if DEVICE.startswith("cuda") else "cpu",
        "torch": torch.__version__,
        "threads": args.threads,
        "size": args.size,
        "seconds_per_image": costs,
    }
    print(json.dumps(record, indent=2))


if __name__ == "__main__":
    main()
