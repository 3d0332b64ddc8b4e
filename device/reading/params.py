"""Every threshold of the reading pipeline, in one frozen object.

Each field says what it is for and what it was measured on. "Renders" are device/synth.py
frames of MNIST *train* digits with tuning seeds (bench/reading_tune.py); reported figures
use other seeds and the test split (`mnist-edge robustness`). Real photos
(`../shared/realphotos-dev`) are measured, never tuned on.

`version()` is REVISION and a short hash of these values: the robust model is trained on
crops this pipeline cuts, so its manifest records the version it was trained with, and the
device warns when its own differs (`reads_like`). REVISION is bumped by hand whenever the
golden traces and crops (tests/golden/) move; editing code that does not move them (a
comment, a refactor) changes nothing.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict, dataclass, fields

REVISION = 9  # the crops' revision: bump it when tests/golden/ moves (see version())
# Versions recorded by earlier pipelines whose crops this revision reproduces exactly with the
# default parameters. None: revision 9's paper map is an exact closing on every grid cell
# (revision 8 closed 2x2 blocks and brought them back bilinearly), so every crop moved.
SAME_CROPS: tuple[str, ...] = ()
# Fields of the learned route alone: the classical route's crops do not depend on them.
LEARNED_ONLY = ("locate_threshold", "locate_peak", "locate_margin", "region_window",
                "locate_floor", "merged_number")

SIZE = 28  # MNIST: a 28x28 input ...
BOX = 20  # ... with the digit's longer side fitted to 20 px, centred by its centre of mass


@dataclass(frozen=True)
class Params:
    # -- grid: where ink is located (the crop itself is cut from the full-resolution image)
    grid: int = 192  # longer side of the analysis grid at most; 640x480 -> 160x120, a 512 px
    #                  drawing -> 171 (factor 3: one-pixel strokes are sampled)
    # -- polarity
    light_paper: float = 0.5  # median grid pixel above this: dark ink on light paper
    # -- background / paper
    paper_window: int = 8  # the paper map's closing window: 1/8 of the grid's longer side
    #                        (wider than strokes; narrow enough to follow a shadow's edge)
    shadow_floor: float = 0.4  # the paper map never drops below this share of its median
    #                            (a desk around a sheet is not paper: its noise stays small)
    paper_min: float = 0.05  # ... nor below this brightness (a black frame read as paper)
    line_share: float = 0.1  # a mark on 90% of a grid row/column is a ruled, squared or
    #                          margin line (renders: ruled and squared pages)
    line_thickness: float = 0.05  # ... unless it is the only ink and this share of the frame
    #                               across (a 1 cropped tight; renders rule 1-2 px of 160)
    # -- ink mask
    min_contrast: float = 0.15  # ink minus background (0..1) below this: no ink (empty renders)
    min_threshold: float = 0.25  # floor of the Otsu threshold on the stretched ink (faint
    #                              pencil renders read at 0.25, sensor noise stays below)
    max_threshold: float = 0.5  # ... and its ceiling: half the contrast is ink, even when a
    #                             bolder stroke beside it pulls Otsu higher (a thin 1 with a
    #                             bold flag)
    speck_share: float = 1 / 4000  # blobs under this share of the grid (and 3 cells) are specks
    # -- components and segmentation
    near: float = 0.3  # strokes within this share of the digit's size join it (a 5's cap)
    near_area: float = 0.05  # ... when at least this share of its ink
    sheet_area: float = 0.15  # a blob this share of the frame ...
    sheet_fill: float = 0.75  # ... filling this share of its box is a sheet of paper
    desk: float = 0.6  # frame edge this much darker than the median: a desk around a sheet
    sheet_top: float = 0.1  # ... than the frame's brightest tenth (a quick test before the
    #                         sheet is looked for: a frame with no dark edge has none)
    sheet_inset: int = 25  # a sheet is read 1/25 of its size inside its edge (the desk's
    #                        border blurred into the sheet is not ink)
    line_aspect: float = 8.0  # a blob crossing the frame this elongated is a line, not a digit
    frame_inner: float = 0.3  # a blob whose box holds another blob this share of its height
    #                          is a frame drawn around writing (a box around a sum), not a
    #                          digit (a speck inside a 0 is far smaller)
    rule_width: float = 1.5  # a mark line_aspect times wider than thick and this many times
    #                         the typical mark's height wide is an underline or a rule (a
    #                         5's cap or a 7's bar is narrower than the digit is tall)
    row_overlap: float = 0.5  # blobs overlapping a line of writing by this share of the
    #                           lower height belong to it
    column_overlap: float = 0.5  # blobs overlapping by this share of the narrower are one digit
    join_gap: float = 0.5  # ... when the gap between them is under this share of the taller
    join_height: float = 1.75  # ... and together at most this many typical heights tall (two
    #                           digits one above the other are more than two; a 5 with its
    #                           cap drawn half a digit above it is 1.65)
    small_mark: float = 0.4  # with multi: marks under this share of the median digit height
    #                         are dots and dashes
    split_aspect: float = 1.2  # a digit this much wider than tall may be two touching digits
    split_valley: float = 0.35  # ... cut where a column holds at most this share of the mean
    split_min: int = 4  # ... and at least this many cells wide (a narrower blob is never cut)
    fine_cells: int = 8  # with multi: marks all under this many grid cells tall are read
    #                      again from their own region at a finer scale (a number 20-40 px
    #                      tall on a 2,000 px page is 2-4 cells: its digits merge)
    fine_margin: float = 1.0  # ... that region grown by this share of the marks' height (up
    #                           and down; four times it sideways, where a number goes on)
    fine_area: float = 0.25  # ... when it is at most this share of the frame (scattered
    #                          marks: no finer reading gains)
    # -- crop and normalise
    crop_side: int = 80  # crops are reduced to this longer side before normalising
    stroke: float = 1.9  # MNIST's median stroke width at the 20 px box (2 x area / perimeter
    #                      of train digits above 0.5; bench/reading_tune.py --strokes)
    stroke_band: float = 1.4  # strokes within stroke / band .. stroke x band are left alone
    #                           (MNIST train: 10% of digits below 1.32, 10% above 2.63)
    stroke_steps: int = 8  # at most this many one-pixel dilations (or erosions) per crop
    erode_keep: float = 0.3  # an erosion that would leave less than this share of the ink is
    #                          not made (a digit is never eroded away)
    crop_floor: float = 0.5  # the crop keeps ink down to this share of the mask's threshold
    #                          (a stroke's soft edge, which the grid's mask cannot see)
    # -- second reading (paper mostly in shadow, read first as light marks on a dark ground)
    lit_share: float = 0.05  # at least this share of the frame lit: paper, not a lamp
    second_confidence: float = 0.9  # the second reading counts only as a sure digit
    # -- localisation: "classical" (the grid stages above, frame-wide), "learned" (the
    #    localiser model's map, then each region read at its own scale: localise.py) or
    #    "hybrid", the default (classical, and the learned route only when that finds no sure
    #    digit: decision.read; it wins every row of `make localiser-ab` against classical)
    localiser: str = "hybrid"
    locate_threshold: float = 0.5  # a map cell this likely to hold digit ink is in a region
    locate_peak: float = 0.7  # ... and a region counts only when one of its cells is this sure
    locate_margin: float = 0.35  # a region grows by this share of its size on each side
    region_window: int = 3  # inside a region, the paper map's window: 1/3 of its longer side
    locate_floor: float = 0.25  # inside a region, ink counts only where the map, stretched
    #                             smoothly over it, is at least this (operators, rules, a box)
    merged_number: int = 2  # hybrid, with multi: the learned reading replaces the classical
    #                        one's sure "no digit" when it holds at least this many sure digits
    #                        (a number written small, one blob on the grid; one is a lamp)

    def version(self) -> str:
        """'r<REVISION>-<hash of the values that shape the crops>'."""
        values = asdict(self)
        if self.localiser == "classical":
            for name in LEARNED_ONLY:
                values.pop(name)
        h = hashlib.sha256(json.dumps(values, sort_keys=True).encode()).hexdigest()[:8]
        return f"r{REVISION}-{h}"

    def reads_like(self, recorded: str) -> bool:
        """True when a model trained on crops of pipeline `recorded` sees the same crops here."""
        if recorded == self.version():
            return True
        crops = Params(**{f.name: getattr(self, f.name) for f in fields(self)
                          if f.name not in LEARNED_ONLY and f.name != "localiser"})
        if crops != Params():  # the classical stages, which cut every crop, differ
            return False
        # the defaults with any route: the route chooses where to look, not how a crop is cut
        return recorded in SAME_CROPS or recorded in {Params(localiser=r).version()
                                                      for r in LOCALISERS}


LOCALISERS = ("classical", "learned", "hybrid")
ENV_LOCALISER = "MNIST_EDGE_LOCALISER"  # hybrid (the default: it wins, README), classical, learned


def _default() -> Params:
    """The parameters every command reads with; MNIST_EDGE_LOCALISER chooses the route."""
    choice = os.environ.get(ENV_LOCALISER, "").strip().lower()
    return Params(localiser=choice) if choice in LOCALISERS else Params()


DEFAULT = _default()
