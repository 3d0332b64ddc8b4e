"""MQTT with Home Assistant discovery (device/mqtt.py), against a real Mosquitto broker
started here on a free port (Debian's `mosquitto`; skipped when it is not installed)."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from mnist_edge.device.errors import UsageError
from mnist_edge.device.live import mqtt

from .conftest import ROOT, free_port

pytest.importorskip("paho.mqtt")
MOSQUITTO = shutil.which("mosquitto") or ("/usr/sbin/mosquitto" if Path("/usr/sbin/mosquitto").exists()
                                          else None)
needs_broker = pytest.mark.skipif(MOSQUITTO is None, reason="mosquitto is not installed "
                                  "(apt-get install mosquitto)")
VIDEO = ROOT / "examples" / "video_37419.avi"


class Broker:
    def __init__(self, folder: Path, port: int | None = None, extra: str = ""):
        self.folder, self.port, self.extra = folder, port or free_port(), extra
        self.proc: subprocess.Popen | None = None

    def start(self) -> Broker:
        conf = self.folder / "mosquitto.conf"
        import os

        # As root, mosquitto would drop to the `mosquitto` user, who cannot read tmp_path.
        user = "user root\n" if os.geteuid() == 0 else ""
        conf.write_text(f"listener {self.port} 127.0.0.1\npersistence false\n{user}{self.extra}")
        self.log = open(self.folder / "mosquitto.log", "ab")  # noqa: SIM115
        assert MOSQUITTO is not None
        self.proc = subprocess.Popen([MOSQUITTO, "-c", str(conf)], stdout=self.log,
                                     stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), 0.2).close()
                return self
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("mosquitto did not start: "
                           + (self.folder / "mosquitto.log").read_text()[-500:])

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(5)
            self.proc = None
            self.log.close()


@pytest.fixture
def broker(tmp_path):
    b = Broker(tmp_path, extra="allow_anonymous true\n").start()
    yield b
    b.stop()


class Listener:
    """A paho client subscribed to '#', collecting (topic, payload, retained)."""

    def __init__(self, port: int, **tls):
        import paho.mqtt.client as paho

        self.messages: list[tuple[str, str, bool]] = []
        self.lock = threading.Lock()
        self.client = paho.Client(paho.CallbackAPIVersion.VERSION2)
        if tls:
            self.client.tls_set(**tls)
        self.subscribed = threading.Event()
        self.client.on_connect = lambda c, *_: c.subscribe("#", qos=1)
        self.client.on_subscribe = lambda *_: self.subscribed.set()
        self.client.on_message = self._on_message
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()
        # subscribed before the test goes on: nothing published after this is missed
        assert self.subscribed.wait(10), "the listener never subscribed"

    def _on_message(self, _c, _u, msg) -> None:
        with self.lock:
            self.messages.append((msg.topic, msg.payload.decode(), bool(msg.retain)))

    def wait_for(self, predicate, timeout: float = 10.0) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                if predicate(list(self.messages)):
                    return True
            time.sleep(0.05)
        return False

    def drained(self) -> list[tuple[str, str, bool]]:
        """Everything the broker had for us: a marker published now arrives after every
        retained message and every message published before it, so a check that something
        did *not* arrive needs no fixed wait. Returns the messages before the marker."""
        marker = f"test/marker/{id(self)}-{time.monotonic_ns()}"
        self.client.publish(marker, "end", qos=1)
        assert self.wait_for(lambda m: any(t == marker for t, _, _ in m)), "the marker never came"
        with self.lock:
            return [m for m in self.messages if not m[0].startswith("test/marker/")]

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def _camera(port: int, *args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    import os

    return subprocess.run([sys.executable, "-m", "mnist_edge.device.cli", "camera", "--source",
                           str(VIDEO), "--stable", "3", "--mqtt", f"mqtt://127.0.0.1:{port}",
                           "--mqtt-device", "pi-test", *args],
                          capture_output=True, text=True, timeout=120,
                          env={**os.environ, **(env or {})})


def test_parse_url_and_credentials(tmp_path):
    b = mqtt.parse_url("mqtts://u%40x:p@broker.lan", {})
    assert (b.host, b.port, b.tls, b.username, b.password) == ("broker.lan", 8883, True, "u@x", "p")
    assert mqtt.parse_url("mqtt://h", {}).port == 1883
    assert mqtt.parse_url("mqtt://h:1999", {mqtt.ENV_USER: "a", mqtt.ENV_PASSWORD: "b"}).username == "a"
    creds = tmp_path / "mqtt"
    creds.write_text("alice\nsecret\n")
    b = mqtt.parse_url("mqtt://h", {mqtt.ENV_CREDENTIALS: str(creds)})
    assert (b.username, b.password) == ("alice", "secret")
    for bad in ("http://h", "mqtt://", "mqtt://h:99999"):
        with pytest.raises(UsageError):
            mqtt.parse_url(bad, {})


def test_discovery_configs_carry_what_home_assistant_requires():
    configs = mqtt.discovery_configs("mnist-edge", "pi", model="m.tflite")
    kinds = sorted(topic.split("/")[1] for topic in configs)
    assert kinds == ["binary_sensor", "sensor", "sensor", "sensor", "sensor", "sensor"]
    ids = set()
    for topic, c in configs.items():
        assert topic.startswith("homeassistant/") and topic.endswith("/config")
        assert c["state_topic"].startswith("mnist-edge/pi/") and c["name"] and c["unique_id"]
        assert c["availability_topic"] == "mnist-edge/pi/availability"
        assert isinstance(c["device"]["identifiers"], list) and c["device"]["name"]
        ids.add(c["unique_id"])
        assert c["origin"]["name"] == "mnist-edge" and c["origin"]["sw_version"]  # who announced it
    assert len(ids) == 6
    expiring = {c["name"] for c in configs.values() if c.get("expire_after")}
    assert expiring == {"Digit", "Confidence"}  # the reading goes unavailable when the device stalls


def test_device_names_become_ids_home_assistant_accepts():
    import re

    from mnist_edge.device.errors import UsageError

    for name, want in (("Kitchen Pi", "kitchen-pi"), ("pi.local", "pi-local"), ("a/b", "a-b"),
                       ("x+y", "x-y"), ("#1 meter", "1-meter"), ("pi_2", "pi_2")):
        assert mqtt.device_id(name) == want
        for topic in mqtt.discovery_configs("mnist-edge", mqtt.device_id(name)):
            assert re.fullmatch(r"homeassistant/[a-z_]+/[a-zA-Z0-9_-]+/[a-zA-Z0-9_-]+/config", topic)
    with pytest.raises(UsageError, match="--mqtt-device"):
        mqtt.device_id("//+#")


@needs_broker
def test_a_device_name_with_spaces_is_published_under_its_id(broker):
    listener = Listener(broker.port)
    try:
        res = _camera(broker.port, "--mqtt-device", "Kitchen Pi", "--frames", "20")
        assert res.returncode == 0, res.stderr
        assert "MQTT device id kitchen-pi (from --mqtt-device 'Kitchen Pi')" in res.stderr
        assert listener.wait_for(lambda m: any(t == "mnist-edge/kitchen-pi/availability"
                                               and p == "offline" for t, p, _ in m))
        configs = [t for t, _, _ in listener.messages if t.startswith("homeassistant/")]
        assert len(configs) == 6 and all("/mnist_edge_kitchen_pi/" in t for t in configs)
    finally:
        listener.close()


@needs_broker
def test_camera_publishes_readings_in_order_with_discovery(broker):
    listener = Listener(broker.port)
    try:
        res = _camera(broker.port)
        assert res.returncode == 0, res.stderr
        assert listener.wait_for(lambda m: any(t == "mnist-edge/pi-test/availability"
                                               and p == "offline" for t, p, _ in m))
        states = [json.loads(p) for t, p, _ in listener.messages if t == "mnist-edge/pi-test/state"]
        digits = [s["digit"] for s in states if s["digit"] is not None]
        assert digits == [3, 7, 4, 1, 9]
        assert {"digit", "confidence", "none_reason", "frame", "time"} <= set(states[0])
        configs = {t: json.loads(p) for t, p, _ in listener.messages if t.startswith("homeassistant/")}
        assert len(configs) == 6
        camera = [json.loads(p) for t, p, _ in listener.messages if t == "mnist-edge/pi-test/camera"]
        assert camera and camera[0]["status"] == "up"
        assert res.stderr.count("mqtt: connected") == 1
    finally:
        listener.close()
    # retained: a late subscriber sees the last state, offline, and the configs
    late = Listener(broker.port)
    try:
        assert late.wait_for(lambda m: any(t == "mnist-edge/pi-test/state" and r for t, _, r in m))
        assert late.wait_for(lambda m: sum(t.startswith("homeassistant/") for t, _, _ in m) == 6)
        last = next(json.loads(p) for t, p, _ in late.messages if t == "mnist-edge/pi-test/state")
        assert last["digit"] == 9
    finally:
        late.close()


@needs_broker
def test_forget_removes_the_device(broker):
    assert _camera(broker.port, "--frames", "20").returncode == 0
    res = _camera(broker.port, "--mqtt-forget")
    assert res.returncode == 0, res.stderr
    assert "removed mnist-edge/pi-test" in res.stderr
    late = Listener(broker.port)
    try:
        assert late.drained() == []  # nothing retained is left of the device
    finally:
        late.close()


def test_forget_without_a_broker_url_is_a_usage_error():
    from typer.testing import CliRunner

    from mnist_edge.device.cli import app

    res = CliRunner().invoke(app, ["camera", "--mqtt-forget"])
    assert res.exit_code == 2 and "needs --mqtt URL" in res.stderr


@needs_broker
def test_no_discovery(broker):
    listener = Listener(broker.port)
    try:
        assert _camera(broker.port, "--no-discovery", "--frames", "20").returncode == 0
        assert listener.wait_for(lambda m: any(t.endswith("/availability") and p == "offline"
                                               for t, p, _ in m))
        assert not [t for t, _, _ in listener.drained() if t.startswith("homeassistant/")]
    finally:
        listener.close()


@needs_broker
def test_broker_restart_loses_nothing_but_the_newest_is_there(tmp_path):
    b = Broker(tmp_path, extra="allow_anonymous true\n").start()
    logs: list[str] = []
    pub = mqtt.Publisher(mqtt.parse_url(f"mqtt://127.0.0.1:{b.port}", {}), device="r",
                         log=logs.append)
    pub.client.reconnect_delay_set(min_delay=0.2, max_delay=0.5)  # type: ignore[arg-type]
    pub.start()
    try:
        listener = Listener(b.port)
        pub.reading({"digit": 1})
        assert listener.wait_for(lambda m: any(t == "mnist-edge/r/state" and p == '{"digit": 1}'
                                               for t, p, _ in m))
        listener.close()
        b.stop()  # the broker goes away (and forgets its retained messages)
        for d in (2, 3, 4):  # offline: only the newest is kept
            pub.reading({"digit": d})
        b.start()
        late = Listener(b.port)
        try:
            assert late.wait_for(lambda m: any(t == "mnist-edge/r/state" and p == '{"digit": 4}'
                                               for t, p, _ in m), timeout=15)
            assert not any(p in ('{"digit": 2}', '{"digit": 3}') for _, p, _ in late.messages)
            assert late.wait_for(lambda m: any(t == "mnist-edge/r/availability" and p == "online"
                                               for t, p, _ in m))
        finally:
            late.close()
        assert sum("lost" in line for line in logs) == 1  # logged once per change of state
    finally:
        pub.close()
        b.stop()


@needs_broker
def test_wrong_password_is_one_line_and_the_camera_keeps_running(tmp_path):
    passwd = tmp_path / "passwd"
    passwd.write_text("")
    subprocess.run(["mosquitto_passwd", "-b", str(passwd), "alice", "right"], check=True)
    b = Broker(tmp_path, extra=f"allow_anonymous false\npassword_file {passwd}\n").start()
    try:
        res = _camera(b.port, env={mqtt.ENV_USER: "alice", mqtt.ENV_PASSWORD: "wrong"})
        assert res.returncode == 0
        assert "frame 80: 9" in res.stdout  # every reading still printed
        refused = [line for line in res.stderr.splitlines() if "refused" in line]
        assert len(refused) == 1 and "alice" not in refused[0] and "wrong" not in refused[0]
        res = _camera(b.port, "--frames", "10", env={mqtt.ENV_USER: "alice", mqtt.ENV_PASSWORD: "right"})
        assert "mqtt: connected" in res.stderr
    finally:
        b.stop()


@needs_broker
@pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl is not installed")
def test_tls_with_a_self_signed_ca(tmp_path):
    def ssl_cmd(*args: str) -> None:
        subprocess.run(["openssl", *args], check=True, capture_output=True, cwd=tmp_path)

    ssl_cmd("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.crt",
            "-days", "2", "-subj", "/CN=test CA")
    ssl_cmd("req", "-newkey", "rsa:2048", "-nodes", "-keyout", "server.key", "-out", "server.csr",
            "-subj", "/CN=localhost")
    (tmp_path / "ext").write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    ssl_cmd("x509", "-req", "-in", "server.csr", "-CA", "ca.crt", "-CAkey", "ca.key",
            "-CAcreateserial", "-out", "server.crt", "-days", "2", "-extfile", "ext")
    b = Broker(tmp_path, extra=f"allow_anonymous true\ncafile {tmp_path}/ca.crt\n"
               f"certfile {tmp_path}/server.crt\nkeyfile {tmp_path}/server.key\n").start()
    try:
        listener = Listener(b.port, ca_certs=str(tmp_path / "ca.crt"))
        try:
            res = subprocess.run([sys.executable, "-m", "mnist_edge.device.cli", "camera", "--source",
                                  str(VIDEO), "--frames", "30", "--mqtt", f"mqtts://127.0.0.1:{b.port}",
                                  "--mqtt-ca", str(tmp_path / "ca.crt"), "--mqtt-device", "tls"],
                                 capture_output=True, text=True, timeout=120)
            assert res.returncode == 0, res.stderr
            assert "mqtt: connected to mqtts://" in res.stderr
            assert listener.wait_for(lambda m: any(t == "mnist-edge/tls/state" for t, _, _ in m))
            state = next(json.loads(p) for t, p, _ in listener.messages if t == "mnist-edge/tls/state")
            assert state["model"] == "mnist_robust_int8.tflite" and "/" not in state["model"]
            assert len(state["model_sha256"]) == 64
        finally:
            listener.close()
        junk = tmp_path / "junk.pem"
        junk.write_text("not a certificate\n")
        for url, ca, said in ((f"mqtts://127.0.0.1:{b.port}", junk, "not a readable PEM CA"),
                              (f"mqtt://127.0.0.1:{b.port}", tmp_path / "ca.crt", "is for mqtts://")):
            res = subprocess.run([sys.executable, "-m", "mnist_edge.device.cli", "camera",
                                  "--source", str(VIDEO), "--frames", "5", "--mqtt", url,
                                  "--mqtt-ca", str(ca)], capture_output=True, text=True, timeout=120)
            assert res.returncode == 2 and len(res.stderr.strip().splitlines()) == 1, res.stderr
            assert str(ca) in res.stderr and said in res.stderr, res.stderr
        # each cause of a failed connection named (the camera reads on all the same)
        (tmp_path / "plain").mkdir()
        plain = Broker(tmp_path / "plain", extra="allow_anonymous true\n").start()
        try:
            cases: list[tuple[str, list[str], str | None]] = [
                    (f"mqtts://127.0.0.1:{b.port}", [], "certificate is not trusted"),
                    (f"mqtts://localhost:{b.port}", ["--mqtt-ca", str(tmp_path / "ca.crt")], None),
                    (f"mqtts://127.0.0.1:{plain.port}", [], "does not speak TLS"),
                    (f"mqtt://127.0.0.1:{b.port}", [], f"speaks TLS: use mqtts://127.0.0.1:{b.port}"),
                    (f"mqtt://127.0.0.1:{free_port()}", [], "nothing listens on port")]
            for url, extra, wanted in cases:
                res = subprocess.run([sys.executable, "-m", "mnist_edge.device.cli", "camera",
                                      "--source", str(VIDEO), "--frames", "20", "--mqtt", url, *extra],
                                     capture_output=True, text=True, timeout=120)
                assert res.returncode == 0, res.stderr
                if wanted is None:  # the right CA and the name the certificate was made for
                    assert "mqtt: connected to mqtts://localhost" in res.stderr, res.stderr
                    continue
                failures = [line for line in res.stderr.splitlines() if "cannot reach" in line]
                assert len(failures) == 1 and wanted in failures[0], (url, res.stderr)
                if "not trusted" in wanted:
                    assert "--mqtt-ca" in failures[0]
        finally:
            plain.stop()
    finally:
        b.stop()


def test_a_run_that_ends_before_the_broker_answers_says_so(monkeypatch):
    """A port that takes the connection but never answers (no CONNACK): a short run still
    ends with one line on the broker, not silence, and does not say it is retrying."""
    monkeypatch.setattr(mqtt, "PROBE_TIMEOUT", 0.5)
    said: list[str] = []
    with socket.socket() as quiet:
        quiet.bind(("127.0.0.1", 0))
        quiet.listen(1)  # the kernel completes the handshake; nobody reads
        port = quiet.getsockname()[1]
        publisher = mqtt.Publisher(mqtt.parse_url(f"mqtt://127.0.0.1:{port}"), device="quiet",
                                   log=said.append)
        publisher.start(wait=0.1)
        publisher.reading({"digit": 3})
        publisher.close(timeout=0.1)
    assert said == [f"mqtt: cannot reach mqtt://127.0.0.1:{port}: no answer yet"], said


def test_a_probe_too_slow_for_the_end_is_said_once_all_the_same(monkeypatch):
    """The failed connection's probe runs in a thread; when it has not spoken by the end of a
    run (a loaded machine), close() probes again itself and says the cause, once: the slow
    probe is not heard after the end."""
    import time

    monkeypatch.setattr(mqtt, "PROBE_TIMEOUT", 0.1)  # close() waits 1.2 s for the probe
    calls: list[float] = []

    def diagnose(*_a: object) -> str:
        calls.append(time.monotonic())
        if len(calls) == 1:
            time.sleep(2.0)
            return "the slow probe's cause"
        return "the cause"

    monkeypatch.setattr(mqtt, "diagnose", diagnose)
    said: list[str] = []
    port = free_port()  # nothing listens: paho's connection fails at once
    publisher = mqtt.Publisher(mqtt.parse_url(f"mqtt://127.0.0.1:{port}"), device="slow",
                               log=said.append)
    publisher.start(wait=1.0)
    publisher.close(timeout=0.1)
    time.sleep(1.5)  # the slow probe ends
    assert len(calls) == 2 and said == [f"mqtt: cannot reach mqtt://127.0.0.1:{port}: the cause"], said


def test_serve_hands_readings_and_camera_failures_to_the_publisher():
    pytest.importorskip("starlette")
    from mnist_edge.device.errors import CameraError
    from mnist_edge.device.live import serve

    class Fake:
        def __init__(self):
            self.readings, self.cameras = [], []

        def reading(self, obj):
            self.readings.append(obj)

        def camera(self, up, reason=None, fps=None):
            self.cameras.append((up, reason))

    state = serve.LiveState()
    state.publisher = fake = Fake()
    state.publish(b"jpeg", {"digit": 3}, True, 8.0)
    state.publish(b"jpeg", {"digit": 3}, False, 8.0)  # unchanged: not published again
    assert fake.readings == [{"digit": 3}] and fake.cameras == [(True, None), (True, None)]

    def gone():
        raise CameraError("cam: the camera returned no frame")

    loop = serve.CameraLoop(gone, None, state, live=False)  # type: ignore[arg-type]
    loop.run()
    assert fake.cameras[-1] == (False, "cam: the camera returned no frame")


@needs_broker
def test_a_reload_announces_the_new_model_to_home_assistant(broker):
    """SIGHUP swaps the model (models use/rollback); the device's description in Home
    Assistant names the new one, not the one the camera started with."""
    import os
    import signal

    from mnist_edge.device.inference import bundled, model
    from mnist_edge.device.live.loop import Reader, reload_on_sighup

    start, other = (model.load(bundled.NAMES[n]) for n in ("robust", "tutorial"))
    publisher = mqtt.Publisher(mqtt.parse_url(f"mqtt://127.0.0.1:{broker.port}"),
                               device="pi-test", model=start.path.name)
    listener = Listener(broker.port)
    before = signal.getsignal(signal.SIGHUP)
    said: list[str] = []
    try:
        publisher.start()
        reader = Reader(start)
        reload_on_sighup(reader, lambda: other, said.append, then=lambda c: publisher.model(c.path.name))

        def models(m):
            return {json.loads(p)["device"]["model"] for t, p, _ in m if t.startswith("homeassistant/")}

        assert listener.wait_for(lambda m: models(m) == {start.path.name})
        os.kill(os.getpid(), signal.SIGHUP)
        assert listener.wait_for(lambda m: other.path.name in models(m)), listener.messages
        assert reader.clf is other and any("now reading with" in s for s in said)
        with listener.lock:
            listener.messages.clear()
    finally:
        signal.signal(signal.SIGHUP, before)
        publisher.close()
        listener.close()
    late = Listener(broker.port)  # retained: Home Assistant restarting sees the new model
    try:
        assert late.wait_for(lambda m: sum(t.startswith("homeassistant/") for t, _, _ in m) == 6)
        assert {json.loads(p)["device"]["model"] for t, p, _ in late.messages
                if t.startswith("homeassistant/")} == {other.path.name}
    finally:
        late.close()


def _publisher(port: int, **kw) -> mqtt.Publisher:
    pub = mqtt.Publisher(mqtt.parse_url(f"mqtt://127.0.0.1:{port}", {}), device="ha", **kw)
    pub.start()
    return pub


@needs_broker
def test_discovery_goes_out_again_when_home_assistant_announces_itself(broker):
    """Home Assistant publishes `online` on homeassistant/status when it starts: the configs,
    the camera and the reading are sent again (as its MQTT documentation asks); anything
    else on that topic, or a device started with --no-discovery, sends nothing."""
    import paho.mqtt.client as paho

    pub = _publisher(broker.port)
    quiet = mqtt.Publisher(mqtt.parse_url(f"mqtt://127.0.0.1:{broker.port}", {}), device="quiet",
                           discovery=False)
    quiet.start()
    ha = paho.Client(paho.CallbackAPIVersion.VERSION2)
    ha.connect("127.0.0.1", broker.port)
    ha.loop_start()
    try:
        pub.reading({"digit": 5})
        listener = Listener(broker.port)
        assert listener.wait_for(lambda m: sum(t.startswith("homeassistant/") for t, _, _ in m) == 6)
        ha.publish("homeassistant/status", "offline", qos=1).wait_for_publish(5)
        assert listener.drained() and pub._announced == 0  # not a start: nothing again
        listener.messages.clear()
        ha.publish("homeassistant/status", "online", qos=1).wait_for_publish(5)
        assert listener.wait_for(lambda m: sum(t.startswith("homeassistant/sensor/mnist_edge_ha/")
                                               and not r for t, _, r in m) == 5)
        assert listener.wait_for(lambda m: any(t == "mnist-edge/ha/state" and p == '{"digit": 5}'
                                               for t, p, _ in m))
        assert not [t for t, _, _ in listener.drained() if "quiet" in t]  # --no-discovery: silent
        listener.close()
    finally:
        ha.loop_stop()
        pub.close()
        quiet.close()


@needs_broker
def test_the_reading_is_sent_again_while_frames_come_and_not_when_stalled(broker, monkeypatch):
    """expire_after needs a heartbeat: while the camera delivers frames (camera(True) per
    frame) the unchanged reading is sent again every STATE_PERIOD; a stalled loop (no frames)
    sends nothing, so Home Assistant marks it unavailable."""
    monkeypatch.setattr(mqtt, "STATE_PERIOD", 0.2)
    pub = _publisher(broker.port, discovery=False)
    listener = Listener(broker.port)
    try:
        pub.reading({"digit": 2})
        deadline = time.monotonic() + 2.0
        while time.monotonic() < deadline:  # frames at ~20/s
            pub.camera(True, fps=20.0)
            time.sleep(0.05)
        sent = [p for t, p, r in listener.drained() if t == "mnist-edge/ha/state" and not r]
        assert len(sent) >= 4 and set(sent) == {'{"digit": 2}'}
        listener.messages.clear()
        time.sleep(0.6)  # stalled: three periods without a frame
        assert not [t for t, _, _ in listener.drained() if t == "mnist-edge/ha/state"]
    finally:
        listener.close()
        pub.close()


@needs_broker
def test_the_drift_state_goes_out_as_a_diagnostic(broker):
    """health: a change of drift state at once (retained), the figures not on every frame;
    Home Assistant's Drift and No digit share entities read it."""
    pub = _publisher(broker.port)
    listener = Listener(broker.port)
    try:
        status = {"state": "warming up", "psi": None, "frames": 10, "window": 600,
                  "no_digit_share": 0.1, "no_digit_by_reason": {"no ink": 1}}
        pub.health(status)
        assert listener.wait_for(lambda m: any(t == "mnist-edge/ha/health" for t, _, _ in m))
        pub.health({**status, "frames": 11})  # same state, within HEALTH_PERIOD: not sent
        pub.health({**status, "state": "drift", "psi": 0.8, "frames": 300})
        assert listener.wait_for(lambda m: any(t == "mnist-edge/ha/health" and '"drift"' in p
                                               for t, p, _ in m))
        sent = [json.loads(p) for t, p, _ in listener.drained() if t == "mnist-edge/ha/health"]
        assert [s["frames"] for s in sent] == [10, 300]
        configs = mqtt.discovery_configs("mnist-edge", "ha")
        drift_config = next(c for c in configs.values() if c["name"] == "Drift")
        assert drift_config["state_topic"] == "mnist-edge/ha/health"
        assert drift_config["entity_category"] == "diagnostic"
    finally:
        listener.close()
        pub.close()
