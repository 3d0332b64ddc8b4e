"""What `mnist-edge check` writes for people and CI systems: the text table and JSON lines, a
Markdown table (also for
GitHub's step summary), JUnit XML (a testcase per model; a failed gate is a failure with its
reason; "not gated" is a skipped test) and per-class accuracy with a confusion matrix."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from mnist_edge.device.evaluation.evaluate import SCHEMA, ModelResult
from mnist_edge.device.inference.model import NONE

CLASS_NAMES = [str(d) for d in range(10)] + ["none"]


def _pct(v: float | None) -> str:
    return "—" if v is None else f"{v:.2%}"


def _pp(v: float | None) -> str:
    return "—" if v is None else f"{v:+.2f}"


def markdown(results: Sequence[ModelResult], dataset: str, summary: str,
             labels: np.ndarray | None = None) -> str:
    lines = [f"### mnist-edge check: {dataset}", "",
             "| model | accuracy | reference | drop (pp, + = worse) | agreement | verdict |",
             "|---|---:|---|---:|---:|---|"]
    for r in results:
        ref = "—" if r.reference is None else r.reference.split("/")[-1]
        verdict = r.verdict if r.reason is None else f"{r.verdict}: {r.reason}"
        lines.append(f"| `{r.name}` | {_pct(r.accuracy)} | {ref} | {_pp(r.drop_pp)} | "
                     f"{_pct(r.agreement)} | {verdict} |")
    lines += ["", summary, ""]
    if labels is not None:
        for r in results:
            lines += per_class_markdown(r, labels)
    return "\n".join(lines)


def classes_in(labels: np.ndarray, results: Sequence[ModelResult]) -> list[int]:
    seen = set(np.unique(labels).tolist())
    for r in results:
        seen |= set(np.unique(r.predictions).tolist())
    return sorted(int(c) for c in seen)


def confusion(labels: np.ndarray, predictions: np.ndarray) -> np.ndarray:
    """(11, 11): rows the true class, columns the answer; index 10 is "no digit"."""
    m = np.zeros((NONE + 1, NONE + 1), np.int64)
    np.add.at(m, (labels.astype(np.int64), predictions.astype(np.int64)), 1)
    return m


def per_class_rows(r: ModelResult, labels: np.ndarray) -> list[tuple[str, int, float]]:
    """(class, images, accuracy) for each class present in the labels."""
    out = []
    for c in sorted(int(v) for v in np.unique(labels)):
        sel = labels == c
        out.append((CLASS_NAMES[c], int(sel.sum()), float((r.predictions[sel] == c).mean())))
    return out


def per_class_markdown(r: ModelResult, labels: np.ndarray) -> list[str]:
    cls = classes_in(labels, [r])
    m = confusion(labels, r.predictions)
    lines = [f"#### `{r.name}`: per class", "",
             "| class | images | accuracy |", "|---|---:|---:|"]
    lines += [f"| {name} | {n:,} | {acc:.2%} |" for name, n, acc in per_class_rows(r, labels)]
    lines += ["", "Confusion matrix (rows: true class, columns: answer)", "",
              "| | " + " | ".join(CLASS_NAMES[c] for c in cls) + " |",
              "|---|" + "---:|" * len(cls)]
    for t in cls:
        if (labels == t).any():
            lines.append(f"| **{CLASS_NAMES[t]}** | " + " | ".join(str(m[t, p]) for p in cls) + " |")
    return lines + [""]


def per_class_text(r: ModelResult, labels: np.ndarray) -> str:
    cls = classes_in(labels, [r])
    m = confusion(labels, r.predictions)
    rows = [f"{r.name}: per class"]
    rows += [f"  {name:>4s} {n:7,d} images  {acc:8.2%}" for name, n, acc in per_class_rows(r, labels)]
    rows.append("  confusion (rows true, columns answer):")
    rows.append("  " + " " * 5 + "".join(f"{CLASS_NAMES[c]:>6s}" for c in cls))
    for t in cls:
        if (labels == t).any():
            rows.append(f"  {CLASS_NAMES[t]:>4s} " + "".join(f"{m[t, p]:6d}" for p in cls))
    return "\n".join(rows)


def junit(results: Sequence[ModelResult], dataset: str, images: int) -> bytes:
    """JUnit XML as CI systems read it: one testsuite, one testcase per model."""
    failures = sum(r.passed is False for r in results)
    skipped = sum(r.passed is None for r in results)
    suite = ET.Element("testsuite", name="mnist-edge check", tests=str(len(results)),
                       failures=str(failures), errors="0", skipped=str(skipped))
    ET.SubElement(ET.SubElement(suite, "properties"), "property", name="dataset", value=dataset)
    for r in results:
        case = ET.SubElement(suite, "testcase", classname="mnist-edge.check", name=r.name)
        text = (f"{r.model}: accuracy {r.accuracy:.4%} on {images:,} images; reference "
                f"{r.reference or 'none'}; drop {_pp(r.drop_pp)} pp; agreement {_pct(r.agreement)}")
        if r.passed is False:
            ET.SubElement(case, "failure", message=r.reason or "gate failed", type="gate").text = text
        elif r.passed is None:
            why = ("the reference of this run" if r.verdict == "reference"
                   else "not gated: no reference and no floor")
            ET.SubElement(case, "skipped", message=why)
        ET.SubElement(case, "system-out").text = text
    suites = ET.Element("testsuites", tests=str(len(results)), failures=str(failures))
    suites.append(suite)
    return ET.tostring(suites, encoding="utf-8", xml_declaration=True)


def table(results: Sequence[ModelResult], dataset: str, images: int, summary: str) -> str:
    """The plain-text table `check` prints, with its summary line."""
    width = max(30, *(len(r.name) for r in results))
    lines = [f"{'model':{width}s} {'accuracy':>9s} {'drop pp':>8s} {'agreement':>10s}  "
             f"{'reference':28s} verdict"]
    for r in results:
        refname = "—" if r.reference is None else Path(r.reference.split(" (")[0]).name
        agree = "—" if r.agreement is None else f"{r.agreement:.2%}"
        drop = "—" if r.drop_pp is None else f"{r.drop_pp:+.2f}"
        lines.append(f"{r.name:{width}s} {r.accuracy:9.2%} {drop:>8s} {agree:>10s}  "
                     f"{refname:28s} {r.verdict}")
    lines.append(f"{images:,} images ({dataset}); {summary}")
    return "\n".join(lines)


def json_lines(results: Sequence[ModelResult], dataset: str, images: int, passed: bool | None,
               thresholds: dict[str, float | None], failed: Sequence[ModelResult],
               ungated: Sequence[ModelResult]) -> list[str]:
    """`check --json`: one object per model, then the summary object (schema evaluate.SCHEMA)."""
    rows = [json.dumps({**r.to_json(), "images": images}) for r in results]
    rows.append(json.dumps({
        "schema": SCHEMA, "summary": True, "passed": passed, "dataset": dataset,
        "images": images, **thresholds,
        "failed": [r.model for r in failed], "not_gated": [r.model for r in ungated],
    }))
    return rows
