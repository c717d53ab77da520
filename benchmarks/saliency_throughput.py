"""Benchmark: Faster R-CNN EigenCAM throughput, this pipeline vs the original notebooks' loop, same run.

The reference loop does what the study's notebooks did, per image (batch 1): load the MIT1003 centre bias
again and zoom it, run the detector to predict, then run grad-cam's EigenCAM — a second forward pass and
grad-cam's full-SVD projection. The pipeline's path (``human_saliency.maps.saliency.compute_saliency``) runs one
forward pass per batch that yields detections and activations, computes the CAM on the model's device, and
loads the centre bias once: the whole loop, images read from JPEG files. Each variant runs in its own process
so its peak memory (max RSS) is its own. What the CAM costs on top of the forward pass, for every detector and
device, is ``benchmarks/saliency_cost.py``'s measure.

    python benchmarks/saliency_throughput.py --n-images 16 --size 512
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

MODEL = "fasterrcnn_r50"


def make_inputs(folder: Path, n_images: int, size: int) -> None:
    """JPEG images of random shapes, and a 1024×1024 log-density centre bias like DeepGaze's."""
    rng = np.random.default_rng(0)
    for i in range(n_images):
        pixels = rng.integers(0, 255, (size, size, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(folder / f"{i:04d}.jpg", quality=90)
    yy, xx = np.mgrid[-1:1:1024j, -1:1:1024j]
    np.save(folder / "centerbias.npy", -(xx**2 + yy**2) * 4.0)


def reference(folder: Path, size: int) -> tuple[int, float]:
    """The notebooks' loop: batch 1, predict, then CAM (second pass), centre bias reloaded per image."""
    from pytorch_grad_cam import EigenCAM
    from pytorch_grad_cam.utils.model_targets import FasterRCNNBoxScoreTarget
    from scipy.ndimage import zoom

    from human_saliency.maps.detectors import build_detector

    torch.manual_seed(0)
    model = build_detector(MODEL, weights="random", num_classes=20, min_size=size).model
    paths = sorted(folder.glob("*.jpg"))
    start = time.perf_counter()
    for path in paths:
        centerbias = np.load(folder / "centerbias.npy")
        zoom(centerbias, (size / 1024, size / 1024), order=0, mode="nearest")
        image = np.asarray(Image.open(path).convert("RGB").resize((size, size)), dtype=np.float32) / 255
        tensor = torch.from_numpy(image).permute(2, 0, 1)[None]
        with torch.no_grad():
            prediction = model(tensor)[0]
        targets = [FasterRCNNBoxScoreTarget(labels=prediction["labels"], bounding_boxes=prediction["boxes"])]
        with EigenCAM(model, [model.backbone.body.layer4]) as cam:
            cam(tensor, targets=targets)
    return len(paths), time.perf_counter() - start


def pipeline(folder: Path, size: int, batch_size: int) -> tuple[int, float]:
    """This project's path: batched, one forward pass, the CAM on the model's device, centre bias loaded once."""
    from scipy.ndimage import zoom

    from human_saliency.io.mapstore import MapWriter
    from human_saliency.maps.detectors import build_detector
    from human_saliency.maps.saliency import compute_saliency
    from human_saliency.prepared.loaders import ImageRef

    torch.manual_seed(0)
    refs = [ImageRef(f"2000_{p.stem}", p, size, size) for p in sorted(folder.glob("*.jpg"))]
    with (
        build_detector(MODEL, weights="random", num_classes=20, min_size=size) as detector,
        MapWriter(folder / "maps.zip") as writer,
    ):
        start = time.perf_counter()
        zoom(np.load(folder / "centerbias.npy"), (size / 1024, size / 1024), order=0, mode="nearest")
        compute_saliency(detector, refs, writer, size=size, batch_size=batch_size)
        return len(refs), time.perf_counter() - start


def child(args: argparse.Namespace) -> None:
    torch.set_num_threads(args.threads)
    folder = Path(args.folder)
    # Model building and imports are the same in both and are not timed: the loop over images is.
    n, seconds = (
        reference(folder, args.size) if args.variant == "reference" else pipeline(folder, args.size, args.batch_size)
    )
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"images": n, "seconds": seconds, "peak_rss_mb": peak_mb}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n-images", type=int, default=16)
    parser.add_argument("--size", type=int, default=512, help="working resolution (the study: 512)")
    # On a CPU the R-CNNs at 512 px run fastest one image at a time (batch 4 measured slower here);
    # batching pays off on a GPU.
    parser.add_argument("--batch-size", type=int, default=1, help="the pipeline's batch size")
    parser.add_argument("--threads", type=int, default=2, help="torch threads in each variant")
    parser.add_argument("--variant", choices=["reference", "pipeline"], help=argparse.SUPPRESS)
    parser.add_argument("--folder", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.variant:
        child(args)
        return

    with tempfile.TemporaryDirectory() as folder:
        make_inputs(Path(folder), args.n_images, args.size)
        results = {}
        for variant in ("reference", "pipeline"):
            out = subprocess.run(
                [
                    sys.executable,
                    __file__,
                    "--variant",
                    variant,
                    "--folder",
                    folder,
                    "--size",
                    str(args.size),
                    "--batch-size",
                    str(args.batch_size),
                    "--threads",
                    str(args.threads),
                ],
                check=True,
                capture_output=True,
                text=True,
            )
            results[variant] = json.loads(out.stdout.strip().splitlines()[-1])
    print(f"{MODEL}, {args.n_images} images at {args.size}×{args.size}, {args.threads} torch threads, CPU")
    for variant, r in results.items():
        print(
            f"  {variant:9s}: {r['images'] / r['seconds']:6.2f} images/s   ({r['seconds']:.1f} s)   "
            f"peak RSS {r['peak_rss_mb']:.0f} MB"
        )
    ratio = (results["pipeline"]["images"] / results["pipeline"]["seconds"]) / (
        results["reference"]["images"] / results["reference"]["seconds"]
    )
    print(f"  speed-up: {ratio:.2f}× (target ≥ 2×)")


if __name__ == "__main__":
    main()
