"""The learned localiser: what it is given, how its map becomes regions, the bundled model's
checks, and the learned route through the reading pipeline. The model's quality is measured by
its gate (convert/localiser.py) and bench/localiser_ab.py; these tests pin the mechanics."""

from __future__ import annotations

import json
import shutil
from dataclasses import replace

import numpy as np
import pytest

from mnist_edge.device.errors import BadModelError
from mnist_edge.device.evaluation import cases
from mnist_edge.device.reading import localise, pipeline, stages
from mnist_edge.device.reading.params import DEFAULT

N = localise.SIDE // localise.STRIDE
LEARNED = replace(DEFAULT, localiser="learned")
CLASSICAL = replace(DEFAULT, localiser="classical")
needs_model = pytest.mark.skipif(not localise.MODEL.is_file(), reason="no bundled localiser")


def test_model_input_is_dark_ink_on_light_paper_padded_square():
    light = np.full((300, 600), 220, np.uint8)
    light[100:200, 280:300] = 30  # a dark stroke on white paper
    x, factor, dark = localise.model_input(light, DEFAULT)
    assert x.shape == (localise.SIDE, localise.SIDE) and x.dtype == np.float32
    assert factor == 4 and dark
    assert x[30, 72] < 0.3 and x[5, 5] > 0.8  # the stroke dark, the paper light
    assert np.allclose(x[80:, :150], x[74, :150], atol=0.05)  # the edge repeated below the grid

    chalk = 255 - light  # the same drawing as light strokes on a board
    y, _, dark = localise.model_input(chalk, DEFAULT)
    assert not dark and np.allclose(x, y, atol=0.02)  # seen the same way
    forced, _, dark = localise.model_input(chalk, DEFAULT, dark=True)
    assert dark and forced[5, 5] < 0.2  # the second reading's polarity, when forced


