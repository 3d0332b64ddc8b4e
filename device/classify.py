"""Classify image files: load safely, preprocess like MNIST, run the model."""

from __future__ import annotations

import glob
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from . import atomic, images, preprocess
from .errors import BadImageError
from .model import Classifier


@dataclass
class Prediction:
    digit: int | None
    confidence: float | None
    probabilities: list[float] | None
    bbox: tuple[int, int, int, int] | None = None
    pixels: np.ndarray | None = field(default=None, repr=False)

    def top_k(self, k: int) -> list[tuple[int, float]]:
        if self.probabilities is None:
            return []
        order = np.argsort(self.probabilities)[::-1][:k]
        return [(int(d), float(self.probabilities[d])) for d in order]


def predict_pixels(clf: Classifier, digit: preprocess.Digit) -> Prediction:
    probs = clf.predict_one(digit.pixels)
    d = int(np.argmax(probs))
    return Prediction(d, float(probs[d]), [round(float(p), 6) for p in probs], digit.bbox,
                      digit.pixels)


def classify_gray(clf: Classifier, gray: np.ndarray, multi: bool = False) -> list[Prediction]:
    """All digits found (left to right with multi); one `digit=None` entry when none is."""
    found = preprocess.find_digits(gray, multi=multi)
    if not found:
        return [Prediction(None, None, None)]
    return [predict_pixels(clf, d) for d in found]


def classify_file(clf: Classifier, path: Path, multi: bool = False) -> list[Prediction]:
    return classify_gray(clf, images.load_gray(path), multi=multi)


def expand(patterns: list[str]) -> list[Path]:
    """Paths as given; a folder gives the images in it; a pattern that names no file is
    expanded as a glob (quoted globs)."""
    out: list[Path] = []
    for pattern in patterns:
        if Path(pattern).is_dir():
            found = images.files_in(Path(pattern))
            if not found:
                raise BadImageError(f"{pattern}: no image files in this folder")
            out.extend(found)
        elif not Path(pattern).exists() and glob.has_magic(pattern):
            matches = sorted(glob.glob(pattern, recursive=True))
            if not matches:
                raise BadImageError(f"{pattern}: no file matches this pattern")
            out.extend(Path(m) for m in matches)
        else:
            out.append(Path(pattern))
    return out


def as_json(path: Path, preds: list[Prediction], model: str, top_k: int,
            multi: bool) -> dict[str, Any]:
    """The stable --json object (DESIGN.md): file, digit, confidence, probabilities, model."""
    first = preds[0]
    obj: dict[str, Any] = {
        "file": str(path),
        "digit": first.digit,
        "confidence": None if first.confidence is None else round(first.confidence, 6),
        "probabilities": first.probabilities,
        "model": model,
    }
    if top_k > 1:
        obj["top_k"] = [[d, round(p, 6)] for d, p in first.top_k(top_k)]
    if multi:
        found = [p for p in preds if p.digit is not None]
        obj["digits"] = [
            {"digit": p.digit, "confidence": round(p.confidence or 0.0, 6),
             "bbox": list(p.bbox) if p.bbox else None}
            for p in found
        ]
        obj["number"] = "".join(str(p.digit) for p in found) or None
    return obj


def save_debug(folder: Path, source: Path, preds: list[Prediction]) -> list[Path]:
    """Write the 28x28 image(s) the model saw, as PNG, next to nothing else."""
    written = []
    for i, p in enumerate(preds):
        if p.pixels is None:
            continue
        suffix = f"_{i}" if len(preds) > 1 else ""
        target = folder / f"{source.stem}{suffix}_28x28.png"
        img = Image.fromarray(p.pixels, mode="L")
        written.append(atomic.write_bytes(target, atomic.png_bytes(partial(img.save, format="PNG"))))
    return written
