"""make reproduce's verdict (train/prefix.py) without training: the weights' hash, else the
same training data and the weights' move alike (another CPU rounds otherwise), else a failure."""

from __future__ import annotations

import json

import numpy as np
import pytest

from mnist_edge.train import prefix


class Weights:
    def __init__(self, arrays: list[np.ndarray]) -> None:
        self.arrays = arrays

    def get_weights(self) -> list[np.ndarray]:
        return self.arrays


@pytest.fixture
def run(tmp_path, monkeypatch):
    """report() on a run from fixed start weights, moved by `move`, on `data`; the record
    is the run with move 1 on data 0 (as make record-prefixes writes it)."""
    rng = np.random.default_rng(0)
    start = [rng.normal(size=(3, 3, 1, 8)).astype(np.float32), rng.normal(size=8).astype(np.float32)]
    step = [rng.normal(size=a.shape).astype(np.float32) * 0.01 for a in start]
    monkeypatch.setattr(prefix, "RECORD", tmp_path / "prefixes.json")

    def report(move: list[np.ndarray], data: int) -> tuple[int, str]:
        monkeypatch.setattr(prefix, "_data", prefix.hashlib.sha256())
        prefix._start[:] = start
        prefix.saw(np.full((4, 28, 28), data, np.uint8), np.arange(4))
        code = prefix.report("robust", 30, Weights([a + m for a, m in zip(start, move, strict=True)]),
                             tmp_path, 1.0)
        return code, (tmp_path / "prefix-robust.json").read_text()

    code, facts = report(step, 0)
    record = json.loads(facts)
    record.pop("seconds")
    prefix.RECORD.write_text(json.dumps({"robust": record}))
    return report, step


def test_the_same_weights_pass(run, capsys):
    report, step = run
    assert report(step, 0)[0] == 0 and "identical to the recorded one" in capsys.readouterr().out


def test_rounding_elsewhere_passes_a_changed_move_fails(run, capsys):
    """A move off by rounding (1e-4 of it, here) passes; one 5% longer, or another way, fails."""
    report, step = run
    noise = np.random.default_rng(1)
    rounded = [m * (1 + 1e-4 * noise.normal(size=m.shape)).astype(np.float32) for m in step]
    assert report(rounded, 0)[0] == 0
    assert "the same recipe, rounded otherwise" in capsys.readouterr().out
    assert report([m * 1.05 for m in step], 0)[0] == 1
    assert "DIFFERS from the recorded one's" in capsys.readouterr().out
    other = [np.roll(m, 1) for m in step]
    assert report(other, 0)[0] == 1


def test_other_training_data_fails_whatever_the_move(run, capsys):
    report, step = run
    code, facts = report(step, 1)
    assert code == 1 and "training data DIFFERS" in capsys.readouterr().out
    assert json.loads(facts)["data_sha256"] != json.loads(prefix.RECORD.read_text())["robust"]["data_sha256"]


def test_sketch_is_fixed_and_linear():
    """The same move sketches the same way in every run; twice the move, twice the sketch."""
    start = [np.zeros((5, 4)), np.zeros(3)]
    move = [np.arange(20.0).reshape(5, 4), np.ones(3)]
    a = prefix.sketch(start, move)
    assert np.array_equal(a, prefix.sketch(start, move)) and a.shape == (prefix.SKETCH,)
    assert np.allclose(prefix.sketch(start, [2 * m for m in move]), 2 * a)
    assert prefix.alike(list(a), a) == pytest.approx((1.0, 0.0))
