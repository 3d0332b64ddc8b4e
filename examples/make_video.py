"""Regenerate examples/video_37419.avi: what a camera over a desk sees, for trying
`mnist-edge camera --source` and `mnist-edge serve --source` without a camera.

A sheet of paper, first empty, then with the digits of DIGITS written on it one after the
other (MNIST test digits), each held for HOLD frames with a slight hand shake, sensor noise
and the light of a desk lamp; empty paper between them. 480x360 MJPG at FPS frames/s.

    python examples/make_video.py [--out examples/video_37419.avi]   (needs OpenCV)
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from PIL import Image

from mnist_edge.device.data import mnist as data
from mnist_edge.device.evaluation import synth

DIGITS = (3, 7, 4, 1, 9)  # the digits shown, in order (the first test image of each)
HOLD = 12  # frames per digit
GAP = 6  # empty frames before each digit
FPS = 8
SIZE = (480, 360)  # width, height
SEED = 11


def frames(rng: np.random.Generator) -> list[tuple[np.ndarray, int | None]]:
    images, labels = data.load_split("test")
    w, h = SIZE
    paper = synth.page(rng, h, w, "uneven")
    out: list[tuple[np.ndarray, int | None]] = []
    for digit in DIGITS:
        i = int(np.flatnonzero(labels == digit)[0])
        ink = np.asarray(Image.fromarray(images[i]).resize((150, 150), Image.Resampling.BICUBIC),
                         np.float32) / 255
        for n in range(GAP + HOLD):
            dy, dx = rng.integers(-4, 5, 2)  # a hand-held camera
            coverage = np.zeros((h, w), np.float32)
            if n >= GAP:
                y0, x0 = (h - 150) // 2 + dy, (w - 150) // 2 + dx
                coverage[y0 : y0 + 150, x0 : x0 + 150] = ink
            gray = paper * (1 - 0.85 * coverage) + rng.normal(0, 0.012, (h, w))
            out.append((np.clip(gray * 255, 0, 255).astype(np.uint8), digit if n >= GAP else None))
    return out


def main() -> None:
    import cv2

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", default=str(Path(__file__).parent / "video_37419.avi"))
    out = Path(p.parse_args().out)
    tmp = out.with_name(f".{out.name}.tmp.avi")
    writer = cv2.VideoWriter(str(tmp), cv2.VideoWriter_fourcc(*"MJPG"), FPS, SIZE)
    for gray, _ in frames(np.random.default_rng(SEED)):
        writer.write(cv2.cvtColor(gray, cv2.COLOR_GRAY2BGR))
    writer.release()
    tmp.replace(out)
    print(f"wrote {out}: digits {' '.join(map(str, DIGITS))}, {len(DIGITS) * (GAP + HOLD)} frames")


if __name__ == "__main__":
    main()
