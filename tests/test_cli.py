"""The `mnist-edge` command line: outputs, JSON keys, exit codes 0/1/2, one-line errors."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from mnist_edge.device.cli import app

from .conftest import BUNDLED, INTEROP, ROOT

runner = CliRunner()
EXAMPLES = sorted((ROOT / "examples").glob("digit*_test*.*"))


def run(*args: str):
    return runner.invoke(app, list(args))


def label_of(path: Path) -> int:
    found = re.match(r"digit(\d)", path.name)
    assert found is not None, path
    return int(found.group(1))


def test_help_and_version():
    res = run("--help")
    assert res.exit_code == 0 and "classify" in res.stdout and "Exit codes" in res.stdout
    assert run("--version").stdout.startswith("mnist-edge ")
    assert run("classify", "--help").exit_code == 0


def test_classify_examples_are_correct():
    assert len(EXAMPLES) >= 10
    res = run("classify", *map(str, EXAMPLES))
    assert res.exit_code == 0, res.stderr
    lines = res.stdout.strip().splitlines()
    for path, line in zip(EXAMPLES, lines, strict=True):
        assert line.startswith(f"{path}: {label_of(path)} ("), line


def test_classify_json_keys():
    res = run("classify", "--json", "--top-k", "3", str(EXAMPLES[0]))
    obj = json.loads(res.stdout)
    assert {"file", "digit", "confidence", "probabilities", "model"} <= obj.keys()
    assert obj["digit"] == label_of(EXAMPLES[0]) and len(obj["probabilities"]) == 10
    # a dequantized int8 softmax sums to 1 within a few output steps (1/256 each)
    assert abs(sum(obj["probabilities"]) - 1) < 0.02 and len(obj["top_k"]) == 3


def test_classify_blank_gives_null(tmp_path):
    blank = tmp_path / "blank.png"
    Image.new("RGB", (64, 64), "white").save(blank)
    res = run("classify", "--json", str(blank))
    assert res.exit_code == 0 and json.loads(res.stdout)["digit"] is None
    assert "no digit found" in run("classify", str(blank)).stdout


def test_classify_multi():
    number = ROOT / "examples" / "number_7210.png"
    res = run("classify", "--multi", "--json", str(number))
    obj = json.loads(res.stdout)
    assert obj["number"] == "7210" and len(obj["digits"]) == 4
    assert all(len(d["bbox"]) == 4 for d in obj["digits"])


def test_classify_folder(tmp_path):
    for path in EXAMPLES[:3]:
        shutil.copy(path, tmp_path / path.name)
    (tmp_path / "notes.txt").write_text("not an image")
    res = run("classify", "--json", str(tmp_path))
    assert res.exit_code == 0
    assert [json.loads(line)["digit"] for line in res.stdout.splitlines()] == [
        label_of(p) for p in EXAMPLES[:3]]
    (tmp_path / "empty").mkdir()
    res = run("classify", str(tmp_path / "empty"))
    assert res.exit_code == 2 and "no image files" in res.stderr


def test_classify_quoted_glob_and_debug_dir(tmp_path):
    res = run("classify", "--debug-dir", str(tmp_path), str(ROOT / "examples" / "digit[0-2]_*"))
    assert res.exit_code == 0 and len(res.stdout.splitlines()) == 3
    saved = sorted(tmp_path.glob("*_28x28.png"))
    assert len(saved) == 3 and Image.open(saved[0]).size == (28, 28)


@pytest.mark.parametrize(
    "content, reason",
    [
        (b"", "empty file"),
        (b"not an image at all", "not an image"),
        (None, "truncated"),
    ],
)
def test_bad_image_one_line_exit_2(tmp_path, content, reason):
    bad = tmp_path / "bad.png"
    if content is None:
        content = EXAMPLES[0].read_bytes()[:300]
    bad.write_bytes(content)
    res = run("classify", str(bad))
    assert res.exit_code == 2
    assert res.stderr.count("\n") == 1 and str(bad) in res.stderr and reason in res.stderr
    assert "Traceback" not in res.stderr + res.stdout


def test_batch_with_a_bad_file_still_classifies_the_rest(tmp_path):
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"\xff\xd8\xff garbage")
    res = run("classify", str(EXAMPLES[0]), str(bad), str(EXAMPLES[1]))
    assert res.exit_code == 2
    assert len(res.stdout.strip().splitlines()) == 2
    assert "bad.jpg" in res.stderr and "1 of 3 files" in res.stderr


def test_broken_model_exit_2(tmp_path):
    bad = tmp_path / "m.tflite"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(64))
    res = run("classify", "--model", str(bad), str(EXAMPLES[0]))
    assert res.exit_code == 2 and res.stderr.strip().count("\n") == 0 and "TFL3" in res.stderr


def test_check_default_bundled_models_pass_json():
    """Both bundled families, each int8 gated against its own float32."""
    res = run("check", "--json")
    assert res.exit_code == 0, res.stderr
    objs = [json.loads(line) for line in res.stdout.splitlines()]
    assert [Path(o["model"]).name for o in objs[:-1]] == [
        "mnist_robust_float32.tflite", "mnist_robust_int8.tflite",
        "mnist_cnn_float32.tflite", "mnist_cnn_int8.tflite"]
    assert objs[1]["reference"] == objs[0]["model"] and objs[3]["reference"] == objs[2]["model"]
    assert objs[0]["agreement"] is None and objs[1]["agreement"] >= 0.99
    assert objs[1]["accuracy"] >= 0.993 and objs[3]["accuracy"] >= 0.99
    assert objs[-1]["passed"] is True and objs[-1]["summary"] is True
    assert {"passed", "max_drop_pp", "min_agreement_pct"} <= objs[-1].keys()


def test_check_gate_fails_with_numbers(weak_int8):
    """A damaged int8 model gated against the bundled float32 model fails, with numbers."""
    res = run("check", "--model", str(BUNDLED / "mnist_cnn_float32.tflite"), "--model",
              str(weak_int8), "--limit", "1000")
    assert res.exit_code == 1
    assert "gate failed" in res.stderr and "pp below" in res.stderr


def test_check_single_model_is_gated_by_its_manifest():
    res = run("check", "--model", str(BUNDLED / "mnist_cnn_int8.tflite"), "--limit", "500")
    assert res.exit_code == 0 and "500 images" in res.stdout and "pass" in res.stdout


def test_check_bad_data_exit_2(tmp_path):
    (tmp_path / "t10k-images-idx3-ubyte").write_bytes(b"\x00\x00\x08\x03junk")
    (tmp_path / "t10k-labels-idx1-ubyte").write_bytes(b"\x00\x00\x08\x01")
    res = run("check", "--data", str(tmp_path))
    assert res.exit_code == 2 and "t10k-images" in res.stderr


def test_bench_json():
    res = run("bench", "--runs", "50", "--warmup", "5", "--json")
    assert res.exit_code == 0, res.stderr
    rows = [json.loads(line) for line in res.stdout.splitlines()]
    for row in rows:
        assert {"model", "runtime", "p50_us", "p95_us", "p99_us", "throughput_per_s",
                "bytes"} <= row.keys()
        assert row["p50_us"] <= row["p95_us"] <= row["p99_us"]
        assert row["batch64_throughput_per_s"] > 0  # our models have a dynamic batch
    fixed = INTEROP / "everylumi_float_28x28x1.tflite"  # batch fixed at 1 in its signature
    if fixed.exists():
        res = run("bench", "--model", str(fixed), "--runs", "20", "--warmup", "2", "--json")
        assert json.loads(res.stdout)["batch64_throughput_per_s"] is None


def test_info_json():
    res = run("info", "--json")
    obj = json.loads(res.stdout)
    assert obj["model"]["input"]["dtype"] == "int8" and obj["runtime"].startswith("litert")
    assert obj["manifest"]["gate"] == "pass"


def test_show(tmp_path):
    out = tmp_path / "d.png"
    res = run("show", "5", "--split", "test", "--out", str(out))
    assert res.exit_code == 0 and "test[5]: label 1" in res.stdout
    assert Image.open(out).size == (280, 280)
    assert run("show", "10000").exit_code == 2


def test_unknown_runtime_is_usage_error():
    assert run("info", "--runtime", "onnx").exit_code == 2


def test_classify_imports_only_what_it_uses():
    """A cold `classify` is mostly imports: what it does not use stays out (pydantic came
    with typer 0.29: +0.05 s; importlib.metadata only for `info`; evaluate's callers, the
    camera, the server and the renderer only for their commands)."""
    code = ("import sys; sys.argv = ['mnist-edge', 'classify', sys.argv[1]];"
            "from mnist_edge.device import cli\n"
            "try: cli.main()\nexcept SystemExit: pass\n"
            "bad = [m for m in ('pydantic', 'importlib.metadata', 'tensorflow', 'cv2', 'starlette',"
            " 'mnist_edge.device.live.serve', 'mnist_edge.device.live.loop',"
            " 'mnist_edge.device.evaluation.synth', 'mnist_edge.device.evaluation.gate')"
            " if m in sys.modules]\n"
            "print('loaded:', bad); sys.exit(1 if bad else 0)")
    res = subprocess.run([sys.executable, "-c", code, str(ROOT / "examples" / "digit7_test0.png")],
                         capture_output=True, text=True)
    assert res.returncode == 0, res.stdout + res.stderr
    assert ": 7 (" in res.stdout


def test_importing_cli_does_not_import_tensorflow():
    code = ("import sys, mnist_edge.device.cli, mnist_edge.device.reading.files,"
            " mnist_edge.device.live.loop, mnist_edge.device.live.sources,"
            " mnist_edge.device.evaluation.evaluate, mnist_edge.device.inference.timing,"
            " mnist_edge.device.inference.doctor;"
            "bad=[m for m in sys.modules if m.split('.')[0] in ('tensorflow','keras')];"
            "print(bad); sys.exit(1 if bad else 0)")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert res.returncode == 0, res.stdout + res.stderr


def test_installed_entry_point_subprocess(tmp_path):
    exe = shutil.which("mnist-edge") or str(Path(sys.executable).parent / "mnist-edge")
    res = subprocess.run([exe, "classify", "--json", str(EXAMPLES[0]), str(tmp_path / "x.png")],
                         capture_output=True, text=True, env={**os.environ, "COLUMNS": "120"})
    assert res.returncode == 2
    assert json.loads(res.stdout.splitlines()[0])["digit"] == label_of(EXAMPLES[0])
    assert res.stderr.strip().splitlines()[0].endswith("x.png: no such file")
    assert "Traceback" not in res.stderr


def test_train_without_tensorflow_hint(monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "tensorflow" else real(name, *a))
    res = run("train", "--epochs", "1")
    assert res.exit_code == 2 and "pip install 'mnist-edge[train]'" in res.stderr


def test_camera_on_frames_folder(tmp_path):
    for i, path in enumerate(EXAMPLES[:4]):
        shutil.copy(path, tmp_path / f"{i:03d}{path.suffix}")
    (tmp_path / "999.png").write_bytes(b"broken")
    res = run("camera", "--source", str(tmp_path), "--json")
    assert res.exit_code == 0, res.stderr
    objs = [json.loads(line) for line in res.stdout.splitlines()]
    # The default ROI is the centred square; these photos have the digit inside it or not,
    # so compare with classify on the same ROI rather than the label.
    assert len(objs) == 4 and all(set(o) >= {"frame", "digit", "probabilities"} for o in objs)
    assert "999.png" in res.stderr and "frames/s" in res.stderr


def test_camera_full_frame_roi_matches_labels(tmp_path):
    """With the ROI the whole frame every example reads right; with the default ROI (a
    centred square) the digits that sit off-centre are cut, so the ROI really is applied."""
    for i, path in enumerate(EXAMPLES[:5]):
        img = Image.open(path).convert("RGB").resize((275, 220))
        img.save(tmp_path / f"{i:03d}_{path.stem}.png")
    res = run("camera", "--source", str(tmp_path), "--roi", "0,0,275,220", "--json")
    full = [json.loads(line) for line in res.stdout.splitlines()]
    assert [o["digit"] for o in full] == [label_of(p) for p in EXAMPLES[:5]]
    tiny = run("camera", "--source", str(tmp_path), "--roi", "0,0,40,40", "--json")
    corner = [json.loads(line) for line in tiny.stdout.splitlines()]
    assert all(o["digit"] is None for o in corner)  # the top-left corner holds no digit


def test_camera_missing_source_exit_2():
    res = run("camera", "--source", "/no/such/video.mp4")
    assert res.exit_code == 2 and "no such file or folder" in res.stderr


def test_camera_absent_webcam_exit_1():
    pytest.importorskip("cv2")
    res = run("camera", "--source", "opencv:97", "--retries", "0")
    assert res.exit_code == 1 and "opencv:97" in res.stderr


def test_classify_mnist_png_matches_model_on_array(tmp_path, test_split, int8_model):
    """classify on an MNIST PNG gives the same probabilities as the model on the array."""
    x, _ = test_split
    path = tmp_path / "digit.png"
    Image.fromarray(x[7]).save(path)
    res = run("classify", "--json", str(path))
    probs = np.array(json.loads(res.stdout)["probabilities"])
    assert np.allclose(probs, int8_model.predict_one(x[7]), atol=1e-5)
