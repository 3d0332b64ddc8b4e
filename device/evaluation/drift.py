"""Field monitoring: is the device as sure of what it reads as the model was on held-out data?

`reference` measures a model's distribution the way the device meets frames: photo-like
renders of held-out MNIST test digits in every paper style, and empty pages, each read by the
whole pipeline (decision.read). The converter records it in the manifest
(`reference_distribution`). `Monitor` keeps the same measures over a sliding window of the
frames the device reads and compares them with it by the population stability index (PSI):
below PSI_DRIFT the state is "ok", at or above it "drift" when the field is less sure than the
reference (one-sided: a camera that reads more surely than the held-out data is no alarm; the
device still works either way: a state to look at, not a failure). The share of "no digit" is
reported beside it, by reason; it is not part of the drift measure, since a camera watching an
empty desk is not a model in trouble.
"""

from __future__ import annotations

import math
import threading
from collections import Counter, deque
from typing import Any

import numpy as np

from mnist_edge.device.reading.decision import LOW_CONFIDENCE, Prediction

# Confidence bins: a softmax's best probability crowds near 1, so the bins do too.
EDGES = (0.0, 0.5, 0.7, 0.8, 0.9, 0.95, 0.98, 0.99, 1.0)
PSI_DRIFT = 0.25  # the usual reading of PSI: < 0.1 stable, 0.1-0.25 moving, > 0.25 shifted
WINDOW = 600  # frames compared (about a minute of a camera at 10 frames/s)
MIN_FRAMES = 200  # frames with a digit before the state says more than "warming up"
SMOOTHING = 0.5  # counts added to each bin of the field's histogram (Laplace)
REPORT_EVERY = 50  # frames between two drift states handed to MQTT (which sends only changes)
EPSILON = 1e-4  # an empty bin's share, so the logarithm stays finite
REFERENCE_DIGITS, REFERENCE_EMPTY, REFERENCE_SEED = 1000, 200, 20261203


def bin_of(confidence: float) -> int:
    """The bin a confidence falls in (1.0 in the last)."""
    for i in range(len(EDGES) - 2, -1, -1):
        if confidence >= EDGES[i]:
            return i
    return 0


def histogram(confidences: list[float], prior: float = 0.0) -> list[float]:
    """Shares per bin; `prior` counts added to each bin first (the field's are smoothed
    with SMOOTHING: a few hundred readings leave bins empty by chance, and an empty bin
    must not read as a shift)."""
    counts = np.full(len(EDGES) - 1, prior)
    for c in confidences:
        counts[bin_of(c)] += 1
    total = counts.sum()
    return [round(float(x), 6) for x in (counts / total if total else counts)]


def psi(expected: list[float], actual: list[float]) -> float:
    """Population stability index of `actual` against `expected` (shares per bin)."""
    total = 0.0
    for e, a in zip(expected, actual, strict=True):
        e, a = max(e, EPSILON), max(a, EPSILON)
        total += (a - e) * math.log(a / e)
    return total


def confidence_of(pred: Prediction) -> float | None:
    """What the drift measure takes from a reading: the best digit's probability when a digit
    was read (or was read below --min-confidence); None for "no digit" of other reasons."""
    if pred.digit is not None or pred.none_reason == LOW_CONFIDENCE:
        return pred.confidence
    return None


def reference(clf: Any, digits: int = REFERENCE_DIGITS, empty: int = REFERENCE_EMPTY,
              seed: int = REFERENCE_SEED, progress: Any = None) -> dict[str, Any]:
    """The model's reference distribution, as the converter records it: the confidence
    histogram over renders of the last `digits` MNIST test digits and the share of "no digit"
    on them and on `empty` empty pages (deterministic: fixed digits, styles and seed)."""
    from mnist_edge.device.data import mnist as data
    from mnist_edge.device.evaluation import synth
    from mnist_edge.device.reading.decision import read

    x, _ = data.load_split("test")
    rng = np.random.default_rng(seed)
    confidences: list[float] = []
    none_digits = none_empty = 0
    for i in range(digits):
        frame = synth.photo(x[len(x) - digits + i], rng, synth.STYLES[i % len(synth.STYLES)])
        c = confidence_of(read(clf, frame)[0])
        if c is None:
            none_digits += 1
        else:
            confidences.append(c)
        if progress:
            progress()
    for i in range(empty):
        frame = synth.empty(rng, synth.STYLES[i % len(synth.STYLES)])
        none_empty += read(clf, frame)[0].digit is None
        if progress:
            progress()
    return {"edges": list(EDGES), "confidence_histogram": histogram(confidences),
            "no_digit_on_digits": round(none_digits / max(1, digits), 4),
            "no_digit_on_empty": round(none_empty / max(1, empty), 4),
            "measured_on": f"renders of the last {digits} MNIST test digits (every paper style of "
                           f"device/evaluation/synth.py) and {empty} empty pages, seed {seed}, "
                           "each read by the whole reading pipeline"}


