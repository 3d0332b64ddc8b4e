"""`mnist-edge`: classify digits in files and camera frames, check quantized accuracy,
benchmark, and inspect models, on a Raspberry Pi or anywhere, without TensorFlow.

Exit codes: 0 success; 1 a check failed or a runtime/device failure; 2 bad input or usage.
"""

import contextlib
import functools
import json
import os
import sys
import time
from collections.abc import Callable
from enum import Enum
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer

from mnist_edge.device import __version__
from mnist_edge.device.errors import BadImageError, BadModelError, MnistEdgeError, UsageError
from mnist_edge.device.evaluation import evaluate
from mnist_edge.device.inference import bundled
from mnist_edge.device.reading.trace import Trace

DEFAULT_MIN_CONFIDENCE = 0.5  # bench/no_digit_cost.py: +0.7 pp empty frames rejected, -0.09% MNIST

app = typer.Typer(
    help=__doc__,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"]},
)


class RuntimeName(str, Enum):
    litert = "litert"
    tflite_runtime = "tflite-runtime"


class Split(str, Enum):
    test = "test"
    train = "train"


def say(message: str) -> None:
    """Messages for people go to stderr; stdout carries results."""
    typer.echo(message, err=True)


F = TypeVar("F", bound=Callable[..., Any])


