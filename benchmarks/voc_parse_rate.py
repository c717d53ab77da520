"""Parse rate of ``voc.parse_annotation`` on generated VOC XML files, against plain ElementTree.

Usage: python benchmarks/voc_parse_rate.py [--n 5000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import random
import tempfile
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable
from pathlib import Path

from human_saliency.sources.voc import VOC_CLASSES, parse_annotation

REAL_VOC_XML_FILES = 17_125  # VOC2012 trainval Annotations/


def _voc_xml(rng: random.Random, index: int) -> str:
    """One annotation shaped like the real ones: size, 1–6 objects, flags, sometimes parts."""
    width, height = rng.randint(200, 500), rng.randint(200, 500)
    objects = []
    for _ in range(rng.randint(1, 6)):
        x0, y0 = rng.randint(1, width - 20), rng.randint(1, height - 20)
        x1, y1 = rng.randint(x0 + 5, width), rng.randint(y0 + 5, height)
        box = "<bndbox><xmin>1</xmin><ymin>1</ymin><xmax>9</xmax><ymax>9</ymax></bndbox>"
        part = f"<part><name>head</name>{box}</part>"
        objects.append(
            f"<object><name>{rng.choice(VOC_CLASSES)}</name><pose>Unspecified</pose>"
            f"<truncated>{rng.randint(0, 1)}</truncated><difficult>{int(rng.random() < 0.1)}</difficult>"
            f"<bndbox><xmin>{x0}</xmin><ymin>{y0}</ymin><xmax>{x1}</xmax><ymax>{y1}</ymax></bndbox>"
            f"{part if rng.random() < 0.1 else ''}</object>"
        )
    return (
        f"<annotation><folder>VOC2012</folder><filename>2008_{index:06d}.jpg</filename>"
        "<source><database>The VOC2008 Database</database><annotation>PASCAL VOC2008</annotation></source>"
        f"<size><width>{width}</width><height>{height}</height><depth>3</depth></size>"
        f"<segmented>0</segmented>{''.join(objects)}</annotation>"
    )


def _best_rate(parse: Callable[[Path], object], paths: list[Path], repeat: int) -> float:
    """Files per second, best of ``repeat`` passes (the least disturbed by other processes)."""
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        for path in paths:
            parse(path)
        best = min(best, time.perf_counter() - start)
    return len(paths) / best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=5000, help="number of XML files to generate (default 5000)")
    parser.add_argument("--repeat", type=int, default=3, help="timed passes per parser; the best counts")
    parser.add_argument("--seed", type=int, default=0, help="random seed of the generated files")
    args = parser.parse_args()
    if args.n < 1 or args.repeat < 1:
        parser.error("--n and --repeat must be at least 1")

    rng = random.Random(args.seed)
    with tempfile.TemporaryDirectory(prefix="voc-xml-") as tmp:
        paths = [Path(tmp) / f"2008_{i:06d}.xml" for i in range(args.n)]
        for i, path in enumerate(paths):
            path.write_text(_voc_xml(rng, i), encoding="utf-8")
        baseline = _best_rate(ET.parse, paths, args.repeat)
        rate = _best_rate(parse_annotation, paths, args.repeat)

    print(f"files:                          {args.n}")
    print(f"voc.parse_annotation:           {rate:,.0f} files/s")
    print(f"xml.etree.ElementTree.parse:    {baseline:,.0f} files/s (baseline)")
    print(f"ratio parse_annotation / ET:    {rate / baseline:.2f}")
    print(f"projected for real VOC2012 ({REAL_VOC_XML_FILES:,} XML files): {REAL_VOC_XML_FILES / rate:.1f} s")


if __name__ == "__main__":
    main()
