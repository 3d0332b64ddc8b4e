"""A user's own labelled examples, as `collect`, `classify --save-to` and `serve --collect`
save them, in the ImageFolder layout `check --images` reads:

  DIR/<label>/NAME.png          the frame or photo (grey), what `check --images` reads
  DIR/<label>/.meta/NAME.png    the 28x28 crop the reading pipeline cut from it (the model's input)
  DIR/<label>/.meta/NAME.json   when, from where, the model and what it read, the pipeline version

<label> is 0-9 or `none` (a frame with no digit). The sidecars are in a hidden folder, so a
class folder holds only images. Every file is written atomically, the frame last: an example
is complete once its frame exists.
"""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from mnist_edge.device import atomic

LABELS = [str(d) for d in range(10)] + ["none"]
META = ".meta"
# Two crops closer than this (mean absolute difference of the 28x28 crops, 0-255) are the same
# example. Measured: consecutive frames of one digit held in examples/video_37419.avi differ by
# 0.1-9.6 (up to 24 while it moves, which `settle` waits out); two different MNIST writers'
# digits by 4.4 (1st percentile) / 13.7 (median) for 1s, 17.7 / 33.6 for 3s, so a few
# distinct but near-identical 1s are skipped too.
NEAR_DUPLICATE = 8.0


def label_of(text: str) -> str:
    """'3' or 'none' (any case); ValueError otherwise."""
    label = text.strip().lower()
    if label not in LABELS:
        raise ValueError(f"label {text!r}: expected a digit 0-9 or 'none'")
    return label


def crops(folder: Path, label: str) -> list[np.ndarray]:
    """The crops saved for `label` so far (to skip near-duplicates across runs)."""
    found = []
    for path in sorted((folder / label / META).glob("*.png")):
        try:
            with Image.open(path) as img:
                found.append(np.asarray(img.convert("L"), np.uint8))
        except OSError:
            continue  # a damaged sidecar: the example simply does not count as seen
    return found


def near_duplicate(crop: np.ndarray, seen: list[np.ndarray]) -> bool:
    a = crop.astype(np.float32)
    return any(float(np.abs(a - s).mean()) < NEAR_DUPLICATE for s in seen)


def grey8(image: np.ndarray) -> np.ndarray:
    """An image as the frames are kept: grey uint8, from grey or RGB, uint8 or float in [0, 1]."""
    if image.dtype != np.uint8:
        image = np.round(np.clip(image, 0, 1) * 255).astype(np.uint8)
    return image if image.ndim == 2 else np.asarray(Image.fromarray(image).convert("L"))


def grey8_at_most(image: np.ndarray, side: int) -> np.ndarray:
    """`grey8`, scaled down (aspect kept) so its longer side is at most `side` px."""
    grey = grey8(image)
    if max(grey.shape[:2]) <= side:
        return grey
    small = Image.fromarray(grey)
    small.thumbnail((side, side))
    return np.asarray(small)


def save(folder: Path, label: str, frame: np.ndarray, crop: np.ndarray | None,
         record: dict[str, Any]) -> Path:
    """One example; returns the frame's path. `frame`: anything grey8 takes; `crop` 28x28
    uint8 (zeros when the pipeline found no digit)."""
    pixels = crop if crop is not None else np.zeros((28, 28), np.uint8)
    grey = grey8(frame)
    stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(record.get("time", time.time())))
    name = f"{stamp}-{hashlib.sha256(grey.tobytes()).hexdigest()[:8]}"
    meta = folder / label / META
    atomic.write_bytes(meta / f"{name}.png",
                       atomic.png_bytes(lambda b: Image.fromarray(pixels).save(b, "PNG")))
    atomic.write_text(meta / f"{name}.json", json.dumps({**record, "label": label}, indent=2) + "\n")
    return atomic.write_bytes(folder / label / f"{name}.png",
                              atomic.png_bytes(lambda b: Image.fromarray(grey).save(b, "PNG")))


def remove(frame: Path) -> None:
    """Take back one example saved by `save`: its frame, then its crop and record."""
    meta = frame.parent / META
    for path in (frame, meta / frame.name, meta / f"{frame.stem}.json"):
        path.unlink(missing_ok=True)


def load(folder: Path) -> tuple[np.ndarray, np.ndarray, list[Path]]:
    """Every complete example's crop, label (10 for none) and frame path, for training."""
    x, y, paths = [], [], []
    for label in LABELS:
        for frame in sorted((folder / label).glob("*.png")):
            crop_path = folder / label / META / frame.name
            if not crop_path.is_file():
                continue
            with Image.open(crop_path) as img:
                x.append(np.asarray(img.convert("L"), np.uint8))
            y.append(10 if label == "none" else int(label))
            paths.append(frame)
    return (np.array(x, np.uint8).reshape(-1, 28, 28), np.array(y, np.int64), paths)
