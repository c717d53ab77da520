"""Stage entry points: one-line errors, exit codes, and cleanup when the stage is terminated."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from human_saliency.cli import EXIT_USER_ERROR, run_stage
from human_saliency.io.files import atomic_dir

SRC = Path(__file__).resolve().parents[1] / "src"

STAGE = """
import sys, time
from pathlib import Path
from human_saliency.cli import run_stage
from human_saliency.io.files import atomic_dir

def main():
    with atomic_dir(Path(sys.argv[1])) as tmp:
        (tmp / "half.bin").write_bytes(b"x" * 1000)
        time.sleep(30)

run_stage(main)
"""


def test_sigterm_removes_the_temporary_output(tmp_path):
    out = tmp_path / "out"
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    stage = subprocess.Popen([sys.executable, "-c", STAGE, str(out)], env=env, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 20
        while not any((p / "half.bin").exists() for p in tmp_path.glob(".out.tmp-*")):
            assert time.monotonic() < deadline and stage.poll() is None, "the stage never started writing"
            time.sleep(0.02)
        stage.send_signal(signal.SIGTERM)
        assert stage.wait(timeout=20) == 128 + signal.SIGTERM
    finally:
        stage.kill()
        stage.communicate()
    assert sorted(p.name for p in tmp_path.iterdir()) == [".out.lock"]


def test_sigterm_handler_is_restored_after_the_stage(tmp_path):
    before = signal.getsignal(signal.SIGTERM)
    run_stage(lambda: None)
    assert signal.getsignal(signal.SIGTERM) is before


def test_a_second_run_at_once_exits_2_with_one_line(tmp_path, capsys):
    out = tmp_path / "out"

    def main():
        with atomic_dir(out):
            pass

    with atomic_dir(out), pytest.raises(SystemExit) as info:
        run_stage(main)
    assert info.value.code == EXIT_USER_ERROR
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"error: {tmp_path}/.out.lock: held by another run writing {out}"]
