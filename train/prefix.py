"""A recipe's first steps, reproduced cheaply: CI trains the first N gradient steps of a recipe
exactly as the full run does (same data, same order, same schedule) and compares a hash of the
weights with the one recorded when the bundled model was made (train/base/prefixes.json,
`make record-prefixes`). The full reproduction (`make train-robust`, `make localiser`) is run
whenever a recipe changes; the prefix proves in minutes that the recipe and its data are still
the ones the bundle came from.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np

RECORD = Path(__file__).resolve().parent / "base" / "prefixes.json"
SKETCH = 32  # directions the weights' move is projected on (sketch)
SKETCH_SEED = 20261208
# Another CPU (or oneDNN's kernels for it) sums in another order: the same recipe on the same
# data (the data hash is the recorded one) then moves the weights the same way but for
# rounding, and the weights' hash differs. The move's sketch must then point the same way
# (cosine) and be as long, within these.
# Measured here, 30 steps with oneDNN's kernels off against on: cosine 0.99985 and length
# 0.3% (robust), 0.99971 and 1.2% (localiser); the localiser's 29 steps against 30 (the same
# data), 0.99966 and 3.7%; its pages rendered by Pillow 12.3 against 13.0, 0.9980 (their data
# hash differs too).
MIN_COSINE = 0.9995
MAX_LENGTH_CHANGE = 0.03
_start: list[np.ndarray] = []  # the weights when training began (stop_after records them)
_data = hashlib.sha256()  # the training data the run was given (saw)


def saw(*arrays: np.ndarray) -> None:
    """Count arrays of training data into the data hash (in the order they are given)."""
    for a in arrays:
        _data.update(str((a.dtype.str, a.shape)).encode())
        _data.update(np.ascontiguousarray(a).tobytes())


def weights_sha256(weights: list[np.ndarray]) -> str:
    """SHA-256 of every weight array's bytes, in the model's order."""
    h = hashlib.sha256()
    for w in weights:
        h.update(np.ascontiguousarray(w).tobytes())
    return h.hexdigest()


def sketch(start: list[np.ndarray], end: list[np.ndarray]) -> np.ndarray:
    """The weights' move from `start` to `end`, projected on SKETCH fixed pseudo-random
    directions (one seeded Gaussian block per weight array)."""
    total = np.zeros(SKETCH)
    for i, (a, b) in enumerate(zip(start, end, strict=True)):
        move = (np.asarray(b, np.float64) - np.asarray(a, np.float64)).ravel()
        rng = np.random.default_rng([SKETCH_SEED, i])
        total += rng.standard_normal((SKETCH, move.size)) @ move
    return total


def alike(recorded_sketch: list[float], sketch_now: np.ndarray) -> tuple[float, float]:
    """(cosine, relative change of length) between a recorded sketch and this run's."""
    a, b = np.asarray(recorded_sketch, np.float64), np.asarray(sketch_now, np.float64)
    na, nb = float(np.linalg.norm(a)), float(np.linalg.norm(b))
    return float(a @ b / (na * nb)) if na and nb else 0.0, abs(nb / na - 1) if na else 1.0


def stop_after(steps: int):
    """A Keras callback that ends training after `steps` gradient steps in all (it keeps the
    weights training began from, for the sketch)."""
    import keras

    class StopAfter(keras.callbacks.Callback):
        def __init__(self) -> None:
            super().__init__()
            self.done = 0

        def on_train_begin(self, logs=None):
            _start[:] = [np.array(w) for w in self.model.get_weights()]

        def on_train_batch_end(self, batch, logs=None):
            self.done += 1
            if self.done >= steps:
                self.model.stop_training = True

    return StopAfter()


def recorded(recipe: str) -> dict | None:
    try:
        return json.loads(RECORD.read_text()).get(recipe)
    except (OSError, ValueError):
        return None


def report(recipe: str, steps: int, model, out: Path, seconds: float) -> int:
    """Print and write (OUT/prefix.json) the hash after `steps`; 0 when it is the recorded
    one (or none is recorded for that many steps), 1 when it differs."""
    from mnist_edge.device import atomic

    weights = model.get_weights()
    sha, moved = weights_sha256(weights), sketch(_start, weights)
    data = _data.hexdigest()
    facts = {"recipe": recipe, "steps": steps, "weights_sha256": sha, "data_sha256": data,
             "sketch": [float(f"{v:.6g}") for v in moved], "seconds": round(seconds, 1)}
    atomic.write_json(Path(out) / f"prefix-{recipe}.json", facts)
    want = recorded(recipe)
    if want is None or want.get("steps") != steps:
        print(f"{recipe}: {steps} steps, weights SHA-256 {sha} ({seconds:.0f} s); nothing "
              f"recorded for {steps} steps in {RECORD.name}")
        return 0
    head = f"{recipe}: {steps} steps, weights SHA-256 {sha[:16]}..."
    if want.get("data_sha256", data) != data:  # (a record made before data hashes: weights only)
        print(f"{head}; the training data DIFFERS from the recorded data ({data[:16]}... against "
              f"{want['data_sha256'][:16]}...: the recipe's data or its libraries, e.g. "
              f"Pillow, changed) ({seconds:.0f} s)")
        return 1
    if want["weights_sha256"] == sha:
        print(f"{head} identical to the recorded one ({seconds:.0f} s)")
        return 0
    head += f" differs from the recorded {want['weights_sha256'][:16]}..."
    cosine, change = alike(want.get("sketch") or [], moved)
    near = cosine >= MIN_COSINE and change <= MAX_LENGTH_CHANGE
    print(f"{head}; the same training data; the weights' move "
          f"{'matches' if near else 'DIFFERS from'} the recorded one's: cosine {cosine:.5f} "
          f"(>= {MIN_COSINE}), length {change:.1%} off (<= {MAX_LENGTH_CHANGE:.0%})"
          f"{': the same recipe, rounded otherwise (another CPU)' if near else ''} "
          f"({seconds:.0f} s)")
    return 0 if near else 1
