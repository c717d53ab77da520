"""Entry-point plumbing shared by the stage scripts: logging set-up and one-line error exits."""

from __future__ import annotations

import logging
import os
import signal
import sys
from collections.abc import Callable
from types import FrameType

from human_saliency.errors import HumanSaliencyError

EXIT_USER_ERROR = 2


def _terminate(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)


def run_stage(main: Callable[[], None]) -> None:
    """Run a stage's ``main``; a HumanSaliencyError becomes one line on stderr and exit code 2.

    SIGTERM (what a scheduler, torchrun or ``kill`` sends) exits with 143 through SystemExit, so the
    cleanup of temporary outputs runs as it does on Ctrl-C; Python's default would end the process at
    once, leaving them behind. Under torchrun only rank 0 logs progress (the others, warnings and errors).
    """
    logging.basicConfig(
        level=logging.INFO if os.environ.get("RANK", "0") == "0" else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        datefmt="%H:%M:%S",
    )
    previous = signal.signal(signal.SIGTERM, _terminate)
    try:
        main()
    except HumanSaliencyError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(EXIT_USER_ERROR)
    finally:
        signal.signal(signal.SIGTERM, previous)
