"""Readings over MQTT, with Home Assistant discovery (extra `[mqtt]`, paho-mqtt).

Topics, under `PREFIX/DEVICE/` (default `mnist-edge/<hostname>/`):
  state         the reading as JSON, the keys of `--json` (retained, QoS 1), published when
                the (stable) reading changes
  availability  `online` / `offline` (retained; the broker publishes `offline` as the last
                will when the device vanishes)
  camera        {"status": "up"|"down", "reason", "fps"} (retained, QoS 1)
  health        the drift monitor's status: {"state", "psi", "no_digit_share", ...} (retained)
Home Assistant discovery (retained configs under `homeassistant/`, each with the origin
`o`): a device with a digit sensor ("none" when there is no digit; confidence, none_reason
and number as attributes), a confidence sensor, and as diagnostics a frames/s sensor, the
drift state, the share of "no digit" and a camera connectivity binary sensor. The reading is
sent again every STATE_PERIOD s while frames come, and its
sensors carry `expire_after`, so a stalled device goes "unavailable" in Home Assistant; when
Home Assistant announces itself (`online` on `homeassistant/status`) the configs go out again.

Publishing runs on paho's network thread and one worker of its own: `reading()` and
`camera()` only store the value and wake the worker, so the camera loop never waits for
the broker. Connected, readings go out in order (a bounded queue); offline, nothing queues
but the newest reading, which is published again on every (re)connect, with availability
and discovery. A refused login or a lost broker is
logged once per change of state; paho reconnects with backoff (1 s doubling to 30 s).
"""

from __future__ import annotations

import json
import os
import re
import socket
import ssl
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from mnist_edge.device import __version__
from mnist_edge.device.errors import UsageError

DISCOVERY_PREFIX = "homeassistant"
ENV_USER, ENV_PASSWORD = "MNIST_EDGE_MQTT_USERNAME", "MNIST_EDGE_MQTT_PASSWORD"
ENV_CREDENTIALS = "MNIST_EDGE_MQTT_CREDENTIALS"  # a file: first line user, second password
PROBE_TIMEOUT = 3.0  # s for each step of the probe that names a failed connection's cause
QUEUE = 64  # readings waiting for the broker while connected; offline, only the newest
FPS_PERIOD = 10.0  # seconds between frames/s updates (a change of camera status goes at once)
HEALTH_PERIOD = 30.0  # seconds between drift figures (a change of drift state goes at once)
STATE_PERIOD = 60.0  # while frames come, the reading is sent again this often...
EXPIRE_AFTER = 300  # ...and Home Assistant shows "unavailable" when none came for this long
HA_STATUS = "status"  # DISCOVERY_PREFIX/status: Home Assistant says "online" when it starts
ORIGIN = {"name": "mnist-edge", "sw_version": __version__,
          "support_url": "https://github.com/mnist-edge/mnist-edge"}


@dataclass(frozen=True)
class Broker:
    host: str
    port: int
    tls: bool
    username: str | None = None
    password: str | None = None

    def describe(self) -> str:
        return f"{'mqtts' if self.tls else 'mqtt'}://{self.host}:{self.port}"


def parse_url(url: str, environ: dict[str, str] | None = None) -> Broker:
    """mqtt://[user[:password]@]host[:port] or mqtts://...; credentials from the URL, else
    MNIST_EDGE_MQTT_USERNAME / _PASSWORD, else the file MNIST_EDGE_MQTT_CREDENTIALS names
    (systemd LoadCredential)."""
    env = os.environ if environ is None else environ
    parts = urlsplit(url)
    if parts.scheme not in ("mqtt", "mqtts") or not parts.hostname:
        raise UsageError(f"--mqtt {url!r}: expected mqtt://host[:port] or mqtts://host[:port]")
    try:
        port = parts.port or (8883 if parts.scheme == "mqtts" else 1883)
    except ValueError:
        raise UsageError(f"--mqtt {url!r}: the port is not a number from 1 to 65535") from None
    user = unquote(parts.username) if parts.username else env.get(ENV_USER)
    password = unquote(parts.password) if parts.password else env.get(ENV_PASSWORD)
    if user is None and env.get(ENV_CREDENTIALS):
        path = Path(env[ENV_CREDENTIALS])
        try:
            lines = path.read_text().splitlines()
        except OSError as e:
            raise UsageError(f"{ENV_CREDENTIALS}={path}: cannot read ({e.strerror or e})") from None
        user = lines[0].strip() if lines else None
        password = lines[1].strip() if len(lines) > 1 else None
    return Broker(parts.hostname, port, parts.scheme == "mqtts", user or None, password)


