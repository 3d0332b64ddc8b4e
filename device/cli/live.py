"""`mnist-edge camera` and `mnist-edge serve`: reading live frames."""

import importlib.util
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any

import typer

from mnist_edge.device.cli import support
from mnist_edge.device.cli.app import app, one_line_errors, say
from mnist_edge.device.cli.options import (
    DEFAULT_MIN_CONFIDENCE,
    DEFAULT_RETRIES,
    DEFAULT_TIMEOUT_S,
    DiscoveryOpt,
    HistoryOpt,
    JsonOpt,
    KeepDaysOpt,
    KeepRowsOpt,
    MinConfidenceOpt,
    ModelOpt,
    MqttCaOpt,
    MqttDeviceOpt,
    MqttOpt,
    MqttPrefixOpt,
    MultiOpt,
    NoHistoryOpt,
    RetriesOpt,
    RoiOpt,
    RuntimeOpt,
    StableOpt,
    ThreadsOpt,
    TimeoutOpt,
    TrustOpt,
)
from mnist_edge.device.errors import UsageError


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
    timeout: TimeoutOpt = DEFAULT_TIMEOUT_S,
    retries: RetriesOpt = DEFAULT_RETRIES,
    mqtt: MqttOpt = None,
    mqtt_prefix: MqttPrefixOpt = "mnist-edge",
    mqtt_device: MqttDeviceOpt = None,
    mqtt_ca: MqttCaOpt = None,
    discovery: DiscoveryOpt = True,
    history: HistoryOpt = None,
    no_history: NoHistoryOpt = False,
    keep_days: KeepDaysOpt = 90.0,
    keep_rows: KeepRowsOpt = 1_000_000,
    mqtt_forget: Annotated[bool, typer.Option("--mqtt-forget", help="Remove this device from "
                           "the broker and Home Assistant (clear its retained configs and "
                           "state), then exit.")] = False,
    runtime: RuntimeOpt = None,
    threads: ThreadsOpt = None,
    trust_model: TrustOpt = False,
) -> None:
    """Classify live camera frames (Pi camera, webcam), a video file or a folder of frames.

    Prints the digit when it changes (or a JSON line per frame), frames/s and the drift state
    at the end; keeps each new reading in the history (`mnist-edge history`); with --mqtt,
    publishes it (Home Assistant finds the device)."""
    from mnist_edge.device.live.loop import run_camera

    if mqtt_forget:
        if mqtt is None:
            raise UsageError("--mqtt-forget needs --mqtt URL (the broker to remove the device from)")
        publisher = support.publisher(mqtt, mqtt_prefix, mqtt_device, mqtt_ca, False, Path("-"))
        removed = publisher.forget()
        publisher.close()
        if not removed:
            say(f"error: {mqtt}: the broker did not accept the connection; nothing removed")
            raise typer.Exit(1)
        say(f"removed {publisher.base} and its Home Assistant configs from {mqtt}")
        raise typer.Exit(0)
    clf = support.load(model, runtime, threads, trust_model)
    publisher = support.publisher(mqtt, mqtt_prefix, mqtt_device, mqtt_ca, discovery, clf.path)
    kept = support.history(history, no_history, keep_days, keep_rows)
    try:
        code = run_camera(clf, source, frames=frames, roi=roi, json_out=json_out, show=show,
                          timeout=timeout, retries=retries, say=say, emit=typer.echo,
                          min_confidence=min_confidence, stable=stable, multi=multi,
                          publisher=publisher, history=kept,
                          reload=lambda: support.load(model, runtime, threads, trust_model))
    finally:
        if publisher is not None:
            publisher.close()
        if kept is not None:
            kept.close()
    raise typer.Exit(code)


