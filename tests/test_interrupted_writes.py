"""SIGKILL `convert` and `train` at random points: the previous files stay intact and
loadable, and no partial file sits at a final path (slow: real TensorFlow runs)."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest

from mnist_edge.device.inference import model as device_model

from .conftest import ROOT, mnist_dir

pytestmark = pytest.mark.slow
KILLS = int(os.environ.get("MNIST_EDGE_KILLS", 3))


def run_and_kill(args: list[str], after: float) -> int | None:
    """Start `python -m ...`; SIGKILL it after `after` seconds; None when it ended first."""
    proc = subprocess.Popen([sys.executable, "-m", *args], cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        proc.wait(timeout=after)
        return proc.returncode
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        return None


def snapshot(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in folder.iterdir()
            if p.is_file() and not p.name.startswith(".")}


def assert_intact(folder: Path, before: dict[str, bytes]) -> None:
    now = snapshot(folder)
    assert set(before) <= set(now)
    for name, blob in now.items():
        if name.endswith(".tflite"):
            device_model.load(folder / name, trust_model=True)  # complete and loadable
        elif name.endswith(".json"):
            json.loads(blob)
        elif name.endswith(".keras"):
            with zipfile.ZipFile(folder / name) as z:
                assert z.testzip() is None
        elif name.endswith(".png"):
            assert blob[:8] == b"\x89PNG\r\n\x1a\n" and blob.endswith(b"IEND\xaeB`\x82")


def timed(args: list[str]) -> float:
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-m", *args], cwd=ROOT, check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - t0


def test_kill_train_and_convert(tmp_path):
    out = tmp_path / "models"
    train = ["mnist_edge.train", "--epochs", "2", "--limit", "3000", "--data", str(mnist_dir()),
             "--out", str(out)]
    convert = ["mnist_edge.convert", "--model", str(out / "mnist_cnn.keras"), "--data", str(mnist_dir()),
               "--representative", "100", "--max-drop", "5", "--min-agreement", "90"]
    t_train = timed(train)
    t_convert = timed(convert)
    rng = random.Random(1234)
    for args, duration in ((train, t_train), (convert, t_convert)):
        landed = 0
        for _ in range(KILLS):
            before = snapshot(out)
            landed += run_and_kill(args, rng.uniform(0.3, 1.0) * duration) is None
            assert_intact(out, before)
        assert landed >= 1, f"no kill of {args[0]} landed before it finished: nothing was tested"
    subprocess.run([sys.executable, "-m", *convert], cwd=ROOT, check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    assert not list(out.glob(".*"))  # the next run cleared what the killed ones left
