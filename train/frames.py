"""Training examples the robust recipe draws from synthetic camera frames (device.synth),
passed through the device's own preprocessing, so the model learns from what it will see:

- digits: *train* split digits photographed on every kind of paper, as the 28x28 crops the
  preprocessing makes of them (label: the digit);
- nothing: empty frames of the same kinds, as the crops the preprocessing makes of a ruled
  line, a shadow edge or a speck of dust (label: NONE), plus 28x28 inputs with no digit at
  all (blank, a blob of light, haze, noise, stray marks, bright borders) for models fed
  MNIST-like arrays;
- marks: the operators of a written sum (+ - x = and the division sign), photographed and
  cut like the digits (label: NONE), so `5 + 3 x 7` reads 537, not 51347.
"""

from __future__ import annotations

import numpy as np

from mnist_edge.device.evaluation import synth
from mnist_edge.device.reading import pipeline, stages

from . import augment, pages

NONE = 10  # the extra output: "no digit here"


def photo_digits(images: np.ndarray, labels: np.ndarray, count: int,
                 rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """`count` digits rendered as photos in every style and cut out by the preprocessing."""
    out, out_y = [], []
    picks = rng.choice(len(images), size=count, replace=count > len(images))
    for n, i in enumerate(picks):
        style = synth.STYLES[n % len(synth.STYLES)]
        frame, box = synth.photo_with_box(images[i], rng, style)
        found = pipeline.cut(frame)
        if found and _centre_inside(found[0].bbox, box):  # not a mis-cut (a line, a shadow)
            out.append(found[0].pixels)
            out_y.append(labels[i])
    return np.array(out, np.uint8).reshape(-1, 28, 28), np.array(out_y, np.uint8)


MARKS = ("+", "-", "x", "=", "div")  # never "/": many writers' 1 is a slanted bar


def mark_crops(count: int, rng: np.random.Generator) -> np.ndarray:
    """Up to `count` crops of marks that are not digits (the operators of a written sum),
    photographed like the digits and cut out by the preprocessing; half of them cut clean
    (the crop a region of the learned route gives). Label: NONE."""
    out = []
    for n in range(count):
        glyph = pages._operator(rng, int(rng.integers(14, 24)), MARKS[n % len(MARKS)])
        glyph = pages._with_width(glyph, float(rng.uniform(1.0, 3.5)))
        if n % 2:
            pixels = stages.fit_and_centre(glyph)
            if pixels is not None:
                out.append(pixels)
            continue
        square = np.zeros((28, 28), np.float32)
        gh, gw = min(28, glyph.shape[0]), min(28, glyph.shape[1])
        y, x = (28 - gh) // 2, (28 - gw) // 2
        square[y:y + gh, x:x + gw] = glyph[:gh, :gw]
        frame, box = synth.photo_with_box((square * 255).astype(np.uint8), rng,
                                          synth.STYLES[n // 2 % len(synth.STYLES)])
        found = pipeline.cut(frame)
        if found and _centre_inside(found[0].bbox, box):
            out.append(found[0].pixels)
    return np.array(out, np.uint8).reshape(-1, 28, 28)


def _centre_inside(found: tuple[int, int, int, int], box: tuple[int, int, int, int]) -> bool:
    cx, cy = found[0] + found[2] / 2, found[1] + found[3] / 2
    return box[0] <= cx <= box[0] + box[2] and box[1] <= cy <= box[1] + box[3]


def empty_crops(count: int, rng: np.random.Generator) -> np.ndarray:
    """Up to `count` crops the preprocessing cuts from empty frames (most frames give none:
    then there is nothing for the model to reject)."""
    out = []
    for n in range(count):
        found = pipeline.cut(synth.empty(rng, synth.STYLES[n % len(synth.STYLES)]))
        if found:
            out.append(found[0].pixels)
    return np.array(out, np.uint8).reshape(-1, 28, 28)


# What an MNIST-like input with no digit looks like: the scene and camera steps of the
# augmentation pipeline, applied to a black image, each far more often than for digits.
_NOTHING = [
    (augment.lights, 0.25),
    (augment.stray_marks, 0.5),
    (augment.edge_bands, 0.3),
    (augment.blur, 0.3),
    (augment.background, 0.5),
    (augment.noise, 0.5),
]


def blank_inputs(count: int, rng: np.random.Generator) -> np.ndarray:
    """28x28 float inputs in [0, 1] with no digit in them."""
    return augment.augment(np.zeros((count, 28, 28), np.float32), rng, _NOTHING)
