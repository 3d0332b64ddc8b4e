"""What `serve`'s camera thread publishes and its handlers read: `LiveState` (one lock, no
queues) and the counters behind /metrics."""

from __future__ import annotations

import asyncio
import secrets
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from mnist_edge.device.data import examples
from mnist_edge.device.reading.decision import Prediction

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0)  # seconds
HISTORY = 20  # readings kept for the page
KEPT, KEEP_SIDE = 16, 640  # with --collect: readings the page may still correct, their size


@dataclass
class Metrics:
    frames: int = 0
    frame_errors: int = 0
    reconnects: int = 0
    requests: dict[str, int] = field(default_factory=dict)  # status code -> count
    buckets: list[int] = field(default_factory=lambda: [0] * (len(LATENCY_BUCKETS) + 1))
    latency_sum: float = 0.0
    latency_count: int = 0
    streams: dict[str, int] = field(default_factory=lambda: {"mjpeg": 0, "events": 0})  # open now

    def observe(self, seconds: float) -> None:
        self.buckets[next((i for i, b in enumerate(LATENCY_BUCKETS) if seconds <= b),
                          len(LATENCY_BUCKETS))] += 1
        self.latency_sum += seconds
        self.latency_count += 1

    def text(self, camera_alive: bool, uptime: float) -> str:
        lines = [
            "# HELP mnist_edge_frames_total Camera frames classified.",
            "# TYPE mnist_edge_frames_total counter", f"mnist_edge_frames_total {self.frames}",
            "# HELP mnist_edge_frame_errors_total Camera frames that failed.",
            "# TYPE mnist_edge_frame_errors_total counter",
            f"mnist_edge_frame_errors_total {self.frame_errors}",
            "# HELP mnist_edge_reconnects_total Camera reconnects.",
            "# TYPE mnist_edge_reconnects_total counter",
            f"mnist_edge_reconnects_total {self.reconnects}",
            "# HELP mnist_edge_camera_up 1 while the camera delivers frames.",
            "# TYPE mnist_edge_camera_up gauge", f"mnist_edge_camera_up {int(camera_alive)}",
            "# HELP mnist_edge_uptime_seconds Seconds since the server started.",
            "# TYPE mnist_edge_uptime_seconds gauge", f"mnist_edge_uptime_seconds {uptime:.1f}",
            "# HELP mnist_edge_open_streams Viewers connected now, by stream.",
            "# TYPE mnist_edge_open_streams gauge",
        ]
        lines += [f'mnist_edge_open_streams{{stream="{k}"}} {v}' for k, v in sorted(self.streams.items())]
        lines += ["# HELP mnist_edge_http_requests_total HTTP requests by status code.",
                  "# TYPE mnist_edge_http_requests_total counter"]
        lines += [f'mnist_edge_http_requests_total{{status="{k}"}} {v}'
                  for k, v in sorted(self.requests.items())]
        lines += ["# HELP mnist_edge_inference_seconds Preprocessing and inference per image.",
                  "# TYPE mnist_edge_inference_seconds histogram"]
        total = 0
        for bound, n in zip([*LATENCY_BUCKETS, float("inf")], self.buckets, strict=True):
            total += n
            le = "+Inf" if bound == float("inf") else f"{bound:g}"
            lines.append(f'mnist_edge_inference_seconds_bucket{{le="{le}"}} {total}')
        lines += [f"mnist_edge_inference_seconds_sum {self.latency_sum:.6f}",
                  f"mnist_edge_inference_seconds_count {self.latency_count}"]
        return "\n".join(lines) + "\n"


def monitoring_lines(monitor: Any) -> list[str]:
    """The reading's confidence (a histogram over the drift monitor's bins), "no digit" by
    reason and the drift measure, in Prometheus' text format."""
    from mnist_edge.device.evaluation import drift

    status = monitor.status()
    with monitor.lock:
        counts, nones = list(monitor.confidence_counts), dict(monitor.none_total)
    lines = ["# HELP mnist_edge_confidence Confidence of each frame's reading (frames with a digit).",
             "# TYPE mnist_edge_confidence histogram"]
    total = 0
    for bound, n in zip(drift.EDGES[1:], counts, strict=True):
        total += n
        le = "+Inf" if bound == drift.EDGES[-1] else f"{bound:g}"
        lines.append(f'mnist_edge_confidence_bucket{{le="{le}"}} {total}')
    lines += [f"mnist_edge_confidence_count {total}",
              "# HELP mnist_edge_no_digit_total Frames read as no digit, by reason.",
              "# TYPE mnist_edge_no_digit_total counter"]
    lines += [f'mnist_edge_no_digit_total{{reason="{r}"}} {n}' for r, n in sorted(nones.items())]
    lines += ["# HELP mnist_edge_drift_psi Population stability index of the recent confidences "
              "against the model's reference (NaN until measured).",
              "# TYPE mnist_edge_drift_psi gauge",
              f"mnist_edge_drift_psi {status['psi'] if status['psi'] is not None else 'NaN'}",
              "# HELP mnist_edge_drift 1 while the recent confidences have drifted from the reference.",
              "# TYPE mnist_edge_drift gauge", f"mnist_edge_drift {int(status['state'] == 'drift')}"]
    return lines


