"""`mnist-edge serve`: a live view and an HTTP API for a headless Pi (the [serve] extra).

One camera thread runs the live loop (live.loop.Reader) and only *publishes* the newest
frame and reading into `LiveState`; handlers only *read* it, under one lock, so a slow or
stalled client never slows the camera: every stream client gets the newest frame and
skips the rest. Uploads share the interpreter: only its invoke is under the Reader's lock.

Endpoints: GET / (the page), POST /api/classify, GET /api/latest, GET /api/events (SSE),
GET /api/stream.mjpg, GET /healthz, GET /metrics (Prometheus), GET /openapi.json, and with
--collect POST /api/correct.
"""

from __future__ import annotations

import asyncio
import hmac
import io
import json
import os
import re
import secrets
import socket
import threading
import time
from collections import OrderedDict, deque
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw, ImageFont
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.formparsers import MultiPartException
from starlette.requests import Request
from starlette.responses import (
    FileResponse,
    JSONResponse,
    PlainTextResponse,
    Response,
    StreamingResponse,
)
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from mnist_edge.device import atomic
from mnist_edge.device.data import examples
from mnist_edge.device.errors import BadImageError, CameraError, UsageError
from mnist_edge.device.live import collect as collecting
from mnist_edge.device.live import sources as camera
from mnist_edge.device.live.loop import Reader, Stable, reading_of
from mnist_edge.device.reading import decision
from mnist_edge.device.reading import decode as images
from mnist_edge.device.reading import files as classify
from mnist_edge.device.reading.decision import Prediction

STATIC = Path(__file__).parent / "static"
MAX_UPLOAD = 10 * 1024 * 1024  # bytes; larger uploads get 413
MAX_DECODES = 1  # uploads decoded at a time: a 40 MP PNG takes ~80 MB while it decodes
DECODE_WAIT_S = 10.0  # an upload waits this long for its turn, then gets 503
KEEPALIVE_S = 5.0  # the event stream sends the camera's status at least this often
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
        image = examples.grey8(image)
        if max(image.shape[:2]) > KEEP_SIDE:
            small = Image.fromarray(image)
            small.thumbnail((KEEP_SIDE, KEEP_SIDE))
            image = np.asarray(small)
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
                self._fail(str(e) or type(e).__name__)
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
                reading = self.reader.describe(preds, number, getattr(source, "current", None))
                changed = change.update(reading_of(preds, self.reader.multi))
                if changed and self.state.collect is not None and not self.reader.multi:
                    region = self.reader.roi(frame).cut(frame)
                    reading["example"] = self.state.keep(region, preds[0], f"camera frame {number}",
                                                         number)
                jpeg = annotate(frame, self.reader.roi(frame), _label(reading))
                recent.append(time.perf_counter())
                span = recent[-1] - recent[0]
                rate = (len(recent) - 1) / span if span > 0 else 0.0
                self.state.publish(jpeg, reading, changed, rate)
                self.failure = None  # up again: the next failure is news
                number += 1
                if period:
                    self.stop.wait(max(0.0, period - (time.perf_counter() - t0)))
            return number
        finally:
            with self.state.lock:
                self.state.metrics.reconnects = getattr(source, "reconnects", 0)
            source.close()

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


