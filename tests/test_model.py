"""The runtime wrapper: signatures, quantization, interop models, and broken model files."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mnist_edge.device.errors import BadModelError
from mnist_edge.device.evaluation import evaluate
from mnist_edge.device.inference import model, quant, runtime, safety

from .conftest import BUNDLED, INTEROP

INT8 = BUNDLED / "mnist_cnn_int8.tflite"
FLOAT32 = BUNDLED / "mnist_cnn_float32.tflite"


@given(st.integers(0, 255))
def test_int8_input_is_pixel_minus_128(pixel):
    q = quant.quantize(np.array([pixel / 255.0]), 0.003921568859368563, -128, np.int8)
    assert int(q[0]) == pixel - 128


@settings(max_examples=300)
@given(st.floats(-2, 2), st.floats(1e-3, 0.1), st.integers(-128, 127),
       st.sampled_from([np.int8, np.uint8]))
def test_quantize_round_trip_within_half_step(x, scale, zp, dtype):
    info = np.iinfo(dtype)
    zp = int(np.clip(zp, info.min, info.max))
    q = quant.quantize(np.array([x]), scale, zp, dtype)
    back = float(quant.dequantize(q, scale, zp)[0])
    lo, hi = (info.min - zp) * scale, (info.max - zp) * scale
    assert abs(back - float(np.clip(x, lo, hi))) <= scale / 2 + 1e-6


def test_dequantize_does_not_wrap():
    # uint8 arithmetic would give 3 - 128 = 131; int64 gives -125.
    assert quant.dequantize(np.array([3], np.uint8), 1.0, 128)[0] == -125


def test_bundled_int8_signature():
    clf = model.load(INT8)
    sig = clf.signature()
    assert sig["input"] == {"shape": [1, 28, 28, 1], "dtype": "int8",
                            "quantization": [pytest.approx(1 / 255), -128]}
    assert sig["output"]["dtype"] == "int8" and sig["output_kind"] == "softmax"
    assert clf.quantized and not model.load(FLOAT32).quantized
    p = clf.predict_one(np.zeros((28, 28), np.uint8))[None]
    assert p.shape == (1, 10) and p.sum() == pytest.approx(1.0, abs=0.02)


def test_same_interpreter_is_reused(test_split):
    clf = model.load(INT8)
    interp = clf.interpreter
    evaluate.predict_all(clf, test_split[0][:5])
    assert clf.interpreter is interp


INTEROP_MODELS = json.loads((INTEROP / "models.json").read_text()) if INTEROP.is_dir() else []


@pytest.mark.slow
@pytest.mark.parametrize("entry", INTEROP_MODELS, ids=lambda e: e["file"])
def test_interop_models_reach_listed_accuracy(entry, test_split):
    """Third-party models, no per-model options: accuracy as listed in models.json."""
    clf = model.load(INTEROP / entry["file"])
    x, y = test_split
    acc = evaluate.measure(clf, x, y).accuracy
    assert acc == pytest.approx(entry["test_accuracy"], abs=0.0005)


def test_logits_model_gives_probabilities(test_split):
    path = INTEROP / "acemyzoe_float_28x28_logits.tflite"
    if not path.exists():
        pytest.skip("../shared/interop absent")
    clf = model.load(path)
    assert clf.output_kind == "logits"
    p = evaluate.predict_all(clf, test_split[0][:3])
    assert np.allclose(p.sum(axis=1), 1.0, atol=1e-5) and (p >= 0).all()


def _bad(tmp_path, payload: bytes):
    path = tmp_path / "model.tflite"
    path.write_bytes(payload)
    return path


@pytest.mark.parametrize(
    "payload, reason",
    [
        (b"", "no TFL3 identifier"),
        (b"\x89PNG\r\n\x1a\n" + bytes(100), "no TFL3 identifier"),
        (b"\x00\x00\x00\x00TFL3", "no TFL3 identifier"),  # the 8-byte stub
        (b"\x1c\x00\x00\x00TFL3" + bytes(64), "not a valid TFLite model"),
    ],
)
def test_broken_models_are_refused(tmp_path, payload, reason):
    with pytest.raises(BadModelError, match=reason):
        model.load(_bad(tmp_path, payload))


def test_random_bytes_are_refused(tmp_path):
    rng = np.random.default_rng(0)
    for _ in range(20):
        blob = bytearray(rng.integers(0, 256, 2000, dtype=np.uint8).tobytes())
        blob[4:8] = b"TFL3"
        with pytest.raises(BadModelError):
            model.load(_bad(tmp_path, bytes(blob)))


def test_prefixes_of_a_real_model(tmp_path):
    """Every truncation of the int8 model (sampled) is refused cleanly, never crashes."""
    blob = INT8.read_bytes()
    for cut in list(range(0, 64)) + list(range(64, len(blob), 997)):
        with pytest.raises(BadModelError):
            model.load(_bad(tmp_path, blob[:cut]), trust_model=True)


def test_size_cap(tmp_path, monkeypatch):
    monkeypatch.setattr(safety, "MAX_MODEL_BYTES", 1000)
    with pytest.raises(BadModelError, match="size cap"):
        model.load(FLOAT32)


def test_missing_and_folder(tmp_path):
    with pytest.raises(BadModelError, match="no such model file"):
        model.load(tmp_path / "nope.tflite")
    with pytest.raises(BadModelError, match="is a folder"):
        model.load(tmp_path)


def test_manifest_mismatch_is_refused_unless_trusted(tmp_path):
    shutil.copy(INT8, tmp_path / INT8.name)
    manifest = json.loads((BUNDLED / "manifest.json").read_text())
    (tmp_path / "manifest.json").write_text(json.dumps(manifest))
    model.load(tmp_path / INT8.name)  # matches
    for entry in manifest["models"]:  # as if the file had changed since it was measured
        entry["sha256"] = "0" * 64
    (tmp_path / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(BadModelError, match="differs from manifest.json"):
        model.load(tmp_path / INT8.name)
    model.load(tmp_path / INT8.name, trust_model=True)


def test_unknown_runtime_name_is_usage_exit_2(monkeypatch):
    """--runtime bogus and MNIST_EDGE_RUNTIME=bogus: the same error, exit 2."""
    from mnist_edge.device.errors import UsageError

    with pytest.raises(UsageError, match="--runtime: unknown runtime") as err:
        runtime.choose("onnx")
    assert err.value.exit_code == 2
    monkeypatch.setenv("MNIST_EDGE_RUNTIME", "bogus")
    with pytest.raises(UsageError, match="MNIST_EDGE_RUNTIME: unknown runtime"):
        runtime.choose()


def test_runtime_env_var(monkeypatch):
    monkeypatch.setenv("MNIST_EDGE_RUNTIME", "litert")
    assert runtime.choose().name == "litert"


class _CrashingInterpreter:
    """Stands in for a native runtime that a crafted model kills or hangs."""

    mode = "segv"

    def __init__(self, model_content, num_threads=None):
        import os
        import signal
        import time

        if self.mode == "segv":
            os.kill(os.getpid(), signal.SIGSEGV)
        time.sleep(60)


@pytest.mark.parametrize("mode, reason", [("segv", "crashed .*SIGSEGV"),
                                          ("hang", "did not finish loading")])
def test_crashing_runtime_becomes_an_error(tmp_path, monkeypatch, mode, reason):
    monkeypatch.setattr(_CrashingInterpreter, "mode", mode)
    monkeypatch.setattr(safety, "TRIAL_TIMEOUT", 1.0)
    fake = runtime.Runtime("litert", _CrashingInterpreter)
    path = tmp_path / "evil.tflite"
    path.write_bytes(INT8.read_bytes())
    with pytest.raises(BadModelError, match=reason):
        model.load(path, runtime=fake)


def test_listed_models_skip_the_trial(monkeypatch, weak_int8):
    calls = []
    monkeypatch.setattr(safety, "trial_load", lambda *a: calls.append(a))
    model.load(INT8)  # the bundled manifest lists it with its hash
    assert calls == []
    model.load(weak_int8)  # no manifest: tried in a child process first
    assert len(calls) == 1


@settings(max_examples=int(__import__("os").environ.get("MNIST_EDGE_FUZZ", 60)), deadline=None)
@given(st.lists(st.tuples(st.integers(0, 105_000), st.integers(1, 255)), min_size=1, max_size=4))
def test_fuzz_flipped_model_bytes(tmp_path_factory, flips):
    """Flipped bytes anywhere in the int8 model: loads and predicts, or BadModelError."""
    blob = bytearray(INT8.read_bytes())
    for pos, x in flips:
        blob[pos % len(blob)] ^= x
    path = tmp_path_factory.mktemp("fuzz") / "m.tflite"
    path.write_bytes(bytes(blob))
    try:
        clf = model.load(path)
    except BadModelError:
        return
    p = clf.predict_one(np.zeros((28, 28), np.uint8))[None]
    assert p.shape == (1, 10)


@pytest.mark.slow
def test_every_prefix_of_the_int8_model(tmp_path):
    """All 105k truncations, in-process (a native crash would kill the test run): each is
    refused with BadModelError, or loads and gives the full model's answer."""
    blob = INT8.read_bytes()
    full = model.load(INT8).predict_one(np.full((28, 28), 80, np.uint8))
    path = tmp_path / "m.tflite"
    loaded = []
    for cut in range(len(blob)):
        path.write_bytes(blob[:cut])
        try:
            clf = model.load(path, isolate=False)
        except BadModelError:
            continue
        loaded.append(cut)
        assert np.allclose(clf.predict_one(np.full((28, 28), 80, np.uint8)), full)
    assert len(loaded) < 64  # at most trailing padding can go missing
