"""How well a localiser finds digits: on generated pages with exact truth (the held-out pages
`make localiser` writes, from train/pages.py with seeds training never used) and on the second
generator family (device/evaluation/synth.py: other code, photos of one digit and empty
frames), so a figure that holds on one family and not the other shows.

Measures, per page set:
  cells      precision, recall and IoU of the map's cells against the truth's
  digits     recall: truth digits (connected truth cells) whose centre lies in a region
  regions    precision: regions that hold some truth cell
  empty      the share of empty frames with no region at all
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mnist_edge.device.reading import localise, stages
from mnist_edge.device.reading.params import DEFAULT, Params

from . import synth


@dataclass
class Counts:
    tp: int = 0
    fp: int = 0
    fn: int = 0
    digits: int = 0
    found: int = 0
    regions: int = 0
    true_regions: int = 0

    def add_page(self, heat: np.ndarray, truth: np.ndarray, grid_shape: tuple[int, int],
                 p: Params) -> None:
        hot, true = heat >= p.locate_threshold, truth >= 0.5
        self.tp += int((hot & true).sum())
        self.fp += int((hot & ~true).sum())
        self.fn += int((~hot & true).sum())
        boxes = localise.regions(heat, grid_shape, p)
        s = localise.STRIDE
        for d in stages.components(true):
            cx, cy = (d.x0 + d.x1) / 2 * s, (d.y0 + d.y1) / 2 * s
            self.digits += 1
            self.found += any(b.x0 <= cx < b.x1 and b.y0 <= cy < b.y1 for b in boxes)
        for b in boxes:
            self.regions += 1
            self.true_regions += bool(localise.cells(true, b).any())

    def to_json(self) -> dict[str, float]:
        return {
            "cell_precision": round(self.tp / max(1, self.tp + self.fp), 4),
            "cell_recall": round(self.tp / max(1, self.tp + self.fn), 4),
            "cell_iou": round(self.tp / max(1, self.tp + self.fp + self.fn), 4),
            "digit_recall": round(self.found / max(1, self.digits), 4),
            "region_precision": round(self.true_regions / max(1, self.regions), 4),
            "digits": self.digits,
        }


def on_pages(loc: localise.Localiser, inputs: np.ndarray, truths: np.ndarray,
             shapes: np.ndarray, p: Params = DEFAULT) -> dict[str, float]:
    """Scores on generated pages: model inputs uint8 (N, SIDE, SIDE), truth maps (N, n, n),
    grid shapes (N, 2)."""
    c = Counts()
    for x, t, shape in zip(inputs, truths, shapes, strict=True):
        c.add_page(loc.heat(x.astype(np.float32) / 255), t, (int(shape[0]), int(shape[1])), p)
    return c.to_json()


def on_synth(loc: localise.Localiser, digits: np.ndarray, seed: int, per_style: int = 40,
             p: Params = DEFAULT) -> dict[str, float]:
    """The second family: photos of one digit (every style of synth.py) — recall, the share
    whose digit's centre lies in a region, and regions per photo — and empty frames of the
    same styles: the share with no region."""
    rng = np.random.default_rng(seed)
    found = photos = regions = empty_clean = empties = 0
    for style in synth.STYLES:
        for _ in range(per_style):
            digit = digits[int(rng.integers(len(digits)))]
            frame, (x, y, w, h) = synth.photo_with_box(digit, rng, style)
            g = stages.grey(frame)
            inp, factor, _ = localise.model_input(g, p)
            boxes = localise.regions(loc.heat(inp), (g.shape[0] // factor, g.shape[1] // factor), p)
            cx, cy = (x + w / 2) / factor, (y + h / 2) / factor
            photos += 1
            regions += len(boxes)
            found += any(b.x0 <= cx < b.x1 and b.y0 <= cy < b.y1 for b in boxes)
            g = stages.grey(synth.empty(rng, style))
            inp, factor, _ = localise.model_input(g, p)
            empties += 1
            empty_clean += not localise.regions(loc.heat(inp), (g.shape[0] // factor,
                                                                g.shape[1] // factor), p)
    return {"photo_recall": round(found / photos, 4),
            "regions_per_photo": round(regions / photos, 3),
            "empty_no_region": round(empty_clean / empties, 4), "frames": photos + empties}
