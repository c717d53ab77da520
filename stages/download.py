"""Stage `download`: the raw datasets in their real layouts, generated offline (embedded) or fetched (remote)."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from human_saliency.cli import run_stage
from human_saliency.io.files import atomic_dir, write_json
from human_saliency.params import load_params
from human_saliency.sources import embedded
from human_saliency.sources.remote import fetch_sources

log = logging.getLogger("download")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))
    parser.add_argument("--out", type=Path, required=True, help="raw data folder (a DVC output)")
    args = parser.parse_args()

    data = load_params(args.params).data
    with atomic_dir(args.out) as tmp:
        if data.source == "embedded":
            counts = embedded.generate(tmp, data.embedded)
            write_json(tmp / "SOURCES.json", {"embedded": {"generator": "human_saliency.sources.embedded", **counts}})
            log.info("generated the embedded dataset: %s", counts)
        else:
            fetch_sources(data.remote, tmp)


if __name__ == "__main__":
    run_stage(main)