def create_app(reader: Reader, state: LiveState, *, token: str | None = None,
               max_upload: int = MAX_UPLOAD, source_name: str = "none",
               hosts: tuple[str, ...] | None = None, max_decodes: int = MAX_DECODES) -> Starlette:
    """The ASGI app; its dependencies come in, so tests pass fakes. `hosts`: the Host
    header names accepted (a loopback server accepts only its own: no DNS rebinding)."""
    decoding = threading.BoundedSemaphore(max_decodes)

    def authorized(request: Request) -> bool:
        if not token:
            return True
        scheme, _, value = request.headers.get("authorization", "").partition(" ")
        bearer = value.strip() if scheme.lower() == "bearer" else ""
        given = [t for t in (bearer, request.query_params.get("token", "")) if t]
        # either one right is enough: a stale ?token= in a bookmark must not beat the header
        return any(hmac.compare_digest(t.encode(), token.encode()) for t in given)

    def host_allowed(request: Request) -> bool:
        if hosts is None:
            return True
        host = request.headers.get("host", "")
        name = host.rsplit(":", 1)[0] if not host.endswith("]") else host
        return name.strip("[]").lower() in hosts

    def counted(handler: Callable[[Request], Any], open_route: bool = False) -> Callable[..., Any]:
        async def endpoint(request: Request) -> Response:
            if not host_allowed(request):
                response: Response = JSONResponse(
                    {"error": "this server answers only to its own address (Host header)"},
                    status_code=403)
            elif not open_route and not authorized(request):
                response = JSONResponse(
                    {"error": "missing or wrong token (add ?token=... as printed at start)"},
                    status_code=401)
            else:
                response = await handler(request)
            with state.lock:
                key = str(response.status_code)
                state.metrics.requests[key] = state.metrics.requests.get(key, 0) + 1
            return response
        return endpoint

    async def page(_request: Request) -> Response:
        return FileResponse(STATIC / "index.html", headers={"Cache-Control": "no-store"})

    async def classify_upload(request: Request) -> Response:
        declared = request.headers.get("content-length")
        if declared and declared.isdigit() and int(declared) > max_upload:
            return _too_large(max_upload)
        ctype = request.headers.get("content-type", "")
        if ctype.startswith("multipart/form-data"):
            try:
                form = await request.form(max_part_size=max_upload)
            except (HTTPException, MultiPartException) as e:  # malformed or oversized parts
                detail = getattr(e, "detail", None) or getattr(e, "message", "")
                return JSONResponse({"error": f"bad multipart body ({str(detail)[:100]})"}, 400)
            upload = form.get("file")
            if upload is None or isinstance(upload, str):
                return JSONResponse({"error": "multipart body has no 'file' part"}, 400)
            data = await upload.read(max_upload + 1)
            name = upload.filename or "upload"
        else:
            body = bytearray()
            async for chunk in request.stream():
                body += chunk
                if len(body) > max_upload:
                    return _too_large(max_upload)
            data, name = bytes(body), "upload"
        if len(data) > max_upload:
            return _too_large(max_upload)
        if not data:
            return JSONResponse({"error": "empty body: send an image"}, 400)
        multi = request.query_params.get("multi", "false").lower() in ("1", "true", "yes")
        want_crop = request.query_params.get("crop", "false").lower() in ("1", "true", "yes")
        try:
            top = int(request.query_params.get("top", "1"))
        except ValueError:
            return JSONResponse({"error": "top must be a whole number 1-10"}, 400)
        if not 1 <= top <= 10:
            return JSONResponse({"error": "top must be a whole number 1-10"}, 400)

        def work() -> dict[str, Any] | None:
            if not decoding.acquire(timeout=DECODE_WAIT_S):
                return None  # as many decodes as allowed are running: 503
            try:
                gray = images.decode_gray(data, name)
                t0 = time.perf_counter()
                model = reader.model  # one model for the whole answer, even across a reload
                preds = decision.read(model, gray, multi=multi,
                                      min_confidence=reader.min_confidence)
                example = state.keep(gray, preds[0], name) if not multi else None
                del gray
            finally:
                decoding.release()
                give_back_memory()
            with state.lock:
                state.metrics.observe(time.perf_counter() - t0)
            answer = classify.as_json(Path(name), preds, str(model.path), top, multi)
            if want_crop and preds[0].pixels is not None:  # what the model saw, for the page
                answer["crop"] = _png_data_url(preds[0].pixels)
            if example is not None:
                answer["example"] = example
            return answer

        try:
            from starlette.concurrency import run_in_threadpool

            answer = await run_in_threadpool(work)
        except BadImageError as e:
            return JSONResponse({"error": str(e)}, 400)
        if answer is None:
            return JSONResponse({"error": "busy: too many images being read, try again"}, 503,
                                headers={"Retry-After": "1"})
        return JSONResponse(answer)

    async def latest(_request: Request) -> Response:
        snap = state.snapshot()
        return JSONResponse({**(snap["latest"] or {"frame": None, "digit": None}),
                             "fps": snap["fps"], "camera_alive": snap["camera_alive"],
                             "history": snap["history"], "collect": state.collect is not None})

    async def correct(request: Request) -> Response:
        """serve --collect: the page says what a reading should have been; the example is
        saved as `collect` saves it (DIR/<label>/...)."""
        if state.collect is None:
            return JSONResponse({"error": "collecting is off (start serve with --collect DIR)"}, 404)
        try:
            body = await request.json()
            label = examples.label_of(str(body["label"]))
            key = str(body["example"])
        except (ValueError, KeyError, TypeError):
            return JSONResponse({"error": 'send {"example": ID, "label": "0"-"9" or "none"}'}, 400)
        found = state.kept(key)
        if found is None:
            return JSONResponse({"error": "that reading is no longer kept: read it again"}, 404)
        image, pred, source, frame = found
        folder = state.collect

        def save() -> Path:
            return examples.save(folder, label, image, pred.pixels,
                                 collecting.record(reader.clf, pred, source, frame or 0))

        from starlette.concurrency import run_in_threadpool

        try:
            path = await run_in_threadpool(save)
        except OSError as e:
            return JSONResponse({"error": f"cannot save the example ({e.strerror or e})"}, 500)
        return JSONResponse({"saved": f"{label}/{path.name}", "label": label})

    async def events(request: Request) -> Response:
        async def stream() -> AsyncIterator[bytes]:
            seen = state.snapshot()["reading_version"]  # what /api/latest already showed
            yield b": mnist-edge events\n\n"
            status_at, said = 0.0, None
            with _viewer(state, "events"):
                while not state.closing.is_set() and not await request.is_disconnected():
                    snap = state.snapshot()
                    if snap["reading_version"] != seen and snap["history"]:
                        seen = snap["reading_version"]
                        payload = {**snap["history"][0], "fps": snap["fps"]}
                        yield f"event: reading\ndata: {json.dumps(payload)}\n\n".encode()
                    camera = (snap["camera_alive"], snap["camera_error"])
                    # the camera's state when it changes, and at least every KEEPALIVE_S
                    # (which also keeps proxies from dropping a quiet stream)
                    if camera != said or time.monotonic() - status_at >= KEEPALIVE_S:
                        status_at, said = time.monotonic(), camera
                        status = {"camera_alive": snap["camera_alive"], "fps": snap["fps"],
                                  "camera_error": snap["camera_error"]}
                        yield f"event: status\ndata: {json.dumps(status)}\n\n".encode()
                    await state.news(snap["version"], min(1.0, KEEPALIVE_S))
        return StreamingResponse(stream(), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-store"})

    async def mjpeg(request: Request) -> Response:
        async def stream() -> AsyncIterator[bytes]:
            seen = -1
            with _viewer(state, "mjpeg"):
                while not state.closing.is_set() and not await request.is_disconnected():
                    with state.lock:
                        version, jpeg = state.version, state.jpeg
                    if version != seen and jpeg is not None:  # newest only: a slow client skips
                        seen = version
                        yield (b"--frame\r\nContent-Type: image/jpeg\r\nContent-Length: "
                               + str(len(jpeg)).encode() + b"\r\n\r\n" + jpeg + b"\r\n")
                    await state.news(version, 1.0)
        return StreamingResponse(stream(), media_type="multipart/x-mixed-replace; boundary=frame",
                                 headers={"Cache-Control": "no-store"})

    async def healthz(request: Request) -> Response:
        snap = state.snapshot()
        live = source_name != "none"
        ok = snap["camera_alive"] or not live
        if not authorized(request):  # monitors without the token learn only the status
            return JSONResponse({"status": "ok" if ok else "degraded"}, status_code=200 if ok else 503)
        body = {"status": "ok" if ok else "degraded",  # no paths, even with the token
                "camera": Path(source_name).name or source_name, "camera_alive": snap["camera_alive"],
                "camera_error": _no_paths(snap["camera_error"]), "model": reader.clf.path.name,
                "model_sha256": reader.clf.sha256, "runtime": str(reader.clf.runtime),
                "uptime_s": round(time.time() - state.started, 1), "frames": snap["version"]}
        return JSONResponse(body, status_code=200 if ok else 503)

    async def metrics(_request: Request) -> Response:
        with state.lock:
            text = state.metrics.text(state.camera_alive, time.time() - state.started)
        return PlainTextResponse(text, media_type="text/plain; version=0.0.4")

    async def openapi(_request: Request) -> Response:
        return JSONResponse(OPENAPI)

    routes = [
        Route("/", counted(page), methods=["GET"]),
        Route("/api/classify", counted(classify_upload), methods=["POST"]),
        Route("/api/latest", counted(latest), methods=["GET"]),
        Route("/api/correct", counted(correct), methods=["POST"]),
        Route("/api/events", counted(events), methods=["GET"]),
        Route("/api/stream.mjpg", counted(mjpeg), methods=["GET"]),
        Route("/healthz", counted(healthz, open_route=True), methods=["GET"]),
        Route("/metrics", counted(metrics), methods=["GET"]),
        Route("/openapi.json", counted(openapi, open_route=True), methods=["GET"]),
        Mount("/static", StaticFiles(directory=STATIC), name="static"),
    ]
    async def not_found(request: Request, _exc: Exception) -> Response:
        return JSONResponse({"error": f"{request.url.path}: no such endpoint (see /openapi.json)"}, 404)

    async def not_allowed(request: Request, exc: Exception) -> Response:
        return JSONResponse({"error": f"{request.method} is not allowed on {request.url.path}"}, 405,
                            headers=getattr(exc, "headers", None))  # Allow: what is

    return Starlette(routes=routes, exception_handlers={404: not_found, 405: not_allowed})


@contextmanager
def _viewer(state: LiveState, stream: str) -> Iterator[None]:
    """Counts a connected viewer of a stream for /metrics while the response runs."""
    with state.lock:
        state.metrics.streams[stream] += 1
    try:
        yield
    finally:
        with state.lock:
            state.metrics.streams[stream] -= 1


def _libc_malloc_trim() -> Any:
    try:
        import ctypes

        return ctypes.CDLL("libc.so.6").malloc_trim
    except (OSError, AttributeError):  # not glibc
        return None


_MALLOC_TRIM = _libc_malloc_trim()


def give_back_memory() -> None:
    """glibc's malloc_trim(0) after a decode: the freed heap goes back to the system (glibc
    keeps it otherwise, and a Pi's memory climbs with every big upload). A no-op elsewhere."""
    if _MALLOC_TRIM is not None:
        _MALLOC_TRIM(0)


def _png_data_url(pixels: np.ndarray, scale: int = 4) -> str:
    """A 28x28 model input as a PNG data URL, scaled up (nearest) so it shows as pixels."""
    import base64

    img = Image.fromarray(np.asarray(pixels, np.uint8)).resize(
        (pixels.shape[1] * scale, pixels.shape[0] * scale), Image.Resampling.NEAREST)
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


def _no_paths(message: str | None) -> str | None:
    """An error message with absolute paths cut to their last part."""
    if message is None:
        return None
    return re.sub(r"(?:/[^/\s:]+)+/([^/\s:]+)", r"\1", message)


def _too_large(limit: int) -> Response:
    return JSONResponse({"error": f"upload above the {limit // 1024 // 1024} MB limit"}, 413)


_READING = {"type": "object", "properties": {
    "file": {"type": ["string", "null"]}, "digit": {"type": ["integer", "null"]},
    "confidence": {"type": ["number", "null"]}, "no_digit": {"type": ["number", "null"]},
    "none_reason": {"type": ["string", "null"]}, "model": {"type": "string"},
    "probabilities": {"type": ["array", "null"], "items": {"type": "number"}}}}
OPENAPI: dict[str, Any] = {
    "openapi": "3.1.0",  # 3.1: JSON Schema types, e.g. ["string", "null"] (3.0 has no such form)
    "info": {"title": "mnist-edge serve", "version": "1"},
    # The token, when the server has one: as a bearer token or ?token=. /healthz (status
    # only) and this document need none.
    "components": {"securitySchemes": {
        "bearer": {"type": "http", "scheme": "bearer"},
        "query": {"type": "apiKey", "in": "query", "name": "token"}}},
    "security": [{"bearer": []}, {"query": []}],
    "paths": {
        "/api/classify": {"post": {
            "summary": "Classify an uploaded image (raw body or multipart 'file')",
            "parameters": [{"name": "multi", "in": "query", "schema": {"type": "boolean"}},
                           {"name": "crop", "in": "query", "schema": {"type": "boolean"},
                            "description": "add `crop`: the 28x28 the model saw, a PNG data URL"},
                           {"name": "top", "in": "query", "schema": {"type": "integer"}}],
            "requestBody": {"content": {"image/*": {}, "multipart/form-data": {}}},
            "responses": {"200": {"description": "the reading",
                                  "content": {"application/json": {"schema": _READING}}},
                          "400": {"description": "not a readable image"},
                          "401": {"description": "token missing"},
                          "413": {"description": "upload too large"},
                          "503": {"description": "busy: as many images as allowed are being "
                                                 "decoded; retry after Retry-After seconds"}}}},
        "/api/latest": {"get": {"summary": "The last camera frame's reading",
                                "responses": {"200": {"description": "reading"}}}},
        "/api/correct": {"post": {
            "summary": "serve --collect: save a reading (its `example` id) as an example of "
                       "the right label, for `train --finetune`",
            "requestBody": {"required": True, "content": {"application/json": {"schema": {
                "type": "object", "required": ["example", "label"],
                "properties": {"example": {"type": "string"},
                               "label": {"type": "string", "enum": examples.LABELS}}}}}},
            "responses": {"200": {"description": "saved"}, "400": {"description": "bad body"},
                          "404": {"description": "collecting off, or the reading is gone"}}}},
        "/api/events": {"get": {"summary": "Server-sent events, one per change of reading",
                                "responses": {"200": {"description": "text/event-stream"}}}},
        "/api/stream.mjpg": {"get": {"summary": "Annotated MJPEG stream",
                                     "responses": {"200": {"description": "multipart JPEG"}}}},
        "/healthz": {"get": {"summary": "ok or degraded; with the token also the camera's "
                                        "error, the model's SHA-256 and the uptime",
                             "security": [],
                             "responses": {"200": {"description": "ok"},
                                           "503": {"description": "degraded: the camera is down"}}}},
        "/metrics": {"get": {"summary": "Prometheus metrics",
                             "responses": {"200": {"description": "text"}}}},
    },
}


LOOPBACK = ("127.0.0.1", "localhost", "::1")


def token_file() -> Path:
    base = os.environ.get("XDG_STATE_HOME") or Path.home() / ".local" / "state"
    return Path(base) / "mnist-edge" / "token"


def stored_token(log: Callable[[str], None]) -> str:
    """The token kept in the user's state folder (mode 0600), made on the first start: a
    restart keeps it, so open pages reconnect. Where it cannot be kept, a new one each start."""
    path = token_file()
    try:
        kept = path.read_text().strip()
        if kept:
            return kept
    except FileNotFoundError:
        pass
    except OSError as e:
        log(f"warning: {path}: cannot read the kept token ({e.strerror or e}); using a new one")
        return secrets.token_urlsafe(16)
    token = secrets.token_urlsafe(16)
    try:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        atomic.write_bytes(path, token.encode() + b"\n", mode=0o600)
    except OSError as e:
        log(f"warning: {path}: cannot keep the token ({e.strerror or e}): a new one at every "
            "start (set MNIST_EDGE_TOKEN to keep one)")
    return token


def own_names(host: str) -> tuple[str, ...]:
    """The Host header names a loopback server answers to (a page on another site that
    resolves its own name to 127.0.0.1 sends that name: DNS rebinding is refused)."""
    return ("127.0.0.1", "localhost", "::1", host.lower())


def listen(host: str, port: int) -> socket.socket:
    """A TCP socket bound to host:port (UsageError when the address is taken or foreign)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # IPPROTO_TCP, not 0: asyncio turns Nagle off (TCP_NODELAY) only on sockets that say
    # they are TCP; without it every response waits ~40 ms for a delayed ACK.
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as e:
        sock.close()
        raise UsageError(f"cannot listen on {host}:{port} ({e.strerror or e})") from None
    return sock


def url(host: str, port: int, token: str | None) -> str:
    """The address to print: for a wildcard bind the machine's LAN address (phones often
    cannot resolve NAME.local), IPv6 literals in brackets."""
    shown = host
    if host in ("0.0.0.0", "::"):
        shown = lan_address() or socket.gethostname() + ".local"
    if ":" in shown:
        shown = f"[{shown}]"
    return f"http://{shown}:{port}/" + (f"?token={token}" if token else "")


def lan_address() -> str | None:
    """The address this machine reaches its network from (no packet is sent), or None."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.connect(("192.0.2.1", 9))  # TEST-NET-1: routing only, nothing is sent
            address = s.getsockname()[0]
        except OSError:
            return None
    return None if address.startswith("127.") else address


