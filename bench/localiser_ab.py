"""The classical localisation against the learned localiser, side by side (one process, one
classifier, the same frames): the failure classes (device/evaluation/cases.py), photo renders
and empty frames of the second family (device/evaluation/synth.py), the real photos and the
real numbers (../shared, measured only), and the time of a reading as a ratio.

    python bench/localiser_ab.py [--per-class 60] [--per-style 60] [--markdown FILE]
"""

from __future__ import annotations

import argparse
import csv
import os
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

from mnist_edge.device.data import mnist
from mnist_edge.device.evaluation import cases, evaluate, real_photos
from mnist_edge.device.evaluation import robustness as rb
from mnist_edge.device.inference import bundled, model
from mnist_edge.device.reading import decision, decode
from mnist_edge.device.reading.files import number
from mnist_edge.device.reading.params import DEFAULT

SHARED = Path(__file__).resolve().parent.parent.parent / "shared"
MODES = {"classical": replace(DEFAULT, localiser="classical"),
         "learned": replace(DEFAULT, localiser="learned")}


def answer(clf, image: np.ndarray, multi: bool, p) -> str:
    preds = decision.read(clf, image, multi=multi, min_confidence=0.5, params=p)
    if multi:
        return (number(preds) or "").replace(" ", "")
    return "" if preds[0].digit is None else str(preds[0].digit)


def edit_distance(a: str, b: str) -> int:
    row = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        prev, row[0] = row[0], i
        for j, cb in enumerate(b, 1):
            prev, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, prev + (ca != cb))
    return row[-1]


def numbers(clf, folder: Path, p) -> tuple[float, float, int]:
    """Real numbers: exact share, share of digits right (1 - edit distance / length)."""
    rows = list(csv.DictReader((folder / "labels.csv").open(newline="")))
    exact = digits = total = 0
    for r in rows:
        label = r["label"].replace("-", "")
        got = answer(clf, decode.load_gray(folder / r["file"]), True, p)
        exact += got == label
        digits += max(0, len(label) - edit_distance(got, label))
        total += len(label)
    return exact / len(rows), digits / total, len(rows)


def mean_accuracy(clf, frames) -> float:
    return float(np.mean([evaluate.measure(clf, f.pixels, f.labels, found=f.found,
                                           second=f.second).accuracy for f in frames]))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--per-class", type=int, default=60)
    ap.add_argument("--per-style", type=int, default=60)
    ap.add_argument("--markdown", type=Path)
    args = ap.parse_args()
    clf = model.load(bundled.NAMES["robust"])
    x, y = mnist.load_split("test")
    table: dict[str, dict[str, str]] = {m: {} for m in MODES}
    generated = list(cases.generate(x, y, args.per_class))
    for mode, p in MODES.items():
        col = table[mode]
        for kind in cases.CLASSES:
            group = [c for c in generated if c.kind == kind]
            right = sum(answer(clf, c.image, kind in cases.MULTI, p) == c.label for c in group)
            col[f"case: {kind}"] = f"{right / len(group):.1%}"
        photos = rb.render_frames(x, y, args.per_style, False, params=p)
        empties = rb.render_frames(x, y, args.per_style, True, params=p)
        col["renders (synth): photos"] = f"{mean_accuracy(clf, photos):.1%}"
        col["renders (synth): empty, no digit"] = f"{mean_accuracy(clf, empties):.1%}"
        real = SHARED / "realphotos-dev"
        if (real / "labels.csv").is_file():
            res = real_photos.score(clf, real_photos.load(real), params=p)
            for c in real_photos.CATEGORIES:
                col[f"real photos (dev): {c}"] = f"{res.accuracy(c):.1%} of {res.total[c]}"
            worst = res.worst_repo()
            col["real photos (dev): worst repository"] = f"{worst[1]:.0%}" if worst else "—"
        nums = SHARED / "realnumbers-dev"
        if (nums / "labels.csv").is_file():
            exact, digits, n = numbers(clf, nums, p)
            col["real numbers (dev): exact"] = f"{exact:.1%} of {n}"
            col["real numbers (dev): digits"] = f"{digits:.1%}"
        frame = photos[0]  # time: one 640x480 render read end to end, median of 60
        rng = np.random.default_rng(1)
        from mnist_edge.device.evaluation import synth

        img = (synth.photo(x[0], rng, "plain", base=480) * 255).astype(np.uint8)
        times = []
        for _ in range(60):
            t0 = time.perf_counter()
            decision.read(clf, img, params=p)
            times.append(time.perf_counter() - t0)
        col["ms per reading (median)"] = f"{np.median(times) * 1000:.2f}"
        del frame
    keys = list(table["classical"])
    lines = ["| | classical | learned |", "|---|---:|---:|"]
    lines += [f"| {k} | {table['classical'][k]} | {table['learned'][k]} |" for k in keys]
    text = "\n".join(lines) + "\n"
    print(text)
    if args.markdown:
        args.markdown.write_text(text)


if __name__ == "__main__":
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    main()
