"""Renders for choosing the reading pipeline's thresholds: MNIST *train* digits photographed
on every paper style of device/synth.py, and empty pages, with tuning seeds that neither the
robust recipe nor `mnist-edge robustness` uses. Prints accuracy per style and the share of
empty pages answered "no digit", with the bundled default model (or --model).

    python bench/reading_tune.py [--per-style 150] [--model robust] [--strokes]

--strokes prints MNIST train's stroke widths at the 20 px box (Params.stroke)."""

from __future__ import annotations

import argparse

import numpy as np

from mnist_edge.device.data import mnist as data
from mnist_edge.device.evaluation import synth
from mnist_edge.device.inference import bundled, model
from mnist_edge.device.reading import decision, stages

TUNE_SEED = 7_000_001  # renders for tuning only


def strokes() -> None:
    x, _ = data.load_split("train")
    widths = []
    for img in x[::30]:
        ys, xs = np.nonzero(img)
        widths.append(stages.stroke_width(img / 255.0) * 20 / max(np.ptp(ys) + 1, np.ptp(xs) + 1))
    q = np.percentile(widths, [10, 50, 90])
    print(f"MNIST train stroke width at the 20 px box: 10% {q[0]:.2f}, median {q[1]:.2f}, "
          f"90% {q[2]:.2f}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--per-style", type=int, default=150)
    ap.add_argument("--model", default=bundled.DEFAULT)
    ap.add_argument("--strokes", action="store_true")
    a = ap.parse_args()
    if a.strokes:
        strokes()
        return
    clf = model.load(bundled.NAMES.get(a.model, a.model))
    x, y = data.load_split("train")
    photos, empties = [], []
    for s, style in enumerate(synth.STYLES):
        rng = np.random.default_rng([TUNE_SEED, s])
        picks = rng.choice(len(x), a.per_style, replace=False)
        right = sum(decision.read(clf, synth.photo(x[i], rng, style), min_confidence=0.5)[0].digit
                    == y[i] for i in picks)
        none = sum(decision.read(clf, synth.empty(rng, style), min_confidence=0.5)[0].digit
                   is None for _ in range(a.per_style))
        photos.append(right / a.per_style)
        empties.append(none / a.per_style)
        print(f"{style:9s} photos {photos[-1]:6.1%}   empty 'no digit' {empties[-1]:6.1%}", flush=True)
    print(f"{'mean':9s} photos {np.mean(photos):6.1%}   empty 'no digit' {np.mean(empties):6.1%}")


if __name__ == "__main__":
    main()