def run(web: Starlette, sock: socket.socket, loop: CameraLoop | None, state: LiveState) -> None:
    """Serve until SIGINT/SIGTERM, then stop the camera thread, the socket and MQTT."""
    import signal

    import uvicorn

    class Server(uvicorn.Server):
        def handle_exit(self, sig: int, frame: Any) -> None:
            state.close()  # streams end now, so shutdown does not wait for viewers
            super().handle_exit(sig, frame)

    if loop is not None:
        loop.start()
    server = Server(uvicorn.Config(web, log_level="warning", access_log=False,
                                   timeout_graceful_shutdown=2))
    # uvicorn stops gracefully on SIGINT/SIGTERM, then raises the signal again for the
    # handlers it found: make those no-ops, so the caller's summary is printed and it exits 0.
    previous = {s: signal.signal(s, lambda *_: None) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        server.run(sockets=[sock])
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        if loop is not None:
            loop.stop.set()
            if loop.is_alive():
                loop.join(timeout=5)
        sock.close()
        if state.publisher is not None:
            state.publisher.close()


def summary(state: LiveState, source: str) -> str:
    requests = sum(state.metrics.requests.values())
    return (f"stopped: {requests} requests served, {state.metrics.frames} frames from {source}, "
            f"{state.metrics.frame_errors} frame errors, up {time.time() - state.started:.0f} s")