def test_a_one_pixel_line_survives_the_reduction():
    page = np.full((1536, 2048), 200, np.uint8)
    page[400:700, 1000] = 60  # a 1 px pencil line in a big photo: factor 11 on the grid
    x, factor, _ = localise.model_input(page, DEFAULT)
    assert factor == 11
    assert x[36:63, 1000 // 11].min() < 0.75 * x[5, 5]


def test_truth_map_marks_the_cells_that_hold_digit_ink():
    truth = np.zeros((384, 384), bool)
    truth[40:48, 80:90] = True  # grid factor 2: cells (5..5, 10..11) of the map
    t = localise.truth_map(truth)
    assert t.shape == (N, N) and t.sum() == 2
    assert t[5, 10] == 1 and t[5, 11] == 1


def test_regions_from_a_map():
    heat = np.zeros((N, N), np.float32)
    heat[10:14, 10:12] = 0.9  # a digit
    heat[30, 30] = 0.6  # unsure everywhere: below locate_peak, dropped
    heat[10:14, 13:15] = 0.8  # its neighbour: the grown boxes overlap, one region
    boxes = localise.regions(heat, (192, 192), DEFAULT)
    assert len(boxes) == 1
    b = boxes[0]
    assert b.x0 < 40 and b.x1 > 60 and b.y0 < 40 and b.y1 > 56  # grown around both
    assert localise.regions(heat, (100, 192), DEFAULT) == [b]  # inside the frame
    heat[40:44, 40:44] = 0.95  # beyond a 100-row frame: the padding, never a region
    assert len(localise.regions(heat, (100, 192), DEFAULT)) == 1
    assert localise.regions(np.zeros((N, N), np.float32), (192, 192), DEFAULT) == []


@pytest.mark.parametrize("field,value,count", [("locate_threshold", 0.95, 0),
                                               ("locate_peak", 0.95, 0)])
def test_each_region_threshold_decides(field, value, count):
    heat = np.zeros((N, N), np.float32)
    heat[10:12, 10:14] = 0.9  # 8 cells at 0.9
    assert len(localise.regions(heat, (192, 192), DEFAULT)) == 1
    assert len(localise.regions(heat, (192, 192), replace(DEFAULT, **{field: value}))) == count


def test_margin_grows_regions():
    heat = np.zeros((N, N), np.float32)
    heat[20:28, 20:28] = 0.9
    small = localise.regions(heat, (192, 192), replace(DEFAULT, locate_margin=0.0))[0]
    big = localise.regions(heat, (192, 192), DEFAULT)[0]
    assert small.width < big.width and small.height < big.height


@needs_model
def test_the_bundled_localiser_is_vouched_for(tmp_path):
    loc = localise.load()
    manifest = json.loads((localise.MODEL.parent / "manifest.json").read_text())
    assert manifest["gate"]["passed"] is True
    entry = next(m for m in manifest["models"] if m["file"] == localise.MODEL.name)
    assert entry["sha256"] == loc.sha256
    heat = loc.heat(np.ones((localise.SIDE, localise.SIDE), np.float32))
    assert heat.shape == (N, N) and heat.max() < DEFAULT.locate_threshold  # blank paper
    copy = tmp_path / localise.MODEL.name
    shutil.copy(localise.MODEL, copy)
    data = bytearray(copy.read_bytes())
    data[len(data) // 2] ^= 0xFF
    copy.write_bytes(bytes(data))
    shutil.copy(localise.MODEL.parent / "manifest.json", tmp_path / "manifest.json")
    with pytest.raises(BadModelError, match="SHA-256"):
        localise.load(copy)


@needs_model
def test_learned_route_reads_a_number_and_traces_the_map():
    from mnist_edge.device.reading.trace import Trace

    page = np.full((480, 640), 215, np.uint8)
    for x0 in (170, 280, 390):  # three bars: 1 1 1
        page[180:300, x0:x0 + 8] = 40
    trace = Trace()
    found = pipeline.cut(page, multi=True, params=LEARNED, trace=trace)
    info = trace.last("localise")
    assert info is not None and info["regions"], info
    assert len(found) == 3
    assert [d.bbox[0] for d in found] == sorted(d.bbox[0] for d in found)
    assert pipeline.cut(np.full((480, 640), 215, np.uint8), params=LEARNED) == []


def test_the_failure_classes_are_generated_with_their_truth():
    digits = np.zeros((10, 28, 28), np.uint8)
    for d in range(10):
        digits[d, 4:24, 10:18] = 255
    labels = np.arange(10, dtype=np.uint8)
    made = list(cases.generate(digits, labels, 2))
    assert [c.kind for c in made] == [k for k in cases.CLASSES for _ in range(2)]
    for c in made:
        assert c.image.dtype == np.uint8 and c.image.ndim == 2
        assert (c.label == "") == (c.kind == "shadow_empty")
        if c.kind in cases.MULTI:
            assert len(c.label) >= 2


@pytest.fixture(scope="module")
def int8_model_robust():
    from mnist_edge.device.inference import bundled, model

    return model.load(bundled.NAMES["robust"])


def _cases(kind: str, n: int):
    from mnist_edge.device.data import mnist

    x, y = mnist.load_split("test", mnist.BUNDLED_DIR)
    return [c for c in cases.generate(x, y, n) if c.kind == kind]


def _read(clf, case, params) -> str:
    from mnist_edge.device.reading import decision
    from mnist_edge.device.reading.files import number

    preds = decision.read(clf, case.image, multi=case.kind in cases.MULTI, min_confidence=0.5,
                          params=params)
    if case.kind in cases.MULTI:
        return (number(preds) or "").replace(" ", "")
    return "" if preds[0].digit is None else str(preds[0].digit)


@needs_model
def test_a_small_number_on_a_big_page_is_read_at_its_own_scale(int8_model_robust, monkeypatch):
    """Coarse to fine: 4-6 digits 20-40 px tall on a 1600-2400 px page. On the frame-wide grid
    they are 2-3 cells tall: without its finer reading the classical route reads none of them
    (measured: 0 of 6; ruled boxes, which are read on their own and so finer too, taken away
    with it: with fine_cells 0 a blob of a small digit may pass for one); with it, their region
    is read again on a grid of its own (6 of 6); the learned route cuts its regions from the
    full-resolution page (4 of 6)."""
    pages = _cases("small_number", 6)
    learned = sum(_read(int8_model_robust, c, LEARNED) == c.label for c in pages)
    classical = sum(_read(int8_model_robust, c, CLASSICAL) == c.label for c in pages)
    monkeypatch.setattr(stages, "ruled", lambda *a: [])
    coarse = sum(_read(int8_model_robust, c, replace(CLASSICAL, fine_cells=0)) == c.label
                 for c in pages)
    assert coarse == 0 and classical >= 5 and learned >= 2, (coarse, classical, learned)


@needs_model
def test_a_sheet_on_a_desk_is_read_on_the_sheet(int8_model_robust, monkeypatch):
    """The desk's edge inside a region is not ink: the learned route reads on the sheet alone
    (without that, 22 of 40 desk renders were misread with the model of the round that added
    it; with this round's model, trained on operators and with frames set aside, 2 of 40:
    40 right with the sheet, 38 without)."""
    from mnist_edge.device.data import mnist
    from mnist_edge.device.evaluation import synth
    from mnist_edge.device.reading import decision, stages

    x, y = mnist.load_split("test", mnist.BUNDLED_DIR)
    rng = np.random.default_rng(7)
    frames = [(synth.photo(x[i], rng, "desk"), int(y[i])) for i in range(40)]

    def right() -> int:
        return sum(decision.read(int8_model_robust, f, params=LEARNED)[0].digit == d
                   for f, d in frames)

    with_sheet = right()
    monkeypatch.setattr(stages, "find_sheet", lambda *_a: None)
    assert with_sheet >= 39 and right() <= with_sheet - 2, (with_sheet, right())


@needs_model
def test_learned_parameters_each_matter(int8_model_robust):
    """Each learned-route field changes what is read on the failure classes."""
    pages = _cases("small_number", 4) + _cases("page_marks", 4) + _cases("shadow_empty", 4)
    base = [_read(int8_model_robust, c, LEARNED) for c in pages]
    for field, value in (("locate_threshold", 0.9), ("locate_peak", 0.99), ("locate_margin", 0.0),
                         ("region_window", 12), ("locate_floor", 0.0)):
        varied = replace(LEARNED, **{field: value})  # type: ignore[arg-type]
        changed = [_read(int8_model_robust, c, varied) for c in pages]
        assert changed != base, field


def test_region_boxes_at_their_margin_and_one_cell_counts():
    """The grown box to the cell (locate_margin 0.35 of a 10-cell blob: 3.5 cells each side),
    and a single sure cell is a region: moving the margin is seen here."""
    heat = np.zeros((N, N), np.float32)
    heat[20:30, 20:30] = 0.9
    [box] = localise.regions(heat, (192, 192), DEFAULT)
    grown = int((20 - 3.5) * localise.STRIDE), int((30 + 3.5) * localise.STRIDE)
    assert (box.x0, box.x1, box.y0, box.y1) == (*grown, *grown)
    one = np.zeros((N, N), np.float32)
    one[5, 5] = 0.9
    assert len(localise.regions(one, (192, 192), DEFAULT)) == 1


def test_region_window_and_floor_at_their_boundaries():
    """Inside a region the paper map's window is a third of it (region_window 3): on 96
    cells a stroke 30 wide is ink, a band 40 wide is paper (a shadow). The localiser's map
    keeps ink where it is at least locate_floor (0.25): at 0.27, not at 0.23."""
    local = pipeline.in_region(DEFAULT)
    for width, ink in ((30, True), (40, False)):
        grid = np.full((96, 96), 0.9, np.float32)
        grid[:, 30:30 + width] = 0.2
        under = stages.paper_map(grid, local)[48, 30 + width // 2]
        assert (under > 0.5) == ink, (width, under)

    img = np.full((120, 240), 0.9, np.float32)
    img[30:90, 50:60] = img[30:90, 170:180] = 0.2  # two strokes
    allow = np.full((120, 240), 0.27, np.float32)
    allow[:, 120:] = 0.23
    found = pipeline.cut(img, multi=True, params=DEFAULT, allow=allow)
    assert [d.bbox for d in found] == [(50, 30, 10, 60)]



@needs_model
def test_hybrid_asks_the_map_only_when_the_classical_reading_is_not_sure(int8_model_robust,
                                                                        monkeypatch):
    """The hybrid route (the default): a frame the classical stages read surely never runs
    the localiser; on small numbers on a big page, with the classical stages' finer reading
    off (they then read none right; ruled boxes off with it, see the test above), each answer
    is the classical or the learned route's, the classical one wherever it holds a sure
    digit, and the learned route's reads several pages right."""
    monkeypatch.setattr(stages, "ruled", lambda *a: [])
    from mnist_edge.device.data import mnist
    from mnist_edge.device.evaluation import synth
    from mnist_edge.device.reading import decision

    coarse, hybrid = (replace(CLASSICAL, fine_cells=0),
                      replace(DEFAULT, localiser="hybrid", fine_cells=0))
    pages = _cases("small_number", 12)
    for c in pages:
        assert not pipeline.doubt_polarity(c.image)  # paper: no second reading
        outputs = [int8_model_robust.predict_one(d.pixels)
                   for d in pipeline.cut(c.image, multi=True, params=coarse)]
        classical, learned = (_read(int8_model_robust, c, p)
                              for p in (coarse, replace(LEARNED, fine_cells=0)))
        got = _read(int8_model_robust, c, hybrid)
        assert got in (classical, learned)
        if any(decision.sure(o) for o in outputs):
            assert got == classical
    right = {name: sum(_read(int8_model_robust, c, p) == c.label for c in pages)
             for name, p in (("classical", coarse), ("hybrid", hybrid))}
    assert right["classical"] == 0 and right["hybrid"] >= 4, right

    x, y = mnist.load_split("test", mnist.BUNDLED_DIR)
    rng = np.random.default_rng(3)
    frames = [synth.photo(x[i], rng, "plain") for i in range(10)]
    classical_digits = [decision.read(int8_model_robust, f, params=CLASSICAL)[0].digit for f in frames]

    def no_map(*_a):
        raise AssertionError("the localiser ran on a frame read surely")

    monkeypatch.setattr(localise, "load", no_map)
    assert [decision.read(int8_model_robust, f, params=hybrid)[0].digit for f in frames] \
        == classical_digits
    assert sum(d == y[i] for i, d in enumerate(classical_digits)) >= 9


@needs_model
def test_hybrid_reads_classically_when_the_localiser_cannot_load(int8_model_robust, monkeypatch,
                                                                 capsys):
    """A runtime that cannot run the localiser (or a damaged install) costs the second
    opinion, not the reading: one line on stderr, then classical readings."""
    from mnist_edge.device.reading import decision

    def broken(*_a, **_k):
        raise BadModelError("localiser_int8.tflite: not a usable localiser (op missing)")

    monkeypatch.setattr(localise, "load", broken)
    localise.usable.cache_clear()
    try:
        blank = np.full((120, 160), 0.8, np.float32)
        hybrid = replace(DEFAULT, localiser="hybrid")
        answers = [decision.read(int8_model_robust, blank, params=hybrid)[0] for _ in range(3)]
        assert all(a.digit is None and a.none_reason == decision.NO_INK for a in answers)
        err = capsys.readouterr().err
        assert err.count("learned localiser is not usable") == 1 and "op missing" in err
    finally:
        localise.usable.cache_clear()


# Measured on these 20 cases per class with the default (hybrid) route and the model trained
# on revision 9's crops (the classical route alone reads the same): white_on_black 20,
# frame_filling 18, small_number 17, thin_faint 20, page_marks 17, shadow_empty 19, table 15.
# Each floor is the measure less about 10%. Without the finer reading small_number is 7; with
# revision 8's grid (block mean and a sampled extreme) thin_faint is 14; without frames set
# aside page_marks is 10, without frames and rules 5; without ruled boxes read on their own
# table is 8.
FLOORS = {"white_on_black": 18, "frame_filling": 16, "small_number": 15, "thin_faint": 18,
          "page_marks": 15, "shadow_empty": 17, "table": 13}


@needs_model
def test_each_failure_class_holds_its_floor(int8_model_robust):
    """The failure classes of #27 (device/evaluation/cases.py, 20 each), read by the default
    route: a floor per class. Taking the finer reading of small writing away fails it (small
    numbers 17 -> 7), so do revision 8's grid (thin faint strokes 20 -> 14) and taking the
    frames around a number away (operators and boxes 17 -> 10), and the reading of ruled
    boxes on their own (numbers in a table 15 -> 8). Taking away the stroke
    normalising, the ground map, the shadow-following paper map or the second reading does
    not (tried in revision 8: these generated cases stay above their floors, some even gain);
    the golden traces and boundary tests pin those stages instead."""
    from mnist_edge.device.data import mnist

    x, y = mnist.load_split("test", mnist.BUNDLED_DIR)
    hybrid = replace(DEFAULT, localiser="hybrid")
    right = dict.fromkeys(cases.CLASSES, 0)
    for c in cases.generate(x, y, 20):
        right[c.kind] += _read(int8_model_robust, c, hybrid) == c.label
    assert all(right[k] >= FLOORS[k] for k in cases.CLASSES), right


def _sum_page(marks: str, boxed: bool) -> np.ndarray:
    """A written sum on ruled paper, e.g. marks "5+3x7": MNIST test digits (each digit's
    second example: the first 5, test digit 8, is as much a 6 or an 8, and the model trained
    on revision 9's crops reads it 8 at 61%) and operators in the same pen (as cases.py draws
    them), boxed or underlined (uint8 grey)."""
    from PIL import Image, ImageDraw

    from mnist_edge.device.data import mnist

    x, y = mnist.load_split("test", mnist.BUNDLED_DIR)
    h, pen, left, top = 70, 5, 40, 180
    cover = np.zeros((420, 760), np.float32)
    ops = Image.new("L", (760, 420), 0)
    draw = ImageDraw.Draw(ops)
    for ch in marks:
        if ch.isdigit():
            g = cases._glyph(x[int(np.flatnonzero(y == int(ch))[1])], h, pen)
            cases._stamp(cover, g, left, top)
            left += g.shape[1] + h // 3
            continue
        cases.draw_operator(draw, ch, left + h // 4, top + h // 2, h, pen)
        left += h // 2 + h // 3
    if boxed:
        draw.rectangle([20, top - h // 3, left + 10, top + h + h // 3], outline=255, width=pen)
    else:
        draw.line([(30, top + h + h // 4), (left, top + h + h // 4)], fill=255, width=pen)
    cover = np.maximum(cover, np.asarray(ops, np.float32) / 255)
    paper = np.full(cover.shape, 0.85, np.float32)
    paper[12::32] *= 0.75  # ruled
    noise = np.random.default_rng(7).normal(0, 0.015, cover.shape).astype(np.float32)
    return (np.clip(paper * (1 - 0.8 * cover) + noise, 0, 1) * 255).astype(np.uint8)


def test_a_sum_reads_as_its_digits_marks_set_aside(tmp_path, monkeypatch):
    """#27.4: with --multi a written sum `5 + 3 x 7`, boxed or underlined on ruled paper,
    reads 537: the box and the underline are set aside by the pipeline (frame_inner,
    rule_width) and the operators by the model's "no digit" (it learned them: train/frames.
    mark_crops). Each operator alone reads "no digit"."""
    import subprocess
    import sys

    from PIL import Image

    pages = {"boxed.png": ("5+3x7", True), "underlined.png": ("5+3x7", False),
             "equals.png": ("4-2=2", True)}
    for name, (marks, boxed) in pages.items():
        Image.fromarray(_sum_page(marks, boxed)).save(tmp_path / name)
    res = subprocess.run([sys.executable, "-m", "mnist_edge.device.cli", "classify", "--multi",
                          *(str(tmp_path / n) for n in pages)], capture_output=True, text=True,
                         timeout=120)
    assert res.returncode == 0, res.stderr
    said = dict(line.split(": ", 1) for line in res.stdout.splitlines())
    assert said[str(tmp_path / "boxed.png")].startswith("537 "), res.stdout
    assert said[str(tmp_path / "underlined.png")].startswith("537 "), res.stdout
    assert said[str(tmp_path / "equals.png")].startswith("422 "), res.stdout

    # the frame taken away from the pipeline's marks: the box, ruled on its four sides, is
    # still read on its own, its sides going as ruled lines; both taken away, the box is read
    # instead of the sum
    from mnist_edge.device.inference import bundled, model
    from mnist_edge.device.reading import decision
    from mnist_edge.device.reading.files import number

    clf = model.load(bundled.NAMES["robust"])
    no_frames = replace(DEFAULT, frame_inner=9.0)
    got = number(decision.read(clf, _sum_page("5+3x7", True), multi=True, params=no_frames))
    assert (got or "").replace(" ", "") == "537"
    monkeypatch.setattr(stages, "ruled", lambda *a: [])
    got = number(decision.read(clf, _sum_page("5+3x7", True), multi=True, params=no_frames))
    assert (got or "").replace(" ", "") != "537"
    monkeypatch.undo()
    for op in "+-x=":
        alone = decision.read(clf, _sum_page(op, True), params=replace(DEFAULT, localiser="classical"))
        assert alone[0].digit is None, (op, alone[0].describe())