class LiveState:
    """What the camera thread publishes and the handlers read: one lock, no queues."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.version = 0  # bumps with every new frame
        self.jpeg: bytes | None = None
        self.latest: dict[str, Any] | None = None
        self.reading_version = 0  # bumps when the (stable) reading changes
        self.history: deque[dict[str, Any]] = deque(maxlen=HISTORY)
        self.fps = 0.0
        self.camera_alive = False
        self.camera_error: str | None = None
        self.metrics = Metrics()
        self.started = time.time()
        self.publisher: Any = None  # live.mqtt.Publisher, when serve --mqtt
        self.recorder: Any = None  # live.history.History, unless --no-history
        self.monitor: Any = None  # evaluation.drift.Monitor: the field against the reference
        self.spool: Any = None  # live.spool.Spool: unsure readings to label (with --collect)
        self.closing = threading.Event()  # set by close() on SIGINT/SIGTERM: streams end at once
        self._waiters: set[tuple[asyncio.AbstractEventLoop, asyncio.Event]] = set()
        self.collect: Path | None = None  # serve --collect DIR: corrections are saved there
        # what the camera saw and what a person sent, kept apart: camera readings (every
        # second or so) must not push out a photo someone is about to correct
        self._kept: dict[bool, OrderedDict[str, tuple[np.ndarray, Prediction, str, int | None]]] = {
            True: OrderedDict(), False: OrderedDict()}

    def keep(self, image: np.ndarray, pred: Prediction, source: str,
             frame: int | None = None) -> str | None:
        """With --collect: remember a reading's image (at most KEEP_SIDE px; the last KEPT
        camera frames, `frame` their number, and apart the last KEPT photos and drawings) so
        the page can correct it; returns its id for the page."""
        if self.collect is None:
            return None
        image = examples.grey8_at_most(image, KEEP_SIDE)
        key = secrets.token_hex(8)
        kept = self._kept[frame is not None]
        with self.lock:
            kept[key] = (image, pred, source, frame)
            while len(kept) > KEPT:
                kept.popitem(last=False)
        return key

    def kept(self, key: str) -> tuple[np.ndarray, Prediction, str, int | None] | None:
        with self.lock:
            return self._kept[True].get(key) or self._kept[False].get(key)

    def publish(self, jpeg: bytes, reading: dict[str, Any], changed: bool, fps: float) -> None:
        with self.lock:
            self.version += 1
            self.jpeg, self.latest, self.fps = jpeg, reading, fps
            self.camera_alive, self.camera_error = True, None
            self.metrics.frames += 1
            if changed:
                self.reading_version += 1
                self.history.appendleft(reading)
        self.wake()
        if self.publisher is not None:  # stores the newest value; never waits for the broker
            if changed:
                self.publisher.reading(reading)
            self.publisher.camera(True, fps=fps)

    def wake(self) -> None:
        """Tells every stream waiting in news() to look (from any thread)."""
        with self.lock:
            waiters = list(self._waiters)
        for loop, event in waiters:
            try:
                loop.call_soon_threadsafe(event.set)
            except RuntimeError:  # that event loop has closed
                pass

    def close(self) -> None:
        """Ends every stream now (SIGINT/SIGTERM), so shutdown does not wait for viewers."""
        self.closing.set()
        self.wake()

    async def news(self, seen: int, timeout: float) -> None:
        """Returns once a frame newer than version `seen` is published, the camera's state
        changes or the server closes, else after `timeout` s: streams wait here, not poll."""
        event = asyncio.Event()
        waiter = (asyncio.get_running_loop(), event)
        with self.lock:
            if self.version != seen or self.closing.is_set():
                return
            self._waiters.add(waiter)
        try:
            async with asyncio.timeout(timeout):
                await event.wait()
        except TimeoutError:
            pass
        finally:
            with self.lock:
                self._waiters.discard(waiter)

    def snapshot(self) -> dict[str, Any]:
        with self.lock:
            return {"version": self.version, "latest": self.latest, "fps": round(self.fps, 2),
                    "camera_alive": self.camera_alive, "camera_error": self.camera_error,
                    "reading_version": self.reading_version, "history": list(self.history)}




@contextmanager
def viewer(state: LiveState, stream: str) -> Iterator[None]:
    """Counts a connected viewer of a stream for /metrics while the response runs."""
    with state.lock:
        state.metrics.streams[stream] += 1
    try:
        yield
    finally:
        with state.lock:
            state.metrics.streams[stream] -= 1

