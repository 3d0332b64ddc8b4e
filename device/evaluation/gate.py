"""`mnist-edge check`: measure models on one labelled set and decide each verdict.

Which reference a model is compared with, first match wins:
1. `--reference MODEL`, for every other model of the run;
2. for a quantized model, the reference its manifest.json names (the float32 model it was
   converted beside), taken from the run or, when not in it, loaded from beside the model;
3. for a quantized model, the first non-quantized model of the run;
4. for a quantized model whose manifest records its reference's accuracy on the full MNIST
   test split, that figure, when this run measures the full test split (no agreement then);
5. a manifest that records a failed gate fails the model whatever else is known.
A floor (`--min-accuracy`) applies to every model. What none of these reach is "not gated".
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from mnist_edge.device.evaluation import evaluate
from mnist_edge.device.evaluation.datasets import EvalSet
from mnist_edge.device.evaluation.evaluate import ModelResult
from mnist_edge.device.inference import safety
from mnist_edge.device.inference.model import Classifier


@dataclass(frozen=True)
class Thresholds:
    max_drop_pp: float = evaluate.MAX_DROP_PP
    min_agreement_pct: float = evaluate.MIN_AGREEMENT_PCT
    min_accuracy_pct: float | None = None

    def describe(self) -> str:
        floor = "" if self.min_accuracy_pct is None else f", floor {self.min_accuracy_pct:g}%"
        return (f"max drop {self.max_drop_pp:g} pp, min agreement "
                f"{self.min_agreement_pct:g}%{floor}")


def run(paths: list[Path], evalset: EvalSet, load: Callable[[Path], Classifier],
        thresholds: Thresholds, reference: Path | None = None,
        progress: Callable[[int], None] | None = None) -> list[ModelResult]:
    """Measure every model (and any reference it needs) and set every verdict."""
    measured: dict[Path, ModelResult] = {}

    def result_for(path: Path) -> ModelResult:
        key = path.resolve()
        if key not in measured:
            measured[key] = evaluate.measure(load(path), evalset.images, evalset.labels,
                                             progress, evalset.found, evalset.second,
                                             evalset.learned)
        return measured[key]

    results = [result_for(p) for p in paths]
    explicit = result_for(reference) if reference is not None else None
    for path, r in zip(paths, results, strict=True):
        if explicit is not None:
            if r is not explicit:
                evaluate.compare(r, explicit, thresholds.max_drop_pp, thresholds.min_agreement_pct)
        elif r.quantized:
            _gate_quantized(path, r, results, result_for, evalset, thresholds)
        if thresholds.min_accuracy_pct is not None:
            evaluate.floor(r, thresholds.min_accuracy_pct)
    everything: list[ModelResult] = []  # the models given, then the references they needed
    for r in [*results, *measured.values()]:
        if all(r is not o for o in everything):
            everything.append(r)
    _name(everything)
    return everything


def _gate_quantized(path: Path, r: ModelResult, results: list[ModelResult],
                    result_for: Callable[[Path], ModelResult], evalset: EvalSet,
                    thresholds: Thresholds) -> None:
    manifest = safety.read_manifest(path)
    entry = safety.manifest_entry(path) or {}
    ref_name = entry.get("reference") or (manifest or {}).get("gate", {}).get("reference")
    ref_path = path.parent / ref_name if isinstance(ref_name, str) else None
    ref: ModelResult | None = None
    if ref_path is not None and ref_path.is_file():
        ref = result_for(ref_path)
    else:
        ref = next((o for o in results if not o.quantized), None)
    if ref is not None:
        evaluate.compare(r, ref, thresholds.max_drop_pp, thresholds.min_agreement_pct)
    elif evalset.mnist_test and ref_path is not None and \
            (recorded := _recorded(manifest, ref_path.name)) is not None:
        r.reference = f"{ref_path} (accuracy recorded in its manifest)"
        r.reference_accuracy = recorded
        r.drop_pp = (recorded - r.accuracy) * 100
        if r.drop_pp > thresholds.max_drop_pp:
            evaluate.fail(r, f"accuracy {r.accuracy:.2%} is {r.drop_pp:.2f} pp below "
                             f"{recorded:.2%}, its reference's accuracy recorded in the manifest "
                             f"(allowed {thresholds.max_drop_pp:g} pp)")
        else:
            evaluate.floor(r, 0.0)  # gated, and passed
    if r.passed is False:
        return  # already failed on this run's own measurement; the manifest adds nothing
    gate = (manifest or {}).get("gate", {})
    failures = gate.get("failures", [])
    if entry.get("gate") == "FAIL" or (entry and gate.get("passed") is False
                                       and any(path.name in f for f in failures)):
        evaluate.fail(r, "its manifest records a failed quantization gate: "
                         + ("; ".join(failures) or "gate: FAIL"))


def _recorded(manifest: dict | None, name: str) -> float | None:
    for e in (manifest or {}).get("models", []):
        if isinstance(e, dict) and e.get("file") == name and isinstance(e.get("test_accuracy"), float):
            return float(e["test_accuracy"])
    return None


def _name(results: list[ModelResult]) -> None:
    """The file name, or as much of the path as tells two same-named files apart."""
    parts = {id(r): Path(r.model).resolve().parts for r in results}
    for r in results:
        depth = 1
        while depth < len(parts[id(r)]) and any(
            o is not r and parts[id(o)][-depth:] == parts[id(r)][-depth:]
            and parts[id(o)] != parts[id(r)] for o in results
        ):
            depth += 1
        r.name = "/".join(parts[id(r)][-depth:])


@dataclass
class Outcome:
    """The run's verdict: passed (None: nothing was gated), the failed and ungated models and
    the one summary line `check` prints."""

    passed: bool | None
    failed: list[ModelResult]
    ungated: list[ModelResult]
    summary: str


def outcome(results: list[ModelResult], thresholds: Thresholds) -> Outcome:
    passed = evaluate.overall(results)
    ungated = [r for r in results if r.passed is None and r.role != "reference"]
    failed = [r for r in results if r.passed is False]
    if failed:
        summary = f"gate FAILED for {len(failed)} of {len(results)} models ({thresholds.describe()})"
    elif passed is None:
        summary = ("not gated: no model had a reference or a floor (give --reference or "
                   "--min-accuracy; --require-gate makes this exit 1)")
    else:
        summary = f"gate passed ({thresholds.describe()})"
        if ungated:
            summary += f"; not gated: {', '.join(r.name for r in ungated)}"
    return Outcome(passed, failed, ungated, summary)
