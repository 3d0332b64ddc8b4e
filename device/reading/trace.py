"""What each stage of a reading decided, and on request what it saw.

`classify --debug-dir DIR` writes it (a JSON file and a PNG per stage image); the Python
API returns it with the reading; `serve` shows the model's input from it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass
class Step:
    stage: str
    info: dict[str, Any]


@dataclass
class Trace:
    images: bool = False  # keep each stage's image (costs a copy per stage)
    steps: list[Step] = field(default_factory=list)
    pictures: dict[str, np.ndarray] = field(default_factory=dict, repr=False)

    def add(self, stage: str, image: np.ndarray | None = None, **info: Any) -> None:
        self.steps.append(Step(stage, info))
        if self.images and image is not None:
            name = stage if stage not in self.pictures else f"{stage}_{len(self.steps)}"
            self.pictures[name] = as_uint8(image)

    def to_json(self) -> list[dict[str, Any]]:
        return [{"stage": s.stage, **s.info} for s in self.steps]

    def last(self, stage: str) -> dict[str, Any] | None:
        return next((s.info for s in reversed(self.steps) if s.stage == stage), None)


def as_uint8(image: np.ndarray) -> np.ndarray:
    if image.dtype == np.bool_:
        return image.astype(np.uint8) * 255
    if image.dtype == np.uint8:
        return image.copy()
    return np.round(np.clip(image, 0.0, 1.0) * 255).astype(np.uint8)
