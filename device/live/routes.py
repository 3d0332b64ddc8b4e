"""`serve`'s HTTP side: the routes and their handlers, which only *read* `LiveState` (the
camera thread writes it), so a slow or stalled client never slows the camera.

Endpoints: GET / (the page), POST /api/classify, GET /api/latest, GET /api/events (SSE),
GET /api/stream.mjpg, GET /healthz, GET /metrics (Prometheus), GET /openapi.json, and with
--collect POST /api/correct.
"""

from __future__ import annotations

import base64
import hmac
import io
import json
import re
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
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

from mnist_edge.device.data import examples
from mnist_edge.device.errors import BadImageError
from mnist_edge.device.live import collect as collecting
from mnist_edge.device.live.loop import Reader
from mnist_edge.device.live.openapi import OPENAPI
from mnist_edge.device.live.state import LiveState, monitoring_lines, viewer
from mnist_edge.device.reading import decision
from mnist_edge.device.reading import decode as images
from mnist_edge.device.reading import files as classify

STATIC = Path(__file__).parent / "static"
MAX_UPLOAD = 10 * 1024 * 1024  # bytes; larger uploads get 413
MAX_DECODES = 1  # uploads decoded at a time: a 40 MP PNG takes ~80 MB while it decodes
DECODE_WAIT_S = 10.0  # an upload waits this long for its turn, then gets 503
KEEPALIVE_S = 5.0  # the event stream sends the camera's status at least this often

Handler = Callable[[Request], Awaitable[Response]]


def create_app(reader: Reader, state: LiveState, *, token: str | None = None,
               max_upload: int = MAX_UPLOAD, source_name: str = "none",
               hosts: tuple[str, ...] | None = None, max_decodes: int = MAX_DECODES) -> Starlette:
    """The ASGI app; its dependencies come in, so tests pass fakes. `hosts`: the Host
    header names accepted (a loopback server accepts only its own: no DNS rebinding)."""
    api = Api(reader, state, Guard(token, hosts), max_upload, source_name,
              threading.BoundedSemaphore(max_decodes))
    counted = api.counted
    routes = [
        # the page itself holds no secret: open, so a wrong ?token= gets its guidance, not JSON
        Route("/", counted(api.page, open_route=True), methods=["GET"]),
        Route("/api/classify", counted(api.classify_upload), methods=["POST"]),
        Route("/api/latest", counted(api.latest), methods=["GET"]),
        Route("/api/correct", counted(api.correct), methods=["POST"]),
        Route("/api/events", counted(api.events), methods=["GET"]),
        Route("/api/history", counted(api.history), methods=["GET"]),
        Route("/api/unsure", counted(api.unsure), methods=["GET"]),
        Route("/api/unsure/{item}", counted(api.unsure_item), methods=["GET", "POST", "DELETE"]),
        Route("/api/stream.mjpg", counted(api.mjpeg), methods=["GET"]),
        Route("/healthz", counted(api.healthz, open_route=True), methods=["GET"]),
        Route("/metrics", counted(api.metrics), methods=["GET"]),
        Route("/openapi.json", counted(api.openapi, open_route=True), methods=["GET"]),
        Mount("/static", StaticFiles(directory=STATIC), name="static"),
    ]
    return Starlette(routes=routes, exception_handlers={404: not_found, 405: not_allowed})


@dataclass(frozen=True)
class Guard:
    """Who may ask: the token (if any) and the Host names a loopback server answers to."""

    token: str | None
    hosts: tuple[str, ...] | None

    def authorized(self, request: Request) -> bool:
        if not self.token:
            return True
        scheme, _, value = request.headers.get("authorization", "").partition(" ")
        bearer = value.strip() if scheme.lower() == "bearer" else ""
        given = [t for t in (bearer, request.query_params.get("token", "")) if t]
        # either one right is enough: a stale ?token= in a bookmark must not beat the header
        return any(hmac.compare_digest(t.encode(), self.token.encode()) for t in given)

    def host_allowed(self, request: Request) -> bool:
        if self.hosts is None:
            return True
        host = request.headers.get("host", "")
        name = host.rsplit(":", 1)[0] if not host.endswith("]") else host
        return name.strip("[]").lower() in self.hosts

    def refusal(self, request: Request, open_route: bool) -> Response | None:
        """403 for a foreign Host, 401 without the token (unless the route is open), else None."""
        if not self.host_allowed(request):
            return JSONResponse({"error": "this server answers only to its own address (Host header)"},
                                status_code=403)
        if not open_route and not self.authorized(request):
            return JSONResponse({"error": "missing or wrong token (add ?token=... as printed at start)"},
                                status_code=401)
        return None


