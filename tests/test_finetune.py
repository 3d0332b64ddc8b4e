"""Learning a writer's own handwriting, end to end: examples saved by `classify --save-to`, the
fine-tune (TensorFlow, marked slow; CI runs it), conversion, the personalised gate, install and
rollback. The writer is a child who writes 3 and 4 mirrored (the default reads them as 8 and
"no digit"); the gate's conditions are also checked one by one without TensorFlow."""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

import mnist_edge.train
from mnist_edge.device.cli import app
from mnist_edge.device.evaluation import personal
from mnist_edge.device.evaluation.evaluate import ModelResult
from mnist_edge.device.inference import bundled

from .conftest import ROOT, mnist_dir, photo_of

BASE = Path(mnist_edge.train.__file__).parent / "base" / "mnist_robust.keras"  # as installed
MIRRORED = (3, 4)
PASSES = 12  # the writer's digits, each of 0-9 this many times before the camera


def cli(*args: str):
    return CliRunner().invoke(app, list(args))


def test_the_shipped_base_is_the_model_the_bundled_default_was_converted_from():
    manifest = json.loads((bundled.MODELS_DIR / "robust" / "manifest.json").read_text())
    assert hashlib.sha256(BASE.read_bytes()).hexdigest() == manifest["source_model"]["sha256"]


def _result(predictions: list[int], accuracy: float, passed: bool | None = True) -> ModelResult:
    return ModelResult(model="m", accuracy=accuracy, predictions=np.array(predictions),
                       quantized=True, passed=passed)


@pytest.mark.parametrize("writer_after, mnist_after, quant, failures", [
    ([3, 4, 5, 6], 0.9950, True, []),                        # error falls 2 -> 0, MNIST holds
    ([3, 8, 5, 6], 0.9950, True, []),                        # 2 -> 1: falls
    ([8, 0, 5, 6], 0.9950, True, ["did not fall"]),          # 2 -> 2: no better for the writer
    ([3, 4, 5, 6], 0.9918, True, ["pp below the baseline"]),  # 0.31 pp worse on MNIST
    ([3, 4, 5, 6], 0.9919, True, []),                        # exactly 0.3 pp: allowed
    ([3, 4, 5, 6], 0.9950, False, ["quantization gate"]),
])
def test_the_gate_passes_only_when_the_writer_gains_and_mnist_holds(writer_after, mnist_after,
                                                                   quant, failures):
    labels = np.array([3, 4, 5, 6])
    writer = personal.Comparison("writer", _result([8, 0, 5, 6], 0.5), _result(writer_after, 0), labels)
    mnist_labels = np.zeros(4, np.int64)
    mnist = personal.Comparison("MNIST test", _result([0] * 4, 0.9949),
                                _result([0] * 4, mnist_after, quant), mnist_labels)
    verdict = personal.judge(mnist.personal, mnist, writer)
    assert verdict.passed == (not failures)
    for expected, got in zip(failures, verdict.failures, strict=True):
        assert expected in got
    report = personal.as_json(verdict, "base", "mine")
    assert report["writer"]["per_label"][0] == {"label": "3", "images": 1, "baseline_errors": 1,
                                                "personal_errors": int(writer_after[0] != 3)}
    assert "| 3 | 1 | 1 |" in personal.markdown(verdict, "base", "mine")


def test_thin_evidence_is_said_and_the_mnist_drop_printed():
    labels = np.array([3, 4, 4, 4, 4, 4] + [d for d in range(10) for _ in range(5)])
    before = labels.copy()
    before[:2] = 8  # two baseline errors: the 3 and one 4
    after = labels.copy()
    writer = personal.Comparison("writer", _result(before.tolist(), 0.9), _result(after.tolist(), 1),
                                 labels)
    mnist = personal.Comparison("MNIST test", _result([0] * 4, 0.9949),
                                _result([0] * 4, 0.9930), np.zeros(4, np.int64))
    verdict = personal.judge(mnist.personal, mnist, writer)
    assert verdict.passed  # the verdict stands ...
    (few,) = [w for w in verdict.warnings if "too few" in w]  # ... but says it is weak
    assert "56 held-out examples with 2 baseline errors" in few
    assert not any("per digit" in w for w in verdict.warnings)  # every digit has >= 5
    md = personal.markdown(verdict, "base", "mine")
    assert "0.19 pp below (allowed 0.3 pp)" in md and "- warning: 56 held-out" in md
    assert personal.as_json(verdict, "b", "m")["mnist_drop_pp"] == pytest.approx(0.19)
    short = personal.Comparison("writer", writer.baseline, writer.personal, labels)
    short.labels = labels[:6]  # 3 and 4 only: eight digits with no held-out example
    short.baseline = _result(before[:6].tolist(), 0.9)
    short.personal = _result(after[:6].tolist(), 1)
    thin = personal.judge(mnist.personal, mnist, short).warnings
    assert any("per digit below 5: 0 (0), 1 (0), 2 (0), 3 (1)" in w for w in thin), thin


