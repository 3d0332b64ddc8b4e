"""Frames per second of the camera loop on 640x480 frames, against the bare invoke alone
(same run): the loop body alone (ROI cut, grayscale, digit finding, preprocessing, one int8
invoke of the default model), and end to end from a 640x480 MJPG video file read by OpenCV
(decode included), as `mnist-edge camera --source VIDEO` runs.

    python bench/camera_fps.py [--frames 600]"""

from __future__ import annotations

import argparse
import time

import numpy as np
from PIL import Image

from mnist_edge.device import bundled, camera, data, images, model, timing
from mnist_edge.device.classify import classify_gray


def synthetic_frames(n: int) -> list[np.ndarray]:
    """640x480 RGB frames, each a test digit on lit paper with sensor noise."""
    x, _ = data.load_split("test")
    rng = np.random.default_rng(0)
    out = []
    for i in range(n):
        frame = np.full((480, 640), 215.0) + rng.normal(0, 4, (480, 640))
        big = np.asarray(Image.fromarray(x[i % 100]).resize((180, 180)), np.float64)
        oy, ox = 150 + rng.integers(-20, 20), 230 + rng.integers(-20, 20)
        frame[oy : oy + 180, ox : ox + 180] -= big * 0.75
        out.append(np.repeat(np.clip(frame, 0, 255).astype(np.uint8)[..., None], 3, axis=2))
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--frames", type=int, default=600)
    n = p.parse_args().frames
    frames = synthetic_frames(100)
    clf = model.load(bundled.NAMES[bundled.DEFAULT])
    roi = camera.Roi.parse(None, frames[0].shape)
    for f in frames[:20]:
        classify_gray(clf, images.rgb_to_gray(roi.cut(f)))
    t0 = time.perf_counter()
    for i in range(n):
        classify_gray(clf, images.rgb_to_gray(roi.cut(frames[i % len(frames)])))
    loop = (time.perf_counter() - t0) / n
    bare = timing.time_bare(clf, runs=n).p50_us / 1e6
    print(f"camera loop body on 640x480 frames: {1 / loop:.0f} frames/s ({loop * 1e3:.2f} ms/frame)")
    print(f"bare int8 invoke: {bare * 1e6:.0f} µs; the loop costs {loop / bare:.0f}x one invoke")
    end_to_end(frames, clf, n)


def end_to_end(frames: list[np.ndarray], clf: model.Classifier, n: int) -> None:
    import tempfile
    from pathlib import Path

    import cv2

    from mnist_edge.device.live import Reader

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "frames.avi"
        writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 30, (640, 480))
        for i in range(n):
            writer.write(frames[i % len(frames)][..., ::-1])
        writer.release()
        source = camera.open_source(str(path))
        reader = Reader(clf, min_confidence=0.5)
        count, t0 = 0, time.perf_counter()
        for frame in camera.frames(source):
            reader.read(frame)
            count += 1
        elapsed = time.perf_counter() - t0
        source.close()
    print(f"end to end from a 640x480 MJPG video: {count / elapsed:.0f} frames/s "
          f"({elapsed / count * 1e3:.2f} ms/frame, {count} frames)")


if __name__ == "__main__":
    main()
