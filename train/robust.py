"""The robust recipe: the device's default model.

Trained on the MNIST *train* split only, augmented afresh every epoch (train/augment.py),
plus other writers' digits generated here (train/writers.py: handwriting fonts with open
licences and procedural pen strokes), plus examples cut from synthetic camera frames by the
device's own reading pipeline (train/frames.py): photographed digits, and empty pages and
the operators of a written sum whose crops must read "none".
Never the test split, never MNIST-C or its corruption code: those only measure.
"""

from __future__ import annotations

import sys
import time

import numpy as np

from . import augment, frames, writers

EPOCHS = 15  # passes over the (re-augmented) training set
BATCH_SIZE = 128  # images per gradient step
LEARNING_RATE = 2e-3  # Adam, cosine-decayed to zero over the whole run
FONT_DIGITS = 12_000  # digits in handwriting fonts (other writers: flags, crossed 7s, ...)
STROKE_DIGITS = 4_000  # procedural 1s with flag and foot, crossed 7s, closed 4s, straight 9s
PHOTO_DIGITS = 12_000  # those digits photographed on synthetic paper, cut out by the pipeline
EMPTY_FRAMES = 15_000  # empty synthetic frames; the crops preprocessing cuts from them are "none"
MARK_CROPS = 4_000  # operators of a written sum (+ - x = and the division sign): "none"
BLANK_INPUTS = 5_000  # 28x28 inputs with no digit, drawn afresh each epoch


class Pools:
    """What does not change between epochs: the digits, and the frame-derived examples."""

    def __init__(self, images: np.ndarray, labels: np.ndarray, rng: np.random.Generator,
                 scale: float = 1.0):
        t0 = time.perf_counter()
        fonts, font_labels = writers.font_digits(int(FONT_DIGITS * scale), rng)
        strokes, stroke_labels = writers.stroke_digits(int(STROKE_DIGITS * scale), rng)
        images = np.concatenate([images, fonts, strokes])
        labels = np.concatenate([labels, font_labels, stroke_labels])
        self.digits = images.astype(np.float32) / 255.0
        self.labels = labels.astype(np.int64)
        photos, photo_labels = frames.photo_digits(images, labels, int(PHOTO_DIGITS * scale), rng)
        self.photos = photos.astype(np.float32) / 255.0
        self.photo_labels = photo_labels.astype(np.int64)
        self.empties = frames.empty_crops(int(EMPTY_FRAMES * scale), rng).astype(np.float32) / 255
        self.blanks = int(BLANK_INPUTS * scale)
        self.marks = frames.mark_crops(int(MARK_CROPS * scale), rng).astype(np.float32) / 255
        print(f"pools: {len(fonts):,} font and {len(strokes):,} stroke digits, "
              f"{len(self.photos):,} photographed digits, {len(self.empties):,} "
              f"empty-frame crops, {len(self.marks):,} operators "
              f"({time.perf_counter() - t0:.0f} s)", flush=True)

    def epoch(self, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """One epoch's inputs (N,28,28,1) and integer labels, freshly augmented."""
        x = np.concatenate([
            augment.augment(self.digits, rng),
            augment.augment(self.photos, rng),
            augment.augment(self.empties, rng),
            frames.blank_inputs(self.blanks, rng),
            augment.augment(self.marks, rng),
        ])
        y = np.concatenate([self.labels, self.photo_labels,
                            np.full(len(self.empties) + self.blanks + len(self.marks), frames.NONE)])
        return x[..., None], y


def fit(model, images: np.ndarray, labels: np.ndarray, *, epochs: int = EPOCHS,
        batch_size: int = BATCH_SIZE, seed: int = 42, scale: float = 1.0,
        validation: tuple[np.ndarray, np.ndarray] | None = None,
        prefix_steps: int | None = None) -> dict[str, list[float]]:
    """Train `model` (11 outputs) in place; returns the Keras-style history. With
    `prefix_steps`, only the run's first steps (train/prefix.py)."""
    import keras

    rng = np.random.default_rng(seed)
    pools = Pools(images, labels, rng, scale)
    per_epoch = (len(pools.digits) + len(pools.photos) + len(pools.empties) + pools.blanks
                 + len(pools.marks))
    steps = epochs * -(-per_epoch // batch_size)
    schedule = keras.optimizers.schedules.CosineDecay(LEARNING_RATE, steps)
    model.compile(optimizer=keras.optimizers.Adam(schedule),
                  loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    history: dict[str, list[float]] = {}
    val = None
    if validation is not None:
        val = (validation[0].reshape(-1, 28, 28, 1).astype(np.float32) / 255.0,
               validation[1].astype(np.int64))
    verbose = 1 if sys.stdout.isatty() else 2
    stop = None
    if prefix_steps:
        from .prefix import stop_after

        stop, verbose = stop_after(prefix_steps), 0
    for epoch in range(epochs):
        t0 = time.perf_counter()
        x, y = pools.epoch(rng)
        augment_s = time.perf_counter() - t0
        if stop is not None and epoch == 0:
            from . import prefix

            prefix.saw(x, y)
        h = model.fit(x, y, batch_size=batch_size, epochs=epoch + 1, initial_epoch=epoch,
                      validation_data=None if stop else val, verbose=verbose,
                      callbacks=[stop] if stop else None)
        if stop is not None and model.stop_training:
            break
        for k, v in h.history.items():
            history.setdefault(k, []).extend(float(a) for a in v)
        print(f"epoch {epoch + 1}/{epochs}: {len(x):,} images, augmentation {augment_s:.0f} s",
              flush=True)
    return history