def test_check_baseline_with_the_bundled_models(tmp_path):
    """No TensorFlow: the robust model against the tutorial one on a folder with empty frames
    (the tutorial model cannot say "no digit"): it passes; the other way round it fails (MNIST
    drop 0.41 pp, more errors), exit 1, both reasons named."""
    from mnist_edge.device.evaluation import synth

    folder = tmp_path / "mine"
    (folder / "none").mkdir(parents=True)
    rng = np.random.default_rng(0)
    for i in range(12):  # empty pages with texture, shadows and rules: ink the pipeline passes on
        page = synth.empty(rng, ("textured", "ruled", "shadow", "uneven")[i % 4], base=200)
        Image.fromarray(np.round(page * 255).astype(np.uint8)).save(folder / "none" / f"{i}.png")
    (folder / "7").mkdir()
    Image.open(ROOT / "examples" / "digit7_test0.png").save(folder / "7" / "a.png")
    good = cli("check", "--model", "robust", "--baseline", "tutorial", "--images", str(folder),
               "--json", "--markdown", str(tmp_path / "gate.md"))
    assert good.exit_code == 0, good.output
    report = json.loads(good.stdout)
    assert report["passed"] and report["writer"]["personal_errors"] < report["writer"]["baseline_errors"]
    assert "## Personalised model: PASS" in (tmp_path / "gate.md").read_text()
    bad = cli("check", "--model", "tutorial", "--baseline", "robust", "--images", str(folder))
    assert bad.exit_code == 1
    assert "pp below the baseline" in bad.stderr and "did not fall" in bad.stderr
    assert cli("check", "--model", "robust", "--baseline", "tutorial").exit_code == 2  # no --images


def _writer_frames(folder: Path, per_digit: int) -> Path:
    """Photos of one writer's digits (a handwriting font the default never saw in this
    style), 3 and 4 mirrored, saved through `classify --save-to`."""
    from mnist_edge.train import writers

    files = [f for f in writers.font_files() if "/kalam/" in str(f)]
    x, y = writers.font_digits(per_digit * 30, np.random.default_rng(7), files=files)
    photos = folder.parent / "photos"
    for digit in range(10):
        glyphs = x[y == digit][:per_digit]
        assert len(glyphs) == per_digit
        for i, g in enumerate(glyphs):
            g = np.fliplr(g) if digit in MIRRORED else g
            target = photos / str(digit) / f"{i}.png"
            target.parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(np.round(photo_of(g, seed=100 * digit + i) * 255).astype(np.uint8)).save(target)
        res = cli("classify", str(photos / str(digit)), "--save-to", str(folder), "--label", str(digit))
        assert res.exit_code == 0, res.output
    return folder


@pytest.mark.slow
def test_finetune_convert_gate_install_rollback(tmp_path, capsys):
    pytest.importorskip("tensorflow")
    from mnist_edge.convert.convert import main as convert
    from mnist_edge.train.train import main as train

    examples = _writer_frames(tmp_path / "mine", per_digit=8)
    out = tmp_path / "personal"
    capsys.readouterr()
    assert train(["--finetune", str(examples), "--out", str(out),  # --recipe robust implied
                  "--epochs", "2", "--no-plot", "--data", str(mnist_dir())]) == 0
    said = capsys.readouterr().out
    assert "fine-tuning mnist_robust.keras on 60 of your 80 examples" in said
    assert "epoch 1/2:" in said and "epoch 2/2:" in said and "Epoch 2/2" not in said
    assert f"next: mnist-edge convert --model {out / 'mnist_personal.keras'}" in said
    assert json.loads((out / "train_metrics.json").read_text())["train_images"] == 60
    held = sorted(p.relative_to(out / "heldout") for p in (out / "heldout").rglob("*.png"))
    assert len(held) == 20 and {p.parts[0] for p in held} == {str(d) for d in range(10)}
    assert convert(["--model", str(out / "mnist_personal.keras"), "--data", str(mnist_dir())]) == 0
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["finetune"]["examples"]["count"] == 80
    assert manifest["finetune"]["held_out"] == 20 and manifest["finetune"]["trained_on"] == 60
    gate = cli("check", "--model", str(out / "mnist_personal_int8.tflite"), "--baseline", "robust",
               "--images", str(out / "heldout"), "--json")
    report = json.loads(gate.stdout)
    print(json.dumps({k: report[k] for k in ("passed", "failures")}),
          report["writer"]["baseline_errors"], "->", report["writer"]["personal_errors"],
          report["mnist"]["baseline_accuracy"], "->", report["mnist"]["personal_accuracy"])
    assert report["writer"]["baseline_errors"] >= 3  # the mirrored 3s and 4s
    assert gate.exit_code == 0 and report["passed"], report["failures"]

    mirrored_three = next((out / "heldout" / "3").glob("*.png"))
    assert cli("models", "install", str(out)).exit_code == 0
    assert json.loads(cli("classify", str(mirrored_three), "--json").stdout)["digit"] == 3
    assert cli("models", "rollback").exit_code == 0
    assert json.loads(cli("classify", str(mirrored_three), "--json").stdout)["digit"] != 3


