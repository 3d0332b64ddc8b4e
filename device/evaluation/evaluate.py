"""Accuracy, agreement and the quantization gate, shared by `mnist-edge check` and the converter.

Units, everywhere: accuracy and agreement are fractions in results and JSON; thresholds are
given in percent (`min_accuracy_pct`, `min_agreement_pct`) and percentage points
(`max_drop_pp`); a drop is positive when a model is *worse* than its reference.

Verdicts. A model is gated when something trustworthy can be said about it:
- against a reference measured in the same run on the same images: it fails when its
  accuracy is more than `max_drop_pp` below the reference's, or when it gives the
  reference's answer on fewer than `min_agreement_pct` of the images;
- against `min_accuracy_pct`, an absolute floor, when one is given (every model);
- against its manifest, when the manifest beside it records a failed gate.
Otherwise its verdict is "not gated" (`passed is None`): never "pass".
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from mnist_edge.device.inference.model import Classifier
from mnist_edge.device.reading import decision

# Drops and agreements are ratios of image counts in float: at exactly a limit, rounding
# (0.99 - 0.97) * 100 = 2.0000000000000018 must not decide. Far below one image in 10^6.
LIMIT_SLACK = 1e-9
SCHEMA = 2  # of the JSON lines `mnist-edge check --json` prints
MAX_DROP_PP = 0.5  # percentage points of accuracy a quantized model may lose
MIN_AGREEMENT_PCT = 99.0  # percent of images where it must give its reference's answer


@dataclass
class ModelResult:
    model: str  # the path as given
    accuracy: float
    predictions: np.ndarray  # 0-9, or NONE (10) for "no digit"
    quantized: bool
    probabilities: np.ndarray | None = field(default=None, repr=False)
    name: str = ""  # how tables show it: the file name, or more of the path when two clash
    reference: str | None = None  # path of what it was compared with
    reference_accuracy: float | None = None
    agreement: float | None = None
    drop_pp: float | None = None
    passed: bool | None = None  # None: not gated
    reasons: list[str] = field(default_factory=list)
    role: str = "model"  # "reference" when another model of the run was compared with it

    @property
    def reason(self) -> str | None:
        return "; ".join(self.reasons) or None

    @property
    def verdict(self) -> str:
        if self.passed is None:
            return "reference" if self.role == "reference" else "not gated"
        return "pass" if self.passed else "FAIL"

    def to_json(self) -> dict[str, object]:
        return {
            "schema": SCHEMA,
            "model": self.model,
            "name": self.name,
            "accuracy": round(self.accuracy, 6),
            "reference": self.reference,
            "reference_accuracy": None if self.reference_accuracy is None
            else round(self.reference_accuracy, 6),
            "agreement": None if self.agreement is None else round(self.agreement, 6),
            "drop_pp": None if self.drop_pp is None else round(self.drop_pp, 4),
            "quantized": self.quantized,
            "role": self.role,
            "passed": self.passed,
            "verdict": self.verdict,
            "reason": self.reason,
        }


def predict_all(
    clf: Classifier, images: np.ndarray, progress: Callable[[int], None] | None = None
) -> np.ndarray:
    """Probabilities (N, classes) for uint8 images (N,28,28), one invoke per image."""
    images = np.asarray(images, dtype=np.uint8)
    out = np.empty((len(images), clf.classes), dtype=np.float32)
    step = 500
    for start in range(0, len(images), step):
        for i in range(start, min(start + step, len(images))):
            out[i] = clf.predict_one(images[i])
        if progress:
            progress(min(step, len(images) - start))
    return out


def _outputs(clf: Classifier, crops: dict[int, np.ndarray] | None) -> dict[int, np.ndarray]:
    if not crops:
        return {}
    where = sorted(crops)
    return dict(zip(where, predict_all(clf, np.stack([crops[i] for i in where])), strict=True))


def measure(clf: Classifier, images: np.ndarray, labels: np.ndarray,
            progress: Callable[[int], None] | None = None,
            found: np.ndarray | None = None,
            second: dict[int, np.ndarray] | None = None,
            learned: dict[int, np.ndarray] | None = None) -> ModelResult:
    """Run `clf` on every image. Labels are 0-9, or NONE for images that must read "no
    digit"; `found` (bool per image) is False where the preprocessing found no ink, which
    reads "no digit" whatever the model would say. A model's "no digit" output counts as
    its answer when it is the most likely. `second` and `learned` hold the readings
    decision.read may take instead (index -> 28x28 crop: the second reading, the hybrid
    route's learned one). The answer is the one decision rule's
    (device/reading/decision.py), as in `classify`, with no confidence floor."""
    probs = predict_all(clf, images, progress)
    again, other = _outputs(clf, second), _outputs(clf, learned)
    preds = np.array([decision.label(probs[i] if found is None or found[i] else None,
                                     again.get(i), other.get(i)) for i in range(len(probs))], np.int64)
    return ModelResult(
        model=str(clf.path),
        accuracy=float((preds == labels).mean()) if len(labels) else 0.0,
        predictions=preds,
        quantized=clf.quantized,
        probabilities=probs,
    )


def compare(result: ModelResult, reference: ModelResult, max_drop_pp: float = MAX_DROP_PP,
            min_agreement_pct: float = MIN_AGREEMENT_PCT) -> None:
    """Gate `result` against a reference measured on the same images."""
    reference.role = "reference"
    result.reference = reference.model
    result.reference_accuracy = reference.accuracy
    result.agreement = float((result.predictions == reference.predictions).mean())
    result.drop_pp = (reference.accuracy - result.accuracy) * 100
    if result.drop_pp > max_drop_pp + LIMIT_SLACK:
        result.reasons.append(
            f"accuracy {result.accuracy:.2%} is {result.drop_pp:.2f} pp below its reference's "
            f"{reference.accuracy:.2%} (allowed {max_drop_pp:g} pp)")
    if result.agreement * 100 < min_agreement_pct - LIMIT_SLACK:
        result.reasons.append(f"agrees with its reference on {result.agreement:.2%} of the "
                              f"images (required {min_agreement_pct:g}%)")
    _settle(result)


def floor(result: ModelResult, min_accuracy_pct: float) -> None:
    """Gate `result` against an absolute accuracy floor."""
    if result.accuracy * 100 < min_accuracy_pct - LIMIT_SLACK:
        result.reasons.append(f"accuracy {result.accuracy:.2%} is below the floor of "
                              f"{min_accuracy_pct:g}%")
    _settle(result)


def fail(result: ModelResult, reason: str) -> None:
    result.reasons.append(reason)
    _settle(result)


def _settle(result: ModelResult) -> None:
    result.passed = not result.reasons


def overall(results: Sequence[ModelResult]) -> bool | None:
    """False when any model failed; None when none was gated; True otherwise."""
    gated = [r.passed for r in results if r.passed is not None]
    if not gated:
        return None
    return all(gated)


def apply_gate(results: Sequence[ModelResult], max_drop_pp: float = MAX_DROP_PP,
               min_agreement_pct: float = MIN_AGREEMENT_PCT) -> bool | None:
    """The converter's gate: every quantized model against the first non-quantized one."""
    reference = next((r for r in results if not r.quantized), None)
    if reference is not None:
        for r in results:
            if r.quantized:
                compare(r, reference, max_drop_pp, min_agreement_pct)
    return overall(results)


def check_thresholds(max_drop_pp: float, min_agreement_pct: float,
                     min_accuracy_pct: float | None = None) -> str | None:
    """A message when a threshold cannot be meant (wrong unit, out of range), else None."""
    if not 0 <= max_drop_pp <= 100:
        return f"--max-drop {max_drop_pp:g}: give percentage points between 0 and 100"
    for name, value in (("--min-agreement", min_agreement_pct),
                        ("--min-accuracy", min_accuracy_pct)):
        if value is None:
            continue
        if not 0 <= value <= 100:
            return f"{name} {value:g}: give a percentage between 0 and 100"
        if 0 < value <= 1:
            return (f"{name} {value:g}: thresholds are percentages (write {value * 100:g} "
                    f"for {value:.0%}), not fractions")
    return None
