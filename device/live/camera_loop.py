"""`serve`'s camera thread: reads the source, classifies each frame and publishes the
annotated frame and the reading into `LiveState`; a camera that fails is retried."""

from __future__ import annotations

import io
import re
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from mnist_edge.device.errors import CameraError
from mnist_edge.device.evaluation import drift
from mnist_edge.device.live import collect as collecting
from mnist_edge.device.live import sources as camera
from mnist_edge.device.live.loop import Reader, Stable, reading_of
from mnist_edge.device.live.spool import unsure
from mnist_edge.device.live.state import LiveState

try:
    _FONT: Any = ImageFont.load_default(size=22)  # Pillow >= 10.1: a scalable built-in font
except TypeError:  # older Pillow (Debian bookworm's 9.4): the small bitmap font
    _FONT = ImageFont.load_default()


def annotate(frame: np.ndarray, roi: camera.Roi, text: str, quality: int = 75) -> bytes:
    """The frame with the ROI and the reading drawn on it, as JPEG."""
    img = Image.fromarray(frame if frame.ndim == 3 else np.stack([frame] * 3, axis=-1))
    draw = ImageDraw.Draw(img)
    draw.rectangle([roi.x, roi.y, roi.x + roi.w - 1, roi.y + roi.h - 1], outline=(0, 220, 0), width=3)
    label_y = max(0, roi.y - 30)
    left, top, right, bottom = draw.textbbox((roi.x + 6, label_y + 3), text, font=_FONT)
    draw.rectangle([roi.x, label_y, right + 6, bottom + 4], fill=(0, 0, 0))
    draw.text((roi.x + 6, label_y + 3), text, fill=(0, 255, 0), font=_FONT)
    buf = io.BytesIO()
    img.save(buf, format="JPEG", quality=quality)
    return buf.getvalue()


GAVE_UP = re.compile(r" \(gave up after \d+ attempts\)|; gave up after \d+ reconnect attempts")


class NoFrames(CameraError):
    """A file or folder that gave no frame in a whole pass."""


