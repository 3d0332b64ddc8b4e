"""The per-frame reading against a plain OpenCV peer loop, side by side on the same video.

The peer is what a typical OpenCV digit reader does per camera frame: grayscale, 5x5 blur,
Otsu, the largest outer contour, its box cut and fitted to 20 px, centred by its centre of
mass in 28x28, one invoke of the same int8 model. Ours is `mnist-edge camera --source VIDEO`
(device/live.Reader: the reading pipeline, the model and the decision). Both run end to
end from a 640x480 MJPG video (decoding included), in alternating rounds in one process;
the ratio of the medians is the figure (goal: at most 2x).

    python bench/reading_speed.py [--frames 300] [--rounds 5] [--video FILE]"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

from mnist_edge.device.data import mnist as data
from mnist_edge.device.evaluation import synth
from mnist_edge.device.inference import bundled, model
from mnist_edge.device.live import sources as camera
from mnist_edge.device.live.loop import Reader


def make_video(path: Path, frames: int) -> None:
    """640x480 frames: test digits on paper (several styles), one in four empty."""
    x, _ = data.load_split("test")
    rng = np.random.default_rng(5)
    styles = ("plain", "uneven", "ruled", "textured")
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*"MJPG"), 30, (640, 480))
    for i in range(min(frames, 60)):
        style = styles[i % len(styles)]
        g = synth.empty(rng, style, base=480) if i % 4 == 3 else synth.photo(x[i], rng, style, base=480)
        g = cv2.resize(np.round(g * 255).astype(np.uint8), (640, 480))
        writer.write(cv2.cvtColor(g, cv2.COLOR_GRAY2BGR))
    writer.release()


def peer_read(frame: np.ndarray, clf: model.Classifier) -> int:
    gray = cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY)
    blur = cv2.GaussianBlur(gray, (5, 5), 0)
    _, mask = cv2.threshold(blur, 0, 255, cv2.THRESH_BINARY_INV + cv2.THRESH_OTSU)
    contours, _ = cv2.findContours(mask, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    if not contours:
        return -1
    x, y, w, h = cv2.boundingRect(max(contours, key=cv2.contourArea))
    roi = mask[y:y + h, x:x + w]
    s = 20 / max(w, h)
    roi = cv2.resize(roi, (max(1, round(w * s)), max(1, round(h * s))), interpolation=cv2.INTER_AREA)
    out: np.ndarray = np.zeros((28, 28), np.uint8)
    oy, ox = (28 - roi.shape[0]) // 2, (28 - roi.shape[1]) // 2
    out[oy:oy + roi.shape[0], ox:ox + roi.shape[1]] = roi
    m = cv2.moments(out)
    if m["m00"]:
        shift = np.array([[1, 0, 14 - m["m10"] / m["m00"]], [0, 1, 14 - m["m01"] / m["m00"]]], np.float32)
        out = cv2.warpAffine(out, shift, (28, 28))
    return int(np.argmax(clf.predict_one(out)))


def play(video: Path, frames: int, work) -> float:
    """Seconds per frame of decoding `frames` frames with OpenCV (looping) and `work(frame)`."""
    cap = cv2.VideoCapture(str(video))
    n, t0 = 0, time.perf_counter()
    while n < frames:
        ok, frame = cap.read()
        if not ok:
            cap.set(cv2.CAP_PROP_POS_FRAMES, 0)
            continue
        work(frame)
        n += 1
    cap.release()
    return (time.perf_counter() - t0) / n


def run_peer(video: Path, clf: model.Classifier, frames: int) -> float:
    return play(video, frames, lambda frame: peer_read(frame, clf))


def run_ours(video: Path, clf: model.Classifier, frames: int) -> float:
    reader = Reader(clf, min_confidence=0.5)
    n, t0 = 0, time.perf_counter()
    while n < frames:
        source = camera.open_source(str(video))
        for frame in camera.frames(source, frames - n):
            reader.read(frame)
            n += 1
        source.close()
    return (time.perf_counter() - t0) / n


def run_decode(video: Path, frames: int) -> float:
    return play(video, frames, lambda _frame: None)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--frames", type=int, default=300)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--video", type=Path, help="a video of your own (default: made here)")
    a = ap.parse_args()
    cv2.setNumThreads(1)
    clf = model.load(bundled.NAMES[bundled.DEFAULT])
    with tempfile.TemporaryDirectory() as tmp:
        video = a.video or Path(tmp) / "frames.avi"
        if a.video is None:
            make_video(video, a.frames)
        run_peer(video, clf, 30), run_ours(video, clf, 30)  # warm-up
        peer, ours, decode = [], [], []
        for _ in range(a.rounds):
            peer.append(run_peer(video, clf, a.frames))
            ours.append(run_ours(video, clf, a.frames))
            decode.append(run_decode(video, a.frames))
    p, o, d = (statistics.median(v) * 1e3 for v in (peer, ours, decode))
    print(f"end to end per frame, median of {a.rounds} rounds x {a.frames} frames "
          f"({'640x480 renders' if a.video is None else a.video}):")
    print(f"  OpenCV peer loop  {p:6.2f} ms")
    print(f"  mnist-edge        {o:6.2f} ms   = {o / p:.2f}x the peer")
    print(f"  (decoding alone   {d:6.2f} ms; without it: ours {o - d:.2f} ms, peer {p - d:.2f} ms, "
          f"{(o - d) / max(p - d, 1e-9):.2f}x)")


if __name__ == "__main__":
    main()
