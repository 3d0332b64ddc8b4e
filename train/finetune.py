"""Fine-tune the robust model on one writer's own examples:

    mnist-edge train --recipe robust --finetune DIR [--base models/robust/mnist_robust.keras]

DIR is what `mnist-edge collect`, `classify --save-to` or `serve --collect` saved
(device/data/examples.py). A stratified quarter of it (at least one example of every label
that has two) is kept aside, never trained on, and copied to OUT/heldout/ as an image folder
for the gate (`mnist-edge check --baseline robust --images OUT/heldout`). The rest is trained
for a few epochs at a small learning rate, each epoch mixed with MNIST train digits replayed
(and blank inputs for "no digit"), so what the model knew holds while it learns this writer.
"""

from __future__ import annotations

import hashlib
import shutil
import time
from pathlib import Path
from typing import Any

import numpy as np

from mnist_edge.device import atomic
from mnist_edge.device.data import examples
from mnist_edge.device.errors import BadDataError

from . import augment, frames

EPOCHS = 4  # passes over the replay set with the user's examples mixed in
LEARNING_RATE = 2e-4  # Adam, a tenth of the robust recipe's: adjust, do not relearn
REPLAY = 12_000  # MNIST train digits per epoch (fresh draw, augmented) so MNIST holds
USER_SHARE = 0.25  # the user's examples are repeated to this share of each epoch
BLANKS = 1_000  # blank inputs per epoch: "no digit" holds too
HELD_OUT = 0.25  # of each label's examples, kept for the gate


def split(labels: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Indices to train on and to hold out: HELD_OUT of each label, at least one of every
    label that has two or more examples."""
    train, held = [], []
    for label in np.unique(labels):
        idx = rng.permutation(np.flatnonzero(labels == label))
        n = max(1, round(HELD_OUT * len(idx))) if len(idx) >= 2 else 0
        held += list(idx[:n])
        train += list(idx[n:])
    return np.array(sorted(train), np.int64), np.array(sorted(held), np.int64)


def examples_hash(frames_: list[Path]) -> str:
    """SHA-256 over the examples (label folder, name and bytes of each frame), in order."""
    h = hashlib.sha256()
    for path in sorted(frames_):
        h.update(f"{path.parent.name}/{path.name}\n".encode())
        h.update(path.read_bytes())
    return h.hexdigest()


def run(base: Path, folder: Path, out: Path, mnist_x: np.ndarray, mnist_y: np.ndarray, *,
        epochs: int = EPOCHS, batch_size: int = 128, seed: int = 42) -> tuple[Any, dict[str, Any]]:
    """Fine-tune a copy of `base` on `folder`; writes OUT/heldout/. Returns (model, facts)."""
    import keras

    if not base.is_file():
        raise BadDataError(f"{base}: no robust Keras model to start from; pass --base with the "
                           "Keras model to fine-tune (make train-robust writes "
                           "models/robust/mnist_robust.keras)")
    x, y, paths = examples.load(folder)
    if len(y) < 2:
        raise BadDataError(f"{folder}: {len(y)} example(s); collect at least a few per digit "
                           "(mnist-edge collect)")
    rng = np.random.default_rng(seed)
    train_idx, held_idx = split(y, rng)
    if not len(held_idx):
        raise BadDataError(f"{folder}: no label has two examples: nothing to hold out for the gate")

    held = out / "heldout"
    shutil.rmtree(held, ignore_errors=True)
    for i in held_idx:  # the frames, as an image folder `check --images` reads
        label = "none" if y[i] == frames.NONE else str(y[i])
        atomic.copy_file(paths[i], held / label / paths[i].name)

    model = keras.models.load_model(base)
    if model.output_shape[-1] != 11:
        raise BadDataError(f"{base}: {model.output_shape[-1]} outputs; fine-tuning starts from the "
                           "robust model (11: 0-9 and 'no digit')")
    model.compile(optimizer=keras.optimizers.Adam(LEARNING_RATE),
                  loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    user_x = x[train_idx].astype(np.float32) / 255.0
    user_y = y[train_idx]
    repeat = max(1, round(USER_SHARE * (REPLAY + BLANKS) / (1 - USER_SHARE) / max(1, len(user_y))))
    history: dict[str, list[float]] = {}
    print(f"fine-tuning {base.name} on {len(train_idx)} of your {len(y)} examples (each "
          f"repeated {repeat}x, augmented) with {REPLAY:,} MNIST train digits replayed per epoch; "
          f"{len(held_idx)} examples held out in {held} for the gate; {epochs} epochs", flush=True)
    t0 = time.perf_counter()
    for epoch in range(epochs):
        pick = rng.choice(len(mnist_x), REPLAY, replace=False)
        batch_x = np.concatenate([
            augment.augment(np.repeat(user_x, repeat, axis=0), rng),
            augment.augment(mnist_x[pick].astype(np.float32) / 255.0, rng),
            frames.blank_inputs(BLANKS, rng),
        ])
        batch_y = np.concatenate([np.repeat(user_y, repeat), mnist_y[pick].astype(np.int64),
                                  np.full(BLANKS, frames.NONE)])
        order = rng.permutation(len(batch_y))
        h = model.fit(batch_x[order][..., None], batch_y[order], batch_size=batch_size,
                      epochs=epoch + 1, initial_epoch=epoch, verbose=0)
        for k, v in h.history.items():
            history.setdefault(k, []).extend(float(a) for a in v)
        print(f"epoch {epoch + 1}/{epochs}: loss {history['loss'][-1]:.4f}, accuracy "
              f"{history['accuracy'][-1]:.4f} ({time.perf_counter() - t0:.0f} s)", flush=True)
    facts = {
        "base_model": {"file": base.name, "sha256": hashlib.sha256(base.read_bytes()).hexdigest()},
        "examples": {"folder": str(folder), "count": int(len(y)), "sha256": examples_hash(paths),
                     "per_label": {("none" if k == frames.NONE else str(k)): int(v)
                                   for k, v in zip(*np.unique(y, return_counts=True), strict=True)}},
        "trained_on": int(len(train_idx)), "held_out": int(len(held_idx)),
        "held_out_folder": str(held), "repeat": repeat, "replay_per_epoch": REPLAY,
        "learning_rate": LEARNING_RATE, "epochs": epochs,
        "train_seconds": round(time.perf_counter() - t0, 2), "history": history,
    }
    return model, facts
