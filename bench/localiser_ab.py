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
from mnist_edge.device.evaluation import cases, real_photos, synth
from mnist_edge.device.evaluation import robustness as rb
from mnist_edge.device.inference import bundled, model
from mnist_edge.device.reading import decision, decode
from mnist_edge.device.reading.files import number
from mnist_edge.device.reading.params import DEFAULT, LOCALISERS

SHARED = Path(__file__).resolve().parent.parent.parent / "shared"
MODES = {name: replace(DEFAULT, localiser=name) for name in LOCALISERS}


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


def renders(clf, x, y, per_style: int, empty: bool, p) -> float:
    """The mean over the 9 styles of renders read end to end (decision.read, no confidence
    floor), the frames `mnist-edge robustness` renders (same seeds)."""
    styles = []
    for s, style in enumerate(synth.STYLES):
        rng = np.random.default_rng([rb.SEED, s, int(empty)])
        picks = rng.choice(len(x), size=per_style, replace=False)
        right = 0
        for i in picks:
            frame = synth.empty(rng, style) if empty else synth.photo(x[i], rng, style)
            digit = decision.read(clf, frame, params=p)[0].digit
            right += (digit is None) if empty else digit == int(y[i])
        styles.append(right / per_style)
    return float(np.mean(styles))


def median_ms(clf, img: np.ndarray, p, n: int = 60) -> float:
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        decision.read(clf, img, params=p)
        times.append(time.perf_counter() - t0)
    return float(np.median(times)) * 1000


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
        col["renders (synth): photos"] = f"{renders(clf, x, y, args.per_style, False, p):.1%}"
        col["renders (synth): empty, no digit"] = f"{renders(clf, x, y, args.per_style, True, p):.1%}"
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
        rng = np.random.default_rng(1)  # time: a 640x480 render read end to end, median of 60
        digit = (synth.photo(x[0], rng, "plain", base=480) * 255).astype(np.uint8)
        empty = (synth.empty(rng, "plain", base=480) * 255).astype(np.uint8)
        col["ms per reading (median)"] = f"{median_ms(clf, digit, p):.2f}"
        col["ms per empty frame (median)"] = f"{median_ms(clf, empty, p):.2f}"
        print(f"{mode}: done", flush=True)
    keys = list(table["classical"])
    lines = ["| | " + " | ".join(MODES) + " |", "|---|" + "---:|" * len(MODES)]
    lines += [f"| {k} | " + " | ".join(table[m][k] for m in MODES) + " |" for k in keys]
    text = "\n".join(lines) + "\n"
    print(text)
    if args.markdown:
        args.markdown.write_text(text)


if __name__ == "__main__":
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    main()
