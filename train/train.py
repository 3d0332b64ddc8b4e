"""Train the tutorial's CNN on MNIST and write models/ atomically.

    python -m train [--epochs 5] [--batch-size 64] [--variant valid|same] [--out models]

Writes mnist_cnn.keras, train_metrics.json, history.json and training_curves.png.
Seeded and deterministic as far as TensorFlow allows: `keras.utils.set_random_seed` seeds
Python, numpy and TensorFlow, and `enable_op_determinism` makes TF's kernels deterministic.
What is not: results can still differ across TF versions, CPU instruction sets (oneDNN picks
kernels per CPU) and thread counts.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # keep TensorFlow's start-up chatter out

import numpy as np

from device import atomic, data
from device.errors import MnistEdgeError

# The tutorial's recipe.
EPOCHS = 5  # full passes over the 60k training images
BATCH_SIZE = 64  # images per gradient step
OPTIMIZER = "rmsprop"  # Keras default learning rate 0.001
SEED = 42  # seeds Python, numpy and TensorFlow
MODEL_FILE = "mnist_cnn.keras"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m train", description="Train the tutorial's MNIST CNN (Keras)."
    )
    p.add_argument("--variant", choices=["valid", "same"], default="valid",
                   help="conv padding: valid (93,322 params, the tutorial) or same (257,162)")
    p.add_argument("--epochs", type=int, default=EPOCHS, help="training epochs (default 5)")
    p.add_argument("--batch-size", type=int, default=BATCH_SIZE, help="batch size (default 64)")
    p.add_argument("--optimizer", default=OPTIMIZER,
                   help="Keras optimizer name: rmsprop (default), adam, sgd ...")
    p.add_argument("--learning-rate", type=float, default=None,
                   help="learning rate (default: the optimizer's own, 0.001 for rmsprop)")
    p.add_argument("--validation-split", type=float, default=0.0,
                   help="fraction of the training images held out for validation (default 0)")
    p.add_argument("--seed", type=int, default=SEED, help="random seed (default 42)")
    p.add_argument("--limit", type=int, default=None,
                   help="train on the first N training images only (smoke tests)")
    p.add_argument("--data", default=None, help="folder with the MNIST IDX files")
    p.add_argument("--out", default="models", help="output folder (default models/)")
    p.add_argument("--no-plot", action="store_true", help="skip the training-curves PNG")
    args = p.parse_args(argv)
    if args.epochs < 1 or args.batch_size < 1:
        p.error("--epochs and --batch-size must be at least 1")
    if not 0.0 <= args.validation_split < 1.0:
        p.error("--validation-split must be in [0, 1)")
    return args


def load_xy(split: str, data_dir: str | None, limit: int | None = None):
    """Images reshaped to (N,28,28,1) float32 in [0,1], labels one-hot (N,10)."""
    images, labels = data.load_split(split, data_dir)
    if limit:
        images, labels = images[:limit], labels[:limit]
    x = images.reshape(-1, 28, 28, 1).astype("float32") / 255.0
    y = np.eye(10, dtype="float32")[labels]
    return x, y


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        x_train, y_train = load_xy("train", args.data, args.limit)
        x_test, y_test = load_xy("test", args.data)
    except MnistEdgeError as e:
        print(f"error: {e}", file=sys.stderr)
        return e.exit_code

    import keras
    import tensorflow as tf

    from .model import VARIANTS, build_model

    keras.utils.set_random_seed(args.seed)
    tf.config.experimental.enable_op_determinism()

    model = build_model(args.variant)
    model.summary()
    params = model.count_params()
    expected = VARIANTS[args.variant]
    assert params == expected, f"{params} parameters, expected {expected}"

    optimizer = keras.optimizers.get(args.optimizer)
    if args.learning_rate is not None:
        optimizer.learning_rate = args.learning_rate
    model.compile(optimizer=optimizer, loss="categorical_crossentropy", metrics=["accuracy"])

    verbose = 1 if sys.stdout.isatty() else 2  # one line per epoch in logs
    start = time.perf_counter()
    history = model.fit(
        x_train, y_train,
        epochs=args.epochs,
        batch_size=args.batch_size,
        validation_split=args.validation_split,
        verbose=verbose,
    )
    train_seconds = time.perf_counter() - start
    test_loss, test_accuracy = model.evaluate(x_test, y_test, verbose=0)
    print(f"test loss {test_loss:.4f}  test accuracy {test_accuracy:.4f}  "
          f"({train_seconds:.1f} s training)")

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    with atomic.replacing(out / MODEL_FILE) as tmp:
        model.save(tmp)

    hist = {k: [float(v) for v in vals] for k, vals in history.history.items()}
    atomic.write_json(out / "history.json", hist)
    if not args.no_plot:
        from .plots import training_curves

        training_curves(hist, out / "training_curves.png")
    metrics = {
        "variant": args.variant,
        "params": params,
        "epochs": args.epochs,
        "batch_size": args.batch_size,
        "optimizer": args.optimizer,
        "learning_rate": float(keras.ops.convert_to_numpy(model.optimizer.learning_rate)),
        "validation_split": args.validation_split,
        "seed": args.seed,
        "train_images": int(len(x_train)),
        "test_loss": float(test_loss),
        "test_accuracy": float(test_accuracy),
        "train_seconds": round(train_seconds, 2),
        "tensorflow": tf.__version__,
        "keras": keras.__version__,
        "python": platform.python_version(),
        "machine": platform.machine(),
    }
    atomic.write_json(out / "train_metrics.json", metrics)
    print(f"wrote {out / MODEL_FILE}, train_metrics.json, history.json"
          + ("" if args.no_plot else ", training_curves.png"))
    print(json.dumps({k: metrics[k] for k in ("test_loss", "test_accuracy", "train_seconds")}))
    return 0
