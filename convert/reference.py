"""Record each installable model's reference distribution in a family's manifest.json (what
`convert` records for a model it makes), for a family converted before the measure existed:

    python -m mnist_edge.convert.reference device/models/robust [device/models/tutorial ...]

The measure (device/evaluation/drift.reference) is deterministic: the same model gives the
same figures, so running it again changes nothing."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from mnist_edge.device import atomic
from mnist_edge.device.evaluation import drift
from mnist_edge.device.inference import model as device_model

from .convert import REFERENCED


def add_to(folder: Path) -> list[str]:
    """Measures every int8 and float32 model the manifest lists; returns their names."""
    path = folder / "manifest.json"
    manifest = json.loads(path.read_text())
    done = []
    for entry in manifest["models"]:
        if entry.get("variant") in REFERENCED:
            clf = device_model.load(folder / entry["file"])
            entry["reference_distribution"] = drift.reference(clf)
            done.append(entry["file"])
    atomic.write_json(path, manifest)
    return done


def main(argv: list[str] | None = None) -> int:
    folders = [Path(a) for a in (argv if argv is not None else sys.argv[1:])]
    if not folders:
        print(__doc__, file=sys.stderr)
        return 2
    for folder in folders:
        if not (folder / "manifest.json").is_file():
            print(f"error: {folder}: no manifest.json", file=sys.stderr)
            return 2
        for name in add_to(folder):
            print(f"{folder / name}: reference distribution recorded")
    return 0


if __name__ == "__main__":
    sys.exit(main())
