"""The one rule that turns model outputs into an answer, used by every caller (classify,
camera, serve, check --images, robustness, the Python API).

An answer is a digit, or "no digit" with its reason: no ink (the pipeline found nothing),
the model's own "no digit" output, or the best digit below the confidence floor. A frame
the pipeline doubts (paper mostly in shadow, device/reading/pipeline.doubt_polarity) is
read a second time as dark ink on paper; the second reading wins only when the first is
no sure digit and the second is one (Params.second_confidence). With the hybrid localiser
(the default), a reading with no sure digit may be followed by the learned route's
(learned_wins says when it replaces the first).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace

import numpy as np

from mnist_edge.device.inference.model import NONE, Classifier

from . import localise, pipeline
from .params import DEFAULT, Params
from .trace import Trace

# Why a reading is "no digit" (the `none_reason` JSON key).
NO_INK = "no ink"  # the preprocessing found nothing digit-like
MODEL_NONE = "model"  # the model's own "no digit" output won
LOW_CONFIDENCE = "below min confidence"  # the best digit was less likely than --min-confidence


@dataclass
class Prediction:
    digit: int | None
    confidence: float | None  # the best digit's probability (also when it was not trusted)
    probabilities: list[float] | None  # the 10 digits' probabilities
    bbox: tuple[int, int, int, int] | None = None
    pixels: np.ndarray | None = field(default=None, repr=False)
    row: int = 0  # with multi: the line of writing, from the top
    no_digit: float | None = None  # probability of "no digit", for models that have it
    none_reason: str | None = None  # why digit is None: NO_INK, MODEL_NONE, LOW_CONFIDENCE
    second_reading: bool = False  # read again as dark ink on paper (paper in shadow)

    def describe(self) -> str:
        """The reading for people: '7 (99.6%)' or 'no digit (why)'."""
        if self.digit is not None:
            return f"{self.digit} ({self.confidence:.1%})"
        if self.none_reason == MODEL_NONE:
            return f"no digit (model: {self.no_digit:.1%} no digit)"
        if self.none_reason == LOW_CONFIDENCE:
            best = int(np.argmax(self.probabilities or [0]))
            return f"no digit (best guess {best} at {self.confidence:.1%}, below --min-confidence)"
        return "no digit found"

    def top_k(self, k: int) -> list[tuple[int, float]]:
        if self.probabilities is None:
            return []
        order = np.argsort(self.probabilities)[::-1][:k]
        return [(int(d), float(self.probabilities[d])) for d in order]


def answer(probs: np.ndarray | None, min_confidence: float = 0.0) -> tuple[int | None, str | None]:
    """The answer one output gives: (digit, None), or (None, why there is none). None for
    `probs` means the pipeline found no ink. With a "no digit" output, that output wins when
    it is the most likely of all."""
    if probs is None:
        return None, NO_INK
    d = int(np.argmax(probs[:NONE]))
    if len(probs) > NONE and probs[NONE] > probs[d]:
        return None, MODEL_NONE
    if probs[d] < min_confidence:
        return None, LOW_CONFIDENCE
    return d, None


def sure(probs: np.ndarray | None, p: Params = DEFAULT) -> bool:
    """A sure digit: a digit answer at p.second_confidence or more."""
    return answer(probs, p.second_confidence)[0] is not None


def second_wins(first: Sequence[np.ndarray | None], second: Sequence[np.ndarray | None],
                p: Params = DEFAULT) -> bool:
    """The one rule of the second reading (outputs of each cut digit): it replaces the first
    when no first answer is a sure digit and a second one is."""
    return not any(sure(o, p) for o in first) and any(sure(o, p) for o in second)


def settled(probs: np.ndarray | None, p: Params = DEFAULT) -> bool:
    """A sure digit, or the model's own "no digit" at p.second_confidence or more."""
    return sure(probs, p) or (probs is not None and len(probs) > NONE
                              and float(probs[NONE]) >= p.second_confidence)