def test_finetune_implies_the_robust_recipe_and_refuses_the_tutorial():
    from mnist_edge.train.train import parse_args

    assert parse_args(["--finetune", "mine"]).recipe == "robust"
    assert parse_args([]).recipe == "tutorial"
    with pytest.raises(SystemExit) as e:
        parse_args(["--recipe", "tutorial", "--finetune", "mine"])
    assert e.value.code == 2


@pytest.mark.slow
def test_unsure_readings_labelled_on_the_page_teach_the_model(tmp_path, capsys):
    """#28.4 end to end: the writer's digits pass before serve's camera (a folder of frames);
    the readings the model is unsure of wait in DIR/.unsure/; a person labels them on the page
    (Chromium, one tap each); those examples fine-tune the default, the gate passes it, and
    once installed it misreads fewer of the writer's frames."""
    pytest.importorskip("tensorflow")
    sync_api = pytest.importorskip("playwright.sync_api")
    from mnist_edge.convert.convert import main as convert
    from mnist_edge.device.live.spool import Spool
    from mnist_edge.train import writers
    from mnist_edge.train.train import main as train

    from .test_serve import Running, _chromium

    files = [f for f in writers.font_files() if "/kalam/" in str(f)]
    x, y = writers.font_digits(30 * PASSES, np.random.default_rng(7), files=files)
    frames = tmp_path / "frames"
    frames.mkdir()
    for i in range(PASSES):  # 0 1 2 ... 9 0 1 ...: each frame a new reading
        for digit in range(10):
            g = x[y == digit][i]
            g = np.fliplr(g) if digit in MIRRORED else g
            photo = np.round(photo_of(g, seed=100 * digit + i) * 255).astype(np.uint8)
            Image.fromarray(photo).save(frames / f"{10 * i + digit:03d}.png")
    mine = tmp_path / "mine"
    server = Running(str(frames), stable=1)
    server.state.collect = mine
    server.state.spool = Spool(mine)
    try:
        deadline = time.monotonic() + 60
        while server.state.metrics.frames < 10 * PASSES and time.monotonic() < deadline:  # one pass
            time.sleep(0.2)
        server.loop.stop.set()
        items = server.state.spool.items()
        truth = {it["id"]: str(int(it["frame"]) % 10) for it in items}
        assert sum(t in ("3", "4") for t in truth.values()) >= 6, truth  # mirrored ones among them
        with sync_api.sync_playwright() as p:
            browser = _chromium(p)
            page = browser.new_page(viewport={"width": 412, "height": 915})
            page.goto(server.url + "/")
            page.wait_for_selector("#unsure-card", state="visible", timeout=20000)
            assert page.locator("#unsure-grid .tile").count() == len(items)
            page.locator("#unsure-card").screenshot(path=str(ROOT / "ci-reports" / "screenshots" /
                                                              "serve_unsure_grid.png"))
            for key, label in truth.items():
                page.click(f".tile[data-id='{key}'] button[data-label='{label}']")
                page.wait_for_selector(f".tile[data-id='{key}']", state="detached")
            assert not page.is_visible("#unsure-card")
            browser.close()
    finally:
        server.close()
    assert server.state.spool.items() == []
    labelled = {d: len(list((mine / d).glob("*.png"))) for d in "0123456789"}
    assert labelled["3"] + labelled["4"] >= 6 and sum(labelled.values()) == len(truth)
    out = tmp_path / "personal"
    # one epoch: on these 21 skewed examples two cost MNIST 0.37 pp from the model trained on
    # revision 9's crops, and the gate rightly refused (one: held-out errors 5 -> 2, passed)
    assert train(["--finetune", str(mine), "--out", str(out), "--epochs", "1", "--no-plot",
                  "--data", str(mnist_dir())]) == 0
    assert convert(["--model", str(out / "mnist_personal.keras"), "--data", str(mnist_dir())]) == 0
    capsys.readouterr()
    gate = cli("check", "--model", str(out / "mnist_personal_int8.tflite"), "--baseline", "robust",
               "--images", str(out / "heldout"), "--json")
    report = json.loads(gate.stdout)
    print(f"labelled {labelled}; held-out errors {report['writer']['baseline_errors']} -> "
          f"{report['writer']['personal_errors']}")
    assert gate.exit_code == 0 and report["passed"], report["failures"]

    def wrong() -> int:  # the labelled frames the default model misreads
        res = cli("classify", *map(str, mine.glob("[0-9]/*.png")), "--json")
        answers = [json.loads(line) for line in res.stdout.splitlines()]
        return sum(str(a["digit"]) != Path(a["file"]).parent.name for a in answers)

    before = wrong()
    assert cli("models", "install", str(out)).exit_code == 0
    after = wrong()
    print(f"the labelled frames misread: {before} by robust, {after} once installed")
    assert after < before
