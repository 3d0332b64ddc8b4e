"""The public API: `from mnist_edge import load_model, read` gives a typed reading."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

import mnist_edge
from mnist_edge.device.errors import BadImageError, BadModelError

from .conftest import ROOT

EXAMPLES = ROOT / "examples"


@pytest.fixture(scope="module")
def model():
    return mnist_edge.load_model()


def test_read_a_file_an_image_and_an_array_alike(model):
    path = EXAMPLES / "digit7_test0.png"
    by_path = mnist_edge.read(path, model)
    by_str = mnist_edge.read(str(path), model)
    with Image.open(path) as img:
        by_image = mnist_edge.read(img, model)
        by_array = mnist_edge.read(np.asarray(img.convert("L")), model)
    for reading in (by_path, by_str, by_image, by_array):
        assert reading.digit == 7 and reading.confidence is not None and reading.confidence > 0.9
        assert reading.why is None and reading.box is not None and len(reading.box) == 4
    assert by_path.describe() == "7 (99.6%)"


def test_no_digit_says_why_and_multi_gives_the_number(model):
    blank = mnist_edge.read(np.full((200, 300), 255, np.uint8), model)
    assert blank.digit is None and blank.why == "no ink" and blank.box is None
    row = mnist_edge.read(EXAMPLES / "number_7210.png", model, multi=True)
    assert row.number == "7210" and [p.digit for p in row.predictions] == [7, 2, 1, 0]


def test_trace_on_request(model):
    assert mnist_edge.read(EXAMPLES / "digit3_test18.jpg", model).trace is None
    trace = mnist_edge.read(EXAMPLES / "digit3_test18.jpg", model, trace=True).trace
    assert trace is not None and {"grey", "decision"} <= {s.stage for s in trace.steps}


def test_errors_are_the_documented_ones(model, tmp_path):
    bad = tmp_path / "not.png"
    bad.write_text("hello")
    with pytest.raises(BadImageError, match="not.png"):
        mnist_edge.read(bad, model)
    with pytest.raises(BadModelError):
        mnist_edge.load_model(tmp_path / "missing.tflite")
    assert mnist_edge.load_model("tutorial").path.name == "mnist_cnn_int8.tflite"
