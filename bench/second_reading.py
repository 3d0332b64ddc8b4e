"""What the second reading of frames darker than mid-grey buys and costs, per confidence floor.

    python bench/second_reading.py [--per-style 200] [--scenes 200]

A frame whose median pixel is darker than mid-grey is read as light marks on a dark ground;
paper mostly in shadow is such a frame, and its digit is then never found. `classify` reads
those frames a second time as dark ink on paper (preprocess.second_reading) when the first
reading is no sure digit, and takes the second when the model is at least
SECOND_READING_CONFIDENCE sure of a digit. This counts, for several floors: photo renders of
MNIST test digits fixed and misread (every paper style of device.synth, the robustness seeds),
and false digits on empty frames of those styles and on scenes with no paper at all (a dark
wall beside a lit one: the hardest case found)."""

from __future__ import annotations

import argparse

import numpy as np
from dark_scenes import scene  # bench/dark_scenes.py: one definition of the scenes

from mnist_edge.device import bundled, data, model, preprocess, synth
from mnist_edge.device.model import NONE
from mnist_edge.device.robustness import SEED

FLOORS = (0.5, 0.7, 0.8, 0.9, 0.95, 0.98)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--per-style", type=int, default=200)
    p.add_argument("--scenes", type=int, default=200)
    p.add_argument("--model", default="robust", help="a .tflite file or a bundled model's name")
    args = p.parse_args()
    clf = model.load(bundled.resolve(args.model))
    x, y = data.load_split("test")

    def read(digits: list[preprocess.Digit]) -> tuple[int, float]:
        if not digits:
            return NONE, 0.0
        probs = clf.predict_one(digits[0].pixels)
        k = int(probs.argmax())
        return k, (float(probs[:NONE].max()) if k != NONE else 0.0)

    rows = []  # (kind, truth, second answer, its confidence) where a second reading is taken
    frames = 0
    for s, style in enumerate(synth.STYLES):
        for empty in (False, True):
            rng = np.random.default_rng([SEED, s, int(empty)])
            for i in rng.choice(len(x), size=args.per_style, replace=False):
                g = synth.empty(rng, style) if empty else synth.photo(x[i], rng, style)
                frames += 1
                k, c = read(preprocess.find_digits(g))
                if k != NONE and c >= 0.5:
                    continue
                again = preprocess.second_reading(g)
                if again:
                    rows.append(("empty" if empty else "photo", NONE if empty else int(y[i]),
                                 *read(again)))
    rng = np.random.default_rng(11)
    first_false = 0
    for _ in range(args.scenes):
        g = scene("half lit", rng)
        k, c = read(preprocess.find_digits(g))
        first_false += k != NONE and c >= 0.5
        if (k == NONE or c < 0.5) and (again := preprocess.second_reading(g)):
            rows.append(("scene", NONE, *read(again)))
    print(f"{frames} renders, {args.scenes} half-lit scenes; second readings taken: {len(rows)}; "
          f"false digits of the first reading alone on the scenes: {first_false}/{args.scenes}")
    for floor in FLOORS:
        taken = [r for r in rows if r[2] != NONE and r[3] >= floor]
        fixed = sum(1 for kind, truth, k, _ in taken if kind == "photo" and k == truth)
        misread = sum(1 for kind, truth, k, _ in taken if kind == "photo" and k != truth)
        empty = sum(1 for kind, *_ in taken if kind == "empty")
        in_scenes = sum(1 for kind, *_ in taken if kind == "scene")
        print(f"floor {floor:.2f}: photos fixed {fixed}, misread {misread}; false digits: "
              f"empty paper {empty}/{len(synth.STYLES) * args.per_style}, "
              f"half-lit scenes {in_scenes}/{args.scenes}")


if __name__ == "__main__":
    main()
