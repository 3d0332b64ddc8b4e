"""The models that ship inside the package, by short name.

Two families, each an int8 model and the float32 model it is gated against, with the
manifest.json that `make bundle` / `make bundle-robust` wrote beside them:
  robust            the default: trained for real photos, corruptions and empty frames
  tutorial          the tutorial's CNN, reproduced exactly
  <name>-float32    the float32 reference of either
"""

from __future__ import annotations

from pathlib import Path

MODELS_DIR = Path(__file__).parent.parent / "models"
FAMILIES = {"robust": "mnist_robust", "tutorial": "mnist_cnn"}  # family -> file stem
DEFAULT = "robust"


def path(name: str) -> Path:
    """'robust', 'tutorial-float32', ... -> the bundled file."""
    family, _, variant = name.partition("-")
    return MODELS_DIR / family / f"{FAMILIES[family]}_{variant or 'int8'}.tflite"


NAMES = {f"{f}{v}": path(f"{f}{v}") for f in FAMILIES for v in ("", "-float32")}


def resolve(spec: str | Path | None) -> Path:
    """A bundled or installed model's name (`mnist-edge models list`), or a path as given;
    None is the default model (`mnist-edge models use` chooses it; else robust)."""
    from mnist_edge.device.inference import store

    name = store.default_name() if spec is None else str(spec)
    return store.path_of(name) or Path(spec if spec is not None else NAMES[DEFAULT])


def families() -> list[tuple[Path, Path]]:
    """(float32 reference, int8) of every bundled family that is installed."""
    return [(NAMES[f"{f}-float32"], NAMES[f]) for f in FAMILIES
            if NAMES[f].is_file() and NAMES[f"{f}-float32"].is_file()]
