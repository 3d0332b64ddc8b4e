"""`serve` for months on a Pi: decoding whose memory follows the work, bounded decodes, health
that tells the truth, a camera that may come and go, the Host header and the token, a quick
stop with viewers connected."""

from __future__ import annotations

import io
import json
import re
import subprocess
import sys
import threading
import time

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("starlette")
pytest.importorskip("uvicorn")
httpx = pytest.importorskip("httpx")

from starlette.testclient import TestClient  # noqa: E402

from mnist_edge.device.errors import CameraError  # noqa: E402
from mnist_edge.device.inference import bundled  # noqa: E402
from mnist_edge.device.inference import model as device_model  # noqa: E402
from mnist_edge.device.live import routes  # noqa: E402
from mnist_edge.device.live import serve as srv  # noqa: E402
from mnist_edge.device.live.loop import Reader  # noqa: E402
from mnist_edge.device.live.state import KEPT  # noqa: E402
from mnist_edge.device.reading import decode  # noqa: E402

from .conftest import ROOT, ServeProcess, free_port  # noqa: E402

EXAMPLE7 = ROOT / "examples" / "digit7_test0.png"


@pytest.fixture(scope="module")
def reader() -> Reader:
    return Reader(device_model.load(bundled.NAMES["robust"]))


def _png(mode: str, size: tuple[int, int]) -> bytes:
    buf = io.BytesIO()
    Image.new(mode, size).save(buf, format="PNG")
    return buf.getvalue()


@pytest.mark.parametrize("mode", ["P", "1", "L"])
def test_tiny_files_declaring_40_megapixels_decode_in_little_memory(mode):
    """A 5 KB palette or 1-bit PNG of 6400x6200 took 1.2 GB / 1 GB; now reduced as 8-bit grey
    first. Measured in a fresh process: peak RSS above the process's own baseline."""
    code = (
        "import io, resource, sys\n"
        "from mnist_edge.device.reading import decode\n"
        "data = sys.stdin.buffer.read()\n"
        "base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
        "gray = decode.decode_gray(data, 'bomb')\n"
        "peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
        "print(gray.shape[0], gray.shape[1], (peak - base) // 1024)\n")
    res = subprocess.run([sys.executable, "-c", code], input=_png(mode, (6400, 6200)),
                         capture_output=True, check=True)
    h, w, extra_mib = (int(v) for v in res.stdout.split())
    assert max(h, w) < 2000 and extra_mib < 120, res.stdout


