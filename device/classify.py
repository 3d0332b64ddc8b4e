"""Classify image files: load safely, preprocess like MNIST, run the model."""

from __future__ import annotations

import glob
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from . import atomic, images, preprocess
from .errors import BadImageError
from .evaluate import SECOND_READING_CONFIDENCE
from .model import NONE, Classifier

# Why a reading is "no digit" (the `none_reason` JSON key).
NO_INK = "no ink"  # the preprocessing found nothing digit-like
MODEL_NONE = "model"  # the model's own "no digit" output won
LOW_CONFIDENCE = "below min confidence"  # the best digit was less likely than --min-confidence


@dataclass
class Prediction:
    digit: int | None
    confidence: float | None  # the best digit's probability (also when it was not trusted)
    probabilities: list[float] | None  # the 10 digits' probabilities
    bbox: tuple[int, int, int, int] | None = None
    pixels: np.ndarray | None = field(default=None, repr=False)
    row: int = 0  # with --multi: the line of writing, from the top
    no_digit: float | None = None  # probability of "no digit", for models that have it
    none_reason: str | None = None  # why digit is None: NO_INK, MODEL_NONE, LOW_CONFIDENCE

    def describe(self) -> str:
        """The reading for people: '7 (99.6%)' or 'no digit (why)'."""
        if self.digit is not None:
            return f"{self.digit} ({self.confidence:.1%})"
        if self.none_reason == MODEL_NONE:
            return f"no digit (model: {self.no_digit:.1%} no digit)"
        if self.none_reason == LOW_CONFIDENCE:
            best = int(np.argmax(self.probabilities or [0]))
            return f"no digit (best guess {best} at {self.confidence:.1%}, below --min-confidence)"
        return "no digit found"

    def top_k(self, k: int) -> list[tuple[int, float]]:
        if self.probabilities is None:
            return []
        order = np.argsort(self.probabilities)[::-1][:k]
        return [(int(d), float(self.probabilities[d])) for d in order]


def read_probabilities(probs: np.ndarray, min_confidence: float = 0.0) -> tuple[int | None, str | None]:
    """The answer a model's output gives: (digit, None), or (None, why there is none).
    With a "no digit" output, that output wins when it is the most likely of all."""
    d = int(np.argmax(probs[:NONE]))
    if len(probs) > NONE and probs[NONE] > probs[d]:
        return None, MODEL_NONE
    if probs[d] < min_confidence:
        return None, LOW_CONFIDENCE
    return d, None


def predict_pixels(clf: Classifier, digit: preprocess.Digit,
                   min_confidence: float = 0.0) -> Prediction:
    probs = clf.predict_one(digit.pixels)
    answer, why = read_probabilities(probs, min_confidence)
    best = float(probs[:NONE].max())
    return Prediction(answer, best, [round(float(p), 6) for p in probs[:NONE]], digit.bbox,
                      digit.pixels, digit.row,
                      None if len(probs) <= NONE else round(float(probs[NONE]), 6), why)


def classify_gray(clf: Classifier, gray: np.ndarray, multi: bool = False,
                  min_confidence: float = 0.0) -> list[Prediction]:
    """All digits found (left to right with multi); one `digit=None` entry when none is."""
    found = preprocess.find_digits(gray, multi=multi)
    preds = [predict_pixels(clf, d, min_confidence) for d in found]
    if all(p.digit is None for p in preds):  # paper in shadow, read as a dark board?
        floor = max(min_confidence, SECOND_READING_CONFIDENCE)
        second = [predict_pixels(clf, d, floor) for d in preprocess.second_reading(gray, multi)]
        if any(p.digit is not None for p in second):
            preds = second
    if multi:
        preds = [p for p in preds if p.digit is not None] or preds[:1]
    return preds or [Prediction(None, None, None, none_reason=NO_INK)]


def classify_file(clf: Classifier, path: Path, multi: bool = False,
                  min_confidence: float = 0.0) -> list[Prediction]:
    return classify_gray(clf, images.load_gray(path), multi=multi, min_confidence=min_confidence)


def expand(patterns: list[str], on_skip: Callable[[str], None] | None = None) -> list[Path]:
    """Paths as given; a folder gives the images in it (natural order, hidden files passed
    over, other files reported to `on_skip`); a pattern that names no file is expanded as a
    glob (quoted globs)."""
    out: list[Path] = []
    for pattern in patterns:
        if Path(pattern).is_dir():
            found, skipped = images.scan_folder(Path(pattern))
            for path, why in skipped:
                if on_skip:
                    on_skip(f"{path}: {why}")
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


def as_json(path: Path | None, preds: list[Prediction], model: str, top_k: int,
            multi: bool) -> dict[str, Any]:
    """The stable --json object (DESIGN.md): file, digit, confidence, probabilities, model,
    and no_digit / none_reason; camera frames add `frame` (file is null for a live camera)."""
    first = preds[0]
    obj: dict[str, Any] = {
        "file": None if path is None else str(path),
        "digit": first.digit,
        "confidence": None if first.confidence is None else round(first.confidence, 6),
        "probabilities": first.probabilities,
        "no_digit": first.no_digit,
        "none_reason": first.none_reason,
        "model": model,
    }
    if top_k > 1:
        obj["top_k"] = [[d, round(p, 6)] for d, p in first.top_k(top_k)]
    if multi:
        found = [p for p in preds if p.digit is not None]
        obj["digits"] = [
            {"digit": p.digit, "confidence": round(p.confidence or 0.0, 6),
             "bbox": list(p.bbox) if p.bbox else None, "row": p.row}
            for p in found
        ]
        obj["number"] = number(preds)
    return obj


def number(preds: list[Prediction]) -> str | None:
    """The digits read, left to right; lines of writing from the top, joined by a space."""
    rows: dict[int, str] = {}
    for p in preds:
        if p.digit is not None:
            rows[p.row] = rows.get(p.row, "") + str(p.digit)
    return " ".join(rows[r] for r in sorted(rows)) or None


def save_debug(folder: Path, source: Path, preds: list[Prediction],
               taken: set[str] | None = None) -> list[Path]:
    """Write the 28x28 image(s) the model saw, as PNG. Names already written in this run
    (`taken`: two inputs called digit.png in different folders) get a number."""
    written = []
    taken = set() if taken is None else taken
    stem = "stdin" if str(source) == "-" else source.stem
    for i, p in enumerate(preds):
        if p.pixels is None:
            continue
        base = f"{stem}{f'_{i}' if len(preds) > 1 else ''}_28x28"
        name, n = f"{base}.png", 1
        while name in taken:
            n += 1
            name = f"{base}_{n}.png"
        taken.add(name)
        img = Image.fromarray(p.pixels, mode="L")
        written.append(atomic.write_bytes(folder / name,
                                          atomic.png_bytes(partial(img.save, format="PNG"))))
    return written
