"""The live loop shared by `mnist-edge camera` and `mnist-edge serve`:
frames -> ROI -> preprocessing -> one interpreter -> a reading, with `--stable N`.

`Reader` turns one frame into a reading (the same JSON object as `classify --json`, plus
`frame` and `time`); `Stable` decides when a reading has changed. `run_camera` prints them.
"""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, cast

import numpy as np

from mnist_edge.device.errors import CameraError, MnistEdgeError
from mnist_edge.device.evaluation import drift
from mnist_edge.device.inference.model import Classifier
from mnist_edge.device.live import sources as camera
from mnist_edge.device.reading.decision import Prediction, read
from mnist_edge.device.reading.files import as_json, number


class Stable:
    """Report a reading only once `frames` consecutive frames agree on it."""

    def __init__(self, frames: int = 1):
        self.frames = max(1, frames)
        self.candidate: object = object()
        self.count = 0
        self.reported: object = object()

    def update(self, value: object) -> bool:
        """True when `value` becomes the new reported reading."""
        if value == self.candidate:
            self.count += 1
        else:
            self.candidate, self.count = value, 1
        if self.count >= self.frames and value != self.reported:
            self.reported = value
            return True
        return False


class LockedModel:
    """A classifier whose interpreter is used under one lock (a TFLite interpreter is not
    thread-safe); everything else of the reading runs outside it, in parallel."""

    def __init__(self, clf: Classifier, lock: threading.Lock):
        self.clf, self.lock = clf, lock

    def predict_one(self, pixels: np.ndarray) -> np.ndarray:
        with self.lock:
            return self.clf.predict_one(pixels)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.clf, name)


class Reader:
    """One frame at a time: cut the ROI, classify, describe. Thread-safe: only the invoke
    holds `lock`, which the HTTP API's uploads share (through `model`)."""

    def __init__(self, clf: Classifier, *, roi: str | None = None, multi: bool = False,
                 min_confidence: float = 0.0, lock: threading.Lock | None = None):
        self.clf, self.roi_text, self.multi = clf, roi, multi
        self.min_confidence = min_confidence
        self.lock = lock or threading.Lock()
        self.model = cast(Classifier, LockedModel(clf, self.lock))
        self.regions: dict[tuple[int, int], camera.Roi] = {}  # per frame size (a folder mixes them)
        self.latency_s = 0.0

    def swap(self, clf: Classifier) -> None:
        """Read with `clf` from the next invoke on (a reload: nobody is disconnected)."""
        with self.lock:
            self.clf, self.model = clf, cast(Classifier, LockedModel(clf, self.lock))

    def roi(self, frame: np.ndarray) -> camera.Roi:
        """The region of interest of a frame of this size: each size gets its own."""
        size = (int(frame.shape[0]), int(frame.shape[1]))
        region = self.regions.get(size)
        if region is None:
            if len(self.regions) >= 16:  # a folder of many sizes: keep the table small
                self.regions.clear()
            region = self.regions[size] = camera.Roi.parse(self.roi_text, frame.shape)
        return region

    def read(self, frame: np.ndarray) -> list[Prediction]:
        region = self.roi(frame).cut(frame)
        t0 = time.perf_counter()
        preds = read(self.model, region, multi=self.multi, min_confidence=self.min_confidence)
        self.latency_s = time.perf_counter() - t0
        return preds

    def describe(self, preds: list[Prediction], number: int, name: Any = None) -> dict[str, Any]:
        """The JSON object of one frame: classify's keys, with frame number and time."""
        return {"frame": number, "time": round(time.time(), 3),
                **as_json(name, preds, str(self.clf.path), 1, self.multi)}


def reading_of(preds: list[Prediction], multi: bool) -> object:
    """What `--stable` compares: the digit, or with --multi the number read."""
    return number(preds) if multi else preds[0].digit


def text_of(preds: list[Prediction], multi: bool) -> str:
    return (number(preds) if multi else None) or preds[0].describe()


@contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """SIGTERM (systemd stop, `kill`) ends the loop like Ctrl-C: cleanly, with the summary."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(_signum: int, _frame: Any) -> None:
        raise KeyboardInterrupt

    old = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, old)


def reload_on_sighup(reader: Reader, load: Callable[[], Classifier],
                     say: Callable[[str], None],
                     then: Callable[[Classifier], None] = lambda _clf: None) -> None:
    """On SIGHUP (`systemctl reload`), load the model again (the new default after `models
    install|use|rollback`) in a thread and swap it into `reader`; readers and viewers carry
    on, and `then(new model)` tells the rest (MQTT's device description). A model that fails
    to load leaves the running one, with one line saying why."""
    def swap() -> None:
        try:
            clf = load()
        except MnistEdgeError as e:
            say(f"reload: {e}; still reading with {reader.clf.path.name}")
            return
        reader.swap(clf)
        say(f"reload: now reading with {clf.path.name} ({clf.sha256[:12]})")
        then(clf)

    if hasattr(signal, "SIGHUP"):
        signal.signal(signal.SIGHUP, lambda _s, _f: threading.Thread(target=swap, daemon=True).start())


def run_camera(clf: Classifier, spec: str, *, frames: int | None, roi: str | None,
               json_out: bool, show: bool, timeout: float, retries: int,
               say: Callable[[str], None], emit: Callable[[str], None],
               min_confidence: float = 0.0, stable: int = 1, multi: bool = False,
               publisher: Any = None, reload: Callable[[], Classifier] | None = None,
               history: Any = None) -> int:
    """Read `spec` until its end, `frames`, Ctrl-C or SIGTERM: each result line goes to `emit`
    (stdout in the CLI), messages for people to `say` (stderr). Each new settled reading
    goes to `publisher` (MQTT) and `history` (live.history.History), when given.

    Returns the exit code: 0 at the end of the stream, the frame limit, Ctrl-C or SIGTERM;
    2 when a file or folder gave no readable frame at all."""
    skipped: list[str] = []

    def on_skip(message: str) -> None:
        skipped.append(message)
        say(f"skipped: {message}")

    source = camera.open_source(spec, log=on_skip, timeout=timeout, retries=retries)
    reader = Reader(clf, roi=roi, multi=multi, min_confidence=min_confidence)
    monitor = drift.Monitor(drift.reference_for(clf))

    def reloaded(new: Classifier) -> None:
        monitor.reset(drift.reference_for(new))
        if publisher:
            publisher.model(new.path.name, new.sha256)

    if reload is not None:
        reload_on_sighup(reader, reload, say, then=reloaded)
    window = _Window(say) if show else None
    told = _Told(reader, source, Stable(stable), monitor, json_out, emit, publisher, history)
    try:
        with sigterm_as_interrupt():
            for frame in camera.frames(source, frames):
                preds = reader.read(frame)
                told.frame(preds)
                if window is not None and not window.draw(frame, reader.roi(frame), preds[0].digit):
                    break
    except KeyboardInterrupt:
        say("stopped")
    except CameraError as e:
        if publisher is not None:
            publisher.camera(False, str(e))
        _report(say, told.count, told.start, source)
        raise
    finally:
        source.close()
        if window is not None:
            window.close()
    _report(say, told.count, told.start, source)
    status = monitor.status()
    if status["state"] in ("ok", "drift"):  # enough frames to say (a photo or two: nothing)
        say(drift.summary(status))
    if told.count == 0 and skipped and not source.live:
        say(f"error: {source.name}: no readable frame ({len(skipped)} skipped)")
        return 2
    return 0


class _Told:
    """Where each frame's reading goes in `camera`: the drift monitor (every frame), stdout
    (a JSON line per frame, or a line per new settled reading), and for each new settled
    reading MQTT and the history (both queue: neither makes the camera wait)."""

    def __init__(self, reader: Reader, source: Any, change: Stable, monitor: drift.Monitor,
                 json_out: bool, emit: Callable[[str], None], publisher: Any, history: Any):
        self.reader, self.source, self.change, self.monitor = reader, source, change, monitor
        self.json_out, self.emit, self.publisher, self.history = json_out, emit, publisher, history
        self.count = 0
        self.start = time.perf_counter()

    def frame(self, preds: list[Prediction]) -> None:
        reader, number = self.reader, self.count
        self.monitor.observe(preds[0])
        self.count += 1
        name = getattr(self.source, "current", None)
        new = self.change.update(reading_of(preds, reader.multi))
        if new and self.history is not None:
            self.history.add(reader.describe(preds, number, name), reader.clf.path.name,
                             reader.clf.sha256, str(name or self.source.name))
        if self.publisher is not None:
            self._publish(preds, new, name)
        if self.json_out:
            self.emit(json.dumps(reader.describe(preds, number, name)))
        elif new:
            where = f" [{name.name}]" if name is not None else ""
            self.emit(f"frame {number}{where}: {text_of(preds, reader.multi)}")

    def _publish(self, preds: list[Prediction], new: bool, name: Any) -> None:
        if new:
            self.publisher.reading(self.reader.describe(preds, self.count - 1, name))
        elapsed = time.perf_counter() - self.start
        self.publisher.camera(True, fps=self.count / elapsed if elapsed > 0 else None)
        if self.count % drift.REPORT_EVERY == 1:  # the drift state; MQTT sends its changes
            self.publisher.health(self.monitor.status())


def _report(say: Callable[[str], None], count: int, start: float, source: Any) -> None:
    elapsed = time.perf_counter() - start
    fps = count / elapsed if elapsed > 0 else 0.0
    extra = f", {source.reconnects} reconnects" if getattr(source, "reconnects", 0) else ""
    say(f"{count} frames from {source.name} in {elapsed:.2f} s ({fps:.1f} frames/s{extra})")


class _Window:
    """An OpenCV window, when a display and a GUI build of OpenCV exist."""

    def __init__(self, say: Callable[[str], None]):
        self.cv2: Any = None
        if not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
            say("--show: no display found; running without a window (try `mnist-edge serve`)")
            return
        try:
            import cv2

            cv2.namedWindow("mnist-edge")
            self.cv2 = cv2
        except Exception as e:  # ImportError, or cv2.error from a headless build
            say(f"--show: cannot open a window ({str(e).splitlines()[0][:80]}); continuing")

    def draw(self, frame: np.ndarray, roi: camera.Roi, digit: int | None) -> bool:
        if self.cv2 is None:
            return True
        cv2 = self.cv2
        img = np.ascontiguousarray(frame[..., ::-1] if frame.ndim == 3 else frame)
        cv2.rectangle(img, (roi.x, roi.y), (roi.x + roi.w, roi.y + roi.h), (0, 255, 0), 2)
        cv2.putText(img, "-" if digit is None else str(digit), (roi.x, max(30, roi.y - 10)),
                    cv2.FONT_HERSHEY_SIMPLEX, 1.2, (0, 255, 0), 2)
        cv2.imshow("mnist-edge", img)
        return (cv2.waitKey(1) & 0xFF) not in (ord("q"), 27)

    def close(self) -> None:
        if self.cv2 is not None:
            self.cv2.destroyAllWindows()