@app.command(short_help="Save examples of your handwriting from a camera.")
@one_line_errors
def collect(
    folder: Annotated[Path, typer.Argument(help="Where to save: FOLDER/<digit>/*.png (the "
                                           "frames) with the crops and records in .meta/.",
                                           show_default=False)],
    source: Annotated[str, typer.Option("--source", "-s", help="auto | picamera2 | opencv:N "
                                        "| VIDEO file | DIR of frames.")] = "auto",
    label: Annotated[str | None, typer.Option("--label", "-l", help="The digit shown (0-9, or "
                     "'none' for empty frames); without it you are asked for one digit after "
                     "another.", show_default=False)] = None,
    count: Annotated[int, typer.Option("--count", "-c", min=1, help="Examples to save for each "
                     "digit (different views: near-duplicates are skipped).")] = 20,
    settle: Annotated[int, typer.Option("--settle", min=1, metavar="N", help="Save only after "
                      "the view has been still for N frames.")] = 3,
    frames: Annotated[int | None, typer.Option("--frames", "-n", min=1, help="Stop after N "
                      "frames.", show_default=False)] = None,
    roi: RoiOpt = None,
    model: ModelOpt = None,
    min_confidence: MinConfidenceOpt = DEFAULT_MIN_CONFIDENCE,
    timeout: TimeoutOpt = DEFAULT_TIMEOUT_S,
    retries: RetriesOpt = DEFAULT_RETRIES,
    runtime: RuntimeOpt = None,
    threads: ThreadsOpt = None,
    trust_model: TrustOpt = False,
) -> None:
    """Collect examples of your own handwriting for `mnist-edge train --finetune FOLDER`.

    Show a written digit to the camera: once the view is still it is saved with the 28x28 crop
    the reading pipeline cut and what the model read (right or wrong). Ctrl-C keeps everything
    saved so far; exit 1 when nothing was saved. `check --images FOLDER` measures any model
    on them."""
    from mnist_edge.device.data import examples
    from mnist_edge.device.live import collect as collecting
    from mnist_edge.device.live import sources
    from mnist_edge.device.live.loop import Reader

    fixed = support.example_label(label) if label is not None else None
    support.writable_folder(folder, "FOLDER")
    clf = support.load(model, runtime, threads, trust_model)
    reader = Reader(clf, roi=roi, min_confidence=min_confidence)

    def asked() -> Iterator[str]:
        while True:
            try:
                answer = typer.prompt("digit to show (0-9 or none; Enter to stop)", default="",
                                      show_default=False, err=True)
            except typer.Abort:  # the answers' end (EOF) or Ctrl-C: stop, keep all
                typer.echo("", err=True)
                return
            if not sys.stdin.isatty():  # piped answers: echo as a terminal would, line ends
                typer.echo(answer, err=True)
            if not answer.strip():
                return
            try:
                yield examples.label_of(answer)
            except ValueError as e:
                say(str(e))

    def keep_disagreeing(label: str, read: str) -> bool:
        """Several views in a row read surely as another digit: a person decides; piped
        answers cannot, so those views are taken back and the label ends."""
        if not sys.stdin.isatty():
            return False
        return typer.confirm(f"the last {collecting.DISAGREE} views read other digits (the last "
                             f"{read}), not {label}: keep them under {label}?", default=False,
                             err=True)

    source_ = sources.open_source(source, log=lambda m: say(f"skipped: {m}"), timeout=timeout,
                                  retries=retries)
    try:
        saved = collecting.run(reader, source_, folder, labels=iter([fixed]) if fixed else asked(),
                               count=count, settle=settle, source_name=source, say=say,
                               emit=typer.echo, frames=frames, keep_disagreeing=keep_disagreeing)
    finally:
        source_.close()
    raise typer.Exit(0 if saved else 1)


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
    token: Annotated[str | None, typer.Option("--token", envvar="MNIST_EDGE_TOKEN", help="API "
                     "token (default: MNIST_EDGE_TOKEN, else, when --host is not loopback, one "
                     "made once and kept in ~/.local/state/mnist-edge/token, mode 0600). '' turns "
                     "authentication off, on loopback only.", show_default=False)] = None,
    max_upload_mb: Annotated[float, typer.Option("--max-upload-mb", min=0.01, help="Largest "
                             "upload, MB (larger: 413).")] = 10.0,
    max_decodes: Annotated[int, typer.Option("--max-decodes", min=1, help="Uploads decoded at "
                           "a time (more wait, then 503): bounds memory.")] = 1,
    timeout: TimeoutOpt = DEFAULT_TIMEOUT_S,
    retries: RetriesOpt = DEFAULT_RETRIES,
    mqtt: MqttOpt = None,
    mqtt_prefix: MqttPrefixOpt = "mnist-edge",
    mqtt_device: MqttDeviceOpt = None,
    mqtt_ca: MqttCaOpt = None,
    discovery: DiscoveryOpt = True,
    collect: Annotated[Path | None, typer.Option("--collect", metavar="DIR", help="Let the page "
                       "correct any reading ('wrong? tap the right digit'); each correction is "
                       "saved in DIR as `mnist-edge collect` saves examples.",
                       show_default=False)] = None,
    unsure_below: Annotated[float, typer.Option("--unsure-below", min=0.0, max=1.0, metavar="P",
                            help="With --collect: camera readings less sure than this (or whose "
                            "two best digits are close) wait on the page for a label, in "
                            "DIR/.unsure/.")] = 0.9,
    unsure_mib: Annotated[float, typer.Option("--unsure-mib", min=0.1, metavar="MIB", help="With "
                          "--collect: the unsure readings' size cap; the oldest go first.")] = 50.0,
    history: HistoryOpt = None,
    no_history: NoHistoryOpt = False,
    keep_days: KeepDaysOpt = 90.0,
    keep_rows: KeepRowsOpt = 1_000_000,
    qr: Annotated[bool | None, typer.Option("--qr/--no-qr", help="Print the URL as a QR code "
                  "for a phone (default: when the terminal is interactive and --host is not "
                  "loopback).", show_default=False)] = None,
    runtime: RuntimeOpt = None,
    threads: ThreadsOpt = None,
    trust_model: TrustOpt = False,
) -> None:
    """A live view and an HTTP API for a headless Pi (needs the [serve] extra).

    Open the printed URL on a phone: the camera stream with the reading, photo upload and a
    drawing canvas, the history of readings (and with --collect the unsure ones to label).
    API: POST /api/classify, GET /api/latest, /api/events, /api/stream.mjpg, /api/history,
    /healthz (with the drift state), /metrics; /openapi.json lists them all. Ctrl-C or SIGTERM
    stops it with a summary line."""
    missing = [m for m in ("starlette", "uvicorn", "multipart") if importlib.util.find_spec(m) is None]
    if missing:
        raise UsageError("`mnist-edge serve` needs the serve extra: pip install 'mnist-edge[serve]'"
                         f" (missing: {', '.join(missing)})")
    from mnist_edge.device.evaluation import drift
    from mnist_edge.device.live import serve as srv
    from mnist_edge.device.live import sources
    from mnist_edge.device.live.loop import Reader, reload_on_sighup

    clf = support.load(model, runtime, threads, trust_model)
    loopback = host in srv.LOOPBACK
    if token is None and not loopback:
        token = srv.stored_token(say)
    if token == "" and not loopback:
        raise UsageError(f"--token '' on {host}: anyone who could reach this port could watch "
                         "the camera and use the API; give a token (or MNIST_EDGE_TOKEN), or "
                         "listen on 127.0.0.1")

    said: set[str] = set()  # a folder's unreadable file: said once, not at every pass

    def say_once(message: str) -> None:
        if message not in said:
            said.add(message)
            say(message)

    def open_source() -> sources.Source:
        return sources.open_source(source, log=say_once, timeout=timeout, retries=retries)

    live = sources.is_live(source)
    if source != "none" and not live:
        open_source().close()  # a file or folder that cannot be read: one line, exit 2
    sock = srv.listen(host, port)
    reader = Reader(clf, roi=roi, multi=multi, min_confidence=min_confidence)
    state = srv.LiveState()
    state.monitor = drift.Monitor(drift.reference_for(clf))

    def reloaded(new: Any) -> None:
        state.monitor.reset(drift.reference_for(new))  # the new model's own reference
        if state.publisher:
            state.publisher.model(new.path.name, new.sha256)

    reload_on_sighup(reader, lambda: support.load(model, runtime, threads, trust_model), say,
                     then=reloaded)
    if collect is not None:
        from mnist_edge.device.live.spool import Spool

        support.writable_folder(collect, "--collect")
        state.collect = collect
        state.spool = Spool(collect, cap_mib=unsure_mib, below=unsure_below)
    # A camera that is missing or fails is retried in the background while upload and
    # drawing keep working; /healthz says "degraded" (503) until it delivers frames.
    loop = srv.CameraLoop(open_source, reader, state, stable=stable, live=live,
                          log=say) if source != "none" else None
    web = srv.create_app(reader, state, token=token or None,
                         max_upload=int(max_upload_mb * 1024 * 1024), source_name=source,
                         hosts=srv.own_names(host) if loopback else None,
                         max_decodes=max_decodes)
    state.publisher = support.publisher(mqtt, mqtt_prefix, mqtt_device, mqtt_ca, discovery, clf.path)
    state.recorder = support.history(history, no_history, keep_days, keep_rows)
    address = srv.url(host, port, token)
    say(f"mnist-edge serve: {address}  (model {clf.path.name}, source {source}; Ctrl-C to stop)")
    if qr if qr is not None else (sys.stderr.isatty() and not loopback):
        from mnist_edge.device.live import qr as qr_code

        code = qr_code.terminal(address)  # its colours are the code: kept even in a pipe
        typer.echo(code or "(no QR code: pip install segno)", err=True, color=code is not None)
    srv.run(web, sock, loop, state)
    say(srv.summary(state, source))
