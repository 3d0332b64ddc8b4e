"""Field monitoring (#28.3): the reference distribution in the manifests, the drift monitor,
and a video of digits the model reads unsurely against a clean one, through `camera`, serve's
/healthz and /metrics, and MQTT."""

from __future__ import annotations

import functools
import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from mnist_edge.device.evaluation import drift
from mnist_edge.device.inference import bundled
from mnist_edge.device.inference import model as device_model
from mnist_edge.device.reading.decision import LOW_CONFIDENCE, MODEL_NONE, NO_INK, Prediction


def _pred(confidence: float | None, reason: str | None = None) -> Prediction:
    digit = None if reason else 3
    return Prediction(digit, confidence, None, none_reason=reason)


def test_psi_and_bins():
    ref = drift.histogram([0.999] * 90 + [0.6] * 10)
    assert drift.psi(ref, ref) == 0
    assert drift.bin_of(1.0) == len(drift.EDGES) - 2 and drift.bin_of(0.0) == 0
    assert drift.bin_of(0.95) == 5 and drift.bin_of(0.9499) == 4
    assert drift.psi(ref, drift.histogram([0.6] * 50 + [0.999] * 50)) > drift.PSI_DRIFT


def test_monitor_states():
    usual = [0.999] * 70 + [0.3, 0.6, 0.75, 0.85, 0.92, 0.96, 0.985, 0.995, 0.97, 0.93] * 3
    ref = {"confidence_histogram": drift.histogram(usual)}
    m = drift.Monitor(ref, window=200, min_frames=100)
    for c in usual[:99]:
        m.observe(_pred(c))
    assert m.status()["state"] == "warming up" and m.status()["psi"] is None
    for _ in range(10):
        m.observe(_pred(None, NO_INK))  # "no digit" is reported, not part of the drift measure
    m.observe(_pred(usual[99]))
    status = m.status()
    assert status["state"] == "ok" and status["psi"] < 0.1
    assert status["no_digit_by_reason"] == {NO_INK: 10} and status["no_digit_share"] == round(10 / 110, 4)
    surer = drift.Monitor(ref, window=200, min_frames=100)
    for _ in range(200):  # a field surer than the reference: a shift, but no alarm (one-sided)
        surer.observe(_pred(0.9999))
    assert surer.status()["psi"] >= drift.PSI_DRIFT and surer.status()["state"] == "ok"
    for _ in range(200):  # unsure readings (also those below --min-confidence) push the window out
        m.observe(_pred(0.6, LOW_CONFIDENCE if _ % 2 else None))
    status = m.status()
    assert status["state"] == "drift" and status["psi"] >= drift.PSI_DRIFT and status["frames"] == 200
    m.reset(None)
    assert m.status()["state"] == "no reference" and m.status()["frames"] == 0
    assert m.none_total[NO_INK] == 10 and sum(m.confidence_counts) == 300  # since the start
    m.observe(_pred(None, MODEL_NONE))
    assert "drift: no reference (1 frames; 100.0% no digit)" == drift.summary(m.status())


def test_every_bundled_installable_model_has_its_reference():
    for family in ("robust", "tutorial"):
        manifest = json.loads((bundled.MODELS_DIR / family / "manifest.json").read_text())
        for entry in manifest["models"]:
            if entry["variant"] in ("int8", "float32"):
                ref = entry["reference_distribution"]
                assert abs(sum(ref["confidence_histogram"]) - 1) < 1e-4 and ref["edges"] == list(drift.EDGES)
                clf = device_model.load(bundled.MODELS_DIR / family / entry["file"])
                assert drift.reference_for(clf) == ref


@pytest.mark.slow
def test_the_recorded_reference_is_what_the_measure_gives():
    """Deterministic: measuring the bundled default again gives its manifest's figures."""
    clf = device_model.load(bundled.NAMES["robust"])
    assert drift.reference(clf) == drift.reference_for(clf)


def _video(path: Path, unsure: bool, frames: int = 300) -> Path:
    """Photo-like frames of the first MNIST test digits (the reference uses the last 1,000);
    `unsure`: each blended with a digit of another class, which the model reads unsurely."""
    cv2 = pytest.importorskip("cv2")
    from mnist_edge.device.data import mnist as data
    from mnist_edge.device.evaluation import synth

    x, y = data.load_split("test")
    rng = np.random.default_rng(11)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*"MJPG"), 30, (240, 180))
    for i in range(frames):
        digit = x[i].astype(np.float32)
        if unsure:
            j = (i * 7 + 13) % 5000
            while y[j] == y[i]:
                j += 1
            digit = np.maximum(digit, x[j].astype(np.float32)) * 0.8
        frame = synth.photo(np.clip(digit, 0, 255).astype(np.uint8), rng, synth.STYLES[i % len(synth.STYLES)])
        frame = cv2.resize(np.round(frame * 255).astype(np.uint8), (240, 180))
        writer.write(cv2.cvtColor(frame, cv2.COLOR_GRAY2BGR))
    writer.release()
    return path


@pytest.fixture(scope="module")
def videos(tmp_path_factory):
    folder = tmp_path_factory.mktemp("drift")
    return {"clean": _video(folder / "clean.avi", False), "unsure": _video(folder / "unsure.avi", True)}


def test_camera_says_drift_for_unsure_digits_and_ok_for_clean_ones(videos):
    said = {}
    for kind, video in videos.items():
        res = subprocess.run([sys.executable, "-m", "mnist_edge.device.cli", "camera", "--source",
                              str(video), "--no-history"], capture_output=True, text=True, timeout=300)
        assert res.returncode == 0, res.stderr
        said[kind] = res.stderr.strip().splitlines()[-1]
    assert said["clean"].startswith("drift: ok (PSI"), said
    assert said["unsure"].startswith("drift: drift (PSI"), said


def test_serve_reports_drift_in_healthz_and_metrics(videos):
    pytest.importorskip("starlette")
    from starlette.testclient import TestClient

    from mnist_edge.device.live import serve as srv
    from mnist_edge.device.live import sources
    from mnist_edge.device.live.loop import Reader

    clf = device_model.load(bundled.NAMES["robust"])
    for kind, want in (("clean", "ok"), ("unsure", "drift")):
        state = srv.LiveState()
        state.monitor = drift.Monitor(drift.reference_for(clf))
        loop = srv.CameraLoop(functools.partial(sources.open_source, str(videos[kind])), Reader(clf),
                              state, live=False, loop_files=False)
        loop.run()  # plays the video once, in this thread
        client = TestClient(srv.create_app(Reader(clf), state, source_name=str(videos[kind])))
        res = client.get("/healthz")
        assert res.json()["drift"]["state"] == want and res.json()["drift"]["frames"] == 300
        metrics = client.get("/metrics").text
        assert f"mnist_edge_drift {int(want == 'drift')}" in metrics
        assert 'mnist_edge_confidence_bucket{le="+Inf"}' in metrics
        assert re.search(r"^mnist_edge_drift_psi \d+\.\d+$", metrics, re.M)