def one_line_errors(fn: F) -> F:
    """Turn the named errors into one stderr line and their exit code, never a traceback."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except MnistEdgeError as e:
            say(f"error: {e}")
            raise typer.Exit(e.exit_code) from None

    return wrapper  # type: ignore[return-value]


def _version(value: bool) -> None:
    if value:
        typer.echo(f"mnist-edge {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Show the version.")
    ] = False,
) -> None:
    """Classify handwritten digits with TFLite models on a Raspberry Pi."""


RuntimeOpt = Annotated[
    RuntimeName | None,
    typer.Option("--runtime", help="Force a TFLite runtime (default: LiteRT, else "
                 "tflite-runtime; also MNIST_EDGE_RUNTIME).", show_default=False),
]
ThreadsOpt = Annotated[
    int | None, typer.Option("--threads", min=1, help="Interpreter threads (default: runtime's).")
]
JsonOpt = Annotated[bool, typer.Option("--json", help="One JSON object per line on stdout.")]
_NAMES = ", ".join(bundled.NAMES)
ModelOpt = Annotated[
    Path | None,
    typer.Option("--model", "-m", metavar="MODEL", help=f"A .tflite file or a bundled model: "
                 f"{_NAMES} (default: {bundled.DEFAULT}).", show_default=False),
]
ModelsOpt = Annotated[
    list[Path] | None,
    typer.Option("--model", "-m", metavar="MODEL", help=f"A .tflite file or a bundled model "
                 f"({_NAMES}); repeatable. Default: every bundled family, int8 and its "
                 "float32 reference.", show_default=False),
]
def _check_roi(value: str | None) -> str | None:
    if value is not None:
        parts = value.split(",")
        if len(parts) != 4 or not all(p.strip().isdigit() for p in parts) or \
                int(parts[2]) == 0 or int(parts[3]) == 0:
            raise typer.BadParameter("expected x,y,w,h: four whole numbers of pixels, w and h > 0")
    return value


RoiOpt = Annotated[
    str | None,
    typer.Option("--roi", metavar="X,Y,W,H", callback=_check_roi, help="Region of interest in "
                 "pixels (default: centred square, 60% of the shorter side).", show_default=False),
]
StableOpt = Annotated[
    int, typer.Option("--stable", min=1, metavar="N", help="Report a new reading only after N "
                      "consecutive frames agree.")
]
MultiOpt = Annotated[
    bool, typer.Option("--multi", help="Read every digit in the frame (as classify --multi).")
]
TimeoutOpt = Annotated[
    float, typer.Option("--timeout", min=0.1, help="Seconds to wait for a frame before "
                        "reconnecting.")
]
RetriesOpt = Annotated[
    int, typer.Option("--retries", min=0, help="Reconnect attempts before giving up.")
]
MinConfidenceOpt = Annotated[
    float, typer.Option("--min-confidence", min=0.0, max=1.0, help="Answer 'no digit' when "
                        "the best digit is less likely than this (0-1).")
]
MqttOpt = Annotated[
    str | None,
    typer.Option("--mqtt", metavar="URL", help="Publish readings to an MQTT broker: "
                 "mqtt://host[:port] or mqtts://host[:port] (needs the [mqtt] extra). User and "
                 "password: better than in the URL (visible in ps), MNIST_EDGE_MQTT_USERNAME / "
                 "_PASSWORD or the file MNIST_EDGE_MQTT_CREDENTIALS names.", show_default=False),
]
MqttPrefixOpt = Annotated[
    str, typer.Option("--mqtt-prefix", help="Topic prefix: PREFIX/DEVICE/state, availability, "
                      "camera.")
]
MqttDeviceOpt = Annotated[
    str | None, typer.Option("--mqtt-device", help="Device id in topics and Home Assistant "
                             "(default: the hostname).", show_default=False)
]
MqttCaOpt = Annotated[
    Path | None, typer.Option("--mqtt-ca", exists=True, dir_okay=False, help="CA certificate "
                              "for mqtts:// (default: the system's).", show_default=False)
]
ForgetOpt = Annotated[
    bool, typer.Option("--mqtt-forget", help="Remove this device from the broker and Home "
                       "Assistant (clear its retained configs and state), then exit.")
]
DiscoveryOpt = Annotated[
    bool, typer.Option("--discovery/--no-discovery", help="Announce the device to Home "
                       "Assistant (retained MQTT discovery configs).")
]
TrustOpt = Annotated[
    bool, typer.Option("--trust-model", help="Run a model whose SHA-256 differs from the "
                       "manifest.json beside it.")
]


def _load(path: Path | None, runtime: RuntimeName | None, threads: int | None = None,
          trust: bool = False):
    from mnist_edge.device.inference import model

    path = bundled.resolve(path)
    if path in bundled.NAMES.values() and not path.is_file():
        raise BadModelError(
            f"{path}: no bundled model in this install; run `make bundle` / `make "
            "bundle-robust` in the source tree, or pass --model FILE.tflite"
        )
    clf = model.load(path, runtime=runtime.value if runtime else None, threads=threads,
                     trust_model=trust)
    _warn_reading_mismatch(path)
    return clf


def _publisher(url: str | None, prefix: str, device: str | None, ca: Path | None,
               discovery: bool, model_path: Path) -> Any:
    """A started device.mqtt.Publisher for --mqtt, or None."""
    if url is None:
        return None
    import importlib.util

    if importlib.util.find_spec("paho") is None:
        raise UsageError("--mqtt needs the mqtt extra: pip install 'mnist-edge[mqtt]'")
    from mnist_edge.device.live import mqtt

    publisher = mqtt.Publisher(mqtt.parse_url(url), device=device, prefix=prefix,
                               discovery=discovery, ca_file=ca, model=model_path.name, log=say)
    publisher.start()
    return publisher


def _warn_reading_mismatch(path: Path) -> None:
    """One line on stderr when the model was trained on crops of another reading pipeline."""
    from mnist_edge.device.inference import safety
    from mnist_edge.device.reading.params import DEFAULT as READING

    trained = safety.reading_version(path)
    if trained is not None and trained != READING.version():
        say(f"warning: {path.name} was trained on crops of reading pipeline {trained}; this "
            f"install reads with {READING.version()}: photos may read worse (retrain with "
            "`make train-robust bundle-robust`)")


@app.command(short_help="The digit in each image file, folder or glob.")
@one_line_errors
def classify(
    images: Annotated[list[str], typer.Argument(help="Image files, folders or glob patterns "
                                                "(PNG, JPEG, BMP, GIF, WebP, PNM).",
                                                show_default=False)],
    model: ModelOpt = None,
    top_k: Annotated[int, typer.Option("--top-k", "-k", min=1, max=10,
                                       help="Show the K most likely digits.")] = 1,
    json_out: JsonOpt = False,
    debug_dir: Annotated[Path | None, typer.Option("--debug-dir", help="Write, for each "
                         "file, the 28x28 image the model saw, every reading stage's image and "
                         "NAME_trace.json (what each stage decided) into this folder.",
                         show_default=False)] = None,
    multi: Annotated[bool, typer.Option("--multi", help="Find every digit in the image: lines "
                                        "of writing top to bottom, each left to right.")] = False,
    min_confidence: MinConfidenceOpt = DEFAULT_MIN_CONFIDENCE,
    runtime: RuntimeOpt = None,
    threads: ThreadsOpt = None,
    trust_model: TrustOpt = False,
) -> None:
    """Classify the digit in each image file (photos, scans, drawings or MNIST arrays).

    A bad file is reported on stderr and skipped; the exit code is then 2."""
    from mnist_edge.device.reading import files as cls

    if debug_dir is not None:
        _writable_folder(debug_dir, "--debug-dir")
    clf = _load(model, runtime, threads, trust_model)
    failed = 0
    paths = cls.expand(images, on_skip=lambda message: say(f"skipped: {message}"))
    written: set[str] = set()
    for path in paths:
        try:
            trace = Trace(images=True) if debug_dir is not None else None
            preds = cls.classify_file(clf, path, multi=multi, min_confidence=min_confidence,
                                      trace=trace)
        except BadImageError as e:
            say(f"error: {e}")
            if json_out:
                typer.echo(json.dumps({"file": str(path), "error": str(e)}))
            failed += 1
            continue
        if debug_dir is not None:
            try:
                cls.save_debug(debug_dir, path, preds, written, trace)
            except OSError as e:
                say(f"error: {debug_dir}: cannot write the debug image ({e.strerror or e})")
                failed += 1
        if json_out:
            typer.echo(json.dumps(cls.as_json(path, preds, str(clf.path), top_k, multi)))
            continue
        first = preds[0]
        if first.digit is None:
            typer.echo(f"{path}: {first.describe()}")
        elif multi:
            parts = ", ".join(f"{p.digit} ({p.confidence:.1%})" for p in preds if p.digit is not None)
            lines = cls.number(preds) or ""
            where = f" ({lines.count(' ') + 1} lines, top to bottom)" if " " in lines else ""
            typer.echo(f"{path}: {lines}{where}  [{parts}]")
        elif top_k > 1:
            ranked = "  ".join(f"{d} {p:.1%}" for d, p in first.top_k(top_k))
            typer.echo(f"{path}: {first.digit}  ({ranked})")
        else:
            typer.echo(f"{path}: {first.describe()}")
    if failed:
        if len(paths) > 1:
            say(f"{failed} of {len(paths)} files could not be classified")
        raise typer.Exit(2)


@app.command(short_help="Read digits live from a camera, video or folder.")
@one_line_errors
def camera(
    source: Annotated[str, typer.Option("--source", "-s", help="auto | picamera2 | opencv:N "
                                        "| VIDEO file | DIR of frames.")] = "auto",
    frames: Annotated[int | None, typer.Option("--frames", "-n", min=1, help="Stop after N "
                      "frames (default: until Ctrl-C or the end of a file/folder).",
                      show_default=False)] = None,
    roi: RoiOpt = None,
    model: ModelOpt = None,
    min_confidence: MinConfidenceOpt = DEFAULT_MIN_CONFIDENCE,
    stable: StableOpt = 1,
    multi: MultiOpt = False,
    json_out: JsonOpt = False,
    show: Annotated[bool, typer.Option("--show", help="Draw the ROI and the prediction in a "
                                       "window (needs a display and GUI OpenCV).")] = False,
    timeout: TimeoutOpt = 2.0,
    retries: RetriesOpt = 3,
    mqtt: MqttOpt = None,
    mqtt_prefix: MqttPrefixOpt = "mnist-edge",
    mqtt_device: MqttDeviceOpt = None,
    mqtt_ca: MqttCaOpt = None,
    discovery: DiscoveryOpt = True,
    mqtt_forget: ForgetOpt = False,
    runtime: RuntimeOpt = None,
    threads: ThreadsOpt = None,
    trust_model: TrustOpt = False,
) -> None:
    """Classify live camera frames (Pi camera, webcam), a video file or a folder of frames.

    Prints the digit when it changes (or a JSON line per frame) and frames/s at the end;
    with --mqtt, publishes each new reading (Home Assistant finds the device)."""
    from mnist_edge.device.live.loop import run_camera

    if mqtt_forget:
        if mqtt is None:
            raise UsageError("--mqtt-forget needs --mqtt URL (the broker to remove the device from)")
        publisher = _publisher(mqtt, mqtt_prefix, mqtt_device, mqtt_ca, False, Path("-"))
        removed = publisher.forget()
        publisher.close()
        if not removed:
            say(f"error: {mqtt}: the broker did not accept the connection; nothing removed")
            raise typer.Exit(1)
        say(f"removed {publisher.base} and its Home Assistant configs from {mqtt}")
        raise typer.Exit(0)
    clf = _load(model, runtime, threads, trust_model)
    publisher = _publisher(mqtt, mqtt_prefix, mqtt_device, mqtt_ca, discovery, clf.path)
    try:
        code = run_camera(clf, source, frames=frames, roi=roi, json_out=json_out, show=show,
                          timeout=timeout, retries=retries, say=say,
                          min_confidence=min_confidence, stable=stable, multi=multi,
                          publisher=publisher)
    finally:
        if publisher is not None:
            publisher.close()
    raise typer.Exit(code)


@app.command(short_help="Live view and HTTP API for a headless Pi.")
@one_line_errors
def serve(
    source: Annotated[str, typer.Option("--source", "-s", help="none | auto | picamera2 | "
                                        "opencv:N | VIDEO file | DIR of frames.")] = "none",
    host: Annotated[str, typer.Option("--host", help="Address to listen on; anything but "
                                      "loopback requires a token.")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", min=1, max=65535, help="TCP port.")] = 8080,
    model: ModelOpt = None,
    roi: RoiOpt = None,
    stable: StableOpt = 1,
    min_confidence: MinConfidenceOpt = DEFAULT_MIN_CONFIDENCE,
    multi: MultiOpt = False,
    token: Annotated[str | None, typer.Option("--token", help="API token (default: generated "
                     "when --host is not loopback).", show_default=False)] = None,
    max_upload_mb: Annotated[float, typer.Option("--max-upload-mb", min=0.01, help="Largest "
                             "upload, MB (larger: 413).")] = 10.0,
    timeout: TimeoutOpt = 2.0,
    retries: RetriesOpt = 3,
    mqtt: MqttOpt = None,
    mqtt_prefix: MqttPrefixOpt = "mnist-edge",
    mqtt_device: MqttDeviceOpt = None,
    mqtt_ca: MqttCaOpt = None,
    discovery: DiscoveryOpt = True,
    runtime: RuntimeOpt = None,
    threads: ThreadsOpt = None,
    trust_model: TrustOpt = False,
) -> None:
    """A live view and an HTTP API for a headless Pi (needs the [serve] extra).

    Open the printed URL on a phone: the camera stream with the reading, photo upload and a
    drawing canvas. API: POST /api/classify, GET /api/latest, /api/events, /api/stream.mjpg,
    /healthz, /metrics. Ctrl-C or SIGTERM stops it with a summary line."""
    import importlib.util
    import secrets
    import socket

    missing = [m for m in ("starlette", "uvicorn", "multipart") if importlib.util.find_spec(m) is None]
    if missing:
        raise UsageError("`mnist-edge serve` needs the serve extra: pip install 'mnist-edge[serve]'"
                         f" (missing: {', '.join(missing)})")
    import uvicorn

    from mnist_edge.device.live import serve as srv
    from mnist_edge.device.live import sources as cameras
    from mnist_edge.device.live.loop import Reader

    clf = _load(model, runtime, threads, trust_model)
    loopback = host in ("127.0.0.1", "localhost", "::1")
    if token is None and not loopback:
        token = secrets.token_urlsafe(16)
    if source != "none":
        cameras.open_source(source, log=say, timeout=timeout, retries=retries).close()
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
    reader = Reader(clf, roi=roi, multi=multi, min_confidence=min_confidence)
    state = srv.LiveState()
    loop = srv.CameraLoop(lambda: cameras.open_source(source, log=say, timeout=timeout,
                                                      retries=retries),
                          reader, state, stable=stable, log=say)
    web = srv.create_app(reader, state, token=token, max_upload=int(max_upload_mb * 1024 * 1024),
                         source_name=source)
    state.publisher = _publisher(mqtt, mqtt_prefix, mqtt_device, mqtt_ca, discovery, clf.path)
    shown = socket.gethostname() + ".local" if host in ("0.0.0.0", "::") else host
    say(f"mnist-edge serve: http://{shown}:{port}/" + (f"?token={token}" if token else "")
        + f"  (model {clf.path.name}, source {source}; Ctrl-C to stop)")
    if source != "none":
        loop.start()
    server = uvicorn.Server(uvicorn.Config(web, log_level="warning", access_log=False,
                                           timeout_graceful_shutdown=2))
    import signal

    # uvicorn stops gracefully on SIGINT/SIGTERM, then raises the signal again for the
    # handlers it found: make those no-ops, so the summary below is printed and we exit 0.
    previous = {s: signal.signal(s, lambda *_: None) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        server.run(sockets=[sock])
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        loop.stop.set()
        if loop.is_alive():
            loop.join(timeout=5)
        sock.close()
        if state.publisher is not None:
            state.publisher.close()
    requests = sum(state.metrics.requests.values())
    say(f"stopped: {requests} requests served, {state.metrics.frames} frames from {source}, "
        f"{state.metrics.frame_errors} frame errors, up {time.time() - state.started:.0f} s")


@app.command(short_help="Accuracy and the quantization gate (exit 1: failed).")
@one_line_errors
def check(
    model: ModelsOpt = None,
    reference: Annotated[Path | None, typer.Option("--reference", metavar="MODEL", help="Compare "
                         "every other model with this one (default: each quantized model's "
                         "manifest reference, else the first float model).",
                         show_default=False)] = None,
    data: Annotated[Path | None, typer.Option("--data", help="Folder with the MNIST test "
                    "files (default: MNIST_EDGE_DATA, the cache, else the bundled copy).",
                    show_default=False)] = None,
    images: Annotated[Path | None, typer.Option("--images", metavar="DIR", help="Your own "
                      "labelled images instead: DIR/0/*.png ... DIR/9/*.png, and DIR/none/ for "
                      "images that must read 'no digit'.", show_default=False)] = None,
    idx_files: Annotated[tuple[Path, Path] | None, typer.Option("--idx", metavar="IMAGES LABELS",
                         help="Any IDX images + labels pair instead (e.g. MNIST-C), fed to the "
                         "model as 28x28 inputs.", show_default=False)] = None,
    max_drop: Annotated[float, typer.Option("--max-drop", metavar="PP", help="Allowed accuracy "
                        "drop against the reference, in percentage points.")] = evaluate.MAX_DROP_PP,
    min_agreement: Annotated[float, typer.Option("--min-agreement", metavar="PCT", help="Required "
                             "share of images answered as the reference does, in percent."
                             )] = evaluate.MIN_AGREEMENT_PCT,
    min_accuracy: Annotated[float | None, typer.Option("--min-accuracy", metavar="PCT",
                            help="Absolute accuracy floor for every model, in percent.",
                            show_default=False)] = None,
    require_gate: Annotated[bool, typer.Option("--require-gate", help="Exit 1 when a model "
                            "cannot be gated (no reference, no floor).")] = False,
    limit: Annotated[int | None, typer.Option("--limit", min=1, help="Use only the first N "
                     "images.", show_default=False)] = None,
    per_class: Annotated[bool, typer.Option("--per-class", help="Per-class accuracy and the "
                         "confusion matrix of each model.")] = False,
    junit: Annotated[Path | None, typer.Option("--junit", metavar="FILE", help="Write JUnit "
                     "XML: a testcase per model.", show_default=False)] = None,
    markdown: Annotated[Path | None, typer.Option("--markdown", metavar="FILE", help="Write "
                        "the table as Markdown (also appended to $GITHUB_STEP_SUMMARY when "
                        "set).", show_default=False)] = None,
    json_out: JsonOpt = False,
    runtime: RuntimeOpt = None,
    threads: ThreadsOpt = None,
    trust_model: TrustOpt = False,
) -> None:
    """Measure accuracy and gate quantized models (exit 1 when a gate fails).

    A quantized model is compared with its reference: the float model its manifest.json
    names (loaded from beside it when not given), else the first float model given, else
    --reference. It fails when it is more than --max-drop points less accurate or agrees on
    fewer than --min-agreement percent of the images; --min-accuracy is a floor for all.
    A model with no reference and no floor is "not gated", never "pass"."""

    from mnist_edge.device import atomic
    from mnist_edge.device.evaluation import datasets, reports
    from mnist_edge.device.evaluation import gate as checking
    from mnist_edge.device.progress import Progress

    problem = evaluate.check_thresholds(max_drop, min_agreement, min_accuracy)
    if problem:
        raise UsageError(problem)
    if images is not None and idx_files is not None:
        raise UsageError("--images and --idx are two different data sets: give one")
    thresholds = checking.Thresholds(max_drop, min_agreement, min_accuracy)
    paths = model or [p for pair in bundled.families() for p in pair]
    if not paths:
        raise BadModelError("no bundled models in this install; pass --model FILE.tflite")
    paths = [bundled.resolve(p) for p in paths]
    ref = bundled.resolve(reference) if reference is not None else None
    loaded: dict[Path, Any] = {}

    def load(path: Path) -> Any:
        if path not in loaded:
            loaded[path] = _load(path, runtime, threads, trust_model)
        return loaded[path]

    for p in paths + ([ref] if ref else []):
        load(p)  # every given model is refused before any measuring starts
    if idx_files is not None:
        evalset = datasets.idx_pair(*idx_files)
    elif images is not None:
        count = len(datasets.class_files(images))
        with Progress(count, "preprocessing", enabled=not json_out) as bar:
            evalset = datasets.image_folder(images, bar.advance)
    else:
        evalset = datasets.mnist_test(data)
    if limit is not None:
        if limit > len(evalset):
            say(f"--limit {limit:,} is more than the {len(evalset):,} images of "
                f"{evalset.name}: using all of them")
        else:
            evalset = evalset.first(limit)
    with Progress(len(evalset) * (len(paths) + 1), "checking", enabled=not json_out) as bar:
        results = checking.run(paths, evalset, load, thresholds, ref, bar.advance)
    passed = evaluate.overall(results)
    ungated = [r for r in results if r.passed is None and r.role != "reference"]
    failed = [r for r in results if r.passed is False]
    if failed:
        summary = f"gate FAILED for {len(failed)} of {len(results)} models ({thresholds.describe()})"
    elif passed is None:
        summary = ("not gated: no model had a reference or a floor (give --reference or "
                   "--min-accuracy; --require-gate makes this exit 1)")
    else:
        summary = f"gate passed ({thresholds.describe()})"
        if ungated:
            summary += f"; not gated: {', '.join(r.name for r in ungated)}"
    labels = evalset.labels
    if json_out:
        for r in results:
            typer.echo(json.dumps({**r.to_json(), "images": len(evalset)}))
        typer.echo(json.dumps({
            "schema": evaluate.SCHEMA, "summary": True, "passed": passed,
            "dataset": evalset.name, "images": len(evalset), "max_drop_pp": max_drop,
            "min_agreement_pct": min_agreement, "min_accuracy_pct": min_accuracy,
            "failed": [r.model for r in failed], "not_gated": [r.model for r in ungated],
        }))
    else:
        width = max(30, *(len(r.name) for r in results))
        typer.echo(f"{'model':{width}s} {'accuracy':>9s} {'drop pp':>8s} {'agreement':>10s}  "
                   f"{'reference':28s} verdict")
        for r in results:
            refname = "—" if r.reference is None else Path(r.reference.split(" (")[0]).name
            agree = "—" if r.agreement is None else f"{r.agreement:.2%}"
            drop = "—" if r.drop_pp is None else f"{r.drop_pp:+.2f}"
            typer.echo(f"{r.name:{width}s} {r.accuracy:9.2%} {drop:>8s} {agree:>10s}  "
                       f"{refname:28s} {r.verdict}")
        typer.echo(f"{len(evalset):,} images ({evalset.name}); {summary}")
        if per_class:
            for r in results:
                typer.echo(reports.per_class_text(r, labels))
    for r in failed:
        say(f"gate failed: {r.model}: {r.reason}")
    md = reports.markdown(results, evalset.name, summary, labels if per_class else None)
    outputs = [(junit, reports.junit(results, evalset.name, len(evalset))),
               (markdown, md.encode())]
    for target, content in outputs:
        if target is not None:
            _write_report(functools.partial(atomic.write_bytes, target, content), target)
    step_summary = os.environ.get("GITHUB_STEP_SUMMARY")
    if step_summary:
        def append() -> None:
            with open(step_summary, "a", encoding="utf-8") as f:
                f.write(md + "\n")
        _write_report(append, Path(step_summary))
    if failed:
        raise typer.Exit(1)
    if require_gate and (ungated or passed is None):
        say("--require-gate: not gated: " + (", ".join(r.model for r in ungated) or "every model"))
        raise typer.Exit(1)
    raise typer.Exit(0)


def _writable_folder(folder: Path, option: str) -> None:
    """A folder that exists or can be made, and takes files: else one line, exit 2."""
    if folder.exists() and not folder.is_dir():
        raise UsageError(f"{option} {folder}: is a file, not a folder")
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise UsageError(f"{option} {folder}: cannot create it ({e.strerror or e})") from None
    if not os.access(folder, os.W_OK | os.X_OK):
        raise UsageError(f"{option} {folder}: not writable")


def _write_report(write: Callable[[], object], target: Path) -> None:
    try:
        write()
    except OSError as e:
        raise UsageError(f"{target}: cannot write ({e.strerror or e})") from None


@app.command(short_help="Latency, throughput and size, as ratios.")
@one_line_errors
def bench(
    model: ModelsOpt = None,
    runs: Annotated[int, typer.Option("--runs", min=10, help="Timed invokes per model.")] = 2000,
    warmup: Annotated[int, typer.Option("--warmup", min=0, help="Untimed invokes first.")] = 100,
    json_out: JsonOpt = False,
    runtime: RuntimeOpt = None,
    threads: ThreadsOpt = None,
    trust_model: TrustOpt = False,
) -> None:
    """Time single-image inference: p50/p95/p99 latency, throughput, size, ratios."""
    from mnist_edge.device.inference import doctor, timing

    paths = model or [p for pair in bundled.families() for p in pair]
    rows = []
    for path in paths:
        clf = _load(path, runtime, threads, trust_model)
        t = timing.time_wrapper(clf, runs=runs, warmup=warmup)
        bare = timing.time_bare(clf, runs=runs, warmup=warmup)
        batched = timing.batch_throughput(clf, runs=max(2, runs // 40))  # 2000 runs: 50 batches
        rows.append({"model": str(clf.path), "runtime": str(clf.runtime), **t.to_json(),
                     "batch64_throughput_per_s": None if batched is None else round(batched),
                     "bytes": clf.size, "threads": threads, "bare_p50_us": round(bare.p50_us, 2),
                     "wrapper_over_bare": round(t.p50_us / bare.p50_us, 3),
                     "quantized": clf.quantized})
    base = next((r for r in rows if not r["quantized"]), rows[0])
    for r in rows:
        r["p50_vs_reference"] = round(r["p50_us"] / base["p50_us"], 3)
    health = doctor.pi_health()
    if json_out:
        for r in rows:
            typer.echo(json.dumps({**r, **health}))
        return
    typer.echo(f"{'model':34s} {'p50 µs':>8s} {'p95 µs':>8s} {'p99 µs':>8s} {'img/s':>8s} "
               f"{'batch64/s':>9s} {'bytes':>9s} {'vs ref':>7s} {'vs bare':>8s}")
    for r in rows:
        b64 = r["batch64_throughput_per_s"]
        b64_text = "—" if b64 is None else f"{b64:.0f}"
        typer.echo(f"{Path(r['model']).name:34s} {r['p50_us']:8.1f} {r['p95_us']:8.1f} "
                   f"{r['p99_us']:8.1f} {r['throughput_per_s']:8.0f} {b64_text:>9s} {r['bytes']:9,} "
                   f"{r['p50_vs_reference']:6.2f}× {r['wrapper_over_bare']:7.2f}×")
    typer.echo(f"runtime {rows[0]['runtime']}, threads {threads or 'default'}, {runs} runs "
               f"after {warmup} warm-up; img/s = one image per invoke through the CLI path, "
               f"batch64/s = 64 per invoke; 'vs ref' = p50 / {Path(base['model']).name}, "
               "'vs bare' = CLI path / bare set-invoke-get")
    if health:
        typer.echo("  ".join(f"{k}: {v}" for k, v in health.items()))


@app.command(short_help="MNIST-C, photos and empty frames, side by side.")
@one_line_errors
def robustness(
    model: ModelsOpt = None,
    mnistc: Annotated[Path | None, typer.Option("--mnistc", metavar="DIR", help="MNIST-C folder "
                      "(15 corruption IDX files + labels; default: MNIST_EDGE_MNISTC, else "
                      "skipped).", show_default=False)] = None,
    data: Annotated[Path | None, typer.Option("--data", help="Folder with the MNIST test "
                    "files (default: MNIST_EDGE_DATA, the cache, else the bundled copy).",
                    show_default=False)] = None,
    per_style: Annotated[int, typer.Option("--per-style", min=10, help="Photo renders and empty "
                         "frames per paper style.")] = 200,
    realphotos: Annotated[Path | None, typer.Option("--realphotos", metavar="DIR", help="Real "
                          "photos to measure (labels.csv + images/, as ../shared/realphotos-dev; "
                          "default: MNIST_EDGE_REALPHOTOS, else skipped).",
                          show_default=False)] = None,
    json_out: JsonOpt = False,
    markdown: Annotated[Path | None, typer.Option("--markdown", metavar="FILE", help="Write the "
                        "table as Markdown.", show_default=False)] = None,
    report: Annotated[Path | None, typer.Option("--report", metavar="FILE", help="Put the table "
                      "into this Markdown file (e.g. models/report.md), replacing an earlier one.",
                      show_default=False)] = None,
    runtime: RuntimeOpt = None,
    threads: ThreadsOpt = None,
    trust_model: TrustOpt = False,
) -> None:
    """Robustness side by side: MNIST-C, photo renders, empty frames, real photos, size,
    latency."""

    from mnist_edge.device import atomic
    from mnist_edge.device.evaluation import datasets
    from mnist_edge.device.evaluation import real_photos as real
    from mnist_edge.device.evaluation import robustness as rb
    from mnist_edge.device.progress import Progress

    order = ["tutorial", "tutorial-float32", "robust", "robust-float32"]
    paths = [bundled.resolve(p) for p in model] if model else \
        [bundled.NAMES[n] for n in order if bundled.NAMES[n].is_file()]
    if not paths:
        raise BadModelError("no bundled models in this install; pass --model FILE.tflite")
    clfs = [_load(p, runtime, threads, trust_model) for p in paths]
    folder = mnistc or (Path(os.environ["MNIST_EDGE_MNISTC"]) if os.environ.get("MNIST_EDGE_MNISTC")
                        else None)
    sets = rb.load_mnistc(folder) if folder is not None else None
    test = datasets.mnist_test(data)
    with Progress(2 * per_style * 9, "rendering frames", enabled=not json_out) as bar:
        photos = rb.render_frames(test.images, test.labels, per_style, False, bar.advance)
        empties = rb.render_frames(test.images, test.labels, per_style, True, bar.advance)
    real_dir = realphotos or (Path(os.environ["MNIST_EDGE_REALPHOTOS"])
                              if os.environ.get("MNIST_EDGE_REALPHOTOS") else None)
    items = real.load(real_dir) if real_dir is not None else []
    rows = []
    with Progress(len(clfs), "scoring models", enabled=not json_out) as bar:
        for clf in clfs:
            rows.append(rb.score(clf, (test.images, test.labels), sets, photos, empties))
            if items:
                rows[-1].real = real.score(clf, items)
            bar.advance(1)
    for r in rows:
        r.latency_ratio = r.p50_us / rows[0].p50_us
    short = {p: n for n, p in bundled.NAMES.items()}
    names = [short.get(p, p.name) for p in paths]
    table = rb.markdown(rows, names, per_style, str(folder) if folder else None,
                        str(real_dir) if real_dir else None)
    if json_out:
        for name, r in zip(names, rows, strict=True):
            typer.echo(json.dumps({"name": name, **r.to_json()}))
    else:
        typer.echo(table)
    if markdown is not None:
        _write_report(lambda: atomic.write_text(markdown, table), markdown)
    if report is not None:
        old = report.read_text() if report.is_file() else ""
        _write_report(lambda: atomic.write_text(report, rb.replace_section(old, table)), report)


@app.command(short_help="Runtime, platform, model signature, hints.")
@one_line_errors
def info(
    model: ModelOpt = None,
    json_out: JsonOpt = False,
    runtime: RuntimeOpt = None,
    trust_model: TrustOpt = False,
) -> None:
    """Runtime, versions, platform, the model's signature and manifest, and hints."""
    from mnist_edge.device.inference import doctor, safety
    from mnist_edge.device.inference import runtime as runtimes

    facts = doctor.platform_facts()
    facts["mnist_edge"] = __version__
    try:
        facts["runtime"] = str(runtimes.choose(runtime.value if runtime else None))
    except MnistEdgeError as e:
        facts["runtime"] = f"none ({e})"
    problem: MnistEdgeError | None = None
    try:
        clf = _load(model, runtime, trust=trust_model)
        facts["model"] = {"path": str(clf.path), "bytes": clf.size, "sha256": clf.sha256,
                          "quantized": clf.quantized, "classes": clf.classes, **clf.signature()}
        entry = safety.manifest_entry(clf.path)
        if entry:
            facts["manifest"] = {k: entry[k] for k in ("variant", "test_accuracy", "reference",
                                 "agreement_with_float32", "drop_pp_vs_float32", "gate")
                                 if k in entry}
    except MnistEdgeError as e:
        facts["model"] = {"error": str(e)}
        problem = e
    facts["hints"] = doctor.hints(facts)
    if json_out:
        typer.echo(json.dumps(facts))
    else:
        for key, value in facts.items():
            if key == "hints":
                continue
            if isinstance(value, dict):
                typer.echo(f"{key}:")
                for k, v in value.items():
                    typer.echo(f"  {k}: {v}")
            else:
                typer.echo(f"{key}: {value}")
        for hint in facts["hints"]:
            typer.echo(f"hint: {hint}")
    if problem is not None:  # the facts above still help; the exit code says what failed
        raise problem


