"""Entry-point plumbing shared by the stage scripts: logging set-up and one-line error exits."""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Callable

from human_saliency.errors import HumanSaliencyError

EXIT_USER_ERROR = 2


def run_stage(main: Callable[[], None]) -> None:
    """Run a stage's ``main``; a HumanSaliencyError becomes one line on stderr and exit code 2.

    Under torchrun only rank 0 logs progress (the others, warnings and errors).
    """
    logging.basicConfig(
        level=logging.INFO if os.environ.get("RANK", "0") == "0" else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        datefmt="%H:%M:%S",
    )
    try:
        main()
    except HumanSaliencyError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(EXIT_USER_ERROR)
