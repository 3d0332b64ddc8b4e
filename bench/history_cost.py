"""What keeping the history costs: the camera loop on the example video with and without
`History` (alternating rounds in one process; the ratio of the medians is the figure, goal at
most 1.02), and the file's size per million readings (rows of the kind the camera writes,
extrapolated from 100,000).

    python bench/history_cost.py [--rounds 5] [--video FILE]"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from mnist_edge.device.inference import bundled, model
from mnist_edge.device.live import history
from mnist_edge.device.live.loop import run_camera

ROOT = Path(__file__).resolve().parent.parent


def one_round(clf: model.Classifier, video: Path, folder: Path | None) -> tuple[float, int]:
    kept = history.History(folder / "h.sqlite3") if folder else None
    lines: list[str] = []
    t0 = time.perf_counter()
    run_camera(clf, str(video), frames=None, roi=None, json_out=False, show=False, timeout=5,
               retries=0, say=lambda _m: None, emit=lines.append, stable=3, history=kept)
    if kept is not None:
        kept.close()
    return time.perf_counter() - t0, len(lines)


def size_per_million(folder: Path) -> float:
    path = folder / "size.sqlite3"
    kept = history.History(path)
    rows = 100_000
    db = kept.db
    row = history.row_of({"time": time.time(), "digit": 7, "confidence": 0.996094, "no_digit": 0.0},
                         "mnist_robust_int8.tflite", "7dfb56db" * 8, "opencv:0")
    db.execute("BEGIN")
    db.executemany(f"INSERT INTO readings ({', '.join(history.COLUMNS)}) VALUES "
                   f"({', '.join('?' * len(history.COLUMNS))})", [row] * rows)
    db.execute("COMMIT")
    kept.close()
    return path.stat().st_size / rows * 1_000_000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--video", type=Path, default=ROOT / "examples" / "video_37419.avi")
    args = parser.parse_args()
    clf = model.load(bundled.NAMES["robust"])
    with tempfile.TemporaryDirectory() as tmp:
        one_round(clf, args.video, None)  # warm-up
        bare, kept, readings = [], [], 0
        for i in range(args.rounds):
            bare.append(one_round(clf, args.video, None)[0])
            folder = Path(tmp) / f"r{i}"
            folder.mkdir()
            seconds, readings = one_round(clf, args.video, folder)
            kept.append(seconds)
        ratio = statistics.median(kept) / statistics.median(bare)
        print(f"camera loop on {args.video.name}: {readings} settled readings per pass; "
              f"with history / without: {ratio:.3f} (medians of {args.rounds} rounds)")
        print(f"history file: {size_per_million(Path(tmp)) / 2**20:.0f} MiB per million readings")


if __name__ == "__main__":
    main()
