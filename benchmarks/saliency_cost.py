"""Benchmark: what EigenCAM saliency costs on top of the forward pass, for every registry detector, on every device.

    python benchmarks/saliency_cost.py                  # all detectors, the CPU and (if present) CUDA
    python benchmarks/saliency_cost.py --batch-size 8 --devices cuda

Settings are the paper profile's (configs/paper.yaml: working size, detector_min_size, score threshold), so
each detector resizes its input as in the study (800 px for the R-CNNs, RetinaNet and DETR). For each
detector and device, every timed batch (random 512 px images, after one warm-up batch) is split into
the forward pass (``Detector.run``: detections, activations captured) and the CAM (``cam.eigencam`` on the
same device, maps copied to the host). Forward-units = (forward + CAM) / forward of the same batch, median
over the batches. Then the projection alone (first principal component, sign-corrected) is timed on
Faster R-CNN's 2048 × 25 × 25 C5 activations captured above, against the float64 SVD on the CPU that it
replaces. Weights are random by default (offline): the cost of a forward pass does not depend on them,
only the number of boxes left for post-processing does; ``--weights coco`` fetches the real ones.
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from threadpoolctl import threadpool_limits

from human_saliency.maps.cam import eigencam, first_component_projection
from human_saliency.maps.detectors import DETECTORS, build_detector
from human_saliency.params import load_params

PAPER = Path(__file__).resolve().parents[1] / "configs" / "paper.yaml"
PROJECTION_MODEL = "fasterrcnn_r50"  # its C5 is the 2048 × 25 × 25 case


def clock(device: torch.device) -> Callable[[], float]:
    """perf_counter that first waits for the device's queued work."""
    if device.type == "cuda":
        return lambda: (torch.cuda.synchronize(device), time.perf_counter())[1]
    return time.perf_counter


def median_seconds(function: Callable[[], object], device: torch.device, repeats: int) -> tuple[float, float]:
    """The median wall and process (CPU, all threads) time of ``repeats`` calls, after one warm-up call."""
    now = clock(device)
    function()
    wall, cpu = [], []
    for _ in range(repeats):
        start, start_cpu = now(), time.process_time()
        function()
        wall.append(now() - start)
        cpu.append(time.process_time() - start_cpu)
    return statistics.median(wall), statistics.median(cpu)


def detector_cost(
    name: str, device: torch.device, paper, batch_size: int, batches: int, weights: str
) -> tuple[dict[str, object], torch.Tensor]:
    """Forward and saliency times (ms per image) and forward-units of one detector; its activations."""
    torch.manual_seed(0)
    images = torch.rand(batch_size, 3, paper.size, paper.size, generator=torch.Generator().manual_seed(0)).to(device)
    now = clock(device)
    with build_detector(
        name,
        weights=weights,
        num_classes=20,
        min_size=paper.detector_min_size,
        score_threshold=paper.score_threshold,
    ) as detector:
        detector.to(device)
        forward, cam, units = [], [], []
        for batch in range(batches + 1):  # the first batch warms up and is not counted
            start = now()
            _, activations = detector.run(images)
            ran = now()
            eigencam(
                activations.values,
                (paper.size, paper.size),
                image_size=activations.image_size,
                input_size=activations.input_size,
            ).cpu()
            done = now()
            if batch:
                forward.append(ran - start)
                cam.append(done - ran)
                units.append((done - start) / (ran - start))
    per_image = 1000 / batch_size
    row = {
        "detector": name,
        "device": device.type,
        "input": "×".join(str(side) for side in activations.image_size),
        "activations": "×".join(str(side) for side in activations.values.shape[1:]),
        "forward": statistics.median(forward) * per_image,
        "cam": statistics.median(cam) * per_image,
        "units": statistics.median(units),
    }
    return row, activations.values


def previous_projection(activations: np.ndarray) -> np.ndarray:
    """The projection as computed before issue 14 (the baseline): float64 thin SVD per image, on the CPU."""
    projections = []
    for image in activations.astype(np.float64):
        matrix = image.reshape(image.shape[0], -1).T
        matrix = matrix - matrix.mean(axis=0)
        projection = matrix @ np.linalg.svd(matrix, full_matrices=False)[2][0]
        projections.append(-projection if abs(projection.min()) > abs(projection.max()) else projection)
    return np.asarray(projections, np.float32)


