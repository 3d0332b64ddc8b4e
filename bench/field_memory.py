"""Memory of serve's camera loop over a long run with everything of the field loop on: the
history (SQLite), the spool of unsure readings (every settled reading counted as unsure; each
view is kept once, so a replayed clip adds its few views only) and the drift monitor, the example video
replayed as fast as it reads (no frame-rate pacing). Resident memory (VmRSS) is sampled every
second; the figure is the last sample against the first after warm-up (goal: at most 1.1x).

    python bench/field_memory.py [--seconds 120] [--warmup 20]"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from mnist_edge.device.evaluation import drift
from mnist_edge.device.inference import bundled, model
from mnist_edge.device.live import serve as srv
from mnist_edge.device.live import sources
from mnist_edge.device.live.history import History
from mnist_edge.device.live.loop import Reader
from mnist_edge.device.live.spool import Spool

ROOT = Path(__file__).resolve().parent.parent
VIDEO = ROOT / "examples" / "video_37419.avi"


def rss_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


class Unpaced:
    """The video as a source without its frame rate: the loop reads as fast as it can."""

    def __init__(self) -> None:
        self.inner = sources.open_source(str(VIDEO))
        self.name, self.live, self.fps = self.inner.name, False, None
        self.folder_fps = None

    def read(self) -> np.ndarray | None:
        return self.inner.read()

    def close(self) -> None:
        self.inner.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=120.0)
    parser.add_argument("--warmup", type=float, default=20.0)
    args = parser.parse_args()
    clf = model.load(bundled.NAMES["robust"])
    with tempfile.TemporaryDirectory() as tmp:
        state = srv.LiveState()
        state.collect = Path(tmp) / "mine"
        state.spool = Spool(state.collect, cap_mib=5, below=1.01)  # every reading: the spool works
        state.recorder = History(Path(tmp) / "h.sqlite3")
        state.monitor = drift.Monitor(drift.reference_for(clf))
        loop = srv.CameraLoop(Unpaced, Reader(clf), state, folder_fps=1e6)
        loop.start()
        samples: list[tuple[float, float]] = []
        t0 = time.monotonic()
        while time.monotonic() - t0 < args.seconds:
            time.sleep(1.0)
            samples.append((time.monotonic() - t0, rss_mib()))
        loop.stop.set()
        loop.join(10)
        state.recorder.close()
        after = [m for t, m in samples if t >= args.warmup]
        spooled = len(state.spool.items())
        print(f"{state.metrics.frames} frames in {args.seconds:.0f} s; history {state.recorder.written} "
              f"rows, spool {spooled} items kept ({state.spool.dropped} dropped by the cap), "
              f"drift {state.monitor.status()['state']}")
        print(f"RSS: {after[0]:.1f} MiB after {args.warmup:.0f} s warm-up, {after[-1]:.1f} MiB at the end, "
              f"max {max(after):.1f}, median {statistics.median(after):.1f}: "
              f"end / after warm-up {after[-1] / after[0]:.3f}")


if __name__ == "__main__":
    main()