def device_id(name: str) -> str:
    """A device id topics and Home Assistant accept (its discovery ids are [a-zA-Z0-9_-]+;
    '/', '+' and '#' would also split or wildcard a topic): lower case, every other character
    a dash, runs of dashes one. "Kitchen Pi" -> kitchen-pi, pi.local -> pi-local."""
    slug = re.sub(r"[^a-z0-9_]+", "-", name.lower()).strip("-")
    if not slug:
        raise UsageError(f"--mqtt-device {name!r}: use letters, digits, '-' or '_'")
    return slug


def default_device_id() -> str:
    try:
        return device_id(socket.gethostname().split(".")[0])
    except UsageError:
        return "mnist-edge"


def discovery_configs(prefix: str, device: str, discovery: str = DISCOVERY_PREFIX,
                      model: str = "") -> dict[str, dict[str, Any]]:
    """Discovery topic -> config, for every entity of the device."""
    base = f"{prefix}/{device}"
    ident = f"mnist_edge_{device}".replace("-", "_")
    dev = {"identifiers": [ident], "name": f"mnist-edge {device}", "manufacturer": "mnist-edge",
           "model": model or "digit reader", "sw_version": __version__}
    common = {"availability_topic": f"{base}/availability", "payload_available": "online",
              "payload_not_available": "offline", "device": dev, "origin": ORIGIN}
    return {
        f"{discovery}/sensor/{ident}/digit/config": {
            **common, "name": "Digit", "unique_id": f"{ident}_digit", "icon": "mdi:numeric",
            "state_topic": f"{base}/state", "expire_after": EXPIRE_AFTER,
            "value_template": "{{ value_json.number if value_json.number is defined and "
                              "value_json.number else (value_json.digit if value_json.digit "
                              "is not none else 'none') }}",
            "json_attributes_topic": f"{base}/state",
            "json_attributes_template": "{{ {'confidence': value_json.confidence, "
                                        "'none_reason': value_json.none_reason, "
                                        "'frame': value_json.frame} | tojson }}"},
        f"{discovery}/sensor/{ident}/confidence/config": {
            **common, "name": "Confidence", "unique_id": f"{ident}_confidence",
            "state_topic": f"{base}/state", "unit_of_measurement": "%",
            "state_class": "measurement", "expire_after": EXPIRE_AFTER,
            "value_template": "{{ (value_json.confidence * 100) | round(1) "
                              "if value_json.confidence is not none else none }}"},
        f"{discovery}/sensor/{ident}/fps/config": {
            **common, "name": "Frames per second", "unique_id": f"{ident}_fps",
            "state_topic": f"{base}/camera", "unit_of_measurement": "frames/s",
            "state_class": "measurement", "entity_category": "diagnostic",
            "value_template": "{{ value_json.fps }}"},
        f"{discovery}/sensor/{ident}/drift/config": {
            **common, "name": "Drift", "unique_id": f"{ident}_drift", "icon": "mdi:chart-bell-curve",
            "entity_category": "diagnostic", "state_topic": f"{base}/health",
            "value_template": "{{ value_json.state }}",
            "json_attributes_topic": f"{base}/health",
            "json_attributes_template": "{{ {'psi': value_json.psi, 'frames': value_json.frames, "
                                        "'window': value_json.window} | tojson }}"},
        f"{discovery}/sensor/{ident}/no_digit/config": {
            **common, "name": "No digit share", "unique_id": f"{ident}_no_digit",
            "icon": "mdi:numeric-off", "entity_category": "diagnostic",
            "state_topic": f"{base}/health", "unit_of_measurement": "%",
            "state_class": "measurement",
            "value_template": "{{ (value_json.no_digit_share * 100) | round(1) "
                              "if value_json.no_digit_share is not none else none }}",
            "json_attributes_topic": f"{base}/health",
            "json_attributes_template": "{{ value_json.no_digit_by_reason | tojson }}"},
        f"{discovery}/binary_sensor/{ident}/camera/config": {
            **common, "name": "Camera", "unique_id": f"{ident}_camera",
            "device_class": "connectivity", "entity_category": "diagnostic",
            "state_topic": f"{base}/camera", "value_template": "{{ value_json.status }}",
            "payload_on": "up", "payload_off": "down"},
    }


