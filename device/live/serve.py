"""`mnist-edge serve`: a live view and an HTTP API for a headless Pi (the [serve] extra).

One camera thread (camera_loop.CameraLoop) runs the live loop and only *publishes* the
newest frame and reading into `state.LiveState`; the handlers (routes.Api) only *read* it,
under one lock, so a slow or stalled client never slows the camera: every stream client gets
the newest frame and skips the rest. Uploads share the interpreter: only its invoke is under
the Reader's lock. network.py holds the socket, the printed address and the kept token;
openapi.py the API's document. This module starts and stops them together.
"""

from __future__ import annotations

import socket
import time
from typing import Any

from starlette.applications import Starlette

from mnist_edge.device.live.camera_loop import CameraLoop
from mnist_edge.device.live.network import LOOPBACK, listen, own_names, stored_token, url
from mnist_edge.device.live.routes import create_app
from mnist_edge.device.live.state import LiveState

__all__ = ["LOOPBACK", "CameraLoop", "LiveState", "create_app", "listen", "own_names", "run",
           "stored_token", "summary", "url"]


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
        if state.recorder is not None:
            state.recorder.close()


def summary(state: LiveState, source: str) -> str:
    requests = sum(state.metrics.requests.values())
    return (f"stopped: {requests} requests served, {state.metrics.frames} frames from {source}, "
            f"{state.metrics.frame_errors} frame errors, up {time.time() - state.started:.0f} s")
