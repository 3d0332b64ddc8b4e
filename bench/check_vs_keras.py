"""`check` path (device runtime, one invoke per image) vs Keras `model.predict` on the same
10,000 test images, side by side in one process.

    python bench/check_vs_keras.py [--models models]"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from mnist_edge.device.data import mnist  # noqa: E402
from mnist_edge.device.evaluation import evaluate  # noqa: E402
from mnist_edge.device.inference import model  # noqa: E402


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--models", default="models")
    folder = Path(p.parse_args().models)
    x, y = mnist.load_split("test")
    timings = {}
    for name in ("mnist_cnn_float32.tflite", "mnist_cnn_int8.tflite"):
        clf = model.load(folder / name)
        t0 = time.perf_counter()
        res = evaluate.measure(clf, x, y)
        timings[name] = time.perf_counter() - t0
        print(f"device check {name:28s} {timings[name]:6.2f} s  accuracy {res.accuracy:.4f}")
    import keras

    k = keras.models.load_model(folder / "mnist_cnn.keras")
    xk = x.reshape(-1, 28, 28, 1).astype("float32") / 255
    k.predict(xk[:256], verbose=0)  # build the predict function first
    t0 = time.perf_counter()
    acc = float((k.predict(xk, verbose=0).argmax(1) == y).mean())
    keras_s = time.perf_counter() - t0
    print(f"Keras model.predict (batch 32)            {keras_s:6.2f} s  accuracy {acc:.4f}")
    for name, s in timings.items():
        print(f"ratio {name} check / Keras predict: {s / keras_s:.2f}x")


if __name__ == "__main__":
    main()
