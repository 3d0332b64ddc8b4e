"""Convert the trained Keras model to four TFLite models, measure them with the device
runtime, write manifest.json and report.md, and gate the int8 model's accuracy.

    mnist-edge convert [--model models/mnist_cnn.keras] [--out models] [--max-drop 0.5]
                      [--representative 500] [--layer-report] [--c-array] [--bundle]

Models are named after the Keras file: mnist_robust.keras -> mnist_robust_int8.tflite, ...

Exit codes: 0 all written and the gate passed; 1 the gate failed (models and manifest are
still written, so the failure can be inspected; nothing is bundled); 2 bad input.
Nothing is written to a final path until every model has converted and been measured.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import shutil
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np

from mnist_edge.device import atomic
from mnist_edge.device.data import mnist as data
from mnist_edge.device.errors import MnistEdgeError
from mnist_edge.device.evaluation import drift, evaluate
from mnist_edge.device.inference import model as device_model
from mnist_edge.device.inference import timing

from .report import confusion_png, report_markdown

BUNDLE_ROOT = Path(__file__).resolve().parent.parent / "device" / "models"
FAMILIES = {"mnist_cnn": "tutorial", "mnist_robust": "robust"}  # file stem -> bundled folder
BUNDLED_VARIANTS = ("int8", "float32")
REFERENCED = BUNDLED_VARIANTS  # variants whose manifest entry records the reference distribution
STAGING_PREFIX = ".convert-"  # hidden folder the models are measured in before they are final
PREPROCESSING = {
    "image": "28x28 grayscale, white digit on black background (MNIST polarity)",
    "float_input": "pixel / 255 as float32, shape (1,28,28,1)",
    "int8_input": "q = pixel - 128 (scale 1/255, zero point -128), shape (1,28,28,1)",
}


def preprocessing(model_path: Path, outputs: int) -> dict[str, str]:
    """The manifest's preprocessing contract. A model trained on crops the device's reading
    pipeline cut (the robust recipe) also records that pipeline's version, from the
    train_metrics.json beside it: the device warns when its own version differs."""
    out = {**PREPROCESSING, "output": (
        f"{outputs} softmax probabilities"
        + (" (0-9, then 'no digit')" if outputs == 11 else "")
        + " (int8 model: p = (q + 128) / 256)")}
    metrics = model_path.parent / "train_metrics.json"
    if metrics.is_file():
        version = json.loads(metrics.read_text()).get("reading_pipeline")
        if version:
            out["reading_pipeline"] = version
    return out


def finetuned(model_path: Path) -> dict[str, Any]:
    """A fine-tuned model's manifest records what it learned from: the base model and the
    user's examples (their SHA-256 and count), from the train_metrics.json beside it."""
    metrics = model_path.parent / "train_metrics.json"
    if metrics.is_file():
        facts = json.loads(metrics.read_text()).get("finetune")
        if facts:
            return {"finetune": facts}
    return {}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="mnist-edge convert", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="models/mnist_cnn.keras", help="trained Keras model")
    p.add_argument("--out", default=None, help="output folder (default: the model's folder)")
    p.add_argument("--data", default=None, help="folder with the MNIST IDX files")
    p.add_argument("--representative", type=int, default=500,
                   help="calibration images from the train split, class-balanced (default 500)")
    p.add_argument("--seed", type=int, default=0, help="seed for choosing them (default 0)")
    p.add_argument("--calibration", choices=["train", "blank"], default="train",
                   help="blank: all-zero images, a deliberately broken calibration "
                        "that shows the gate failing")
    p.add_argument("--max-drop", type=float, default=evaluate.MAX_DROP_PP,
                   help="allowed accuracy drop of a quantized model, percentage points (0.5)")
    p.add_argument("--min-agreement", type=float, default=evaluate.MIN_AGREEMENT_PCT,
                   help="required top-1 agreement with float32, percent (default 99)")
    p.add_argument("--layer-report", action="store_true",
                   help="write int8_layers.csv: per-layer quantization error")
    p.add_argument("--c-array", action="store_true",
                   help="write mnist_cnn_int8.cc/.h for TensorFlow Lite Micro")
    p.add_argument("--bundle", action="store_true",
                   help=f"when the gate passes, copy the int8/float32 models into "
                        f"{BUNDLE_ROOT}/<family>/ (tutorial for mnist_cnn, robust for mnist_robust)")
    p.add_argument("--bundle-dir", default=None, help=argparse.SUPPRESS)
    p.add_argument("--runtime", default=None, choices=["litert", "tflite-runtime"],
                   help="litert or tflite-runtime (default: auto)")
    args = p.parse_args(argv)
    if args.representative < 1:
        p.error("--representative must be at least 1")
    problem = evaluate.check_thresholds(args.max_drop, args.min_agreement)
    if problem:
        p.error(problem)
    return args