class CameraLoop(threading.Thread):
    """Reads the source, classifies each frame, publishes. Files play at their own frame
    rate (a folder at `folder_fps`), as a camera would deliver them, and loop."""

    def __init__(self, open_source: Callable[[], Any], reader: Reader, state: LiveState, *,
                 stable: int = 1, folder_fps: float = 10.0, loop_files: bool = True,
                 live: bool = True, retry_s: float = 5.0,
                 log: Callable[[str], None] = lambda _m: None):
        super().__init__(daemon=True, name="camera-loop")
        self.open_source, self.reader, self.state = open_source, reader, state
        self.stable, self.folder_fps, self.loop_files = stable, folder_fps, loop_files
        self.live, self.retry_s = live, retry_s  # live: retry a camera that fails
        self.recent: deque[float] = deque(maxlen=30)  # times of the last frames, for frames/s
        self.log = log
        self.stop = threading.Event()
        self.source_name = "the source"
        self.failure: str | None = None  # the failure last logged

    def run(self) -> None:
        """Until stopped: a live camera that fails or cannot be opened is retried (every
        `retry_s`, doubling to a minute) while the server goes on, and so is a file or folder
        that gives no frame in a whole pass (every file unreadable); any other failure of a
        file or folder ends the loop. Either way the failure is what /healthz and the page
        show, logged once per change."""
        number = 0
        change = Stable(self.stable)
        wait = self.retry_s
        while not self.stop.is_set():
            try:
                start = number
                number = self._play(number, change)
                if number == start and not self.stop.is_set():
                    raise NoFrames(f"{self.source_name}: no readable frame in a whole pass "
                                   "(every file failed); trying again")
                wait = self.retry_s
                if not self.loop_files:
                    break
            except Exception as e:  # noqa: BLE001 - whatever killed it, health must say so
                message = str(e) or type(e).__name__
                # the source gave up, the server does not: say so only once, as retrying
                self._fail(GAVE_UP.sub("", message) if self.live else message)
                if not self.live and not isinstance(e, NoFrames):
                    break
                self.stop.wait(wait)
                wait = min(60.0, wait * 2)
        with self.state.lock:
            self.state.camera_alive = False
        self.state.wake()

    def _play(self, number: int, change: Stable) -> int:
        """Open the source and publish its frames until it ends; returns the frame count."""
        source = self.open_source()
        self.live = bool(getattr(source, "live", False))
        self.source_name = source.name
        fps_target = getattr(source, "fps", None) or (None if source.live else self.folder_fps)
        period = 1.0 / fps_target if fps_target else 0.0
        recent = self.recent  # kept across a video's loops: no "0.0 frames/s" at each restart
        try:
            while not self.stop.is_set():
                t0 = time.perf_counter()
                frame = source.read()
                if frame is None:
                    if source.live:
                        raise CameraError(f"{source.name}: the camera stopped delivering frames")
                    return number
                try:
                    preds = self.reader.read(frame)
                except Exception as e:  # one bad frame must not stop the live view
                    with self.state.lock:
                        self.state.metrics.frame_errors += 1
                    self.log(f"frame {number}: {e}")
                    if period:  # the pacing holds on the error path too
                        self.stop.wait(max(0.0, period - (time.perf_counter() - t0)))
                    continue
                with self.state.lock:
                    self.state.metrics.observe(self.reader.latency_s)
                self._monitor(preds[0], number)
                reading = self.reader.describe(preds, number, getattr(source, "current", None))
                changed = change.update(reading_of(preds, self.reader.multi))
                if changed and self.state.collect is not None and not self.reader.multi:
                    self._keep(frame, preds[0], reading, number)
                jpeg = annotate(frame, self.reader.roi(frame), _label(reading))
                recent.append(time.perf_counter())
                span = recent[-1] - recent[0]
                rate = (len(recent) - 1) / span if span > 0 else 0.0
                self.state.publish(jpeg, reading, changed, rate)
                if changed and self.state.recorder is not None:  # queued, never waits for the disk
                    clf = self.reader.clf
                    self.state.recorder.add(reading, clf.path.name, clf.sha256,
                                        str(getattr(source, "current", None) or source.name))
                self.failure = None  # up again: the next failure is news
                number += 1
                if period:
                    self.stop.wait(max(0.0, period - (time.perf_counter() - t0)))
            return number
        finally:
            with self.state.lock:
                self.state.metrics.reconnects = getattr(source, "reconnects", 0)
            source.close()

    def _keep(self, frame: np.ndarray, pred: Any, reading: dict[str, Any], number: int) -> None:
        """With --collect: the reading can be corrected on the page, and an unsure one waits
        in the spool for a person to label."""
        region = self.reader.roi(frame).cut(frame)
        source = f"camera frame {number}"
        reading["example"] = self.state.keep(region, pred, source, number)
        spool = self.state.spool
        if spool is not None and unsure(pred, spool.below):
            try:
                spool.add(region, pred, collecting.record(self.reader.clf, pred, source, number))
            except OSError as e:  # a full disk: said, and the camera goes on
                self.log(f"unsure readings: cannot keep one ({e.strerror or e})")

    def _monitor(self, pred: Any, number: int) -> None:
        """The drift monitor sees every frame; MQTT gets its state every REPORT_EVERY frames."""
        monitor = self.state.monitor
        if monitor is None:
            return
        monitor.observe(pred)
        if self.state.publisher is not None and number % drift.REPORT_EVERY == 0:
            self.state.publisher.health(monitor.status())

    def _fail(self, message: str) -> None:
        if message != self.failure:  # once per change, not once per retry
            self.log(f"camera: {message}")
            self.failure = message
        with self.state.lock:
            self.state.camera_alive, self.state.camera_error = False, message
        self.state.wake()
        if self.state.publisher is not None:
            self.state.publisher.camera(False, message)


def _label(reading: dict[str, Any]) -> str:
    if reading.get("number"):
        return reading["number"]
    if reading["digit"] is None:
        return "no digit"
    return f"{reading['digit']} ({reading['confidence']:.1%})"  # as the page shows it