def diagnose(broker: Broker, ca_file: Path | None = None, timeout: float = PROBE_TIMEOUT) -> str | None:
    """Why a connection to `broker` fails, in words, from one probe of its port (TCP, then a
    TLS handshake as the client makes it): an unknown host, nothing listening, a certificate
    not trusted or made for another name, a plain port given as mqtts://, a TLS port given as
    mqtt://. None when the probe finds nothing wrong."""
    try:
        raw = socket.create_connection((broker.host, broker.port), timeout=timeout)
    except socket.gaierror:
        return f"{broker.host}: no such host"
    except ConnectionRefusedError:
        return f"nothing listens on port {broker.port}"
    except OSError as e:
        return f"no answer from {broker.host}:{broker.port} ({e.strerror or e})"
    with raw:
        if broker.tls:
            context = ssl.create_default_context(cafile=str(ca_file) if ca_file else None)
            try:
                with context.wrap_socket(raw, server_hostname=broker.host):
                    return None
            except ssl.SSLCertVerificationError as e:
                if "hostname" in str(e.verify_message) or "IP address mismatch" in str(e.verify_message):
                    return (f"the broker's certificate is not made for {broker.host} "
                            f"({e.verify_message}): connect by the name it was made for")
                hint = "" if ca_file else ": give the CA that signed it with --mqtt-ca FILE"
                return f"the broker's certificate is not trusted ({e.verify_message}){hint}"
            except (ssl.SSLError, OSError):  # the other side answered, but not in TLS
                return f"port {broker.port} does not speak TLS: is it a plain mqtt:// port?"
        context = ssl.create_default_context()
        context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
        try:
            with context.wrap_socket(raw, server_hostname=broker.host):
                return f"port {broker.port} speaks TLS: use mqtts://{broker.host}:{broker.port}"
        except (ssl.SSLError, OSError):
            return None


