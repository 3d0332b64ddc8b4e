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


def weights_sha256(model) -> str:
    """SHA-256 of every weight array's bytes, in the model's order."""
    h = hashlib.sha256()
    for w in model.get_weights():
        h.update(np.ascontiguousarray(w).tobytes())
    return h.hexdigest()


def stop_after(steps: int):
    """A Keras callback that ends training after `steps` gradient steps in all."""
    import keras

    class StopAfter(keras.callbacks.Callback):
        def __init__(self) -> None:
            super().__init__()
            self.done = 0

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

    sha = weights_sha256(model)
    facts = {"recipe": recipe, "steps": steps, "weights_sha256": sha,
             "seconds": round(seconds, 1)}
    atomic.write_json(Path(out) / f"prefix-{recipe}.json", facts)
    want = recorded(recipe)
    if want is None or want.get("steps") != steps:
        print(f"{recipe}: {steps} steps, weights SHA-256 {sha} ({seconds:.0f} s); nothing "
              f"recorded for {steps} steps in {RECORD.name}")
        return 0
    same = want["weights_sha256"] == sha
    print(f"{recipe}: {steps} steps, weights SHA-256 {sha[:16]}... "
          f"{'identical to' if same else 'DIFFERS from'} the recorded {want['weights_sha256'][:16]}... "
          f"({seconds:.0f} s)")
    return 0 if same else 1
