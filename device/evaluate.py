"""Accuracy, agreement and the quantization gate, shared by `mnist-edge check` and the converter.

The reference is the first non-quantized model; every quantized model is compared with it:
it fails the gate when its accuracy is more than `max_drop_pp` percentage points below the
reference, or when its top-1 agreement with the reference is below `min_agreement`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from .model import Classifier

MAX_DROP_PP = 0.5  # percentage points of accuracy a quantized model may lose
MIN_AGREEMENT = 0.99  # share of test images where it must give the reference's answer


@dataclass
class ModelResult:
    model: str
    accuracy: float
    predictions: np.ndarray
    probabilities: np.ndarray
    quantized: bool
    agreement: float | None = None  # with the reference; None for the reference itself
    drop_pp: float | None = None
    passed: bool = True
    reason: str = ""

    def to_json(self) -> dict[str, object]:
        return {
            "model": self.model,
            "accuracy": round(self.accuracy, 6),
            "agreement": None if self.agreement is None else round(self.agreement, 6),
            "drop_pp": None if self.drop_pp is None else round(self.drop_pp, 4),
            "quantized": self.quantized,
            "passed": self.passed,
        }


def predict_all(
    clf: Classifier, images: np.ndarray, progress: Callable[[int], None] | None = None
) -> np.ndarray:
    """Probabilities (N,10) for uint8 images (N,28,28), one invoke per image."""
    images = np.asarray(images, dtype=np.uint8)
    out = np.empty((len(images), 10), dtype=np.float32)
    step = 500
    for start in range(0, len(images), step):
        for i in range(start, min(start + step, len(images))):
            out[i] = clf.predict_one(images[i])
        if progress:
            progress(min(step, len(images) - start))
    return out


def measure(clf: Classifier, images: np.ndarray, labels: np.ndarray,
            progress: Callable[[int], None] | None = None) -> ModelResult:
    probs = predict_all(clf, images, progress)
    preds = probs.argmax(axis=1)
    return ModelResult(
        model=str(clf.path),
        accuracy=float((preds == labels).mean()),
        predictions=preds,
        probabilities=probs,
        quantized=clf.quantized,
    )


def apply_gate(
    results: Sequence[ModelResult],
    max_drop_pp: float = MAX_DROP_PP,
    min_agreement: float = MIN_AGREEMENT,
) -> bool:
    """Compare each quantized result with the first non-quantized one; True when all pass."""
    reference = next((r for r in results if not r.quantized), None)
    if reference is None:
        return True  # nothing to compare with: accuracy is reported, no gate applies
    ok = True
    for r in results:
        if r is reference or not r.quantized:
            continue
        r.agreement = float((r.predictions == reference.predictions).mean())
        r.drop_pp = (reference.accuracy - r.accuracy) * 100
        problems = []
        if r.drop_pp > max_drop_pp:
            problems.append(
                f"accuracy {r.accuracy:.2%} is {r.drop_pp:.2f} pp below "
                f"{reference.accuracy:.2%} (allowed {max_drop_pp} pp)"
            )
        if r.agreement < min_agreement:
            problems.append(f"agreement {r.agreement:.2%} is below {min_agreement:.0%}")
        r.passed = not problems
        r.reason = "; ".join(problems)
        ok = ok and r.passed
    return ok
