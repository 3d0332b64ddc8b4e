"""`mnist-edge check` as a CI gate: every verdict path, the user's own data (ImageFolder, IDX),
and the reports CI systems read (JUnit XML, Markdown, the GitHub step summary)."""

from __future__ import annotations

import json
import shutil
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from mnist_edge.device.cli import app
from mnist_edge.device.evaluation import evaluate, synth
from mnist_edge.device.inference import model as device_model

from .conftest import BUNDLED, write_idx

runner = CliRunner()
INT8 = BUNDLED / "mnist_cnn_int8.tflite"
FLOAT32 = BUNDLED / "mnist_cnn_float32.tflite"


def run(*args: str, **kw):
    return runner.invoke(app, ["check", *args], **kw)


def rows(res) -> list[dict]:
    return [json.loads(line) for line in res.stdout.splitlines()]


def test_reference_in_the_run_passes():
    res = run("--model", str(FLOAT32), "--model", str(INT8), "--limit", "1000", "--json")
    assert res.exit_code == 0, res.stderr
    ref, q, summary = rows(res)
    assert ref["role"] == "reference" and ref["passed"] is None and ref["verdict"] == "reference"
    assert q["reference"] == str(FLOAT32) and q["passed"] is True and q["schema"] == 2
    assert summary["passed"] is True and summary["min_agreement_pct"] == 99.0


def test_quantized_model_alone_takes_the_reference_from_its_manifest():
    res = run("--model", str(INT8), "--limit", "1000", "--json")
    assert res.exit_code == 0, res.stderr
    q, ref, summary = rows(res)
    assert Path(q["reference"]).name == "mnist_cnn_float32.tflite" and q["agreement"] >= 0.99
    assert ref["role"] == "reference" and summary["passed"] is True


def _broken_copy(tmp_path: Path, with_reference: bool) -> Path:
    """The bundled int8 model beside a manifest whose float32 reference is far more accurate
    than it: its own recorded gate FAILED (as convert --calibration blank writes it)."""
    folder = tmp_path / "broken"
    folder.mkdir()
    shutil.copy(INT8, folder / INT8.name)
    manifest = json.loads((BUNDLED / "manifest.json").read_text())
    for m in manifest["models"]:
        if m["file"] == INT8.name:
            m["gate"] = "FAIL"
    manifest["gate"].update(passed=False, failures=[f"{INT8.name}: accuracy 8.92% is 90.15 pp below"])
    if with_reference:
        shutil.copy(FLOAT32, folder / FLOAT32.name)
    (folder / "manifest.json").write_text(json.dumps(manifest))
    return folder / INT8.name


def test_manifest_recording_a_failed_gate_fails_alone(tmp_path):
    res = run("--model", str(_broken_copy(tmp_path, with_reference=False)), "--limit", "500")
    assert res.exit_code == 1
    assert "manifest records a failed quantization gate" in res.stderr


def test_weak_model_fails_against_the_manifest_reference(tmp_path, weak_int8):
    """A quantized model far below the float32 its manifest names fails, checked alone."""
    weak = weak_int8
    folder = tmp_path / "weak"
    folder.mkdir()
    shutil.copy(weak, folder / "model_int8.tflite")
    shutil.copy(FLOAT32, folder / "model_float32.tflite")
    (folder / "manifest.json").write_text(json.dumps({"gate": {"reference": "model_float32.tflite"},
                                                      "models": [{"file": "model_int8.tflite"}]}))
    res = run("--model", str(folder / "model_int8.tflite"), "--json")
    assert res.exit_code == 1
    q = rows(res)[0]
    assert q["passed"] is False and "pp below its reference" in q["reason"]
    assert Path(q["reference"]).name == "model_float32.tflite" and q["drop_pp"] > 1


def test_floor_gates_a_model_with_no_reference(weak_int8):
    low = run("--model", str(weak_int8), "--limit", "2000", "--min-accuracy", "99", "--json")
    assert low.exit_code == 1 and "below the floor of 99%" in rows(low)[0]["reason"]
    ok = run("--model", str(weak_int8), "--limit", "2000", "--min-accuracy", "80", "--json")
    assert ok.exit_code == 0 and rows(ok)[0]["passed"] is True


def test_nothing_to_gate_is_not_gated_never_pass(weak_int8):
    alone = weak_int8  # quantized, no manifest, no float model in the run
    res = run("--model", str(alone), "--limit", "500", "--json")
    assert res.exit_code == 0
    model, summary = rows(res)
    assert model["passed"] is None and model["verdict"] == "not gated"
    assert summary["passed"] is None and summary["not_gated"] == [str(alone)]
    text = run("--model", str(alone), "--limit", "500")
    assert "pass" not in text.stdout.replace("passed", "") and "not gated" in text.stdout
    required = run("--model", str(alone), "--limit", "500", "--require-gate")
    assert required.exit_code == 1 and "--require-gate" in required.stderr