def projection_cost(activations: torch.Tensor, repeats: int) -> dict[str, object]:
    """ms per image (wall, CPU) of the projection on the activations' device, and of the float64 SVD on the CPU."""
    per_image = 1000 / activations.shape[0]
    on_host = activations.cpu().numpy()
    new = median_seconds(lambda: first_component_projection(activations), activations.device, repeats)
    previous = median_seconds(lambda: previous_projection(on_host), torch.device("cpu"), max(3, repeats // 4))
    return {
        "device": activations.device.type,
        "new": [t * per_image for t in new],
        "previous": [t * per_image for t in previous],
    }


def describe(devices: list[torch.device], threads: int, load: float) -> str:
    info = Path("/proc/cpuinfo")
    models = [line.split(":", 1)[1].strip() for line in info.read_text().splitlines() if line.startswith("model name")]
    cpu = models[0] if models else platform.processor() or "unknown CPU"
    parts = [f"CPU: {cpu}, {os.cpu_count()} logical cores, {threads} torch/BLAS threads"]
    parts += [f"CUDA: {torch.cuda.get_device_name(d)}" for d in devices if d.type == "cuda"]
    parts.append(f"torch {torch.__version__}, 1-min load average {load:.1f} -> {os.getloadavg()[0]:.1f}")
    return "; ".join(parts)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--detectors", nargs="+", default=list(DETECTORS), choices=list(DETECTORS))
    parser.add_argument("--devices", nargs="+", default=None, help="default: cpu, and cuda when present")
    parser.add_argument("--batch-size", type=int, default=2, help="images per batch (the paper profile runs 8)")
    parser.add_argument("--batches", type=int, default=3, help="timed batches per detector and device")
    parser.add_argument("--repeats", type=int, default=20, help="timed calls of the projection alone")
    parser.add_argument("--threads", type=int, default=torch.get_num_threads(), help="torch and BLAS threads")
    parser.add_argument("--weights", default="random", choices=["random", "coco"])
    args = parser.parse_args()
    devices = [torch.device(d) for d in (args.devices or ["cpu", *(["cuda"] if torch.cuda.is_available() else [])])]
    paper = load_params(PAPER).study
    torch.set_num_threads(args.threads)

    rows, projections, load = [], [], os.getloadavg()[0]
    with threadpool_limits(args.threads):
        for device in devices:
            captured = None
            for name in args.detectors:
                row, values = detector_cost(name, device, paper, args.batch_size, args.batches, args.weights)
                rows.append(row)
                print(f"  {name} on {device}: {row['units']:.3f} forward-units", flush=True)
                if name == PROJECTION_MODEL:
                    captured = values
            if captured is not None:
                projections.append(projection_cost(captured, args.repeats))

    stamp = datetime.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z")
    print(f"\n{stamp}. {describe(devices, args.threads, load)}")
    print(
        f"Paper profile: {paper.size} px images, detector_min_size {paper.detector_min_size} (library sizes), "
        f"batch {args.batch_size}, {args.weights} weights; median of {args.batches} batches after a warm-up "
        "(forward-units: the median of the batches' (forward + CAM) / forward).\n"
    )
    print(
        "| detector | device | model input | CAM layer output | forward ms/image | saliency ms/image | forward-units |"
    )
    print("|---|---|---|---|---:|---:|---:|")
    for r in rows:
        saliency = r["forward"] + r["cam"]
        print(
            f"| {r['detector']} | {r['device']} | {r['input']} | {r['activations']} | {r['forward']:.1f} | "
            f"{saliency:.1f} | {r['units']:.3f} |"
        )
    if projections:
        print(f"\nProjection alone, {PROJECTION_MODEL}'s C5 (2048×25×25), median of {args.repeats} calls:\n")
        print("| device | projection ms/image (wall / CPU) | float64 SVD on the CPU, before (wall / CPU) | speed-up |")
        print("|---|---:|---:|---:|")
        for p in projections:
            (new, new_cpu), (old, old_cpu) = p["new"], p["previous"]
            cpu = f" / {new_cpu:.2f}" if p["device"] == "cpu" else ""
            print(f"| {p['device']} | {new:.2f}{cpu} | {old:.1f} / {old_cpu:.1f} | {old / new:.0f}× |")


if __name__ == "__main__":
    main()