def learned_wins(first: Sequence[np.ndarray | None], learned: Sequence[np.ndarray | None],
                 p: Params = DEFAULT, multi: bool = False) -> bool:
    """The hybrid route's rule: the learned route's reading replaces the classical one when
    that holds no sure digit and the learned one does. A sure "no digit" of the classical
    route stands (a lamp in the dark the model calls no digit stays so), unless with multi
    the learned route reads a number there: p.merged_number sure digits or more where the
    grid saw a blob that is no digit (a number written small, merged on the grid)."""
    if any(sure(o, p) for o in first):
        return False
    found = sum(sure(o, p) for o in learned)
    return found > 0 and (not any(settled(o, p) for o in first)
                          or (multi and found >= p.merged_number))


def asks_the_map(first: Sequence[np.ndarray | None], multi: bool, p: Params = DEFAULT) -> bool:
    """Whether the hybrid route reads with the learned route too: only when learned_wins could
    take its reading."""
    return not any(sure(o, p) for o in first) and (multi or not any(settled(o, p) for o in first))


def label(first: np.ndarray | None, second: np.ndarray | None = None,
          learned: np.ndarray | None = None, min_confidence: float = 0.0,
          params: Params = DEFAULT) -> int:
    """The answer as a class index (0-9, or NONE): what accuracy is measured on. `second`
    and `learned` are the outputs of the readings `read` may take instead, in its order."""
    probs = second if second_wins([first], [second], params) else first
    if learned_wins([probs], [learned], params):
        probs = learned
    digit, _ = answer(probs, min_confidence)
    return NONE if digit is None else digit


def predict(clf: Classifier, digit: pipeline.Digit, min_confidence: float = 0.0,
            second: bool = False) -> Prediction:
    return prediction(clf.predict_one(digit.pixels), digit, min_confidence, second)


def prediction(probs: np.ndarray, digit: pipeline.Digit, min_confidence: float = 0.0,
               second: bool = False) -> Prediction:
    """A model output for one cut digit, as an answer."""
    found, why = answer(probs, min_confidence)
    return Prediction(found, float(probs[:NONE].max()),
                      [round(float(x), 6) for x in probs[:NONE]], digit.bbox, digit.pixels,
                      digit.row, None if len(probs) <= NONE else round(float(probs[NONE]), 6),
                      why, second)


def read(clf: Classifier, image: np.ndarray, multi: bool = False, min_confidence: float = 0.0,
         params: Params = DEFAULT, trace: Trace | None = None) -> list[Prediction]:
    """Every digit found (with multi: lines from the top, each left to right), or one
    `digit=None` entry saying why there is none."""
    # (pipeline.cut reads "hybrid" params by the classical stages: the first reading)
    outputs, preds = _read_cut(clf, pipeline.cut(image, multi, params, trace), min_confidence)
    if not any(sure(o, params) for o in outputs) and pipeline.doubt_polarity(image, params):
        floor = max(min_confidence, params.second_confidence)  # worth a second look: take it
        again = _read_cut(clf, pipeline.cut(image, multi, params, trace, dark=True), floor, True)
        outputs, preds = _taken(outputs, preds, again, params, trace, "second reading")
    if params.localiser == "hybrid" and asks_the_map(outputs, multi, params) and localise.usable():
        learned = replace(params, localiser="learned")
        found = _read_cut(clf, pipeline.cut(image, multi, learned, trace), min_confidence)
        outputs, preds = _taken(outputs, preds, found, params, trace, "learned reading",
                                functools.partial(learned_wins, multi=multi))
    if multi:
        preds = [p for p in preds if p.digit is not None] or preds[:1]
    preds = preds or [Prediction(None, None, None, none_reason=NO_INK)]
    if trace is not None:
        trace.add("decision", answers=[p.describe() for p in preds])
    return preds


Reading = tuple[list[np.ndarray], list[Prediction]]


def _read_cut(clf: Classifier, digits: list[pipeline.Digit], min_confidence: float,
              second: bool = False) -> Reading:
    outputs = [clf.predict_one(d.pixels) for d in digits]
    return outputs, [prediction(o, d, min_confidence, second)
                     for o, d in zip(outputs, digits, strict=True)]


def _taken(outputs: list[np.ndarray], preds: list[Prediction], other: Reading, p: Params,
           trace: Trace | None, stage: str, rule: Callable[..., bool] = second_wins) -> Reading:
    """The other reading replaces the first by its rule, when it answers."""
    taken = rule(outputs, other[0], p) and any(q.digit is not None for q in other[1])
    if trace is not None:
        trace.add(stage, taken=taken)
    return other if taken else (outputs, preds)
