"""Convert the digit localiser to TFLite (float32 and int8 with int8 input and output), measure
both with the device runtime and gate the int8 against its float.

    python -m mnist_edge.convert.localiser [--model models/localiser/localiser.keras] [--bundle]
    (make convert-localiser; make bundle-localiser)

Reads what `make localiser` wrote beside the Keras model (convert/ never imports train/):
calibration.npz, training pages for the representative data, and heldout.npz, pages of a seed
training never used. Measured on those pages (cells, digit recall, region precision) and on
the second generator family (device/evaluation/synth.py: photos of one digit, empty frames).
The gate: int8 within --max-drop pp of float32 in digit recall, region precision and photo
recall, and in empty frames without a region; exit 1 when it misses.
"""

from __future__ import annotations

import argparse
import hashlib
import platform
import sys
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from mnist_edge.device import atomic
from mnist_edge.device.data import mnist as data
from mnist_edge.device.errors import MnistEdgeError
from mnist_edge.device.evaluation import localisation
from mnist_edge.device.reading import localise
from mnist_edge.device.reading.params import DEFAULT

BUNDLE = localise.MODEL.parent
GATED = ("digit_recall", "region_precision", "photo_recall", "empty_no_region")
SYNTH_SEED = 4242  # the second family's frames (test-split digits): never seen in training


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(prog="python -m mnist_edge.convert.localiser",
                                 description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", type=Path, default=Path("models/localiser/localiser.keras"))
    ap.add_argument("--max-drop", type=float, default=1.0,
                    help="int8 may lose at most this many percentage points against float32 on "
                         "each gated measure (default 1.0)")
    ap.add_argument("--bundle", action="store_true",
                    help="when the gate passes, copy int8 + float32 + manifest into the package")
    ap.add_argument("--data", default=None, help="MNIST folder (the test split's digits are "
                    "written on the second family's frames)")
    return ap.parse_args(argv)


def _measure(loc: localise.Localiser, held: Any, digits: np.ndarray) -> dict[str, float]:
    t0 = time.perf_counter()
    pages = localisation.on_pages(loc, held["inputs"], held["truths"], held["shapes"])
    per_page = (time.perf_counter() - t0) / len(held["inputs"])
    synth = localisation.on_synth(loc, digits, SYNTH_SEED)
    return {**pages, **synth, "ms_per_page": round(per_page * 1000, 2)}


def run(args: argparse.Namespace) -> int:
    folder = args.model.parent
    try:
        calibration = np.load(folder / "calibration.npz")["inputs"]
        held = dict(np.load(folder / "heldout.npz"))
    except OSError as e:
        print(f"error: {folder}: no calibration.npz / heldout.npz beside the model ({e}); "
              "run `make localiser` first", file=sys.stderr)
        return 2
    digits, _ = data.load_split("test", args.data)

    import keras
    import tensorflow as tf

    from .tflite import convert

    model = keras.models.load_model(args.model, compile=False)

    def representative():
        for x in calibration:
            yield [x[None, :, :, None].astype(np.float32) / 255]

    blobs = {v: convert(model, v, representative) for v in ("float32", "int8")}
    entries, measures = [], {}
    for variant, content in blobs.items():
        name = f"localiser_{variant}.tflite"
        loc = localise.from_bytes(content, folder / name)
        measures[variant] = _measure(loc, held, digits)
        entries.append({"file": name, "variant": variant,
                        "sha256": hashlib.sha256(content).hexdigest(), "bytes": len(content),
                        "input": {"shape": [1, localise.SIDE, localise.SIDE, 1],
                                  "dtype": str(np.dtype(loc._in["dtype"]))},
                        "output": {"shape": [1, localise.SIDE // localise.STRIDE,
                                             localise.SIDE // localise.STRIDE, 1],
                                   "dtype": str(np.dtype(loc._out["dtype"]))},
                        "measured": measures[variant],
                        "reference": "localiser_float32.tflite" if variant == "int8" else None})
        print(f"{variant:8s} {len(content):>8,} bytes  " + ", ".join(
            f"{k} {v}" for k, v in measures[variant].items()))
    drops = {k: round((measures["float32"][k] - measures["int8"][k]) * 100, 2) for k in GATED}
    failures = [f"{k}: int8 {drops[k]:.2f} pp below float32" for k in GATED
                if drops[k] > args.max_drop]
    manifest = {
        "schema": 1, "kind": "localiser",
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "source_model": {"file": args.model.name,
                         "sha256": hashlib.sha256(args.model.read_bytes()).hexdigest()},
        "preprocessing": {"reading_pipeline": DEFAULT.version(),
                          "input": "grey frame reduced to the analysis grid (longer side 192), "
                                   "strokes kept, dark ink on light paper, edge-padded to 192x192, "
                                   "[0, 1]",
                          "output": "per 4x4 cell, the probability of a digit's ink (48x48)"},
        "representative_data": {"pages": int(len(calibration)),
                                "source": "training pages (train/pages.py)"},
        "measured": {"heldout_pages": int(len(held["inputs"])),
                     "heldout": "train/pages.py, a seed training never used",
                     "second_family": f"device/evaluation/synth.py, MNIST test digits, seed "
                                      f"{SYNTH_SEED}, 40 photos and 40 empty frames per style",
                     "locate_threshold": DEFAULT.locate_threshold,
                     "runtime": "the device runtime (LiteRT first)",
                     "machine": platform.machine(), "python": platform.python_version()},
        "tools": {"tensorflow": tf.__version__, "keras": keras.__version__},
        "gate": {"reference": "localiser_float32.tflite", "max_drop_pp": args.max_drop,
                 "drops_pp": drops, "passed": not failures, "failures": failures},
        "models": entries,
    }
    for variant, content in blobs.items():
        atomic.write_bytes(folder / f"localiser_{variant}.tflite", content)
    atomic.write_json(folder / "manifest.json", manifest)
    print(f"wrote {folder}/localiser_float32.tflite, localiser_int8.tflite, manifest.json")
    if failures:
        for f in failures:
            print(f"GATE FAILED: {f}", file=sys.stderr)
        return 1
    print(f"gate passed: int8 within {args.max_drop:g} pp of float32 on " + ", ".join(GATED))
    if args.bundle:
        BUNDLE.mkdir(parents=True, exist_ok=True)
        for variant in blobs:
            atomic.copy_file(folder / f"localiser_{variant}.tflite",
                             BUNDLE / f"localiser_{variant}.tflite")
        atomic.write_json(BUNDLE / "manifest.json", manifest)
        print(f"bundled localiser_int8.tflite, localiser_float32.tflite, manifest.json into {BUNDLE}")
    return 0


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        return run(args)
    except MnistEdgeError as e:
        print(f"error: {e}", file=sys.stderr)
        return e.exit_code


if __name__ == "__main__":
    sys.exit(main())