def test_explicit_reference_and_same_named_files(tmp_path):
    other = tmp_path / "other"
    other.mkdir()
    shutil.copy(FLOAT32, other / FLOAT32.name)
    res = run("--model", str(FLOAT32), "--model", str(other / FLOAT32.name),
              "--reference", str(FLOAT32), "--limit", "300", "--json")
    assert res.exit_code == 0, res.stderr
    a, b, _ = rows(res)
    assert a["name"] != b["name"] and a["name"].endswith(FLOAT32.name)
    assert [a["role"], b["role"]] == ["reference", "model"] and b["agreement"] == 1.0


def test_thresholds_in_one_unit():
    res = run("--model", str(INT8), "--min-agreement", "0.99")
    assert res.exit_code == 2 and "percentages" in res.stderr and "99" in res.stderr
    assert run("--model", str(INT8), "--max-drop", "-1").exit_code == 2
    assert run("--model", str(FLOAT32), "--model", str(INT8), "--min-agreement", "99.5",
               "--limit", "200").exit_code == 0


def test_limit_beyond_the_data_says_so():
    res = run("--model", str(FLOAT32), "--limit", "20000")
    assert res.exit_code == 0 and "more than the 10,000 images" in res.stderr


def _image_folder(root: Path, test_split, per_class: int = 3) -> Path:
    x, y = test_split
    rng = np.random.default_rng(0)
    for d in range(10):
        (root / str(d)).mkdir(parents=True)
        for n, i in enumerate(np.flatnonzero(y == d)[:per_class]):
            frame = synth.photo(x[i], rng, "plain")
            Image.fromarray((frame * 255).astype(np.uint8)).save(root / str(d) / f"img{n}.png")
    (root / "none").mkdir()
    for n in range(3):
        frame = synth.empty(rng, "plain")
        Image.fromarray((frame * 255).astype(np.uint8)).save(root / "none" / f"blank{n}.png")
    (root / ".DS_Store").write_bytes(b"hidden files are skipped")
    return root


def test_image_folder_gates_a_users_own_images(tmp_path, test_split):
    folder = _image_folder(tmp_path / "mine", test_split)
    res = run("--model", str(INT8), "--images", str(folder), "--json", "--per-class")
    assert res.exit_code == 0, res.stderr
    q = rows(res)[0]
    assert q["images"] == 33 and q["accuracy"] >= 0.9
    text = run("--model", str(INT8), "--images", str(folder), "--per-class")
    assert "none" in text.stdout and "confusion" in text.stdout


def _empty(folder: Path) -> None:
    shutil.rmtree(folder)
    folder.mkdir()


@pytest.mark.parametrize("damage, message", [
    (lambda f: (f / "seven").mkdir(), "'seven' is not a class folder name"),
    (lambda f: _empty(f / "4"), "empty class folder"),
    (lambda f: (f / "2" / "notes.txt").write_text("hi"), "not an image file"),
    (lambda f: (f / "3" / "bad.png").write_bytes(b"\x89PNG\r\n\x1a\n broken"), "not an image in a supported"),
])
def test_image_folder_problems_are_one_line_exit_2(tmp_path, test_split, damage, message):
    folder = _image_folder(tmp_path / "mine", test_split, per_class=1)
    damage(folder)
    res = run("--model", str(INT8), "--images", str(folder))
    assert res.exit_code == 2 and message in res.stderr
    assert res.stderr.strip().count("\n") == 0 and "Traceback" not in res.stderr


def test_idx_pair_matches_the_python_api(tmp_path, test_split):
    x, y = test_split[0][:700], test_split[1][:700]
    rng = np.random.default_rng(1)
    noisy = np.clip(x + rng.integers(0, 90, x.shape), 0, 255).astype(np.uint8)
    write_idx(tmp_path / "imgs-idx3-ubyte.gz", noisy)
    write_idx(tmp_path / "labels-idx1-ubyte", y)
    res = run("--model", str(INT8), "--idx", str(tmp_path / "imgs-idx3-ubyte.gz"),
              str(tmp_path / "labels-idx1-ubyte"), "--json")
    assert res.exit_code == 0, res.stderr
    expected = evaluate.measure(device_model.load(INT8), noisy, y).accuracy
    assert rows(res)[0]["accuracy"] == round(expected, 6)
    bad = run("--model", str(INT8), "--idx", str(tmp_path / "labels-idx1-ubyte"),
              str(tmp_path / "labels-idx1-ubyte"))
    assert bad.exit_code == 2 and bad.stderr.count("\n") == 1


def test_reports_for_ci(tmp_path, monkeypatch, weak_int8):
    summary = tmp_path / "summary.md"
    summary.write_text("earlier step\n")
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    weak = weak_int8
    res = run("--model", str(FLOAT32), "--model", str(INT8), "--model", str(weak),
              "--limit", "500", "--junit", str(tmp_path / "junit.xml"),
              "--markdown", str(tmp_path / "check.md"))
    assert res.exit_code == 1
    suite = ET.parse(tmp_path / "junit.xml").getroot().find("testsuite")
    assert suite is not None
    cases = {c.get("name"): c for c in suite.findall("testcase")}
    assert suite.get("tests") == "3" and suite.get("failures") == "1"
    failure = cases[weak.name].find("failure")
    assert failure is not None and (failure.get("message") or "").startswith("accuracy")
    assert cases[INT8.name].find("failure") is None and cases[INT8.name].find("skipped") is None
    assert cases[FLOAT32.name].find("skipped") is not None
    md = (tmp_path / "check.md").read_text()
    assert f"| `{weak.name}` |" in md and "FAIL" in md
    appended = summary.read_text()
    assert appended.startswith("earlier step\n") and "| `mnist_cnn_int8.tflite` |" in appended