@app.command(short_help="Draw an MNIST digit in the terminal.")
@one_line_errors
def show(
    index: Annotated[int, typer.Argument(min=0, help="Index of the digit in the split.")],
    split: Annotated[Split, typer.Option("--split", help="MNIST split.")] = Split.test,
    data: Annotated[Path | None, typer.Option("--data", help="Folder with the MNIST files.",
                    show_default=False)] = None,
    out: Annotated[Path | None, typer.Option("--out", "-o", help="Also save it, scaled up "
                   "10x, as PNG, JPEG, BMP, GIF or WebP (by the file name).",
                   show_default=False)] = None,
) -> None:
    """Draw an MNIST digit in the terminal (like the tutorial's plot of train_images[5])."""
    from mnist_edge.device.data import mnist
    from mnist_edge.device.evaluation.render import save_image, to_text

    images, labels = mnist.load_split(split.value, data)
    if index >= len(images):
        raise UsageError(f"index {index} is out of range: the {split.value} split has "
                            f"{len(images)} images (0-{len(images) - 1})")
    typer.echo(to_text(images[index]))
    typer.echo(f"{split.value}[{index}]: label {int(labels[index])}")
    if out is not None:
        save_image(images[index], out)
        say(f"wrote {out}")


_PASS_THROUGH: dict[str, Any] = {
    "allow_extra_args": True, "ignore_unknown_options": True, "help_option_names": []
}


