"""Which packages the distribution holds, and from where (everything else is pyproject.toml).

One import name, mnist_edge: mnist_edge/device, train and convert are symbolic links to the
top-level folders, so an editable install is a plain path (no import hook). A checkout made
without symbolic links (Git's core.symlinks=false, the default on Windows) has small text files
there instead: the packages are then mapped to the top-level folders directly."""

from pathlib import Path

from setuptools import find_packages, setup

HERE = Path(__file__).resolve().parent
PARTS = ("device", "train", "convert")

if all((HERE / "mnist_edge" / part).is_dir() for part in PARTS):
    # with a simple layout, `pip install -e .` writes a plain .pth (no import hook)
    setup(packages=find_packages(include=["mnist_edge*"]), package_dir={"": "."})
else:
    packages, package_dir = ["mnist_edge"], {"mnist_edge": "mnist_edge"}
    for part in PARTS:
        for sub in ["", *(f".{s}" for s in find_packages(part))]:
            packages.append(f"mnist_edge.{part}{sub}")
            package_dir[f"mnist_edge.{part}{sub}"] = part + sub.replace(".", "/")
    setup(packages=packages, package_dir=package_dir)
