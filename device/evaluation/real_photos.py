"""Real photos and drawings of handwritten digits (a folder laid out as
`../shared/realphotos-dev`: labels.csv with file, category, label, repo; images/): read by
the same route as `classify`, scored per category and per source repository.

Measure only: never train or tune on these. Categories: `single` (a photo or scan of one
digit), `drawn` (one digit drawn on a screen), `multi` (several digits; the label is the
digit string, `-` between lines of writing; a photo counts when every digit is read and in
order).
"""

from __future__ import annotations

import csv
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from mnist_edge.device.errors import BadDataError, BadImageError
from mnist_edge.device.inference.model import Classifier
from mnist_edge.device.reading import decision
from mnist_edge.device.reading import decode as images
from mnist_edge.device.reading.files import number
from mnist_edge.device.reading.params import DEFAULT, Params

CATEGORIES = ("single", "drawn", "multi")


@dataclass(frozen=True)
class Item:
    path: Path
    category: str
    label: str  # a digit, or with multi the digits, lines joined by a space
    repo: str


@dataclass
class Result:
    right: dict[str, int] = field(default_factory=dict)  # per category
    total: dict[str, int] = field(default_factory=dict)
    by_repo: dict[str, tuple[int, int]] = field(default_factory=dict)
    wrong: list[tuple[str, str, str]] = field(default_factory=list)  # file, label, read

    def accuracy(self, category: str) -> float | None:
        n = self.total.get(category, 0)
        return self.right.get(category, 0) / n if n else None

    def worst_repo(self) -> tuple[str, float] | None:
        if not self.by_repo:
            return None
        repo, (r, n) = min(self.by_repo.items(), key=lambda kv: kv[1][0] / kv[1][1])
        return repo, r / n

    def to_json(self) -> dict[str, object]:
        worst = self.worst_repo()
        return {"accuracy": {c: self.accuracy(c) for c in CATEGORIES},
                "images": self.total, "worst_repo": None if worst is None else list(worst),
                "wrong": [list(w) for w in self.wrong]}


def load(folder: Path) -> list[Item]:
    table = folder / "labels.csv"
    try:
        rows = list(csv.DictReader(table.open(newline="")))
    except OSError as e:
        raise BadDataError(f"{table}: cannot read ({e.strerror or e})") from None
    items = []
    for row in rows:
        try:
            category, label = row["category"], row["label"].replace("-", " ")
            items.append(Item(folder / row["file"], category, label, row.get("repo") or "?"))
        except (KeyError, AttributeError):
            raise BadDataError(f"{table}: expected the columns file, category, label, repo") from None
        if category not in CATEGORIES:
            raise BadDataError(f"{table}: unknown category {category!r} for {row['file']}")
    if not items:
        raise BadDataError(f"{table}: no images listed")
    return items


def score(clf: Classifier, items: list[Item], min_confidence: float = 0.5,
          progress: Callable[[int], None] | None = None, params: Params = DEFAULT,
          multi_all: bool = False) -> Result:
    """Read every image as `classify` does (with --multi for multi) and count the right ones."""
    res = Result()
    for item in items:
        multi = multi_all or item.category == "multi"
        try:
            preds = decision.read(clf, images.load_gray(item.path), multi=multi,
                                  min_confidence=min_confidence, params=params)
            got = (number(preds) or "") if multi else str(preds[0].digit)
        except BadImageError as e:
            got = f"error: {e}"
        ok = got == item.label
        res.right[item.category] = res.right.get(item.category, 0) + ok
        res.total[item.category] = res.total.get(item.category, 0) + 1
        r, n = res.by_repo.get(item.repo, (0, 0))
        res.by_repo[item.repo] = (r + ok, n + 1)
        if not ok:
            res.wrong.append((item.path.name, item.label, got))
        if progress:
            progress(1)
    return res