def test_decoding_leaves_pillow_settings_alone():
    cap = Image.MAX_IMAGE_PIXELS
    data = EXAMPLE7.read_bytes()
    threads = [threading.Thread(target=lambda: [decode.decode_gray(data) for _ in range(20)])
               for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert Image.MAX_IMAGE_PIXELS == cap


def test_bearer_in_any_case_and_the_host_header(reader):
    app = srv.create_app(reader, srv.LiveState(), token="s3cret", hosts=srv.own_names("127.0.0.1"))
    client = TestClient(app, base_url="http://127.0.0.1:8080")
    for scheme in ("Bearer", "bearer", "BEARER"):
        assert client.get("/api/latest", headers={"authorization": f"{scheme} s3cret"}).status_code == 200
    assert client.get("/api/latest", headers={"authorization": "Basic s3cret"}).status_code == 401
    assert client.get("/api/latest?token=s3cret", headers={"host": "[::1]:8080"}).status_code == 200
    rebound = client.get("/api/latest?token=s3cret", headers={"host": "evil.example:8080"})
    assert rebound.status_code == 403 and "Host" in rebound.json()["error"]
    assert client.get("/healthz", headers={"host": "evil.example"}).status_code == 403


def test_decodes_at_a_time_are_bounded(reader, monkeypatch):
    """With --max-decodes 1, a second upload while the first is decoding waits, then 503."""
    started, release = threading.Event(), threading.Event()
    real = decode.decode_gray

    def slow(data: bytes, name: str = "<image>") -> np.ndarray:
        started.set()
        release.wait(10)
        return real(data, name)

    monkeypatch.setattr(decode, "decode_gray", slow)
    monkeypatch.setattr(routes, "DECODE_WAIT_S", 0.2)
    client = TestClient(srv.create_app(reader, srv.LiveState(), max_decodes=1))
    data = EXAMPLE7.read_bytes()
    first: list[int] = []
    t = threading.Thread(target=lambda: first.append(client.post("/api/classify", content=data).status_code))
    t.start()
    assert started.wait(10)
    busy = client.post("/api/classify", content=data)
    release.set()
    t.join(10)
    assert busy.status_code == 503 and busy.headers["retry-after"] == "1" and first == [200]


class _Vanishing:
    """A live source that gives `frames` frames, then fails as an unplugged camera does."""

    live, name, fps = True, "opencv:0", None

    def __init__(self, frames: int, error: Exception):
        self.left, self.error = frames, error

    def read(self) -> np.ndarray:
        if self.left == 0:
            raise self.error
        self.left -= 1
        return np.zeros((120, 160, 3), np.uint8)

    def close(self) -> None:
        pass


@pytest.mark.parametrize("error", [CameraError("/dev/video0: gone"), RuntimeError("driver bug")])
def test_health_says_degraded_when_the_camera_dies_and_recovers(reader, error):
    """Any exception in the camera thread (not only CameraError) is recorded: /healthz 503
    "degraded" with the reason (no absolute paths), /metrics camera down; a live camera is
    retried, and health is ok again once frames come."""
    opened = []
    checked = threading.Event()  # the camera stays down until the test has seen it down

    def opener() -> _Vanishing:
        opened.append(1)
        if len(opened) > 1:
            checked.wait(10)
        return _Vanishing(3 if len(opened) == 1 else 10**6, error)

    state = srv.LiveState()
    loop = srv.CameraLoop(opener, reader, state, live=True, retry_s=0.3)
    client = TestClient(srv.create_app(reader, state, source_name="opencv:0"))
    loop.start()
    try:
        deadline = time.monotonic() + 10
        while state.snapshot()["camera_error"] is None and time.monotonic() < deadline:
            time.sleep(0.01)
        health = client.get("/healthz")
        assert health.status_code == 503, health.text
        body = health.json()
        assert body["status"] == "degraded" and not body["camera_alive"]
        assert "/dev/" not in (body["camera_error"] or "")
        checked.set()
        while len(opened) < 2 and time.monotonic() < deadline:
            time.sleep(0.01)
        while not state.snapshot()["camera_alive"] and time.monotonic() < deadline:
            time.sleep(0.01)
        assert len(opened) >= 2
        healthy = client.get("/healthz")
        assert healthy.status_code == 200 and healthy.json()["status"] == "ok"
    finally:
        loop.stop.set()
        loop.join(5)


def test_a_folder_moved_away_is_degraded_not_ok(reader, tmp_path):
    def opener():
        raise CameraError(f"{tmp_path}/frames: no such folder")

    state = srv.LiveState()
    loop = srv.CameraLoop(opener, reader, state, live=False)
    loop.start()
    loop.join(5)
    res = TestClient(srv.create_app(reader, state, source_name=str(tmp_path / "frames"))).get("/healthz")
    assert res.status_code == 503
    body = res.json()
    assert body["status"] == "degraded" and body["camera"] == "frames"
    assert str(tmp_path) not in json.dumps(body) and "no such folder" in body["camera_error"]
    metrics = TestClient(srv.create_app(reader, state)).get("/metrics").text
    assert "mnist_edge_camera_up 0" in metrics


def test_a_folder_of_unreadable_files_backs_off_and_says_so_once(reader, tmp_path):
    """Every file unreadable: a pass with no frame is a failure (degraded, with the reason),
    retried with back-off, logged once (it spun a core and printed ~28,000 lines a second)."""
    from mnist_edge.device.live import sources as camera

    for i in range(3):
        (tmp_path / f"{i}.png").write_bytes(b"not an image")
    opened: list[int] = []
    said: list[str] = []

    def opener():
        opened.append(1)
        return camera.open_source(str(tmp_path), log=said.append)

    state = srv.LiveState()
    loop = srv.CameraLoop(opener, reader, state, live=False, retry_s=0.1, log=said.append)
    loop.start()
    time.sleep(1.5)
    loop.stop.set()
    loop.join(5)
    assert not loop.is_alive()
    assert 2 <= len(opened) <= 6, len(opened)  # 0.1, 0.2, 0.4, 0.8 s apart: not a spin
    failures = [m for m in said if m.startswith("camera:")]
    assert len(failures) == 1 and "no readable frame" in failures[0], said
    snap = state.snapshot()
    assert not snap["camera_alive"] and "no readable frame" in snap["camera_error"]


def test_serve_without_a_camera_stays_up_and_stops_quickly_with_viewers():
    """`--source opencv:97` (no such camera) no longer exits: upload works, /healthz is 503
    until a camera appears; SIGTERM with an event stream and an MJPEG viewer open ends with
    exit 0 and no traceback."""
    pytest.importorskip("cv2")
    with ServeProcess("--source", "opencv:97", "--retries", "0", "--timeout", "0.2") as serve:
        url = serve.listening().url
        assert httpx.post(url + "/api/classify", content=EXAMPLE7.read_bytes()).json()["digit"] == 7
        assert httpx.get(url + "/healthz").status_code == 503
        viewers = []
        for path in ("/api/events", "/api/stream.mjpg"):
            client = httpx.Client(timeout=10)
            viewers.append(client.stream("GET", url + path).__enter__())
        code, err = serve.stop()
    assert code == 0, err
    assert "Traceback" not in err and "stopped:" in err


def test_no_token_on_the_network_is_refused(monkeypatch):
    from typer.testing import CliRunner

    from mnist_edge.device.cli import app

    monkeypatch.setattr(srv, "run", lambda *a, **k: None)  # no server: only the start-up
    monkeypatch.delenv("MNIST_EDGE_TOKEN", raising=False)
    port = str(free_port())
    res = CliRunner().invoke(app, ["serve", "--host", "0.0.0.0", "--port", port, "--token", ""])
    assert res.exit_code == 2 and "--token '' on 0.0.0.0" in res.output
    loopback = CliRunner().invoke(app, ["serve", "--port", port, "--token", ""])
    assert loopback.exit_code == 0 and "?token=" not in loopback.output


def test_health_without_the_token_is_only_the_status(reader):
    client = TestClient(srv.create_app(reader, srv.LiveState(), token="t", source_name="none"))
    assert client.get("/healthz").json() == {"status": "ok"}
    full = client.get("/healthz?token=t").json()
    assert full["status"] == "ok" and full["model"] == reader.clf.path.name


def test_token_from_the_environment(monkeypatch):
    from typer.testing import CliRunner

    from mnist_edge.device.cli import app

    monkeypatch.setattr(srv, "run", lambda *a, **k: None)
    monkeypatch.setenv("MNIST_EDGE_TOKEN", "from-env")
    res = CliRunner().invoke(app, ["serve", "--host", "0.0.0.0", "--port", str(free_port())])
    assert res.exit_code == 0 and "?token=from-env" in res.output


def test_url_brackets_ipv6_and_shows_an_address_for_wildcards():
    assert srv.url("::1", 8080, None) == "http://[::1]:8080/"
    shown = srv.url("0.0.0.0", 8080, "t")
    assert shown.endswith(":8080/?token=t") and "0.0.0.0" not in shown


def test_unknown_routes_and_methods_answer_json_and_the_api_documents_its_token(reader):
    client = TestClient(srv.create_app(reader, srv.LiveState(), token="t"))
    missing = client.get("/nope?token=t")
    assert missing.status_code == 404 and "no such endpoint" in missing.json()["error"]
    wrong = client.delete("/api/classify?token=t")
    assert wrong.status_code == 405 and "DELETE" in wrong.json()["error"]
    assert "POST" in wrong.headers.get("allow", "")  # 405 says what is allowed
    # a stale ?token= (a bookmark) does not beat a right Authorization header, nor the reverse
    assert client.get("/api/latest?token=old", headers={"Authorization": "Bearer t"}).status_code != 401
    assert client.get("/api/latest?token=t", headers={"Authorization": "Bearer old"}).status_code != 401
    assert client.get("/api/latest?token=old", headers={"Authorization": "Bearer no"}).status_code == 401
    doc = client.get("/openapi.json").json()
    from openapi_spec_validator import validate

    validate(doc)  # raises on a document OpenAPI tools would reject (3.0.3 with type lists did)
    assert doc["openapi"].startswith("3.1")
    assert set(doc["components"]["securitySchemes"]) == {"bearer", "query"}
    assert doc["paths"]["/healthz"]["get"]["security"] == [] and doc["security"]
    # every endpoint of the app is in the document, with each of its methods
    from starlette.routing import Route

    app = srv.create_app(reader, srv.LiveState())
    for route in app.routes:
        if isinstance(route, Route) and route.path not in ("/", "/openapi.json"):
            methods = {m.lower() for m in (route.methods or ())} - {"head"}
            assert methods <= set(doc["paths"][route.path]), route.path


def test_a_generated_token_is_kept_across_restarts(monkeypatch, tmp_path):
    """Off loopback with no token given, serve makes one once, keeps it (mode 0600) and uses
    it again at the next start, so an open page reconnects after a restart."""
    from typer.testing import CliRunner

    from mnist_edge.device.cli import app

    monkeypatch.setattr(srv, "run", lambda *a, **k: None)
    monkeypatch.delenv("MNIST_EDGE_TOKEN", raising=False)
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path))
    urls = []
    for _ in range(2):
        res = CliRunner().invoke(app, ["serve", "--host", "0.0.0.0", "--port", str(free_port())])
        assert res.exit_code == 0, res.output
        urls.append(res.output.split("?token=")[1].split()[0])
    kept = tmp_path / "mnist-edge" / "token"
    assert urls[0] == urls[1] == kept.read_text().strip()
    assert kept.stat().st_mode & 0o777 == 0o600


