"""Classify image files: load safely, read them (device/reading), format the answers."""

from __future__ import annotations

import glob
import json
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from mnist_edge.device import atomic
from mnist_edge.device.errors import BadImageError
from mnist_edge.device.inference.model import Classifier
from mnist_edge.device.reading import decode as images
from mnist_edge.device.reading.decision import Prediction, read
from mnist_edge.device.reading.trace import Trace


def classify_file(clf: Classifier, path: Path, multi: bool = False, min_confidence: float = 0.0,
                  trace: Trace | None = None) -> list[Prediction]:
    return read(clf, images.load_gray(path), multi=multi, min_confidence=min_confidence,
                trace=trace)


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
    """The stable --json object (docs/device.md): file, digit, confidence, probabilities, model,
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


def describe(preds: list[Prediction], multi: bool = False, top_k: int = 1) -> str:
    """The answer as `classify` prints it after the file name."""
    first = preds[0]
    if first.digit is None:
        return first.describe()
    if multi:
        parts = ", ".join(f"{p.digit} ({p.confidence:.1%})" for p in preds if p.digit is not None)
        lines = number(preds) or ""
        where = f" ({lines.count(' ') + 1} lines, top to bottom)" if " " in lines else ""
        return f"{lines}{where}  [{parts}]"
    if top_k > 1:
        ranked = "  ".join(f"{d} {p:.1%}" for d, p in first.top_k(top_k))
        return f"{first.digit}  ({ranked})"
    return first.describe()


def save_debug(folder: Path, source: Path, preds: list[Prediction],
               taken: set[str] | None = None, trace: Trace | None = None) -> list[Path]:
    """Write the 28x28 image(s) the model saw as PNG and, with a trace, each stage's image
    and `<name>_trace.json` (what each stage decided). Names already written in this run
    (`taken`: two inputs called digit.png in different folders) get a number."""
    written = []
    taken = set() if taken is None else taken
    stem = "stdin" if str(source) == "-" else source.stem

    def free(base: str, suffix: str) -> str:
        name, n = f"{base}{suffix}", 1
        while name in taken:
            n += 1
            name = f"{base}_{n}{suffix}"
        taken.add(name)
        return name

    def png(name: str, pixels: np.ndarray) -> None:
        img = Image.fromarray(pixels, mode="L")
        written.append(atomic.write_bytes(folder / name,
                                          atomic.png_bytes(partial(img.save, format="PNG"))))

    for i, p in enumerate(preds):
        if p.pixels is not None:
            png(free(f"{stem}{f'_{i}' if len(preds) > 1 else ''}_28x28", ".png"), p.pixels)
    if trace is not None:
        for stage, pixels in trace.pictures.items():
            if not stage.startswith("crop"):  # the crops are the _28x28 files above
                png(free(f"{stem}_{stage}", ".png"), pixels)
        text = json.dumps({"file": str(source), "stages": trace.to_json()}, indent=1)
        written.append(atomic.write_bytes(folder / free(f"{stem}_trace", ".json"),
                                          (text + "\n").encode()))
    return written
