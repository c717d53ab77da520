"""Benchmark: Deep Image Prior inpainting one image at a time vs several at once (grouped generators).

Example: python benchmarks/dip_batch.py --n-images 8 --size 128 --iterations 50 --batch-size 8 --threads 2

Both modes call the same ``dip_inpaint_batch`` on the same images, each run in a fresh child
process (so each mode's peak RSS is its own) after a one-iteration warm-up that pays oneDNN's
kernel generation. The modes alternate ``--repeats`` times and the fastest run of each counts,
so a busy shared machine penalises both alike. CPU seconds are printed too: with one thread they
measure the work itself, unaffected by other processes' time slices.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time

import numpy as np


def make_inputs(n: int, size: int, seed: int) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Random RGB images, each with 2.5 % of its pixels missing (as the erasing arm leaves them)."""
    rng = np.random.default_rng(seed)
    images = [rng.integers(0, 256, (size, size, 3), dtype=np.uint8) for _ in range(n)]
    masks = [rng.random((size, size)) < 0.025 for _ in range(n)]
    return images, masks


def run_mode(args: argparse.Namespace, batch_size: int) -> dict[str, float]:
    """Time one mode in this process: seconds for all images and peak RSS in MiB."""
    os.environ["TQDM_DISABLE"] = "1"  # before tqdm is imported: keep the benchmark's output readable
    import torch

    from human_saliency.experiment.dip import dip_inpaint_batch

    torch.set_num_threads(args.threads)
    rss_import = _peak_rss_mib()
    images, masks = make_inputs(args.n_images, args.size, args.seed)
    common = {"lr": 1e-3, "seed": args.seed, "device": args.device, "batch_size": batch_size}
    dip_inpaint_batch(images[:batch_size], masks[:batch_size], iterations=1, **common)
    start, start_cpu = time.perf_counter(), time.process_time()
    dip_inpaint_batch(images, masks, iterations=args.iterations, **common)
    if args.device.startswith("cuda"):
        torch.cuda.synchronize()
    return {
        "seconds": time.perf_counter() - start,
        "cpu_seconds": time.process_time() - start_cpu,
        "peak_rss_mib": _peak_rss_mib(),
        "import_rss_mib": rss_import,
    }


def _peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB


def child(args: argparse.Namespace, batch_size: int) -> dict[str, float]:
    command = [sys.executable, __file__, *sys.argv[1:], "--child-batch-size", str(batch_size)]
    done = subprocess.run(command, check=True, capture_output=True, text=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-images", type=int, default=8, help="images to inpaint (default 8)")
    parser.add_argument("--size", type=int, default=128, help="square image side in pixels (default 128)")
    parser.add_argument("--iterations", type=int, default=50, help="DIP iterations per image (default 50)")
    parser.add_argument("--batch-size", type=int, default=8, help="images per pass in the batched mode (default 8)")
    parser.add_argument("--threads", type=int, default=2, help="torch intra-op threads (default 2)")
    parser.add_argument("--repeats", type=int, default=1, help="alternating runs per mode; the fastest counts")
    parser.add_argument("--device", default="cpu", help="torch device (default cpu)")
    parser.add_argument("--seed", type=int, default=0, help="seed for the inputs and DIP (default 0)")
    parser.add_argument("--child-batch-size", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.batch_size < 2:
        parser.error("--batch-size must be at least 2 to compare with one image at a time")
    if args.child_batch_size is not None:
        print(json.dumps(run_mode(args, args.child_batch_size)))
        return

    load_before = os.getloadavg()[0]
    runs: dict[int, list[dict[str, float]]] = {1: [], args.batch_size: []}
    for _ in range(args.repeats):
        for batch_size in runs:
            runs[batch_size].append(child(args, batch_size))
    load_after = os.getloadavg()[0]

    print(
        f"DIP inpainting: {args.n_images} images {args.size}x{args.size}, {args.iterations} iterations, "
        f"device {args.device}, torch threads {args.threads}, {args.repeats} alternating run(s) per mode, "
        f"1-min load average {load_before:.1f} -> {load_after:.1f} on {os.cpu_count()} CPUs"
    )
    rates = {}
    for batch_size, results in runs.items():
        best = min(r["seconds"] for r in results)
        rates[batch_size] = args.n_images / best
        label = "one at a time" if batch_size == 1 else f"batch of {batch_size}"
        times = ", ".join(f"{r['seconds']:.1f}s wall / {r['cpu_seconds']:.1f}s CPU" for r in results)
        rss = max(r["peak_rss_mib"] for r in results)
        base = max(r["import_rss_mib"] for r in results)
        print(
            f"{label:>14}: {rates[batch_size]:8.4f} images/s  peak RSS {rss:6.0f} MiB "
            f"({base:.0f} MiB after imports)  (runs: {times})"
        )
    print(f"      speed-up: {rates[args.batch_size] / rates[1]:.2f}x")


if __name__ == "__main__":
    main()
