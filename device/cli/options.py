"""Options that several commands take, each defined once (typer's Annotated types)."""

from enum import Enum
from pathlib import Path
from typing import Annotated

import typer

from mnist_edge.device.errors import UsageError
from mnist_edge.device.inference import bundled
from mnist_edge.device.live.sources import RETRIES, TIMEOUT_S, parse_roi

DEFAULT_MIN_CONFIDENCE = 0.5  # bench/no_digit_cost.py: +0.7 pp empty frames rejected, -0.09% MNIST


class RuntimeName(str, Enum):
    litert = "litert"
    tflite_runtime = "tflite-runtime"


def _check_roi(value: str | None) -> str | None:
    if value is not None:
        try:
            parse_roi(value)
        except UsageError as e:
            raise typer.BadParameter(str(e).split(": ", 1)[1]) from None
    return value


_NAMES = ", ".join(bundled.NAMES)

RuntimeOpt = Annotated[
    RuntimeName | None,
    typer.Option("--runtime", help="Force a TFLite runtime (default: LiteRT, else "
                 "tflite-runtime; also MNIST_EDGE_RUNTIME).", show_default=False),
]
ThreadsOpt = Annotated[
    int | None, typer.Option("--threads", min=1, help="Interpreter threads (default: runtime's).")
]
TrustOpt = Annotated[
    bool, typer.Option("--trust-model", help="Run a model whose SHA-256 differs from the "
                       "manifest.json beside it.")
]
JsonOpt = Annotated[bool, typer.Option("--json", help="One JSON object per line on stdout.")]
ModelOpt = Annotated[
    Path | None,
    typer.Option("--model", "-m", metavar="MODEL", help=f"A .tflite file, a bundled model "
                 f"({_NAMES}) or an installed one (`mnist-edge models list`; default: the one "
                 f"`models use` chose, else {bundled.DEFAULT}).", show_default=False),
]
ModelsOpt = Annotated[
    list[Path] | None,
    typer.Option("--model", "-m", metavar="MODEL", help=f"A .tflite file or a bundled model "
                 f"({_NAMES}); repeatable. Default: every bundled family, int8 and its "
                 "float32 reference.", show_default=False),
]
DataOpt = Annotated[
    Path | None,
    typer.Option("--data", help="Folder with the MNIST files (default: MNIST_EDGE_DATA, the "
                 "cache, else the bundled test split).", show_default=False),
]
MinConfidenceOpt = Annotated[
    float, typer.Option("--min-confidence", min=0.0, max=1.0, help="Answer 'no digit' when "
                        "the best digit is less likely than this (0-1).")
]
MultiOpt = Annotated[
    bool, typer.Option("--multi", help="Find every digit: lines of writing top to bottom, each "
                       "left to right.")
]
# -- live sources (camera, serve)
RoiOpt = Annotated[
    str | None,
    typer.Option("--roi", metavar="X,Y,W,H", callback=_check_roi, help="Region of interest in "
                 "pixels (default: centred square, 60% of the shorter side).", show_default=False),
]
StableOpt = Annotated[
    int, typer.Option("--stable", min=1, metavar="N", help="Report a new reading only after N "
                      "consecutive frames agree.")
]
TimeoutOpt = Annotated[
    float, typer.Option("--timeout", min=0.1, help="Seconds to wait for a frame before "
                        "reconnecting.")
]
RetriesOpt = Annotated[
    int, typer.Option("--retries", min=0, help="Reconnect attempts before giving up.")
]
DEFAULT_TIMEOUT_S, DEFAULT_RETRIES = TIMEOUT_S, RETRIES
# -- MQTT (camera, serve)
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
DiscoveryOpt = Annotated[
    bool, typer.Option("--discovery/--no-discovery", help="Announce the device to Home "
                       "Assistant (retained MQTT discovery configs).")
]
HistoryOpt = Annotated[
    Path | None, typer.Option("--history", metavar="FILE", help="Keep every settled reading in "
                              "this SQLite file (default: ~/.local/state/mnist-edge/"
                              "history.sqlite3; see `mnist-edge history`).", show_default=False)
]
NoHistoryOpt = Annotated[bool, typer.Option("--no-history", help="Keep no history of readings.")]
KeepDaysOpt = Annotated[
    float, typer.Option("--keep-days", min=0.001, metavar="DAYS", help="History: readings "
                        "older than this are deleted.")
]
KeepRowsOpt = Annotated[
    int, typer.Option("--keep-rows", min=1, metavar="N", help="History: at most this many "
                      "readings, the oldest deleted first.")
]