def sha256(data_: bytes) -> str:
    return hashlib.sha256(data_).hexdigest()


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        return run(args)
    except MnistEdgeError as e:
        print(f"error: {e}", file=sys.stderr)
        return e.exit_code


def _representative(args: argparse.Namespace, train_x: np.ndarray, train_y: np.ndarray) -> np.ndarray:
    """The int8 calibration images (`--calibration blank`: zeros, to show the gate failing)."""
    from . import tflite

    if args.calibration == "blank":
        return np.zeros((args.representative, 28, 28), dtype=np.uint8)
    return tflite.representative_images(train_x, train_y, args.representative, args.seed)


def _convert_all(keras_model: Any, representative: Any) -> tuple[dict[str, bytes], dict[str, float]]:
    """Every variant's bytes and its seconds to convert."""
    from . import tflite

    blobs: dict[str, bytes] = {}
    seconds: dict[str, float] = {}
    for variant in tflite.VARIANTS:
        t0 = time.perf_counter()
        blobs[variant] = tflite.convert(keras_model, variant, representative)
        seconds[variant] = time.perf_counter() - t0
        print(f"converted {variant:8s} {len(blobs[variant]):>9,} bytes in {seconds[variant]:.1f} s")
    return blobs, seconds


def run(args: argparse.Namespace) -> int:
    model_path = Path(args.model)
    out = Path(args.out) if args.out else model_path.parent
    if not model_path.is_file():
        print(f"error: {model_path}: no trained model; run `make train` first", file=sys.stderr)
        return 2
    try:  # before any work: an --out that cannot take files fails now, in one line
        out.mkdir(parents=True, exist_ok=True)
        probe = Path(tempfile.mkstemp(prefix=".write-test-", dir=out)[1])
        probe.unlink()
    except OSError as e:
        print(f"error: --out {out}: cannot write there ({e.strerror or e})", file=sys.stderr)
        return 2
    stem = model_path.stem
    test_x, test_y = data.load_split("test", args.data)
    train_x, train_y = data.load_split("train", args.data)
    runtime_probe = device_model.choose(args.runtime)  # a missing runtime fails before converting

    import keras
    import tensorflow as tf

    from . import tflite

    t_start = time.perf_counter()
    try:
        keras_model = keras.models.load_model(model_path)
    except Exception as e:  # Keras raises ValueError, OSError, zipfile errors...
        reason = str(e).strip().splitlines()[0][:200] if str(e).strip() else type(e).__name__
        print(f"error: {model_path}: cannot load the Keras model ({reason})", file=sys.stderr)
        return 2
    keras_probs = keras_model.predict(test_x.reshape(-1, 28, 28, 1) / 255.0, batch_size=1000,
                                      verbose=0)
    keras_pred = keras_probs.argmax(axis=1)
    keras_acc = float((keras_pred == test_y).mean())
    print(f"Keras model {model_path}: test accuracy {keras_acc:.4%}")

    rep_images = _representative(args, train_x, train_y)
    representative = tflite.as_dataset(rep_images)
    blobs, convert_seconds = _convert_all(keras_model, representative)

    # Measure every model with the device runtime, from a staging folder beside the outputs.
    out.mkdir(parents=True, exist_ok=True)
    for leftover in atomic.remove_leftovers(out, STAGING_PREFIX):
        print(f"removed {leftover.name}, left by an interrupted run")
    staging = Path(tempfile.mkdtemp(prefix=STAGING_PREFIX, dir=out))
    try:
        entries, results = [], []
        for variant in tflite.VARIANTS:
            name = f"{stem}_{variant}.tflite"
            path = staging / name
            path.write_bytes(blobs[variant])
            clf = device_model.load(path, runtime=runtime_probe, trust_model=True)
            res = evaluate.measure(clf, test_x, test_y)
            res.model = name
            latency = timing.time_wrapper(clf, runs=1000)
            bare = timing.time_bare(clf, runs=1000)
            results.append(res)
            entries.append({
                "file": name,
                "variant": variant,
                "sha256": sha256(blobs[variant]),
                "bytes": len(blobs[variant]),
                **clf.signature(),
                "test_accuracy": res.accuracy,
                "agreement_with_keras": float((res.predictions == keras_pred).mean()),
                "mean_abs_prob_diff_vs_keras": float(np.abs(res.probabilities - keras_probs).mean()),
                "latency_us": latency.to_json(),
                "bare_invoke_p50_us": round(bare.p50_us, 2),
                "convert_seconds": round(convert_seconds[variant], 2),
            })
            if variant in REFERENCED:  # what the device's drift monitor compares the field with
                entries[-1]["reference_distribution"] = drift.reference(clf)
            runtime_name = str(clf.runtime)
        passed = evaluate.apply_gate(results, args.max_drop, args.min_agreement)
        reference = f"{stem}_float32.tflite"
        for entry, res in zip(entries, results, strict=True):
            entry["agreement_with_float32"] = res.agreement
            entry["drop_pp_vs_float32"] = res.drop_pp  # positive = worse than float32
            entry["reference"] = reference if res.quantized else None
            entry["gate"] = "reference" if not res.quantized else ("pass" if res.passed else "FAIL")

        manifest: dict[str, Any] = {
            "schema": 1,
            "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "source_model": {
                "file": model_path.name,
                "sha256": sha256(model_path.read_bytes()),
                "keras_test_accuracy": keras_acc,
            },
            "preprocessing": preprocessing(model_path, keras_probs.shape[1]),
            **finetuned(model_path),
            "representative_data": {
                "split": "train", "count": int(len(rep_images)), "class_balanced": True,
                "seed": args.seed, "calibration": args.calibration,
            },
            "measured": {
                "split": "test", "images": int(len(test_y)), "runtime": runtime_name,
                "threads": "runtime default", "latency": "single image, 1000 runs after 50 warm-up",
                "machine": platform.machine(), "python": platform.python_version(),
            },
            "tools": {"tensorflow": tf.__version__, "keras": keras.__version__,
                      "numpy": np.__version__},
            "gate": {
                "reference": reference, "max_drop_pp": args.max_drop,
                "min_agreement_pct": args.min_agreement, "passed": bool(passed),
                "failures": [f"{r.model}: {r.reason}" for r in results if r.passed is False],
            },
            "models": entries,
        }

        # Everything converted and measured: now write the final files, manifest last.
        for variant in tflite.VARIANTS:
            atomic.write_bytes(out / f"{stem}_{variant}.tflite", blobs[variant])
        extras = []
        if args.c_array:
            from .c_array import write_c_array

            extras += write_c_array(blobs["int8"], out, f"{stem}_int8")
        layer_rows = None
        if args.layer_report:
            from .layers import layer_report

            debug = tflite.as_dataset(rep_images[:100])
            layer_rows = layer_report(keras_model, representative, debug, out / "int8_layers.csv")
            extras.append(out / "int8_layers.csv")
        int8 = results[tflite.VARIANTS.index("int8")]
        confusion_png(test_y, int8.predictions, out / "confusion_int8.png",
                      title=f"int8 model, test accuracy {int8.accuracy:.2%}")
        atomic.write_text(out / "report.md", report_markdown(manifest, layer_rows))
        atomic.write_json(out / "manifest.json", manifest)
    finally:
        shutil.rmtree(staging, ignore_errors=True)

    print()
    print(report_markdown(manifest, layer_rows, brief=True))
    for path in extras:
        print(f"wrote {path}")
    print(f"wrote {out}/manifest.json, report.md, confusion_int8.png "
          f"({time.perf_counter() - t_start:.1f} s in all)")
    if not passed:
        for failure in manifest["gate"]["failures"]:
            print(f"GATE FAILED: {failure}", file=sys.stderr)
        return 1
    print(f"gate passed: every quantized model within {args.max_drop:g} pp of float32 "
          f"and agreeing on >= {args.min_agreement:g}% of test images")
    if args.bundle:
        target = Path(args.bundle_dir) if args.bundle_dir else BUNDLE_ROOT / FAMILIES.get(stem, stem)
        bundle(out, target, manifest, stem)
    return 0


def bundle(out: Path, target: Path, manifest: dict, stem: str) -> None:
    """Copy the default device models and their manifest entries into the package."""
    names = [f"{stem}_{v}.tflite" for v in BUNDLED_VARIANTS]
    for name in names:
        atomic.copy_file(out / name, target / name)
    slim = dict(manifest, models=[m for m in manifest["models"] if m["file"] in names])
    atomic.write_json(target / "manifest.json", slim)
    print(f"bundled {', '.join(names)} and manifest.json into {target}")
