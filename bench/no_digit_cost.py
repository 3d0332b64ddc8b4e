"""What each way of answering "no digit" costs on real digits and buys on empty frames.

    python bench/no_digit_cost.py [--per-style 200]

Three mechanisms, measured on the same frames as `mnist-edge robustness` (photo renders of
MNIST test digits and empty pages, nine paper styles, through the classify preprocessing)
and on the 10,000 MNIST test digits fed directly:
  ink       the preprocessing finds nothing digit-like (no model involved)
  model     the robust model's 11th output, "no digit", wins
  conf>=T   --min-confidence T on top of the others (any model)
For each: the share of real digits wrongly answered "no digit", and of empty frames rightly.
"""

from __future__ import annotations

import argparse

import numpy as np

from mnist_edge.device.data import mnist as data
from mnist_edge.device.evaluation import evaluate, robustness
from mnist_edge.device.inference import bundled
from mnist_edge.device.inference import model as device_model
from mnist_edge.device.inference.model import NONE


def rates(probs: np.ndarray, found: np.ndarray, threshold: float) -> tuple[np.ndarray, np.ndarray]:
    """(answered none by the model's own output, answered none by the threshold)."""
    digit_p = probs[:, :NONE].max(axis=1)
    by_model = (probs.shape[1] > NONE) & (probs.argmax(axis=1) == NONE) & found
    by_conf = found & ~by_model & (digit_p < threshold)
    return by_model, by_conf


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--per-style", type=int, default=200)
    args = p.parse_args()
    x, y = data.load_split("test")
    photos = robustness.render_frames(x, y, args.per_style, empty=False)
    empties = robustness.render_frames(x, y, args.per_style, empty=True)
    print(f"{args.per_style * 9} photo renders and {args.per_style * 9} empty frames; "
          "10,000 MNIST test digits\n")
    print(f"{'model':18s} {'mechanism':12s} {'digits lost (photos)':>21s} "
          f"{'digits lost (MNIST)':>20s} {'empty -> no digit':>18s}")
    for name in ("tutorial", "robust"):
        clf = device_model.load(bundled.NAMES[name])
        frames = {kind: (np.concatenate([f.pixels for f in fs]), np.concatenate([f.found for f in fs]))
                  for kind, fs in (("photo", photos), ("empty", empties))}
        probs = {k: evaluate.predict_all(clf, v[0]) for k, v in frames.items()}
        mnist_probs = evaluate.predict_all(clf, x)
        mnist_found = np.ones(len(x), bool)
        no_ink_photo = float((~frames["photo"][1]).mean())
        no_ink_empty = float((~frames["empty"][1]).mean())
        print(f"{name:18s} {'ink':12s} {no_ink_photo:21.2%} {0:20.2%} {no_ink_empty:18.2%}")
        for threshold in (0.0, 0.5, 0.7, 0.9):
            m_photo, c_photo = rates(probs["photo"], frames["photo"][1], threshold)
            m_empty, c_empty = rates(probs["empty"], frames["empty"][1], threshold)
            m_mnist, c_mnist = rates(mnist_probs, mnist_found, threshold)
            label = "+model" if threshold == 0 else f"+conf>={threshold:g}"
            if threshold == 0 and clf.classes == NONE:
                continue
            lost_photo = no_ink_photo + float((m_photo | c_photo).mean())
            lost_mnist = float((m_mnist | c_mnist).mean())
            empty_none = no_ink_empty + float((m_empty | c_empty).mean())
            print(f"{name:18s} {label:12s} {lost_photo:21.2%} {lost_mnist:20.2%} {empty_none:18.2%}")


if __name__ == "__main__":
    main()
