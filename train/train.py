"""Train an MNIST model and write it atomically.

    mnist-edge train [--recipe tutorial|robust] [--variant valid|same|dense] [--out DIR]
    mnist-edge train --kfold 5 [...]     # k-fold validation of a recipe, nothing saved
    mnist-edge train --recipe robust --finetune DIR [--base KERAS]  # a writer's own model

Recipes: `tutorial` (the default) reproduces the tutorial's CNN exactly (`--variant same` its
padded variant, `--variant dense` the previous post's dense network) and writes models/;
`robust` trains the device's default model (train/robust.py) into models/robust/.
Writes <model>.keras, train_metrics.json, history.json and training_curves.png.
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
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # keep TensorFlow's start-up chatter out

import numpy as np

from mnist_edge.device import atomic
from mnist_edge.device.data import mnist as data
from mnist_edge.device.errors import MnistEdgeError

# The tutorial's recipe.
EPOCHS = 5  # full passes over the 60k training images
BATCH_SIZE = 64  # images per gradient step
OPTIMIZER = "rmsprop"  # Keras default learning rate 0.001
SEED = 42  # seeds Python, numpy and TensorFlow
MODEL_FILES = {"valid": "mnist_cnn.keras", "same": "mnist_cnn.keras",
               "dense": "mnist_dense.keras", "robust": "mnist_robust.keras",
               "personal": "mnist_personal.keras"}
# The Keras model the bundled robust int8 was converted from (its SHA-256 is the bundled
# manifest's source_model.sha256; `make bundle-robust` refreshes it): fine-tuning starts here.
BASE = Path(__file__).resolve().parent / "base" / "mnist_robust.keras"
DEFAULT_OUT = {"valid": "models", "same": "models", "dense": "models/dense",
               "robust": "models/robust", "personal": "models/personal"}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="mnist-edge train", description="Train an MNIST model (Keras): the tutorial's "
        "CNN (default) or the robust device model."
    )
    p.add_argument("--recipe", choices=["tutorial", "robust"], default=None,
                   help="tutorial: the tutorial's CNN exactly (default); robust: augmented, "
                        "with a 'no digit' output, the device's default model")
    p.add_argument("--variant", choices=["valid", "same", "dense"], default="valid",
                   help="tutorial recipe: valid (93,322 params, the tutorial), same (257,162) "
                        "or dense (the previous post's Dense 512 network, 407,050)")
    p.add_argument("--epochs", type=int, default=None,
                   help="training epochs (default 5; robust recipe 15)")
    p.add_argument("--batch-size", type=int, default=None,
                   help="batch size (default 64; robust recipe 128)")
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
    p.add_argument("--kfold", type=int, default=None, metavar="K",
                   help="k-fold validation on the train split: per-fold and mean +- std "
                        "validation accuracy (writes kfold.json only)")
    p.add_argument("--out", default=None,
                   help="output folder (default models/, models/robust/, models/dense/)")
    p.add_argument("--no-plot", action="store_true", help="skip the training-curves PNG")
    p.add_argument("--prefix-steps", type=int, default=None, metavar="N",
                   help="robust recipe: train only the run's first N steps and compare the "
                        "weights' hash with train/base/prefixes.json (CI; train/prefix.py)")
    p.add_argument("--finetune", default=None, metavar="DIR",
                   help="robust recipe: fine-tune the robust model on a writer's examples "
                        "(mnist-edge collect DIR) -> models/personal/mnist_personal.keras, with "
                        "a held-out quarter in heldout/ for the gate (train/finetune.py)")
    p.add_argument("--base", default=str(BASE),
                   help="with --finetune: the Keras model to start from (default: the one the "
                        "bundled robust model was converted from, shipped in train/base/)")
    args = p.parse_args(argv)
    if args.finetune is not None and (args.recipe == "tutorial" or args.kfold):
        p.error("--finetune starts from the robust model: not with --recipe tutorial or --kfold")
    args.recipe = args.recipe or ("robust" if args.finetune is not None else "tutorial")
    if args.prefix_steps is not None and (args.recipe != "robust" or args.finetune
                                          or args.prefix_steps < 1):
        p.error("--prefix-steps N (N >= 1) reproduces the robust recipe's first steps only")
    if args.recipe == "robust" and args.variant != "valid":
        p.error("--variant belongs to the tutorial recipe; the robust recipe has one network")
    if args.recipe == "robust":
        from . import robust

        args.variant = "robust"
        args.epochs = args.epochs or (None if args.finetune else robust.EPOCHS)
        args.batch_size = args.batch_size or robust.BATCH_SIZE
        args.optimizer = "adam (cosine decay)"
    if args.finetune is not None:
        from . import finetune

        args.variant = "personal"
        args.epochs = args.epochs or finetune.EPOCHS
        args.optimizer = "adam"
    args.epochs = args.epochs or EPOCHS
    args.batch_size = args.batch_size or BATCH_SIZE
    args.out = args.out or DEFAULT_OUT[args.variant]
    if args.epochs < 1 or args.batch_size < 1:
        p.error("--epochs and --batch-size must be at least 1")
    if args.kfold is not None and args.kfold < 2:
        p.error("--kfold needs at least 2 folds")
    if not 0.0 <= args.validation_split < 1.0:
        p.error("--validation-split must be in [0, 1)")
    return args


def load_xy(split: str, data_dir: str | None, limit: int | None = None):
    """Images uint8 (N,28,28) and labels uint8 (N,)."""
    images, labels = data.load_split(split, data_dir)
    if limit:
        images, labels = images[:limit], labels[:limit]
    return images, labels


def as_inputs(images: np.ndarray) -> np.ndarray:
    """The tutorial's preprocessing: reshape to (N,28,28,1), scale to [0,1]."""
    return images.reshape(-1, 28, 28, 1).astype("float32") / 255.0