@app.command(context_settings=_PASS_THROUGH, add_help_option=False,
             short_help="Train a model (needs the [train] extra).")
def train(ctx: typer.Context) -> None:
    """Train the Keras CNN (needs the [train] extra; options: `mnist-edge train --help`)."""
    raise typer.Exit(_run_stage("train", ctx.args))


@app.command(context_settings=_PASS_THROUGH, add_help_option=False,
             short_help="Convert to TFLite, measure, gate (needs [train]).")
def convert(ctx: typer.Context) -> None:
    """Convert to TFLite, measure and gate (needs [train]; `mnist-edge convert --help`)."""
    raise typer.Exit(_run_stage("convert", ctx.args))


def _run_stage(name: str, args: list[str]) -> int:
    """`python -m mnist_edge.NAME ARGS` with TensorFlow's start-up notices filtered out."""
    import importlib.util

    if importlib.util.find_spec("tensorflow") is None:
        say(f"error: `mnist-edge {name}` needs TensorFlow: pip install 'mnist-edge[train]'")
        return 2
    from mnist_edge.device.native_stderr import TENSORFLOW_NOISE, run_filtered

    return run_filtered([sys.executable, "-m", f"mnist_edge.{name}", *args], TENSORFLOW_NOISE)


def main() -> None:
    try:
        app()
    except KeyboardInterrupt:
        say("interrupted")
        sys.exit(130)
    except BrokenPipeError:  # `mnist-edge ... | head`: the reader left, nothing to report
        sys.stderr.close()
        sys.exit(0)
    except OSError as e:  # stdout on a full disk (`> /dev/full`), a closed terminal
        with contextlib.suppress(OSError):
            say(f"error: cannot write the results ({e.strerror or e})")
        sys.exit(2)


if __name__ == "__main__":
    main()