@dataclass
class Upload:
    """An image sent to /api/classify and how to answer it."""

    data: bytes
    name: str
    multi: bool
    crop: bool
    top: int


class Api:
    """The handlers: each reads `state` (and, for uploads, shares `reader`'s interpreter)."""

    def __init__(self, reader: Reader, state: LiveState, guard: Guard, max_upload: int,
                 source_name: str, decoding: threading.BoundedSemaphore):
        self.reader, self.state, self.guard = reader, state, guard
        self.max_upload, self.source_name, self.decoding = max_upload, source_name, decoding

    def counted(self, handler: Handler, open_route: bool = False) -> Handler:
        """The handler behind the Host and token checks, its status counted for /metrics."""
        async def endpoint(request: Request) -> Response:
            response = self.guard.refusal(request, open_route) or await handler(request)
            with self.state.lock:
                key = str(response.status_code)
                self.state.metrics.requests[key] = self.state.metrics.requests.get(key, 0) + 1
            return response
        return endpoint

    async def page(self, _request: Request) -> Response:
        return FileResponse(STATIC / "index.html", headers={"Cache-Control": "no-store"})

    async def classify_upload(self, request: Request) -> Response:
        upload = await self._upload(request)
        if isinstance(upload, Response):
            return upload
        try:
            answer = await run_in_threadpool(self._read, upload)
        except BadImageError as e:
            return JSONResponse({"error": str(e)}, 400)
        if answer is None:
            return JSONResponse({"error": "busy: too many images being read, try again"}, 503,
                                headers={"Retry-After": "1"})
        return JSONResponse(answer)

    async def _upload(self, request: Request) -> Upload | Response:
        """The image and the options sent, or the error response (400, 413)."""
        declared = request.headers.get("content-length")
        if declared and declared.isdigit() and int(declared) > self.max_upload:
            return too_large(self.max_upload)
        if request.headers.get("content-type", "").startswith("multipart/form-data"):
            body = await self._multipart(request)
        else:
            body = await self._raw(request)
        if isinstance(body, Response):
            return body
        data, name = body
        if len(data) > self.max_upload:
            return too_large(self.max_upload)
        if not data:
            return JSONResponse({"error": "empty body: send an image"}, 400)
        query = request.query_params
        try:
            top = int(query.get("top", "1"))
        except ValueError:
            top = 0
        if not 1 <= top <= 10:
            return JSONResponse({"error": "top must be a whole number 1-10"}, 400)
        return Upload(data, name, multi=yes(query.get("multi")), crop=yes(query.get("crop")), top=top)

    async def _multipart(self, request: Request) -> tuple[bytes, str] | Response:
        try:
            form = await request.form(max_part_size=self.max_upload)
        except (HTTPException, MultiPartException) as e:  # malformed or oversized parts
            detail = getattr(e, "detail", None) or getattr(e, "message", "")
            return JSONResponse({"error": f"bad multipart body ({str(detail)[:100]})"}, 400)
        upload = form.get("file")
        if upload is None or isinstance(upload, str):
            return JSONResponse({"error": "multipart body has no 'file' part"}, 400)
        return await upload.read(self.max_upload + 1), upload.filename or "upload"

    async def _raw(self, request: Request) -> tuple[bytes, str] | Response:
        body = bytearray()
        async for chunk in request.stream():
            body += chunk
            if len(body) > self.max_upload:
                return too_large(self.max_upload)
        return bytes(body), "upload"

    def _read(self, upload: Upload) -> dict[str, Any] | None:
        """Decode and read an upload (in a worker thread); None when too many decode at once."""
        if not self.decoding.acquire(timeout=DECODE_WAIT_S):
            return None  # as many decodes as allowed are running: 503
        try:
            gray = images.decode_gray(upload.data, upload.name)
            t0 = time.perf_counter()
            model = self.reader.model  # one model for the whole answer, even across a reload
            preds = decision.read(model, gray, multi=upload.multi,
                                  min_confidence=self.reader.min_confidence)
            example = self.state.keep(gray, preds[0], upload.name) if not upload.multi else None
            del gray
        finally:
            self.decoding.release()
            give_back_memory()
        with self.state.lock:
            self.state.metrics.observe(time.perf_counter() - t0)
        answer = classify.as_json(Path(upload.name), preds, str(model.path), upload.top, upload.multi)
        if upload.crop and preds[0].pixels is not None:  # what the model saw, for the page
            answer["crop"] = png_data_url(preds[0].pixels)
        if example is not None:
            answer["example"] = example
        if self.state.recorder is not None:  # what people sent is kept too, queued
            self.state.recorder.add(answer, model.path.name, model.sha256, f"upload {upload.name}")
        return answer

    async def latest(self, _request: Request) -> Response:
        snap = self.state.snapshot()
        return JSONResponse({**(snap["latest"] or {"frame": None, "digit": None}),
                             "fps": snap["fps"], "camera_alive": snap["camera_alive"],
                             "camera_error": no_paths(snap["camera_error"]),
                             "history": snap["history"], "collect": self.state.collect is not None})

    async def correct(self, request: Request) -> Response:
        """serve --collect: the page says what a reading should have been; the example is
        saved as `collect` saves it (DIR/<label>/...)."""
        folder = self.state.collect
        if folder is None:
            return JSONResponse({"error": "collecting is off (start serve with --collect DIR)"}, 404)
        try:
            body = await request.json()
            label = examples.label_of(str(body["label"]))
            key = str(body["example"])
        except (ValueError, KeyError, TypeError):
            return JSONResponse({"error": 'send {"example": ID, "label": "0"-"9" or "none"}'}, 400)
        found = self.state.kept(key)
        if found is None:
            return JSONResponse({"error": "that reading is no longer kept: read it again"}, 404)
        image, pred, source, frame = found

        def save() -> Path:
            return examples.save(folder, label, image, pred.pixels,
                                 collecting.record(self.reader.clf, pred, source, frame or 0))

        try:
            path = await run_in_threadpool(save)
        except OSError as e:
            return JSONResponse({"error": f"cannot save the example ({e.strerror or e})"}, 500)
        return JSONResponse({"saved": f"{label}/{path.name}", "label": label})

    async def unsure(self, _request: Request) -> Response:
        """serve --collect: the unsure readings waiting for a label, newest first."""
        spool = self.state.spool
        if spool is None:
            return JSONResponse({"error": "collecting is off (start serve with --collect DIR)"}, 404)
        items = await run_in_threadpool(spool.items)
        return JSONResponse({"items": items, "count": len(items)})

    async def unsure_item(self, request: Request) -> Response:
        """GET: the item's frame (?crop=1: the 28x28); POST {"label": "3"|"none"}: file it
        as an example; DELETE: drop it."""
        spool, key = self.state.spool, request.path_params["item"]
        if spool is None:
            return JSONResponse({"error": "collecting is off (start serve with --collect DIR)"}, 404)
        gone = JSONResponse({"error": "no such unsure reading (labelled or dropped meanwhile)"}, 404)
        if request.method == "GET":
            crop = yes(request.query_params.get("crop"))
            png = await run_in_threadpool(spool.image, key.removesuffix(".png"), crop)
            return gone if png is None else Response(png, media_type="image/png",
                                                     headers={"Cache-Control": "no-store"})
        if request.method == "DELETE":
            return JSONResponse({"dropped": key}) if await run_in_threadpool(spool.discard, key) else gone
        try:
            label = examples.label_of(str((await request.json())["label"]))
        except (ValueError, KeyError, TypeError):
            return JSONResponse({"error": 'send {"label": "0"-"9" or "none"}'}, 400)
        try:
            path = await run_in_threadpool(spool.label, key, label)
        except OSError as e:
            return JSONResponse({"error": f"cannot save the example ({e.strerror or e})"}, 500)
        return gone if path is None else JSONResponse({"saved": f"{label}/{path.name}", "label": label})

    async def history(self, request: Request) -> Response:
        """The kept readings: ?since=&until= (as `mnist-edge history`), &limit=N newest,
        &format=json (default) or csv."""
        from mnist_edge.device.errors import UsageError
        from mnist_edge.device.live import history as kept

        if self.state.recorder is None:
            return JSONResponse({"error": "no history is kept (serve was started with --no-history)"},
                                404)
        query = request.query_params
        form = query.get("format", "json")
        try:
            if form not in ("json", "csv"):
                raise UsageError("format is json or csv")
            limit = int(query["limit"]) if query.get("limit") else None
            if limit is not None and limit < 1:
                raise UsageError("limit is a whole number of readings, 1 or more")
            start, end = kept.when(query.get("since")), kept.when(query.get("until"))
        except (UsageError, ValueError) as e:
            return JSONResponse({"error": str(e) if isinstance(e, UsageError) else "limit: a whole number"},
                                400)
        path = self.state.recorder.path
        try:
            rows = await run_in_threadpool(kept.query, path, start, end, limit)
        except UsageError as e:
            return JSONResponse({"error": no_paths(str(e))}, 503)
        if form == "csv":
            return PlainTextResponse(kept.as_csv(rows), media_type="text/csv",
                                     headers={"Content-Disposition": 'attachment; filename="history.csv"'})
        return JSONResponse({"readings": rows, "count": len(rows)})

    async def events(self, request: Request) -> Response:
        return StreamingResponse(self._events(request), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-store"})

    async def _events(self, request: Request) -> AsyncIterator[bytes]:
        """One `reading` event per change of reading, and a `status` event when the camera's
        state changes and at least every KEEPALIVE_S (which also keeps proxies from dropping
        a quiet stream)."""
        state = self.state
        seen = state.snapshot()["reading_version"]  # what /api/latest already showed
        yield b": mnist-edge events\n\n"
        status_at, said = 0.0, None
        with viewer(state, "events"):
            while not state.closing.is_set() and not await request.is_disconnected():
                snap = state.snapshot()
                if snap["reading_version"] != seen and snap["history"]:
                    seen = snap["reading_version"]
                    payload = {**snap["history"][0], "fps": snap["fps"]}
                    yield f"event: reading\ndata: {json.dumps(payload)}\n\n".encode()
                camera = (snap["camera_alive"], snap["camera_error"])
                if camera != said or time.monotonic() - status_at >= KEEPALIVE_S:
                    status_at, said = time.monotonic(), camera
                    status = {"camera_alive": snap["camera_alive"], "fps": snap["fps"],
                              "camera_error": snap["camera_error"]}
                    yield f"event: status\ndata: {json.dumps(status)}\n\n".encode()
                await state.news(snap["version"], min(1.0, KEEPALIVE_S))

    async def mjpeg(self, request: Request) -> Response:
        return StreamingResponse(self._frames(request),
                                 media_type="multipart/x-mixed-replace; boundary=frame",
                                 headers={"Cache-Control": "no-store"})

    async def _frames(self, request: Request) -> AsyncIterator[bytes]:
        state, seen = self.state, -1
        with viewer(state, "mjpeg"):
            while not state.closing.is_set() and not await request.is_disconnected():
                with state.lock:
                    version, jpeg = state.version, state.jpeg
                if version != seen and jpeg is not None:  # newest only: a slow client skips
                    seen = version
                    yield (b"--frame\r\nContent-Type: image/jpeg\r\nContent-Length: "
                           + str(len(jpeg)).encode() + b"\r\n\r\n" + jpeg + b"\r\n")
                await state.news(version, 1.0)

    async def healthz(self, request: Request) -> Response:
        snap = self.state.snapshot()
        ok = snap["camera_alive"] or self.source_name == "none"
        code = 200 if ok else 503
        if not self.guard.authorized(request):  # monitors without the token learn only the status
            return JSONResponse({"status": "ok" if ok else "degraded"}, status_code=code)
        clf = self.reader.clf
        body = {"status": "ok" if ok else "degraded",  # no paths, even with the token
                "camera": Path(self.source_name).name or self.source_name,
                "camera_alive": snap["camera_alive"], "camera_error": no_paths(snap["camera_error"]),
                "model": clf.path.name, "model_sha256": clf.sha256, "runtime": str(clf.runtime),
                "uptime_s": round(time.time() - self.state.started, 1), "frames": snap["version"]}
        if self.state.monitor is not None:  # a state to look at, never a 503: reading works
            body["drift"] = self.state.monitor.status()
        return JSONResponse(body, status_code=code)

    async def metrics(self, _request: Request) -> Response:
        state = self.state
        with state.lock:
            text = state.metrics.text(state.camera_alive, time.time() - state.started)
        if state.monitor is not None:  # its own lock
            text += "\n".join(monitoring_lines(state.monitor)) + "\n"
        return PlainTextResponse(text, media_type="text/plain; version=0.0.4")

    async def openapi(self, _request: Request) -> Response:
        return JSONResponse(OPENAPI)


async def not_found(request: Request, _exc: Exception) -> Response:
    return JSONResponse({"error": f"{request.url.path}: no such endpoint (see /openapi.json)"}, 404)


async def not_allowed(request: Request, exc: Exception) -> Response:
    return JSONResponse({"error": f"{request.method} is not allowed on {request.url.path}"}, 405,
                        headers=getattr(exc, "headers", None))  # Allow: what is


def yes(value: str | None) -> bool:
    return (value or "false").lower() in ("1", "true", "yes")


def too_large(limit: int) -> Response:
    return JSONResponse({"error": f"upload above the {limit // 1024 // 1024} MB limit"}, 413)


def png_data_url(pixels: np.ndarray, scale: int = 4) -> str:
    """A 28x28 model input as a PNG data URL, scaled up (nearest) so it shows as pixels."""
    img = Image.fromarray(np.asarray(pixels, np.uint8)).resize(
        (pixels.shape[1] * scale, pixels.shape[0] * scale), Image.Resampling.NEAREST)
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


def no_paths(message: str | None) -> str | None:
    """An error message with absolute paths cut to their last part."""
    if message is None:
        return None
    return re.sub(r"(?:/[^/\s:]+)+/([^/\s:]+)", r"\1", message)


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