def _qr_modules(printed: str) -> np.ndarray:
    """The modules of a QR code printed with half blocks: two rows per line (True = dark)."""
    rows: list[list[bool]] = []
    for line in printed.splitlines():
        cells = re.findall(r"\x1b\[(\d+);(\d+)m\u2580", line)
        if cells:
            rows += [[fg == "30" for fg, _ in cells], [bg == "40" for _, bg in cells]]
    return np.array(rows, dtype=bool)


def test_the_url_is_printed_as_a_qr_code_a_phone_can_scan(monkeypatch):
    """`serve --host 0.0.0.0 --qr` prints the URL (token included) as a QR code; decoded by
    OpenCV's QR readers from the printed characters, it is the URL printed above it. Not shown
    when stdout is not a terminal, unless asked."""
    cv2 = pytest.importorskip("cv2")
    pytest.importorskip("segno")
    from typer.testing import CliRunner

    from mnist_edge.device.cli import app

    monkeypatch.setattr(srv, "run", lambda *a, **k: None)
    monkeypatch.setenv("MNIST_EDGE_TOKEN", "phone-token")
    port = str(free_port())
    res = CliRunner().invoke(app, ["serve", "--host", "0.0.0.0", "--port", port, "--qr"])
    assert res.exit_code == 0, res.output
    printed_url = re.search(r"(http://\S+)", res.output).group(1)  # type: ignore[union-attr]
    modules = _qr_modules(res.output)
    assert modules.shape[0] >= 21 + 8 and not modules[:4].any()  # a quiet zone all round
    image = np.kron(np.where(modules, 0, 255).astype(np.uint8), np.ones((6, 6), np.uint8))
    # OpenCV 5.1's classic detector misses about 1 code in 700 (ports 42213, 40289 here);
    # its ArUco-based one reads them all: the code is right when either reads it
    readers = (cv2.QRCodeDetector(), cv2.QRCodeDetectorAruco())
    assert printed_url in [r.detectAndDecode(image)[0] for r in readers]
    plain = CliRunner().invoke(app, ["serve", "--host", "0.0.0.0", "--port", port])
    assert plain.exit_code == 0 and "\u2580" not in plain.output  # not a terminal: no code


