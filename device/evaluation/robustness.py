"""`mnist-edge robustness`: how models fare outside MNIST's test split, side by side.

- MNIST test accuracy (the bundled or given test split);
- MNIST-C (Mu & Gilmer 2019): error per corruption and the mean of the 15, each set fed to
  the model as 28x28 inputs (a digit answered "no digit" is an error);
- photo-like renders of MNIST *test* digits on every paper style of device.synth, through the
  same preprocessing as `classify`: accuracy per style;
- empty frames of the same styles: the share answered "no digit";
- real photos and drawings of handwritten digits (`--realphotos DIR`, device/real_photos.py):
  accuracy per category, as `classify` reads them;
- size, and p50 latency as a ratio to the first model of the run.

Renders use seeds of their own and the test split; the robust recipe trains on renders of the
train split with other seeds, so nothing measured here was seen in training.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from mnist_edge.device.data import idx
from mnist_edge.device.errors import BadDataError
from mnist_edge.device.evaluation import evaluate, real_photos, synth
from mnist_edge.device.evaluation.datasets import readings
from mnist_edge.device.inference import timing
from mnist_edge.device.inference.model import NONE, Classifier
from mnist_edge.device.reading.params import DEFAULT, Params

CORRUPTIONS = ("shot_noise", "impulse_noise", "glass_blur", "motion_blur", "shear", "scale",
               "rotate", "brightness", "translate", "stripe", "fog", "spatter", "dotted_line",
               "zigzag", "canny_edges")
SEED = 20261126  # renders for measuring; training uses its own seeds and the train split


@dataclass
class Frames:
    """Preprocessed synthetic frames, shared by every model: crops, labels, found."""

    style: str
    pixels: np.ndarray
    labels: np.ndarray  # digit, or NONE for empty frames
    found: np.ndarray
    second: dict[int, np.ndarray] = field(default_factory=dict)  # second readings
    learned: dict[int, np.ndarray] = field(default_factory=dict)  # the hybrid's learned ones


def render_frames(test_images: np.ndarray, test_labels: np.ndarray, per_style: int,
                  empty: bool, progress: Callable[[int], None] | None = None,
                  params: Params = DEFAULT) -> list[Frames]:
    """`per_style` photos (or empty frames) per style, cut out by the preprocessing."""
    out = []
    for s, style in enumerate(synth.STYLES):
        rng = np.random.default_rng([SEED, s, int(empty)])
        picks = rng.choice(len(test_images), size=per_style, replace=False)
        pixels = np.zeros((per_style, 28, 28), np.uint8)
        found = np.zeros(per_style, bool)
        second, learned = {}, {}
        for n, i in enumerate(picks):
            frame = synth.empty(rng, style) if empty else synth.photo(test_images[i], rng, style)
            pixels[n], found[n], again, other = readings(frame, params)
            if again is not None:
                second[n] = again
            if other is not None:
                learned[n] = other
        labels = np.full(per_style, NONE) if empty else test_labels[picks].astype(np.int64)
        out.append(Frames(style, pixels, labels, found, second, learned))
        if progress:
            progress(per_style)
    return out


def load_mnistc(folder: Path) -> tuple[dict[str, np.ndarray], np.ndarray]:
    labels_path = folder / "labels-idx1-ubyte.gz"
    if not labels_path.is_file():
        raise BadDataError(f"{folder}: no labels-idx1-ubyte.gz; is this the MNIST-C folder?")
    labels = idx.read_labels(labels_path).array
    sets = {}
    for name in CORRUPTIONS:
        path = folder / f"{name}-images-idx3-ubyte.gz"
        if not path.is_file():
            raise BadDataError(f"{path}: missing (MNIST-C needs all 15 corruptions)")
        sets[name] = idx.read_images(path).array
        if len(sets[name]) != len(labels):
            raise BadDataError(f"{path}: {len(sets[name])} images for {len(labels)} labels")
    return sets, labels


@dataclass
class Scores:
    model: str
    bytes: int
    mnist_accuracy: float
    mnistc_error: dict[str, float] = field(default_factory=dict)
    photo_accuracy: dict[str, float] = field(default_factory=dict)
    empty_none_rate: dict[str, float] = field(default_factory=dict)
    p50_us: float = 0.0
    latency_ratio: float = 1.0
    real: real_photos.Result | None = None  # real photos (dev), when a folder was given

    @property
    def mnistc_mean(self) -> float | None:
        return float(np.mean(list(self.mnistc_error.values()))) if self.mnistc_error else None

    @property
    def photo_mean(self) -> float | None:
        return float(np.mean(list(self.photo_accuracy.values()))) if self.photo_accuracy else None

    @property
    def empty_mean(self) -> float | None:
        return float(np.mean(list(self.empty_none_rate.values()))) if self.empty_none_rate else None

    def to_json(self) -> dict[str, object]:
        return {"model": self.model, "bytes": self.bytes, "mnist_accuracy": self.mnist_accuracy,
                "mnistc_error": self.mnistc_error, "mnistc_mean_error": self.mnistc_mean,
                "photo_accuracy": self.photo_accuracy, "photo_mean_accuracy": self.photo_mean,
                "empty_no_digit_rate": self.empty_none_rate, "empty_mean_rate": self.empty_mean,
                "p50_us": round(self.p50_us, 2), "latency_ratio": round(self.latency_ratio, 3),
                "real_photos": None if self.real is None else self.real.to_json()}


def _accuracy(clf: Classifier, pixels: np.ndarray, labels: np.ndarray,
              frames: Frames | None = None) -> float:
    if frames is None:
        return evaluate.measure(clf, pixels, labels).accuracy
    return evaluate.measure(clf, pixels, labels, found=frames.found, second=frames.second,
                            learned=frames.learned).accuracy


def score(clf: Classifier, mnist: tuple[np.ndarray, np.ndarray],
          mnistc: tuple[dict[str, np.ndarray], np.ndarray] | None,
          photos: list[Frames], empties: list[Frames]) -> Scores:
    s = Scores(str(clf.path), clf.size, _accuracy(clf, *mnist))
    if mnistc is not None:
        sets, labels = mnistc
        s.mnistc_error = {name: 1 - _accuracy(clf, x, labels) for name, x in sets.items()}
    s.photo_accuracy = {f.style: _accuracy(clf, f.pixels, f.labels, f)
                        for f in photos}
    s.empty_none_rate = {f.style: _accuracy(clf, f.pixels, f.labels, f)
                         for f in empties}
    s.p50_us = timing.time_wrapper(clf, runs=2000, warmup=200).p50_us
    return s


def _cell(v: float | None, digits: int = 2) -> str:
    return "—" if v is None else f"{v * 100:.{digits}f}"


def markdown(rows: list[Scores], names: list[str], per_style: int, mnistc_dir: str | None,
             real_dir: str | None = None) -> str:
    head = "| | " + " | ".join(f"`{n}`" for n in names) + " |"
    rule = "|---|" + "---:|" * len(rows)

    def line(label: str, values: list[str]) -> str:
        return f"| {label} | " + " | ".join(values) + " |"

    out = [
        "## Robustness (`mnist-edge robustness`)", "",
        f"Measured with `mnist-edge robustness`{f' --mnistc {mnistc_dir}' if mnistc_dir else ''}: "
        f"MNIST-C fed as 28x28 inputs (error %, a digit answered \"no digit\" counts as an "
        f"error); photo-like renders of MNIST test digits and empty frames, {per_style} per "
        "paper style, through the `classify` preprocessing (device/evaluation/synth.py, seed "
        f"{SEED}). Latency: p50 per image, ratio to `{names[0]}`."
        + (f" Real photos (dev): `{real_dir}`, read as `classify` reads them (`--multi` for "
           "multi), measured only, never trained or tuned on." if real_dir else ""), "",
        head, rule,
        line("MNIST test accuracy %", [_cell(r.mnist_accuracy) for r in rows]),
    ]
    if rows[0].mnistc_error:
        out.append(line("**MNIST-C mean error %**", [f"**{_cell(r.mnistc_mean)}**" for r in rows]))
        for c in CORRUPTIONS:
            out.append(line(f"MNIST-C {c} error %", [_cell(r.mnistc_error[c]) for r in rows]))
    out.append(line("**photo renders accuracy %**", [f"**{_cell(r.photo_mean, 1)}**" for r in rows]))
    for style in synth.STYLES:
        out.append(line(f"photos: {style} %", [_cell(r.photo_accuracy[style], 1) for r in rows]))
    out.append(line("**empty frames: \"no digit\" %**", [f"**{_cell(r.empty_mean, 1)}**" for r in rows]))
    for style in synth.STYLES:
        out.append(line(f"empty: {style} %", [_cell(r.empty_none_rate[style], 1) for r in rows]))
    if rows[0].real is not None:
        for c in real_photos.CATEGORIES:
            n = rows[0].real.total.get(c, 0)
            label = f"real photos (dev): {c} %, {n} images" + (" (exact)" if c == "multi" else "")
            out.append(line(f"**{label}**" if c == "single" else label,
                            [_cell(r.real.accuracy(c) if r.real else None, 1) for r in rows]))
        out.append(line("real photos (dev): worst repository %", [
            "—" if r.real is None or r.real.worst_repo() is None
            else f"{r.real.worst_repo()[1] * 100:.0f}" for r in rows]))  # type: ignore[index]
    out.append(line("bytes", [f"{r.bytes:,}" for r in rows]))
    out.append(line("p50 latency vs first", [f"{r.latency_ratio:.2f}×" for r in rows]))
    return "\n".join(out) + "\n"


MARK_BEGIN = "<!-- robustness: begin (written by mnist-edge robustness --report) -->"
MARK_END = "<!-- robustness: end -->"


def replace_section(document: str, section: str) -> str:
    """`document` with the robustness section replaced, or appended when absent."""
    block = f"{MARK_BEGIN}\n{section}{MARK_END}\n"
    if MARK_BEGIN in document and MARK_END in document:
        before, rest = document.split(MARK_BEGIN, 1)
        return before + block + rest.split(MARK_END, 1)[1].lstrip("\n")
    return document.rstrip("\n") + "\n\n" + block