class Publisher:
    """One broker connection; call start(), then reading() and camera() from any thread,
    and close() at the end (publishes `offline`, clears nothing)."""

    def __init__(self, broker: Broker, *, device: str | None = None, prefix: str = "mnist-edge",
                 discovery: bool = True, ca_file: Path | None = None, model: str = "",
                 model_sha256: str = "", log: Callable[[str], None] = lambda _m: None,
                 client_factory: Any = None):
        import paho.mqtt.client as mqtt

        self.broker, self.prefix, self.log = broker, prefix.strip("/"), log
        self.model_sha256 = model_sha256
        self.device = device_id(device) if device else default_device_id()
        if device and self.device != device:
            log(f"MQTT device id {self.device} (from --mqtt-device {device!r})")
        self.base = f"{self.prefix}/{self.device}"
        self.discovery = discovery_configs(self.prefix, self.device, model=model) if discovery else {}
        make = client_factory or mqtt.Client
        self.client = make(mqtt.CallbackAPIVersion.VERSION2, client_id=f"mnist-edge-{self.device}")
        self.client.will_set(f"{self.base}/availability", "offline", qos=1, retain=True)
        if broker.username is not None:
            self.client.username_pw_set(broker.username, broker.password)
        if ca_file is not None and not broker.tls:
            raise UsageError(f"--mqtt-ca {ca_file}: a CA is for mqtts:// (TLS); the broker URL "
                             "is mqtt://")
        if broker.tls:
            try:
                self.client.tls_set(ca_certs=str(ca_file) if ca_file else None,
                                    cert_reqs=ssl.CERT_REQUIRED)
            except (ssl.SSLError, OSError) as e:
                raise UsageError(f"--mqtt-ca {ca_file}: not a readable PEM CA certificate "
                                 f"({getattr(e, 'reason', None) or e})") from None
        self.client.reconnect_delay_set(min_delay=1, max_delay=30)
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect
        self.client.on_connect_fail = self._on_connect_fail
        self.client.on_message = self._on_message
        self._lock = threading.Lock()
        self._wake = threading.Condition(self._lock)
        self._latest: dict[str, Any] | None = None  # the newest reading
        self._pending: deque[dict[str, Any]] = deque(maxlen=QUEUE)  # not yet published
        self._camera: dict[str, Any] = {"status": "up", "reason": None, "fps": None}
        self._health: dict[str, Any] | None = None  # the drift monitor's last status
        self._health_sent = 0.0
        self._dirty: set[str] = set()
        self._publishing = threading.Lock()  # held while the worker hands messages to paho
        self._fps_sent = 0.0
        self._state_sent = 0.0  # when the reading was last handed over (for STATE_PERIOD)
        self._connected = False
        self._said: str | None = None  # the last connection state logged
        self._saying = threading.Lock()  # paho's thread and a probe's may log at once
        self._quiet = False  # closed: nothing more is said
        self.ca_file = ca_file
        self._diagnosis: threading.Thread | None = None  # a probe of the port, after a failure
        self._ever_connected = False
        self._refused = False
        self._closing = False
        self._answered = threading.Event()  # the broker accepted or refused us once
        self._worker = threading.Thread(target=self._run, name="mqtt-publisher", daemon=True)
        self.published = 0
        self._announced = 0  # discovery sent again for Home Assistant's birth message

    # -- called by the camera loop (never blocks on the network) --
    def reading(self, obj: dict[str, Any]) -> None:
        """A new reading: queued in order while connected (at most QUEUE; the oldest go
        first), only the newest kept while offline. The model is named by its file name (and
        SHA-256 when known), never by a path on this device."""
        if isinstance(obj.get("model"), str):
            obj = {**obj, "model": Path(obj["model"]).name}
            if self.model_sha256:
                obj["model_sha256"] = self.model_sha256
        with self._wake:
            if not self._connected:
                self._pending.clear()
            self._pending.append(obj)
            self._latest = obj
            self._state_sent = time.monotonic()
            self._wake.notify()

    def camera(self, up: bool, reason: str | None = None, fps: float | None = None) -> None:
        """Camera health: a change of status is sent at once, frames/s every FPS_PERIOD s."""
        value = {"status": "up" if up else "down", "reason": reason,
                 "fps": None if fps is None else round(fps, 1)}
        now = time.monotonic()
        with self._wake:
            old = self._camera
            self._camera = value
            if (old["status"], old["reason"]) != (value["status"], value["reason"]) \
                    or now - self._fps_sent >= FPS_PERIOD:
                self._fps_sent = now
                self._dirty.add("camera")
                self._wake.notify()
            if up and self._latest is not None and now - self._state_sent >= STATE_PERIOD:
                # frames still come: the reading again, so Home Assistant's expire_after
                # marks it unavailable only when the device stalls
                self._state_sent = now
                self._dirty.add("state")
                self._wake.notify()

    def health(self, status: dict[str, Any]) -> None:
        """The drift monitor's status (evaluation.drift.Monitor.status): a change of state
        is sent at once, the figures every HEALTH_PERIOD s."""
        now = time.monotonic()
        with self._wake:
            old, self._health = self._health, status
            if old is None or old["state"] != status["state"] or now - self._health_sent >= HEALTH_PERIOD:
                self._health_sent = now
                self._dirty.add("health")
                self._wake.notify()

    def model(self, name: str, sha256: str = "") -> None:
        """The device now reads with model file `name` (after a reload): its Home Assistant
        description is announced again with it."""
        self.model_sha256 = sha256 or self.model_sha256
        if not self.discovery:  # --no-discovery: nothing was announced
            return
        with self._wake:
            self.discovery = discovery_configs(self.prefix, self.device, model=name)
            self._dirty.add("discovery")
            self._wake.notify()

    # -- lifecycle --
    def start(self, wait: float = 2.0) -> None:
        """Connect in the background; wait up to `wait` s for the broker's first answer (the
        camera then starts with the device announced, or goes on without the broker)."""
        self._worker.start()
        self.client.connect_async(self.broker.host, self.broker.port, keepalive=30)
        self.client.loop_start()
        self._answered.wait(wait)

    def close(self, timeout: float = 2.0) -> None:
        """Publish what is pending (up to `timeout` s), then `offline`, and disconnect."""
        if not self._answered.wait(timeout) and not self._ever_connected:
            self._explain(ending=True)  # the run ends before the broker answered: say why
        if self._diagnosis is not None:  # a cause being probed is said before the end
            self._diagnosis.join(2 * PROBE_TIMEOUT + 1)
        if not self._ever_connected and self._said is None:  # still nothing said: say why now
            self._explain(ending=True, wait=True)
        with self._saying:
            self._quiet = True  # a probe still running would speak after the end
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._wake:
                if not (self._connected and (self._pending or self._dirty)):
                    break
            time.sleep(0.01)
        with self._wake:
            self._closing = True
            self._wake.notify()
        self._worker.join(timeout)
        if self._connected:
            info = self.client.publish(f"{self.base}/availability", "offline", qos=1, retain=True)
            try:
                info.wait_for_publish(timeout)
            except (RuntimeError, ValueError):
                pass
        self.client.disconnect()
        self.client.loop_stop()

    def forget(self, timeout: float = 5.0) -> bool:
        """Remove the device: clear its retained discovery configs (Home Assistant removes
        the device and its entities) and its retained state, camera and availability.
        Returns False when the broker could not be reached in `timeout` s."""
        if not self._answered.wait(timeout) or not self._connected:
            return False
        topics = [*discovery_configs(self.prefix, self.device), f"{self.base}/state",
                  f"{self.base}/camera", f"{self.base}/health", f"{self.base}/availability"]
        with self._wake:  # nothing more to say: the worker stops, close() publishes no `offline`
            self._connected = False
            self._dirty.clear()
            self._pending.clear()
        with self._publishing:  # the worker's last messages, if any, go out before the clears
            infos = [self.client.publish(t, b"", qos=1, retain=True) for t in topics]
        for info in infos:
            info.wait_for_publish(timeout)
        return True

    # -- paho callbacks (its network thread) --
    def _on_connect(self, client: Any, _userdata: Any, _flags: Any, reason: Any, _props: Any) -> None:
        if getattr(reason, "is_failure", False):
            self._refused = True  # the broker answered: its reason is the news, no probe
            self._answered.set()
            self._say(f"mqtt: {self.broker.describe()} refused the connection ({reason}); "
                      "retrying")
            return
        self._ever_connected = True
        self._say(f"mqtt: connected to {self.broker.describe()} as {self.base}")
        client.publish(f"{self.base}/availability", "online", qos=1, retain=True)
        for topic, config in self.discovery.items():
            client.publish(topic, json.dumps(config), qos=1, retain=True)
        if self.discovery:  # Home Assistant's birth message: announce again when it starts
            client.subscribe(f"{DISCOVERY_PREFIX}/{HA_STATUS}", qos=1)
        with self._wake:
            self._connected = True
            self._dirty.add("camera")
            if self._latest is not None and not self._pending:
                self._pending.append(self._latest)  # the newest reading again, after an outage
            self._wake.notify()
        self._answered.set()

    def _on_message(self, _client: Any, _userdata: Any, message: Any) -> None:
        """Home Assistant (re)started ("online" on its status topic): as its documentation
        asks, the discovery configs go out again, with the camera's state and the reading."""
        if message.topic != f"{DISCOVERY_PREFIX}/{HA_STATUS}" or message.payload != b"online":
            return
        with self._wake:
            if self.discovery:
                self._dirty |= {"discovery", "camera", "state"}
                self._announced += 1
                self._wake.notify()

    def _on_connect_fail(self, _client: Any, _userdata: Any) -> None:
        self._explain()
        self._answered.set()

    def _explain(self, ending: bool = False, wait: bool = False) -> None:
        """Says why the broker cannot be reached (a probe of its port, in a thread of its own
        so paho's loop goes on), once per cause; `ending`: the run ends with no answer yet;
        `wait`: probe here and now, and say it unless something was said meanwhile (the run
        ends: a probe thread that has not spoken yet would be cut short)."""
        if not wait and self._diagnosis is not None and self._diagnosis.is_alive():
            return

        def probe() -> None:
            cause = diagnose(self.broker, self.ca_file, PROBE_TIMEOUT)
            if ending:
                cause = cause or "no answer yet"
            self._say(f"mqtt: cannot reach {self.broker.describe()}"
                      + (f": {cause}" if cause else "") + ("" if ending else "; retrying"),
                      first=wait)

        if wait:
            probe()
            return
        self._diagnosis = threading.Thread(target=probe, name="mqtt-diagnosis", daemon=True)
        self._diagnosis.start()

    def _on_disconnect(self, _client: Any, _userdata: Any, _flags: Any, reason: Any,
                       _props: Any) -> None:
        with self._wake:
            self._connected = False
        if self._closing:
            return
        if not self._ever_connected and not self._refused:  # no CONNACK: e.g. mqtt:// to TLS
            self._explain()
            self._answered.set()
            return
        self._say(f"mqtt: lost {self.broker.describe()} ({reason}); reconnecting")

    def _say(self, message: str, first: bool = False) -> None:
        """Log a change of the connection's state (`first`: only when none was said yet)."""
        state = message.split(" (")[0]
        with self._saying:
            if self._quiet or state == self._said or (first and self._said is not None):
                return
            self._said = state
            self.log(message)

    # -- the worker: publishes what changed, newest value only --
    def _run(self) -> None:
        while True:
            with self._wake:
                while not self._closing and not (self._connected
                                                 and (self._dirty or self._pending)):
                    self._wake.wait()
                if self._closing:
                    return
                dirty, self._dirty = self._dirty, set()
                readings = list(self._pending)
                self._pending.clear()
                cam = dict(self._camera)
                self._publishing.acquire()
            try:
                self._publish(readings, dirty, cam)
            finally:
                self._publishing.release()

    def _publish(self, readings: list[Any], dirty: set[str], cam: dict[str, Any]) -> None:
        for reading in readings:
            self.client.publish(f"{self.base}/state", json.dumps(reading), qos=1, retain=True)
            self.published += 1
        if "state" in dirty and not readings and self._latest is not None:
            self.client.publish(f"{self.base}/state", json.dumps(self._latest), qos=1, retain=True)
        if "discovery" in dirty:
            for topic, config in self.discovery.items():
                self.client.publish(topic, json.dumps(config), qos=1, retain=True)
        if "camera" in dirty:
            self.client.publish(f"{self.base}/camera", json.dumps(cam), qos=1, retain=True)
        if "health" in dirty and self._health is not None:
            self.client.publish(f"{self.base}/health", json.dumps(self._health), qos=1, retain=True)