def test_unwritable_report_is_one_line_exit_2(tmp_path):
    (tmp_path / "a-file").write_text("not a folder")
    res = run("--model", str(FLOAT32), "--limit", "100",
              "--junit", str(tmp_path / "a-file" / "j.xml"))
    assert res.exit_code == 2 and "cannot write" in res.stderr


def test_github_action_runs_the_gate(tmp_path, weak_int8):
    """action.yml's own shell step, run as GitHub would run it, against the bundled model."""
    import os
    import subprocess
    import sys

    import yaml

    root = Path(__file__).resolve().parent.parent
    action = yaml.safe_load((root / "action.yml").read_text())
    step = next(s for s in action["runs"]["steps"] if s.get("name") == "mnist-edge check")
    defaults = {k: str(v.get("default", "")) for k, v in action["inputs"].items()}
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
           "MODELS": str(INT8), "REFERENCE": "", "IMAGES": "", "MAX_DROP": defaults["max-drop"],
           "MIN_AGREEMENT": defaults["min-agreement"], "MIN_ACCURACY": "", "EXTRA": "--limit 300",
           "REQUIRE_GATE": defaults["require-gate"]}
    env.pop("MNIST_EDGE_DATA", None)  # the bundled test split, whatever the working folder
    ok = subprocess.run(["bash", "-c", step["run"]], cwd=tmp_path, env=env,
                        capture_output=True, text=True)
    assert ok.returncode == 0, ok.stderr
    suite = ET.parse(tmp_path / "mnist-edge-check.xml").getroot().find("testsuite")
    assert suite is not None and suite.get("failures") == "0"
    env["MODELS"] = str(weak_int8)  # no manifest, no floor: require-gate fails the job
    ungated = subprocess.run(["bash", "-c", step["run"]], cwd=tmp_path, env=env,
                             capture_output=True, text=True)
    assert ungated.returncode == 1 and "not gated" in ungated.stderr


def test_manifest_fail_without_failure_text_still_says_why(tmp_path):
    path = _broken_copy(tmp_path, with_reference=False)
    manifest = json.loads((path.parent / "manifest.json").read_text())
    manifest["gate"]["failures"] = []
    (path.parent / "manifest.json").write_text(json.dumps(manifest))
    res = run("--model", str(path), "--limit", "300", "--json")
    assert res.exit_code == 1
    assert rows(res)[0]["reason"].endswith("failed quantization gate: gate: FAIL")


def _result(correct: int):
    """A ModelResult on 100 images (labels 0..9 x 10) with `correct` of them right."""
    labels = np.repeat(np.arange(10), 10)
    preds = labels.copy()
    preds[correct:] = (labels[correct:] + 1) % 10
    return evaluate.ModelResult(model=f"m{correct}", accuracy=correct / 100, predictions=preds,
                                quantized=True), labels


def test_gate_at_exactly_the_limits_passes_and_a_hair_beyond_fails():
    """Ratios of image counts meet float rounding at the limit: (0.99 - 0.97) * 100 is
    2.0000000000000018, yet a drop of exactly --max-drop 2 passes, as does exactly
    --min-agreement; one image more fails."""
    ref, _ = _result(99)
    at, _ = _result(97)
    evaluate.compare(at, ref, max_drop_pp=2, min_agreement_pct=98)
    assert at.drop_pp > 2 and at.agreement == 0.98 and at.passed is True
    beyond, _ = _result(96)
    evaluate.compare(beyond, ref, max_drop_pp=2, min_agreement_pct=97)
    assert beyond.passed is False and "pp below" in beyond.reason
    disagree, _ = _result(97)
    evaluate.compare(disagree, ref, max_drop_pp=2, min_agreement_pct=98.01)
    assert disagree.passed is False and "agrees with its reference" in disagree.reason


def test_check_at_exactly_the_measured_drop_and_agreement(weak_int8):
    """The CLI: a damaged int8 model passes at exactly its own drop and agreement, and fails
    when either is 0.2 points stricter (one image of 500)."""
    args = ["--model", str(FLOAT32), "--model", str(weak_int8), "--limit", "500", "--json"]
    q = rows(run(*args))[1]
    drop, agree = q["drop_pp"], round(q["agreement"] * 100, 4)
    assert drop > 1 and agree < 99
    exact = run(*args, "--max-drop", f"{drop:g}", "--min-agreement", f"{agree:g}")
    assert exact.exit_code == 0, exact.stderr
    assert run(*args, "--max-drop", f"{drop - 0.2:g}", "--min-agreement", f"{agree:g}").exit_code == 1
    assert run(*args, "--max-drop", f"{drop:g}", "--min-agreement", f"{agree + 0.2:g}").exit_code == 1
