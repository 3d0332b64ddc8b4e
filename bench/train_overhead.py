"""Training time of `python -m mnist_edge.train` against a plain Keras script doing the same fit,
measured side by side in one run (each in a fresh process, same data, same machine).

    python bench/train_overhead.py [--epochs 5]"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PLAIN = r'''
import sys, time, numpy as np, keras
from keras import layers
from mnist_edge.device.data import mnist as data
epochs = int(sys.argv[1])
(xi, yi), (xt, yt) = data.load_split("train"), data.load_split("test")
x = xi.reshape(-1, 28, 28, 1).astype("float32") / 255; y = np.eye(10, dtype="float32")[yi]
m = keras.Sequential([keras.Input((28, 28, 1)),
    layers.Conv2D(32, 3, activation="relu"), layers.MaxPooling2D(2),
    layers.Conv2D(64, 3, activation="relu"), layers.MaxPooling2D(2),
    layers.Conv2D(64, 3, activation="relu"), layers.Flatten(),
    layers.Dense(64, activation="relu"), layers.Dense(10, activation="softmax")])
m.compile(optimizer="rmsprop", loss="categorical_crossentropy", metrics=["accuracy"])
t0 = time.perf_counter(); m.fit(x, y, epochs=epochs, batch_size=64, verbose=0)
fit = time.perf_counter() - t0
print(fit, m.evaluate(xt.reshape(-1, 28, 28, 1) / 255, np.eye(10)[yt], verbose=0)[1])
'''


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--epochs", type=int, default=5)
    epochs = p.parse_args().epochs
    t0 = time.perf_counter()
    out = subprocess.run([sys.executable, "-c", PLAIN, str(epochs)], check=True,
                         capture_output=True, text=True).stdout.split()
    plain_wall = time.perf_counter() - t0
    plain_fit, plain_acc = float(out[-2]), float(out[-1])
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-m", "mnist_edge.train", "--epochs", str(epochs), "--out", tmp],
                       check=True, capture_output=True)
        ours_wall = time.perf_counter() - t0
        metrics = json.loads((Path(tmp) / "train_metrics.json").read_text())
    print(f"plain Keras script: fit {plain_fit:.1f} s, process {plain_wall:.1f} s, "
          f"test accuracy {plain_acc:.4f}")
    print(f"mnist_edge.train:   fit {metrics['train_seconds']:.1f} s, process {ours_wall:.1f} s, "
          f"test accuracy {metrics['test_accuracy']:.4f}")
    print(f"ratio fit {metrics['train_seconds'] / plain_fit:.3f}x, "
          f"whole process {ours_wall / plain_wall:.3f}x")


if __name__ == "__main__":
    main()
