"""Training and conversion with TensorFlow (marked slow; CI runs them)."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from mnist_edge.convert.c_array import c_source, parse_c_array
from mnist_edge.device.inference import model as device_model

from .conftest import BUNDLED, ROOT, mnist_dir

slow = pytest.mark.slow


def test_c_array_decodes_to_the_same_bytes():
    blob = (BUNDLED / "mnist_cnn_int8.tflite").read_bytes()
    header, source = c_source(blob, "mnist_cnn_int8")
    assert parse_c_array(source) == blob
    assert f"mnist_cnn_int8_len = {len(blob)};" in source and "alignas(16)" in source
    assert "extern const unsigned char mnist_cnn_int8[];" in header


@slow
@pytest.mark.parametrize("variant, params", [("valid", 93_322), ("same", 257_162)])
def test_model_builders(variant, params):
    from mnist_edge.train.model import build_model

    m = build_model(variant)
    assert m.count_params() == params
    assert tuple(m.output_shape) == (None, 10)


@pytest.fixture(scope="module")
def small_model(tmp_path_factory):
    """A quickly trained model: 1 epoch on 4,000 real training images."""
    from mnist_edge.train.train import main

    out = tmp_path_factory.mktemp("small")
    assert main(["--epochs", "1", "--limit", "4000", "--data", str(mnist_dir()),
                 "--out", str(out), "--validation-split", "0.1"]) == 0
    return out


@slow
def test_training_smoke(small_model):
    metrics = json.loads((small_model / "train_metrics.json").read_text())
    history = json.loads((small_model / "history.json").read_text())
    assert metrics["params"] == 93_322 and metrics["train_images"] == 4000
    assert metrics["test_accuracy"] > 0.8  # chance is 0.1
    assert {"loss", "accuracy", "val_loss", "val_accuracy"} <= history.keys()
    assert (small_model / "training_curves.png").read_bytes()[:4] == b"\x89PNG"
    assert not list(small_model.glob(".*"))  # no temp files left behind


@slow
def test_loss_falls(tmp_path):
    from mnist_edge.train.train import main

    assert main(["--epochs", "3", "--limit", "2000", "--data", str(mnist_dir()),
                 "--out", str(tmp_path), "--no-plot"]) == 0
    loss = json.loads((tmp_path / "history.json").read_text())["loss"]
    assert loss[2] < loss[1] < loss[0]


@slow
def test_convert_small_model(small_model, tmp_path):
    from mnist_edge.convert.convert import main

    out = tmp_path / "out"
    code = main(["--model", str(small_model / "mnist_cnn.keras"), "--out", str(out),
                 "--data", str(mnist_dir()), "--representative", "100", "--c-array",
                 "--layer-report", "--max-drop", "2", "--min-agreement", "95",
                 "--bundle-dir", str(tmp_path / "bundle"), "--bundle"])
    assert code == 0
    manifest = json.loads((out / "manifest.json").read_text())
    files = {m["variant"]: m for m in manifest["models"]}
    assert set(files) == {"float32", "float16", "dynamic", "int8"}
    import hashlib

    for m in manifest["models"]:
        blob = (out / m["file"]).read_bytes()
        assert hashlib.sha256(blob).hexdigest() == m["sha256"] and len(blob) == m["bytes"]
        clf = device_model.load(out / m["file"])  # manifest beside it: hash verified
        assert clf.predict_one(np.zeros((28, 28), np.uint8)).shape == (10,)
    assert files["int8"]["input"]["dtype"] == "int8" and files["int8"]["output"]["dtype"] == "int8"
    assert files["float32"]["input"]["dtype"] == "float32"
    assert files["float16"]["bytes"] < files["float32"]["bytes"]
    assert manifest["representative_data"]["count"] == 100
    # the installable variants carry what the device's drift monitor compares the field with
    assert {v for v, m in files.items() if "reference_distribution" in m} == {"int8", "float32"}
    assert abs(sum(files["int8"]["reference_distribution"]["confidence_histogram"]) - 1) < 1e-4
    assert parse_c_array((out / "mnist_cnn_int8.cc").read_text()) == (
        out / "mnist_cnn_int8.tflite").read_bytes()
    assert (out / "int8_layers.csv").read_text().startswith("op_name")
    assert "| mnist_cnn_int8.tflite |" in (out / "report.md").read_text()
    assert sorted(p.name for p in (tmp_path / "bundle").iterdir()) == [
        "manifest.json", "mnist_cnn_float32.tflite", "mnist_cnn_int8.tflite"]
    assert not list(out.glob(".*"))


@slow
def test_gate_fails_on_blank_calibration(small_model, tmp_path):
    """Calibrating int8 on blank images breaks it; convert exits 1 and bundles nothing."""
    from mnist_edge.convert.convert import main

    out = tmp_path / "out"
    code = main(["--model", str(small_model / "mnist_cnn.keras"), "--out", str(out),
                 "--data", str(mnist_dir()), "--calibration", "blank",
                 "--bundle", "--bundle-dir", str(tmp_path / "bundle")])
    assert code == 1
    gate = json.loads((out / "manifest.json").read_text())["gate"]
    assert gate["passed"] is False and "mnist_cnn_int8.tflite" in gate["failures"][0]
    assert not (tmp_path / "bundle").exists()
    res = subprocess.run([sys.executable, "-m", "mnist_edge.device.cli", "check",
                          "--model", str(out / "mnist_cnn_float32.tflite"),
                          "--model", str(out / "mnist_cnn_int8.tflite")],
                         capture_output=True, text=True, cwd=ROOT)
    assert res.returncode == 1 and "pp below" in res.stderr


@slow
def test_failed_conversion_leaves_previous_models(small_model, tmp_path):
    from mnist_edge.convert.convert import main

    out = tmp_path / "out"
    assert main(["--model", str(small_model / "mnist_cnn.keras"), "--out", str(out),
                 "--data", str(mnist_dir()), "--max-drop", "5", "--min-agreement", "90"]) == 0
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    broken = tmp_path / "broken.keras"
    broken.write_bytes(b"PK\x03\x04 not a keras archive")
    assert main(["--model", str(broken), "--out", str(out), "--data", str(mnist_dir())]) == 2
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before


@slow
def test_wrong_shape_models_are_refused(tmp_path):
    import keras
    import tensorflow as tf

    def tflite(inputs, units):
        m = keras.Sequential([keras.Input(inputs), keras.layers.Flatten(),
                              keras.layers.Dense(units)])
        return tf.lite.TFLiteConverter.from_keras_model(m).convert()

    (tmp_path / "in.tflite").write_bytes(tflite((32, 32, 1), 10))
    (tmp_path / "out.tflite").write_bytes(tflite((28, 28, 1), 7))
    with pytest.raises(device_model.BadModelError, match="not a 28x28 image"):
        device_model.load(tmp_path / "in.tflite")
    with pytest.raises(device_model.BadModelError, match="is not 10 digits"):
        device_model.load(tmp_path / "out.tflite")


@slow
def test_full_recipe_reaches_tutorial_accuracy(tmp_path):
    """The tutorial's recipe on all 60k images (about a minute here), then the gate."""
    from mnist_edge.convert.convert import main as convert_main
    from mnist_edge.train.train import main as train_main

    assert train_main(["--data", str(mnist_dir()), "--out", str(tmp_path), "--no-plot"]) == 0
    metrics = json.loads((tmp_path / "train_metrics.json").read_text())
    assert metrics["test_accuracy"] >= 0.990 and metrics["epochs"] == 5
    assert convert_main(["--model", str(tmp_path / "mnist_cnn.keras"),
                         "--data", str(mnist_dir())]) == 0
    models = {m["variant"]: m for m in
              json.loads((tmp_path / "manifest.json").read_text())["models"]}
    assert models["int8"]["drop_pp_vs_float32"] <= 0.1
    assert models["int8"]["agreement_with_float32"] >= 0.999
