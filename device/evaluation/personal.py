"""The gate for a personalised model (`mnist-edge check --model P --baseline robust --images
HELD`): it ships only when it is better for this writer and no worse for everyone else.

Three conditions, all required:
  1. the usual quantization gate of P against its own float reference on MNIST test;
  2. on MNIST test, P is at most `max_baseline_drop` points below the baseline (default 0.3);
  3. on the writer's held-out examples (never trained on), P makes fewer errors than the
     baseline: the error must fall, not merely stay.
Per digit (and "none"), before and after, on both sets, as Markdown and JSON.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from mnist_edge.device.evaluation import evaluate
from mnist_edge.device.evaluation.datasets import EvalSet
from mnist_edge.device.evaluation.evaluate import ModelResult
from mnist_edge.device.inference.model import NONE

MAX_BASELINE_DROP_PP = 0.3  # MNIST accuracy a personalised model may lose against the default
MIN_PER_DIGIT = 5  # held-out examples of a digit below this: its errors are not evidence
MIN_HELD_OUT = 50  # ... and of the whole set below this, or ...
MIN_BASELINE_ERRORS = 5  # ... fewer baseline errors than this: a fall shows little
SLACK = 1e-9  # float rounding of image-count ratios (as evaluate.LIMIT_SLACK)


@dataclass
class Comparison:
    name: str  # the data set
    baseline: ModelResult
    personal: ModelResult
    labels: np.ndarray

    def errors(self, r: ModelResult) -> int:
        return int((r.predictions != self.labels).sum())

    def per_label(self) -> list[dict[str, Any]]:
        rows = []
        for label in sorted(set(self.labels.tolist())):
            mask = self.labels == label
            rows.append({"label": "none" if label == NONE else str(label), "images": int(mask.sum()),
                         "baseline_errors": int((self.baseline.predictions[mask] != label).sum()),
                         "personal_errors": int((self.personal.predictions[mask] != label).sum())})
        return rows


@dataclass
class Verdict:
    mnist: Comparison
    writer: Comparison
    quantization: ModelResult  # the personal int8 model's usual gate result
    max_baseline_drop_pp: float
    failures: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)  # thin evidence: the verdict stands

    @property
    def mnist_drop_pp(self) -> float:
        return 100 * (self.mnist.baseline.accuracy - self.mnist.personal.accuracy)

    @property
    def passed(self) -> bool:
        return not self.failures


def judge(quantization: ModelResult, mnist: Comparison, writer: Comparison,
          max_baseline_drop_pp: float = MAX_BASELINE_DROP_PP) -> Verdict:
    v = Verdict(mnist, writer, quantization, max_baseline_drop_pp)
    if quantization.passed is False:
        v.failures.append(f"quantization gate: {quantization.reason}")
    elif quantization.passed is None:
        v.failures.append("quantization gate: no float reference to compare the int8 model with "
                          "(keep its manifest and float32 model beside it)")
    drop = 100 * (mnist.baseline.accuracy - mnist.personal.accuracy)
    if drop > max_baseline_drop_pp + SLACK:
        v.failures.append(f"MNIST test: {drop:.2f} pp below the baseline "
                          f"(allowed {max_baseline_drop_pp:g})")
    before, after = writer.errors(writer.baseline), writer.errors(writer.personal)
    if after >= before:
        v.failures.append(f"the writer's held-out examples: {after} errors, baseline {before}: "
                          "the error did not fall")
    v.warnings = evidence(writer, before)
    return v


def evidence(writer: Comparison, baseline_errors: int) -> list[str]:
    """Where the held-out set is too thin to show what the gate claims."""
    out = []
    counts = {r["label"]: r["images"] for r in writer.per_label()}
    thin = [f"{d} ({counts.get(str(d), 0)})" for d in range(10)
            if counts.get(str(d), 0) < MIN_PER_DIGIT]
    if thin:
        out.append(f"held-out examples per digit below {MIN_PER_DIGIT}: {', '.join(thin)}: "
                   "the gate cannot see whether those digits got better or worse; collect more "
                   "(mnist-edge collect)")
    n = len(writer.labels)
    if n < MIN_HELD_OUT or baseline_errors < MIN_BASELINE_ERRORS:
        out.append(f"{n} held-out examples with {baseline_errors} baseline errors: too few to show "
                   f"a difference (want >= {MIN_HELD_OUT} examples and >= {MIN_BASELINE_ERRORS} "
                   "baseline errors)")
    return out


def measure(clf: Any, evalset: EvalSet) -> ModelResult:
    return evaluate.measure(clf, evalset.images, evalset.labels, None, evalset.found, evalset.second,
                            evalset.learned)


def _pct(errors: int, n: int) -> str:
    return f"{100 * errors / n:.1f}%" if n else "—"


def markdown(v: Verdict, baseline: str, personal: str) -> str:
    lines = [f"## Personalised model: {'PASS' if v.passed else 'FAIL'}", "",
             f"`{personal}` against the baseline `{baseline}`.", "",
             "| set | images | baseline errors | personal errors | baseline error | personal error |",
             "|---|---:|---:|---:|---:|---:|"]
    for c in (v.writer, v.mnist):
        n = len(c.labels)
        b, p = c.errors(c.baseline), c.errors(c.personal)
        lines.append(f"| {c.name} | {n:,} | {b:,} | {p:,} | {_pct(b, n)} | {_pct(p, n)} |")
    for c in (v.writer, v.mnist):
        lines += ["", f"Per digit, {c.name}:", "", "| digit | images | baseline errors | personal errors |",
                  "|---|---:|---:|---:|"]
        lines += [f"| {r['label']} | {r['images']:,} | {r['baseline_errors']} | {r['personal_errors']} |"
                  for r in c.per_label()]
    lines += ["", f"Quantization gate of the personal int8 model: {v.quantization.verdict}",
              f"MNIST test: baseline {100 * v.mnist.baseline.accuracy:.2f}%, personal "
              f"{100 * v.mnist.personal.accuracy:.2f}%: {v.mnist_drop_pp:.2f} pp below (allowed "
              f"{v.max_baseline_drop_pp:g} pp)", ""]
    lines += [f"- {f}" for f in v.failures] or ["- every condition holds"]
    lines += [f"- warning: {w}" for w in v.warnings]
    return "\n".join(lines) + "\n"


def as_json(v: Verdict, baseline: str, personal: str) -> dict[str, Any]:
    def side(c: Comparison) -> dict[str, Any]:
        return {"name": c.name, "images": int(len(c.labels)),
                "baseline_errors": c.errors(c.baseline), "personal_errors": c.errors(c.personal),
                "baseline_accuracy": c.baseline.accuracy, "personal_accuracy": c.personal.accuracy,
                "per_label": c.per_label()}

    return {"schema": 1, "baseline": baseline, "personal": personal, "passed": v.passed,
            "failures": v.failures, "writer": side(v.writer), "mnist": side(v.mnist),
            "quantization_gate": v.quantization.verdict,
            "mnist_drop_pp": round(v.mnist_drop_pp, 4),
            "max_baseline_drop_pp": v.max_baseline_drop_pp, "warnings": v.warnings}
