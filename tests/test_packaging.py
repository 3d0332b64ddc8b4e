"""The wheel installs one import name, mnist_edge, and takes its version from one place."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from mnist_edge.device import __version__

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.slow
def test_wheel_installs_only_mnist_edge(tmp_path):
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(tmp_path), str(ROOT)],
                   check=True, capture_output=True)
    (wheel,) = tmp_path.glob("*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert {n.split("/")[0] for n in names} == {"mnist_edge", f"mnist_edge-{__version__}.dist-info"}
    for part in ("device", "train", "convert"):
        assert f"mnist_edge/{part}/__init__.py" in names
    for data in ("device/models/robust/mnist_robust_int8.tflite", "device/models/robust/manifest.json",
                 "device/models/tutorial/mnist_cnn_int8.tflite", "device/live/static/index.html",
                 "device/py.typed"):
        assert f"mnist_edge/{data}" in names
    meta = zipfile.ZipFile(wheel).read(f"mnist_edge-{__version__}.dist-info/METADATA").decode()
    assert f"\nVersion: {__version__}\n" in meta
    entry = zipfile.ZipFile(wheel).read(f"mnist_edge-{__version__}.dist-info/entry_points.txt").decode()
    assert "mnist-edge = mnist_edge.device.cli:main" in entry


def test_version_is_the_packages():
    from typer.testing import CliRunner

    from mnist_edge.device.cli import app

    res = CliRunner().invoke(app, ["--version"])
    assert res.exit_code == 0 and res.output.strip() == f"mnist-edge {__version__}"