class Monitor:
    """The field's distribution over the last `window` frames against the reference.
    `observe` is called by the camera loop (cheap: a deque and a counter, under a lock)."""

    def __init__(self, reference_distribution: dict[str, Any] | None, window: int = WINDOW,
                 min_frames: int = MIN_FRAMES, threshold: float = PSI_DRIFT):
        self.window, self.min_frames, self.threshold = window, min_frames, threshold
        self.none_total: Counter[str] = Counter()  # "no digit" by reason, since the start
        self.confidence_counts = [0] * (len(EDGES) - 1)  # since the start, for /metrics
        self.lock = threading.Lock()
        self.reset(reference_distribution)

    def reset(self, reference_distribution: dict[str, Any] | None) -> None:
        """Another model (a reload): its reference, and the window starts again."""
        with self.lock:
            self.reference = reference_distribution
            self.recent: deque[float | None] = deque(maxlen=self.window)  # None: no digit
            self.reasons: deque[str | None] = deque(maxlen=self.window)

    def observe(self, pred: Prediction) -> None:
        c = confidence_of(pred)
        with self.lock:
            self.recent.append(c)
            self.reasons.append(None if c is not None else (pred.none_reason or "none"))
            if c is None:
                self.none_total[pred.none_reason or "none"] += 1
            else:
                self.confidence_counts[bin_of(c)] += 1

    def status(self) -> dict[str, Any]:
        """{"state": "ok" | "drift" | "warming up" | "no reference", "psi", "frames",
        "no_digit_share", "no_digit_by_reason", "window"}."""
        with self.lock:
            read = [c for c in self.recent if c is not None]
            frames = len(self.recent)
            reasons = Counter(r for r in self.reasons if r is not None)
        share = round((frames - len(read)) / frames, 4) if frames else None
        body: dict[str, Any] = {"frames": frames, "window": self.window, "no_digit_share": share,
                                "no_digit_by_reason": dict(reasons), "psi": None}
        if self.reference is None:
            return {**body, "state": "no reference"}
        if len(read) < self.min_frames:
            return {**body, "state": "warming up"}
        expected = self.reference["confidence_histogram"]
        actual = histogram(read, SMOOTHING)
        value = psi(expected, actual)
        body["psi"] = round(value, 4)
        # one-sided: a field surer than the reference (an easy camera) is no alarm
        less_sure = 1 - actual[-1] > 1 - expected[-1]
        return {**body, "state": "drift" if value >= self.threshold and less_sure else "ok"}


def reference_for(clf: Any) -> dict[str, Any] | None:
    """The reference distribution the manifest beside `clf`'s file records for exactly this
    file (same SHA-256), or None."""
    from mnist_edge.device.inference import safety

    entry = safety.manifest_entry(clf.path)
    if not entry or entry.get("sha256") != clf.sha256:
        return None
    found = entry.get("reference_distribution")
    return found if isinstance(found, dict) and "confidence_histogram" in found else None


def summary(status: dict[str, Any]) -> str:
    """One line for people: 'drift: ok (PSI 0.004 over 600 frames; 12.0% no digit)'."""
    share = status["no_digit_share"]
    tail = f"{status['frames']} frames" + ("" if share is None else f"; {share:.1%} no digit")
    psi_text = "" if status["psi"] is None else f"PSI {status['psi']:.3f} over "
    return f"drift: {status['state']} ({psi_text}{tail})"
