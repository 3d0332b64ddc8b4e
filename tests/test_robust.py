"""The robust recipe (augmentations, frame-derived examples, a smoke run) and the "no digit"
answer: preprocessing that finds no ink, the model's own "no digit" output, --min-confidence."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from mnist_edge.device.cli import app
from mnist_edge.device.evaluation import synth
from mnist_edge.device.inference import bundled
from mnist_edge.device.inference import model as device_model

from .conftest import ROOT, mnist_dir

runner = CliRunner()
slow = pytest.mark.slow
ROBUST_INT8 = bundled.NAMES["robust"]


def _save(frame: np.ndarray, path):
    Image.fromarray((frame * 255).astype(np.uint8)).save(path)
    return path


# --- the recipe's building blocks (numpy only) ---

def test_each_augmentation_keeps_shape_and_range_and_changes_images(test_split):
    from mnist_edge.train import augment

    x = test_split[0][:64].astype(np.float32) / 255
    for fn, share in augment.PIPELINE:
        out = fn(x.copy(), np.random.default_rng(0))
        assert out.shape == x.shape and out.dtype == np.float32, fn.__name__
        assert 0.0 <= share <= 1.0
        assert np.abs(np.clip(out, 0, 1) - x).mean() > 1e-3, f"{fn.__name__} changed nothing"
    a = augment.augment(x, np.random.default_rng(7))
    b = augment.augment(x, np.random.default_rng(7))
    assert np.array_equal(a, b) and a.min() >= 0 and a.max() <= 1  # seeded: deterministic


def test_lights_are_round_filled_blobs_for_no_digit_examples():
    from mnist_edge.train import augment, frames

    out = augment.lights(np.zeros((200, 28, 28), np.float32), np.random.default_rng(0))
    assert out.shape == (200, 28, 28) and out.dtype == np.float32 and out.max() <= 1
    for blob in out:
        ys, xs = np.nonzero(blob > 0.3)
        h, w = np.ptp(ys) + 1, np.ptp(xs) + 1
        assert 0.5 <= h / w <= 2.0  # never a tall thin stroke, which would be a 1
        assert (blob[ys.min():ys.max() + 1, xs.min():xs.max() + 1] > 0.3).mean() > 0.6  # filled
    assert augment.lights in [fn for fn, _ in frames._NOTHING]
    assert augment.lights not in [fn for fn, _ in augment.PIPELINE]  # never over a digit


def test_frame_examples_are_labelled_crops(test_split):
    from mnist_edge.train import frames

    rng = np.random.default_rng(0)
    x, y = frames.photo_digits(test_split[0][:40], test_split[1][:40], 40, rng)
    assert len(x) >= 30 and x.shape[1:] == (28, 28) and set(y.tolist()) <= set(range(10))
    empties = frames.empty_crops(60, rng)
    assert empties.dtype == np.uint8 and empties.shape[1:] == (28, 28)
    blank = frames.blank_inputs(10, rng)
    assert blank.shape == (10, 28, 28) and blank.max() <= 1


def test_synthetic_photo_box_holds_the_digit(test_split):
    frame, (x, y, w, h) = synth.photo_with_box(test_split[0][0], np.random.default_rng(1), "ruled")
    assert 0 <= x and x + w <= frame.shape[1] and 0 <= y and y + h <= frame.shape[0]
    assert frame[y : y + h, x : x + w].min() < np.median(frame) - 0.2  # the ink is inside


# --- "no digit" on the device ---

def test_robust_model_has_a_no_digit_output():
    clf = device_model.load(ROBUST_INT8)
    assert clf.classes == 11 and clf.quantized
    assert clf.predict_one(np.zeros((28, 28), np.uint8)).argmax() == device_model.NONE


def test_empty_frames_read_no_digit(tmp_path):
    rng = np.random.default_rng(123)
    files = [_save(synth.empty(rng, style), tmp_path / f"{style}.png") for style in synth.STYLES]
    res = runner.invoke(app, ["classify", "--json", *map(str, files)])
    assert res.exit_code == 0, res.stderr
    objs = [json.loads(line) for line in res.stdout.splitlines()]
    nulls = [o for o in objs if o["digit"] is None]
    assert len(nulls) >= len(files) - 1, objs
    assert {o["none_reason"] for o in nulls} <= {"no ink", "model"}


def test_robust_model_reads_the_examples():
    examples = sorted((ROOT / "examples").glob("digit*_test*.*"))
    res = runner.invoke(app, ["classify", "--json", *map(str, examples)])
    objs = [json.loads(line) for line in res.stdout.splitlines()]
    assert [o["digit"] for o in objs] == [int(p.name[5]) for p in examples]
    assert all(o["no_digit"] is not None and o["no_digit"] < 0.5 for o in objs)


@pytest.mark.parametrize("model", ["robust", "tutorial"])
def test_min_confidence_turns_a_weak_reading_into_no_digit(model):
    example = next((ROOT / "examples").glob("digit7_*"))
    res = runner.invoke(app, ["classify", "--model", model, "--min-confidence", "1.0", "--json",
                              str(example)])
    assert res.exit_code == 0
    obj = json.loads(res.stdout)
    assert obj["digit"] is None and obj["none_reason"] == "below min confidence"
    assert obj["confidence"] > 0.5  # the best guess is still reported
    text = runner.invoke(app, ["classify", "--model", model, "--min-confidence", "1", str(example)])
    assert "no digit (best guess 7" in text.stdout


def test_blank_page_has_no_ink(tmp_path):
    page = _save(np.full((120, 160), 0.9, np.float32), tmp_path / "page.png")
    obj = json.loads(runner.invoke(app, ["classify", "--json", str(page)]).stdout)
    assert obj["digit"] is None and obj["none_reason"] == "no ink" and obj["probabilities"] is None


def test_camera_on_empty_frames_reads_no_digit(tmp_path):
    rng = np.random.default_rng(5)
    for n in range(4):
        _save(synth.empty(rng, "ruled"), tmp_path / f"frame{n}.png")
    res = runner.invoke(app, ["camera", "--source", str(tmp_path), "--json"])
    assert res.exit_code == 0, res.stderr
    objs = [json.loads(line) for line in res.stdout.splitlines()]
    assert len(objs) == 4 and all(o["digit"] is None for o in objs)
    assert [o["frame"] for o in objs] == [0, 1, 2, 3]


def test_robustness_table(tmp_path):
    report = tmp_path / "report.md"
    report.write_text("# conversion report\n\nbefore\n")
    args = ["robustness", "--per-style", "10", "--report", str(report), "--json"]
    mnistc = ROOT.parent / "shared" / "mnistc"
    if mnistc.is_dir():
        args += ["--mnistc", str(mnistc)]
    res = runner.invoke(app, args)
    assert res.exit_code == 0, res.stderr
    rows = {json.loads(line)["name"]: json.loads(line) for line in res.stdout.splitlines()}
    assert set(rows) == {"tutorial", "tutorial-float32", "robust", "robust-float32"}
    assert rows["robust"]["empty_mean_rate"] > rows["tutorial"]["empty_mean_rate"]
    if mnistc.is_dir():
        assert rows["tutorial"]["mnistc_mean_error"] == pytest.approx(0.1033, abs=1e-4)
        assert rows["robust"]["mnistc_mean_error"] < 0.04
    text = report.read_text()
    assert text.startswith("# conversion report\n\nbefore\n") and "MNIST-C" in text
    runner.invoke(app, args)  # a second run replaces the section, not appends
    assert report.read_text().count("## Robustness") == 1


# --- training (TensorFlow) ---

@slow
def test_robust_recipe_smoke(tmp_path):
    """A small, short run of the robust recipe converts into an 11-output int8 model."""
    out = tmp_path / "robust"
    cmd = [sys.executable, "-m", "mnist_edge.train", "--recipe", "robust", "--limit", "3000", "--epochs", "2",
           "--data", str(mnist_dir()), "--out", str(out), "--no-plot"]
    subprocess.run(cmd, check=True, cwd=ROOT, capture_output=True)
    metrics = json.loads((out / "train_metrics.json").read_text())
    assert metrics["recipe"] == "robust" and metrics["params"] == 205_099
    conv = subprocess.run([sys.executable, "-m", "mnist_edge.convert",
                           "--model", str(out / "mnist_robust.keras"), "--data", str(mnist_dir()),
                           "--max-drop", "100", "--min-agreement", "0"],
                          cwd=ROOT, capture_output=True, text=True)
    assert conv.returncode == 0, conv.stderr[-2000:]
    manifest = json.loads((out / "manifest.json").read_text())
    int8 = next(m for m in manifest["models"] if m["variant"] == "int8")
    assert int8["reference"] == "mnist_robust_float32.tflite" and int8["output"]["shape"][-1] == 11
    from mnist_edge.device.reading.params import DEFAULT

    assert manifest["preprocessing"]["reading_pipeline"] == DEFAULT.version()
    assert manifest["preprocessing"]["output"].startswith("11 softmax probabilities")
    assert device_model.load(out / "mnist_robust_int8.tflite").classes == 11


@slow
def test_kfold_and_dense_variant(tmp_path):
    cmd = [sys.executable, "-m", "mnist_edge.train", "--kfold", "2", "--variant", "dense", "--limit", "2000",
           "--epochs", "1", "--data", str(mnist_dir()), "--out", str(tmp_path)]
    res = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    assert res.returncode == 0, res.stderr[-2000:]
    report = json.loads((tmp_path / "kfold.json").read_text())
    assert report["folds"] == 2 and len(report["fold_accuracy"]) == 2 and report["variant"] == "dense"
    assert 0.5 < report["mean"] <= 1 and "2-fold validation accuracy" in res.stdout


def _shadowed_photo() -> tuple[np.ndarray, int]:
    """A render whose page is mostly in shadow: darker than mid-grey, so the first reading
    takes it for a board and finds no sure digit (found with this seed)."""
    from mnist_edge.device.data import mnist as data

    x, y = data.load_split("test")
    rng = np.random.default_rng(5)
    for _ in range(10):
        i = int(rng.integers(len(x)))
        frame = synth.photo(x[i], rng, "shadow")
    return frame, int(y[i])


def test_paper_in_shadow_gets_a_second_reading(tmp_path):
    from mnist_edge.device.reading import decision, pipeline

    clf = device_model.load(bundled.NAMES["robust"])
    frame, digit = _shadowed_photo()
    assert digit == 2
    first = [decision.predict(clf, d) for d in pipeline.cut(frame)]
    assert all(p.pixels is not None for p in first)
    assert not any(decision.sure(clf.predict_one(p.pixels)) and p.digit == digit  # type: ignore[arg-type]
                   for p in first)
    assert pipeline.doubt_polarity(frame)
    (pred,) = decision.read(clf, frame, min_confidence=0.5)
    assert pred.digit == digit and pred.confidence is not None
    assert pred.confidence >= decision.DEFAULT.second_confidence
    assert pred.second_reading
    # `check --images` applies it the same way
    folder = tmp_path / "set" / str(digit)
    folder.mkdir(parents=True)
    Image.fromarray(np.round(frame * 255).astype(np.uint8)).save(folder / "shadow.png")
    res = CliRunner().invoke(app, ["check", "--model", "robust", "--images", str(tmp_path / "set"),
                                   "--json"])
    assert res.exit_code == 0, res.stderr
    assert json.loads(res.stdout.splitlines()[0])["accuracy"] == 1.0


def test_no_second_reading_for_paper_a_sheet_or_an_mnist_array():
    from mnist_edge.device.reading.pipeline import doubt_polarity

    rng = np.random.default_rng(3)
    assert not doubt_polarity(synth.empty(rng, "plain"))  # light paper: read as paper
    desks = [synth.empty(rng, "desk") for _ in range(20)]
    dark = [f for f in desks if np.median(f) <= 0.5]  # more desk than sheet
    assert len(dark) >= 3 and not any(doubt_polarity(f) for f in dark)
    assert not doubt_polarity(np.zeros((28, 28), np.float32))
    assert not doubt_polarity(np.full((240, 320), 0.1, np.float32))  # flat and dark
    lamp = np.full((480, 640), 0.1, np.float32)
    yy, xx = np.mgrid[0:480, 0:640]
    lamp[(yy - 200) ** 2 + (xx - 300) ** 2 < 30 ** 2] = 0.9
    assert not doubt_polarity(lamp)  # a lamp in the dark: no paper to read again


def test_second_reading_rule():
    from mnist_edge.device.reading import decision

    digit = np.array([0.0, 0.95, *[0.005] * 8, 0.0], np.float32)
    unsure = np.array([0.0, 0.6, *[0.04] * 8, 0.08], np.float32)
    nothing = np.array([*[0.0] * 10, 1.0], np.float32)
    assert decision.second_wins([None], [digit])
    assert decision.second_wins([nothing], [digit])
    assert decision.second_wins([], [unsure, digit])  # with --multi: any sure second digit
    assert not decision.second_wins([nothing], [unsure])  # below the floor: keep "no digit"
    assert not decision.second_wins([digit], [digit])  # a sure first reading stands
    assert not decision.second_wins([unsure, digit], [digit])  # any sure first digit stands
    assert decision.label(nothing, digit) == 1 and decision.label(nothing, unsure) == 10
    assert decision.label(unsure, None) == 1 and decision.label(unsure, None, min_confidence=0.9) == 10
    # the hybrid's learned reading counts when nothing is settled: no ink or an unsure digit,
    # not a sure digit nor the model's sure "no digit" (a lamp in the dark)
    seven = np.array([*[0.0] * 7, 0.97, 0.03, 0.0, 0.0], np.float32)
    assert decision.label(None, None, seven) == 7 and decision.label(unsure, None, seven) == 7
    assert decision.label(nothing, None, seven) == 10 and decision.label(digit, None, seven) == 1
    assert decision.label(nothing, digit, seven) == 1 and decision.label(None, None, unsure) == 10
    # with multi, a number read by the learned route (merged_number 2 sure digits) replaces
    # a sure "no digit"; one digit does not (a lamp); a sure classical digit always stands
    wins = lambda first, learned: decision.learned_wins(first, learned, multi=True)  # noqa: E731
    assert wins([nothing], [seven, digit]) and not wins([nothing], [seven])
    assert not wins([nothing, digit], [seven, seven, seven]) and wins([unsure], [seven])
    assert not decision.learned_wins([nothing], [seven, digit])  # single: "no digit" stands
    # the rule follows the params it is given (it ignored them)
    from dataclasses import replace

    strict = replace(decision.DEFAULT, second_confidence=0.99)
    assert decision.label(nothing, digit) == 1 and decision.label(nothing, digit, params=strict) == 10


def test_a_sheet_on_a_desk_is_searched_when_the_sheet_is_the_majority():
    """Paper filling most of the frame with the desk showing around it: the desk beside the
    sheet used to read as ink, and its edge as a "1" (22 of these 100 empty frames)."""
    from mnist_edge.device.data import mnist as data
    from mnist_edge.device.reading import decision, pipeline

    clf = device_model.load(bundled.NAMES["robust"])
    rng = np.random.default_rng(99)
    frames = [synth.empty(rng, "desk") for _ in range(100)]
    majority = [f for f in frames if np.median(f) > 0.5]
    assert len(majority) >= 30
    assert sum(bool(pipeline.cut(f)) for f in majority) <= 5
    read = sum(decision.read(clf, f, min_confidence=0.5)[0].digit is not None for f in frames)
    assert read <= 3
    x, y = data.load_split("test")
    photos = [(synth.photo(x[i], rng, "desk"), int(y[i])) for i in range(40)]
    right = sum(decision.read(clf, f)[0].digit == d for f, d in photos)
    assert right >= 38  # the digit on the sheet is still found


def test_a_bright_spot_in_the_dark_is_no_digit():
    """A lamp or a reflection in a dark scene read as a 0 (57 of 60, bench/dark_scenes.py):
    the robust model learns filled blobs of light as "no digit" (train/augment.py lights),
    and the second reading leaves such frames alone. Measured here: 3 of these 20 read a
    digit with the model trained on reading revision 9's crops (the largest discs, r 38-39,
    as 0 at 52-95%), none with the model before on the same crops (bench/dark_scenes.py:
    bright spots 7 of 60 against 2): a loss of the retraining, bounded here."""
    from mnist_edge.device.reading import decision

    clf = device_model.load(bundled.NAMES["robust"])
    rng = np.random.default_rng(12)
    yy, xx = np.mgrid[0:480, 0:640]
    read = 0
    for _ in range(20):
        g = np.full((480, 640), rng.uniform(0.02, 0.2), np.float32)
        y, x, r = rng.integers(50, 400), rng.integers(50, 560), rng.integers(5, 40)
        g[(yy - y) ** 2 + (xx - x) ** 2 < r * r] = rng.uniform(0.6, 1)
        read += decision.read(clf, g, min_confidence=0.5)[0].digit is not None
    assert read <= 3