def build(args: argparse.Namespace):
    from .model import ROBUST_PARAMS, VARIANTS, build_model, build_robust_model

    if args.recipe == "robust":
        model, expected = build_robust_model(), ROBUST_PARAMS
    else:
        model, expected = build_model(args.variant), VARIANTS[args.variant]
    params = model.count_params()
    assert params == expected, f"{params} parameters, expected {expected}"
    return model


def fit(args: argparse.Namespace, images: np.ndarray, labels: np.ndarray,
        validation: tuple[np.ndarray, np.ndarray] | None = None):
    """Build and train one model by the recipe; returns (model, history dict, seconds)."""
    import keras

    model = build(args)
    start = time.perf_counter()
    if args.recipe == "robust":
        from . import robust

        scale = len(images) / 60_000  # --limit shrinks the frame pools alike
        history = robust.fit(model, images, labels, epochs=args.epochs,
                             batch_size=args.batch_size, seed=args.seed, scale=scale,
                             validation=validation, prefix_steps=args.prefix_steps)
        return model, history, time.perf_counter() - start
    optimizer = keras.optimizers.get(args.optimizer)
    if args.learning_rate is not None:
        optimizer.learning_rate = args.learning_rate
    model.compile(optimizer=optimizer, loss="categorical_crossentropy", metrics=["accuracy"])
    val = None if validation is None else (as_inputs(validation[0]), one_hot(validation[1]))
    h = model.fit(
        as_inputs(images), one_hot(labels),
        epochs=args.epochs,
        batch_size=args.batch_size,
        validation_split=args.validation_split if val is None else 0.0,
        validation_data=val,
        verbose=1 if sys.stdout.isatty() else 2,  # one line per epoch in logs
    )
    history = {k: [float(v) for v in vals] for k, vals in h.history.items()}
    return model, history, time.perf_counter() - start


def one_hot(labels: np.ndarray) -> np.ndarray:
    return np.eye(10, dtype="float32")[labels]


def test_scores(model, images: np.ndarray, labels: np.ndarray) -> tuple[float, float]:
    """Test loss (cross-entropy of the true digit) and accuracy (argmax over every output,
    so a digit answered "no digit" counts as wrong)."""
    probs = model.predict(as_inputs(images), batch_size=1000, verbose=0)
    picked = probs[np.arange(len(labels)), labels]
    loss = float(-np.log(np.clip(picked, 1e-7, 1.0)).mean())
    return loss, float((probs.argmax(axis=1) == labels).mean())


