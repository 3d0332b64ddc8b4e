"""Readings the model was unsure of, kept for a person to label (`serve --collect DIR`).

A camera reading that settles below the confidence floor (or whose two best digits are
close, or that --min-confidence turned into "no digit") keeps its frame (the region of
interest, grey, at most 640 px), the 28x28 the model saw and the record `collect` writes, in
DIR/.unsure/. The page shows them as a grid; one tap files an item as `collect` saves an
example (DIR/<label>/, with .meta/), so `train --finetune DIR` takes them as they are. The
spool has a size cap: the oldest items go first. Every file is written atomically and the
record last: an item is complete once its record exists, so a crash leaves no half item.
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from mnist_edge.device import atomic
from mnist_edge.device.data import examples
from mnist_edge.device.reading.decision import LOW_CONFIDENCE, Prediction

FOLDER = ".unsure"
UNSURE_BELOW = 0.9  # a reading less sure than this is worth a person's look
CLOSE = 0.25  # ... and so is one whose two best digits are this close
CAP_MIB = 50.0
KEEP_SIDE = 640  # a frame is kept at most this many px on its longer side
ITEM = re.compile(r"[0-9]{19}-[0-9a-f]{8}")  # the ids the spool makes (and the only ones it takes)


def unsure(pred: Prediction, below: float = UNSURE_BELOW, close: float = CLOSE) -> bool:
    """A reading a person should look at: a digit read below `below`, one whose two best
    digits are within `close`, or one --min-confidence refused. "No ink" is not one."""
    if pred.none_reason == LOW_CONFIDENCE:
        return True
    if pred.digit is None or pred.confidence is None:
        return False
    if pred.confidence < below:
        return True
    best = sorted(pred.probabilities or [], reverse=True)[:2]
    return len(best) == 2 and best[0] - best[1] < close


class Spool:
    def __init__(self, collect: Path, cap_mib: float = CAP_MIB, below: float = UNSURE_BELOW):
        self.collect, self.folder = collect, collect / FOLDER
        self.cap, self.below = int(cap_mib * 1024 * 1024), below
        self.lock = threading.Lock()  # the camera thread adds, handlers label: one at a time
        self.dropped = 0

    def add(self, image: np.ndarray, pred: Prediction, record: dict[str, Any]) -> str | None:
        """Keeps one unsure reading; returns its id (None: the same view is already waiting,
        e.g. a video's next pass). The oldest items go past the cap."""
        grey = examples.grey8_at_most(image, KEEP_SIDE)
        crop = pred.pixels if pred.pixels is not None else np.zeros((28, 28), np.uint8)
        digest = hashlib.sha256(grey.tobytes()).hexdigest()[:8]
        key = f"{time.time_ns():019d}-{digest}"
        with self.lock:
            if any(self.folder.glob(f"*-{digest}.json")):
                return None
            atomic.write_bytes(self.folder / f"{key}.png",
                               atomic.png_bytes(lambda b: Image.fromarray(grey).save(b, "PNG")))
            atomic.write_bytes(self.folder / f"{key}.28.png",
                               atomic.png_bytes(lambda b: Image.fromarray(crop).save(b, "PNG")))
            atomic.write_text(self.folder / f"{key}.json", json.dumps(record) + "\n")  # complete now
            self._keep_under_cap()
        return key

    def items(self, limit: int = 200) -> list[dict[str, Any]]:
        """The newest `limit` complete items' records with their `id`, newest first."""
        found: list[dict[str, Any]] = []
        for path in sorted(self.folder.glob("*.json"), reverse=True):
            if len(found) >= limit:
                break
            if not ITEM.fullmatch(path.stem):
                continue
            try:
                found.append({**json.loads(path.read_text()), "id": path.stem})
            except (OSError, ValueError):  # taken meanwhile, or not ours
                continue
        return found

    def image(self, key: str, crop: bool = False) -> bytes | None:
        if not ITEM.fullmatch(key):
            return None
        try:
            return (self.folder / f"{key}{'.28' if crop else ''}.png").read_bytes()
        except OSError:
            return None

    def label(self, key: str, label: str) -> Path | None:
        """Files the item as an example of `label` (0-9 or none) in the collect folder, as
        `collect` saves one; None when there is no such item (labelled meanwhile)."""
        label = examples.label_of(label)
        if not ITEM.fullmatch(key):
            return None
        with self.lock:
            try:
                record = json.loads((self.folder / f"{key}.json").read_text())
                with Image.open(self.folder / f"{key}.png") as img:
                    frame = np.asarray(img.convert("L"))
                with Image.open(self.folder / f"{key}.28.png") as img:
                    crop = np.asarray(img.convert("L"))
            except (OSError, ValueError):
                return None
            saved = examples.save(self.collect, label, frame, crop,
                                  {**record, "labelled_on": "serve page (unsure readings)"})
            self._remove(key)
        return saved

    def discard(self, key: str) -> bool:
        if not ITEM.fullmatch(key):
            return False
        with self.lock:
            return self._remove(key)

    def _remove(self, key: str) -> bool:
        record = self.folder / f"{key}.json"
        existed = record.exists()
        record.unlink(missing_ok=True)  # first: the item is no longer complete
        for suffix in (".png", ".28.png"):
            (self.folder / f"{key}{suffix}").unlink(missing_ok=True)
        return existed

    def _keep_under_cap(self) -> None:
        files = [p for p in self.folder.iterdir() if p.is_file()]
        total = sum(p.stat().st_size for p in files)
        for stem in sorted({p.name.split(".")[0] for p in files if ITEM.fullmatch(p.name.split(".")[0])}):
            if total <= self.cap:
                break
            sizes = sum(p.stat().st_size for p in self.folder.glob(f"{stem}.*"))
            self._remove(stem)
            total -= sizes
            self.dropped += 1
