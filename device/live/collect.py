"""`mnist-edge collect`: examples of a user's own handwriting from a camera, a video or a
folder of frames, saved where `train --finetune` and `check --images` read them
(data/examples.py).

An example is saved once the view has settled (the pipeline's crop has not changed for
`settle` frames: the hand has left, the camera has focused) and it is not a near-duplicate of
one already saved for that label, so holding a digit in view for a minute gives one example,
not six hundred. Whatever the model reads is recorded beside it, right or wrong: the misread
ones are what the fine-tune needs most.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from mnist_edge.device.data import examples
from mnist_edge.device.inference.model import Classifier
from mnist_edge.device.live import sources as camera
from mnist_edge.device.live.loop import Reader, sigterm_as_interrupt
from mnist_edge.device.reading.decision import Prediction
from mnist_edge.device.reading.params import DEFAULT as READING

DISAGREE = 3  # settled views in a row read surely as other digits: the page has changed?
SURE = 0.9  # ... read at least this sure


def key_of(frame: np.ndarray, pred: Prediction) -> np.ndarray:
    """What two frames are compared by: the crop the model saw, or, when the pipeline found no
    digit, the frame shrunk to 28x28 (so empty frames of different scenes still differ)."""
    if pred.pixels is not None:
        return pred.pixels
    return np.asarray(Image.fromarray(examples.grey8(frame)).resize((28, 28), Image.Resampling.BOX),
                      np.uint8)


def record(clf: Classifier, pred: Prediction, source: str, frame_number: int) -> dict[str, Any]:
    """What is saved beside an example: when, from where, the model and what it read."""
    return {"time": round(time.time(), 3), "source": source, "frame": frame_number,
            "model": clf.path.name, "model_sha256": clf.sha256, "read": pred.digit,
            "confidence": None if pred.confidence is None else round(float(pred.confidence), 4),
            "none_reason": pred.none_reason, "box": list(pred.bbox) if pred.bbox else None,
            "reading_pipeline": READING.version()}


def views(source: camera.Source, reader: Reader, settle: int, limit: int | None = None
          ) -> Iterator[tuple[int, np.ndarray, Prediction, np.ndarray, bool]]:
    """(frame number, ROI image, reading, key, settled) for every frame; settled: the view
    has been still for `settle` frames in a row."""
    still, last = 0, None
    for number, frame in enumerate(camera.frames(source, limit)):
        region = reader.roi(frame).cut(frame)
        pred = reader.read(frame)[0]
        key = key_of(region, pred)
        now = key.astype(np.float32)
        moving = last is None or float(np.abs(now - last).mean()) >= examples.NEAR_DUPLICATE
        still, last = 1 if moving else still + 1, now
        yield number, region, pred, key, still >= settle


def other_digit(label: str, pred: Prediction) -> str | None:
    """The digit a view was read as, when it is surely not `label`'s."""
    if label == "none" or pred.digit is None or str(pred.digit) == label:
        return None
    return str(pred.digit) if (pred.confidence or 0.0) >= SURE else None


def run(reader: Reader, source: camera.Source, folder: Path, *, labels: Iterator[str],
        count: int, settle: int, source_name: str, say: Callable[[str], None],
        emit: Callable[[str], None], frames: int | None = None,
        keep_disagreeing: Callable[[str, str], bool] = lambda _label, _read: False) -> int:
    """Save `count` examples for each label `labels` yields (a fixed --label: one; asked
    interactively: one prompt after another), until the labels or the frames end, or Ctrl-C.
    Returns how many were saved; everything saved stays saved.

    After each digit saved, the next is taken only once the view has been clear (no ink) for a
    frame: the page that was just saved is not saved again, nor under the next label asked.
    When DISAGREE settled views in a row are read surely as other digits, the page shown
    has likely changed: `keep_disagreeing(label, read)` decides (a person is asked; piped
    answers say no): no takes those views back and ends that label."""
    saved = skipped = 0
    ended = "the frames ended"
    stream = views(source, reader, settle, frames)
    clear = True  # the first digit may already be in view
    try:
        with sigterm_as_interrupt():
            for label in labels:
                # earlier runs' crops; empty frames' crops are all blank, so those are compared
                # within this run only (by their thumbnails)
                seen = examples.crops(folder, label) if label != "none" else []
                have = 0
                streak: list[Path] = []  # saved views in a row read surely as another digit
                trusted = False  # the person said the other readings are right
                why = ended
                for number, region, pred, key, still in stream:
                    if pred.pixels is None and label != "none":
                        clear = True  # no ink found: the page was taken away
                        continue
                    if not still or (label != "none" and not clear):
                        continue
                    if examples.near_duplicate(key, seen):
                        skipped += 1
                        continue
                    path = examples.save(folder, label, region, pred.pixels,
                                         record(reader.clf, pred, source_name, number))
                    seen.append(key)
                    clear = label == "none"
                    have += 1
                    saved += 1
                    read = "no digit" if pred.digit is None else str(pred.digit)
                    flag = "" if read == ("no digit" if label == "none" else label) else "  (misread)"
                    emit(f"{path}: label {label}, model read {read}{flag}")
                    other = None if trusted else other_digit(label, pred)
                    streak = [*streak, path] if other is not None else []
                    if len(streak) >= DISAGREE:
                        if keep_disagreeing(label, other or ""):
                            trusted, streak = True, []
                        else:
                            for taken in streak:
                                examples.remove(taken)
                            have -= len(streak)
                            saved -= len(streak)
                            why = (f"the last {len(streak)} views read other digits (the last "
                                   f"{other}), not {label}: taken back (has the page changed?)")
                            break
                    if have >= count:
                        why = ""
                        break
                else:
                    if have < count:
                        say(f"label {label}: {have} of {count} kept ({why})")
                    break  # the frames ended
                if why:
                    say(f"label {label}: {have} of {count} kept ({why})")
    except KeyboardInterrupt:
        say("stopped")
    say(f"saved {saved} example{'s' * (saved != 1)} in {folder} ({skipped} near-duplicate "
        "frames skipped)")
    return saved
