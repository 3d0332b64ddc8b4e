"""The wheel installs one import name, mnist_edge, and takes its version from one place."""

from __future__ import annotations

import shutil
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


@pytest.mark.slow
def test_mypy_resolves_our_modules_in_every_folder(tmp_path):
    """mypy sees train/, device/ and the tests through real module names: a wrong argument to a
    device function, injected into a copy of train/, is an error (with `Any` it would pass)."""
    pytest.importorskip("mypy")
    copy = tmp_path / "repo"
    skip = shutil.ignore_patterns(".venv", ".git", "node_modules", "build", "models", "*.egg-info",
                                  ".mypy_cache", "__pycache__", ".pytest_cache", "ci-reports")
    shutil.copytree(ROOT, copy, symlinks=True, ignore=skip)
    (copy / "models").mkdir()
    (copy / "train" / "injected.py").write_text(
        "from mnist_edge.device.inference import bundled\n\n\n"
        "def wrong() -> None:\n    bundled.resolve(3.5)\n")
    res = subprocess.run([sys.executable, "-m", "mypy", "--no-incremental"], cwd=copy,
                         capture_output=True, text=True)
    assert res.returncode == 1, res.stdout + res.stderr
    assert 'mnist_edge/train/injected.py:5: error: Argument 1 to "resolve"' in res.stdout
    assert res.stdout.count("error:") == 1, res.stdout