def test_streams_wait_for_news_instead_of_polling():
    """`LiveState.news` returns as soon as a frame is published from another thread (the
    camera's), at once when the frame is already newer, and when the server closes; otherwise
    only at its timeout."""
    import asyncio

    state = srv.LiveState()

    async def scenario() -> list[str]:
        seen = []
        publisher = threading.Timer(0.05, state.publish, args=(b"jpeg", {"digit": 1}, True, 8.0))
        publisher.start()
        await asyncio.wait_for(state.news(0, timeout=600), 30)  # woken, not timed out
        seen.append(f"frame {state.version}")
        await asyncio.wait_for(state.news(0, timeout=600), 1)  # already newer: no wait
        seen.append("newer")
        await state.news(state.version, timeout=0.01)  # nothing new: the timeout
        seen.append("timeout")
        threading.Timer(0.05, state.close).start()
        await asyncio.wait_for(state.news(state.version, timeout=600), 30)
        seen.append("closed")
        return seen

    assert asyncio.run(scenario()) == ["frame 1", "newer", "timeout", "closed"]
    assert not state._waiters  # nobody left registered


def test_serve_collect_keeps_a_corrected_reading_as_an_example(reader, tmp_path):
    """serve --collect: an upload's answer carries an `example` id; POSTing the right label
    saves it as `collect` would (frame, crop, record). Off by default; bad bodies are 400."""
    from mnist_edge.device.data import examples

    off = TestClient(srv.create_app(reader, srv.LiveState()))
    assert "example" not in off.post("/api/classify", content=EXAMPLE7.read_bytes()).json()
    assert off.post("/api/correct", json={"example": "x", "label": "1"}).status_code == 404
    assert off.get("/api/latest").json()["collect"] is False

    state = srv.LiveState()
    state.collect = tmp_path / "mine"
    client = TestClient(srv.create_app(reader, state))
    assert client.get("/api/latest").json()["collect"] is True
    answer = client.post("/api/classify", content=EXAMPLE7.read_bytes()).json()
    assert answer["digit"] == 7 and answer["example"]
    saved = client.post("/api/correct", json={"example": answer["example"], "label": "1"})
    assert saved.status_code == 200 and saved.json()["saved"].startswith("1/")
    x, y, frames = examples.load(tmp_path / "mine")
    assert list(y) == [1] and x[0].max() > 100  # the crop the model saw, labelled as told
    record = json.loads((frames[0].parent / ".meta" / frames[0].with_suffix(".json").name).read_text())
    assert record["read"] == 7 and record["label"] == "1"
    for body in ({"example": answer["example"], "label": "seven"}, {"label": "1"}, [1]):
        assert client.post("/api/correct", json=body).status_code == 400
    assert client.post("/api/correct", json={"example": "gone", "label": "1"}).status_code == 404
    photo = client.post("/api/classify", content=EXAMPLE7.read_bytes()).json()["example"]
    frame = np.zeros((60, 60), np.uint8)
    for number in range(3 * KEPT):  # the camera's readings do not push out a person's photo
        camera_key = state.keep(frame, reader.read(frame)[0], f"camera frame {number}", number)
    assert client.post("/api/correct", json={"example": photo, "label": "7"}).status_code == 200
    assert client.post("/api/correct", json={"example": camera_key, "label": "none"}).status_code == 200
    records = [json.loads(p.read_text()) for p in (tmp_path / "mine" / "none" / ".meta").glob("*.json")]
    assert [(r["source"], r["frame"]) for r in records] == [(f"camera frame {3 * KEPT - 1}",
                                                            3 * KEPT - 1)]  # its own number
    for _ in range(KEPT):  # older readings are forgotten: memory stays bounded
        client.post("/api/classify", content=EXAMPLE7.read_bytes())
    late = client.post("/api/correct", json={"example": answer["example"], "label": "1"})
    assert late.status_code == 404 and "read it again" in late.json()["error"]