def kfold(args: argparse.Namespace, images: np.ndarray, labels: np.ndarray) -> int:
    """Train K models, each validated on the fold it did not see; report mean +- std."""
    order = np.random.default_rng(args.seed).permutation(len(images))
    folds = np.array_split(order, args.kfold)
    scores = []
    for k, held in enumerate(folds):
        used = np.setdiff1d(order, held)
        print(f"fold {k + 1}/{args.kfold}: training on {len(used):,}, validating on {len(held):,}",
              flush=True)
        model, _, seconds = fit(args, images[used], labels[used])
        _, acc = test_scores(model, images[held], labels[held])
        scores.append(acc)
        print(f"fold {k + 1}/{args.kfold}: validation accuracy {acc:.4f} ({seconds:.0f} s)",
              flush=True)
    mean, std = float(np.mean(scores)), float(np.std(scores, ddof=1))
    print(f"{args.kfold}-fold validation accuracy: {mean:.4f} +- {std:.4f} "
          f"(folds: {', '.join(f'{a:.4f}' for a in scores)})")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    atomic.write_json(out / "kfold.json", {
        "recipe": args.recipe, "variant": args.variant, "folds": args.kfold,
        "epochs": args.epochs, "seed": args.seed, "train_images": int(len(images)),
        "fold_accuracy": scores, "mean": mean, "std": std,
    })
    print(f"wrote {out / 'kfold.json'}")
    return 0


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        train_images, train_labels = load_xy("train", args.data, args.limit)
        test_images, test_labels = load_xy("test", args.data)
    except MnistEdgeError as e:
        print(f"error: {e}", file=sys.stderr)
        return e.exit_code

    import keras
    import tensorflow as tf

    keras.utils.set_random_seed(args.seed)
    tf.config.experimental.enable_op_determinism()
    if args.kfold:
        return kfold(args, train_images, train_labels)

    facts: dict[str, Any] = {}
    if args.finetune is not None:
        from . import finetune

        try:
            model, facts = finetune.run(Path(args.base), Path(args.finetune), Path(args.out),
                                        train_images, train_labels, epochs=args.epochs,
                                        batch_size=args.batch_size, seed=args.seed)
        except MnistEdgeError as e:
            print(f"error: {e}", file=sys.stderr)
            return e.exit_code
        hist, train_seconds = facts.pop("history"), float(facts["train_seconds"])
    else:
        model, hist, train_seconds = fit(args, train_images, train_labels)
    if args.prefix_steps:
        from . import prefix

        Path(args.out).mkdir(parents=True, exist_ok=True)
        return prefix.report("robust", args.prefix_steps, model, Path(args.out), train_seconds)
    model.summary()
    test_loss, test_accuracy = test_scores(model, test_images, test_labels)
    print(f"test loss {test_loss:.4f}  test accuracy {test_accuracy:.4f}  "
          f"({train_seconds:.1f} s training)")

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    model_file = MODEL_FILES[args.variant]
    with atomic.replacing(out / model_file) as tmp:
        model.save(tmp)
    atomic.write_json(out / "history.json", hist)
    if not args.no_plot:
        from .plots import training_curves

        training_curves(hist, out / "training_curves.png")
    metrics = {
        "recipe": args.recipe,
        "variant": args.variant,
        "params": model.count_params(),
        "epochs": args.epochs,
        "batch_size": args.batch_size,
        "optimizer": args.optimizer,
        "learning_rate": float(keras.ops.convert_to_numpy(model.optimizer.learning_rate)),
        "validation_split": args.validation_split,
        "seed": args.seed,
        "train_images": int(facts["trained_on"]) if facts else int(len(train_images)),
        "test_loss": test_loss,
        "test_accuracy": test_accuracy,
        "train_seconds": round(train_seconds, 2),
        "tensorflow": tf.__version__,
        "keras": keras.__version__,
        "python": platform.python_version(),
        "machine": platform.machine(),
    }
    if args.recipe == "robust":  # trained on crops the reading pipeline cut: which version
        from mnist_edge.device.reading.params import DEFAULT as READING

        metrics["reading_pipeline"] = READING.version()
    if facts:
        metrics["finetune"] = facts
    atomic.write_json(out / "train_metrics.json", metrics)
    print(f"wrote {out / model_file}, train_metrics.json, history.json"
          + ("" if args.no_plot else ", training_curves.png"))
    print(json.dumps({k: metrics[k] for k in ("test_loss", "test_accuracy", "train_seconds")}))
    if facts:
        keras_file = out / model_file
        print(f"next: mnist-edge convert --model {keras_file}\n"
              f"      mnist-edge check --model {out / 'mnist_personal_int8.tflite'} --baseline robust "
              f"--images {out / 'heldout'}\n"
              f"      then on the device: mnist-edge models install {out}")
    return 0
