"""The wheel installs one import name, mnist_edge, and takes its version from one place."""

from __future__ import annotations

import os
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


@pytest.mark.slow
def test_a_checkout_without_symlinks_builds_the_same_wheel(tmp_path):
    """Git's core.symlinks=false (Windows' default) leaves mnist_edge/device, train and convert
    as text files: setup.py maps the packages to the top-level folders, and the wheel holds the
    same files as one built from a checkout with links."""
    copy = tmp_path / "checkout"
    files = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True,
                           check=True).stdout.decode().split("\0")
    for name in filter(None, files):
        source, target = ROOT / name, copy / name
        target.parent.mkdir(parents=True, exist_ok=True)
        if source.is_symlink():  # as Git writes a link when it may not make one
            target.write_text(os.readlink(source))
        else:
            shutil.copy2(source, target)
    assert (copy / "mnist_edge" / "device").is_file()
    wheels = {}
    for name, src in (("links", ROOT), ("no-links", copy)):
        subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w",
                        str(tmp_path / name), str(src)], check=True, capture_output=True)
        (wheel,) = (tmp_path / name).glob("*.whl")
        wheels[name] = sorted(n for n in zipfile.ZipFile(wheel).namelist() if "dist-info" not in n)
    assert wheels["links"] == wheels["no-links"]
    assert "mnist_edge/device/cli/__init__.py" in wheels["no-links"]


@pytest.mark.parametrize("name", ["device", "train", "convert"])
def test_the_top_level_folders_are_not_a_second_import_name(name):
    if not (ROOT / name / "__init__.py").is_file():
        pytest.skip(f"no top-level {name}/ here (an unpacked sdist)")
    res = subprocess.run([sys.executable, "-c", f"import {name}"], cwd=ROOT, capture_output=True,
                         text=True)
    assert res.returncode == 1
    assert f"ImportError: import mnist_edge.{name}, not {name}:" in res.stderr.splitlines()[-1]
