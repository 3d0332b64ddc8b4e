"""False digits on dark scenes with no paper and no digit, as a camera may see them.

    python bench/dark_scenes.py [--per-kind 60]

Five kinds of 640x480 frames darker than mid-grey: sensor noise in the dark, a bright spot
(a lamp, a reflection), vignetting, a dark wall beside a lit one, a bright bar (a cable, an
edge). Counts, with the bundled robust model (or --model) at the default --min-confidence 0.5, the frames
that read a digit: from the first reading alone, and as `classify` reads them (with the
second reading for paper in shadow)."""

from __future__ import annotations

import argparse

import numpy as np

from mnist_edge.device.inference import bundled, model
from mnist_edge.device.reading import decision, pipeline

KINDS = ("dark noise", "bright spot", "vignetting", "half lit", "bright bar")


def scene(kind: str, rng: np.random.Generator, h: int = 480, w: int = 640) -> np.ndarray:
    yy, xx = np.mgrid[0:h, 0:w]
    if kind == "dark noise":
        g = rng.uniform(0.0, 0.2) + rng.normal(0, rng.uniform(0.005, 0.05), (h, w))
    elif kind == "bright spot":
        g = np.full((h, w), rng.uniform(0.02, 0.2))
        y, x, r = rng.integers(50, 400), rng.integers(50, 560), rng.integers(5, 40)
        g[(yy - y) ** 2 + (xx - x) ** 2 < r * r] = rng.uniform(0.6, 1)
    elif kind == "vignetting":
        g = 0.3 - 0.6 * ((yy / w - 0.4) ** 2 + (xx / w - 0.5) ** 2) + rng.normal(0, 0.02, (h, w))
    elif kind == "half lit":
        g = np.full((h, w), rng.uniform(0.05, 0.3))
        g[:, int(rng.integers(100, 540)):] = rng.uniform(0.6, 0.95)
        g += rng.normal(0, 0.02, (h, w))
    else:
        g = np.full((h, w), rng.uniform(0.05, 0.3))
        top = int(rng.integers(50, 400))
        g[top:top + int(rng.integers(3, 20)), int(rng.integers(0, 200)):int(rng.integers(300, 640))] = 0.9
        g += rng.normal(0, 0.02, (h, w))
    return np.clip(g, 0, 1).astype(np.float32)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--per-kind", type=int, default=60)
    p.add_argument("--model", default="robust", help="a .tflite file or a bundled model's name")
    args = p.parse_args()
    clf = model.load(bundled.resolve(args.model))
    rng = np.random.default_rng(7)
    print(f"{'scene':12s} {'first reading':>14s} {'classify':>9s}  "
          f"(frames of {args.per_kind} that read a digit)")
    for kind in KINDS:
        first = full = 0
        for _ in range(args.per_kind):
            g = scene(kind, rng)
            preds = [decision.predict(clf, d, 0.5) for d in pipeline.cut(g)]
            first += any(x.digit is not None for x in preds)
            full += any(x.digit is not None for x in decision.read(clf, g, min_confidence=0.5))
        print(f"{kind:12s} {first:14d} {full:9d}")


if __name__ == "__main__":
    main()
