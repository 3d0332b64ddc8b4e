"""`mnist-edge`: classify digits in files and camera frames, check quantized accuracy,
benchmark, and inspect models, on a Raspberry Pi or anywhere, without TensorFlow.

Exit codes: 0 success; 1 a check failed or a runtime/device failure; 2 bad input or usage.
"""

from __future__ import annotations

import functools
import json
import sys
from collections.abc import Callable
from enum import Enum
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer

from . import __version__
from .errors import BadImageError, BadModelError, MnistEdgeError, UsageError
from .evaluate import MAX_DROP_PP, MIN_AGREEMENT

BUNDLED_DIR = Path(__file__).parent / "models"
DEFAULT_MODEL = BUNDLED_DIR / "mnist_cnn_int8.tflite"
DEFAULT_REFERENCE = BUNDLED_DIR / "mnist_cnn_float32.tflite"

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
ModelsOpt = Annotated[
    list[Path] | None,
    typer.Option("--model", "-m", help="Model file (repeatable). Default: the bundled float32 "
                 "and int8 models.", show_default=False),
]
TrustOpt = Annotated[
    bool, typer.Option("--trust-model", help="Run a model whose SHA-256 differs from the "
                       "manifest.json beside it.")
]


def _load(path: Path | None, runtime: RuntimeName | None, threads: int | None = None,
          trust: bool = False):
    from . import model

    path = path or DEFAULT_MODEL
    if path == DEFAULT_MODEL and not path.is_file():
        raise BadModelError(
            f"{path}: no bundled model in this install; run `make convert bundle` in the "
            "source tree, or pass --model FILE.tflite"
        )
    return model.load(path, runtime=runtime.value if runtime else None, threads=threads,
                      trust_model=trust)


@app.command()
@one_line_errors
def classify(
    images: Annotated[list[str], typer.Argument(help="Image files, folders or glob patterns "
                                                "(PNG, JPEG, BMP, GIF, WebP, PNM).",
                                                show_default=False)],
    model: Annotated[Path | None, typer.Option("--model", "-m", help="TFLite model "
                     "(default: the bundled int8 model).", show_default=False)] = None,
    top_k: Annotated[int, typer.Option("--top-k", "-k", min=1, max=10,
                                       help="Show the K most likely digits.")] = 1,
    json_out: JsonOpt = False,
    debug_dir: Annotated[Path | None, typer.Option("--debug-dir", help="Write the 28x28 "
                         "image the model saw for each file into this folder.",
                         show_default=False)] = None,
    multi: Annotated[bool, typer.Option("--multi", help="Find every digit in the image and "
                                        "read them left to right.")] = False,
    runtime: RuntimeOpt = None,
    threads: ThreadsOpt = None,
    trust_model: TrustOpt = False,
) -> None:
    """Classify the digit in each image file (photos, scans, drawings or MNIST arrays).

    A bad file is reported on stderr and skipped; the exit code is then 2."""
    from . import classify as cls

    clf = _load(model, runtime, threads, trust_model)
    failed = 0
    try:
        paths = cls.expand(images)
    except BadImageError as e:
        say(f"error: {e}")
        raise typer.Exit(2) from None
    for path in paths:
        try:
            preds = cls.classify_file(clf, path, multi=multi)
        except BadImageError as e:
            say(f"error: {e}")
            failed += 1
            continue
        if debug_dir is not None:
            cls.save_debug(debug_dir, path, preds)
        if json_out:
            typer.echo(json.dumps(cls.as_json(path, preds, str(clf.path), top_k, multi)))
            continue
        first = preds[0]
        if first.digit is None:
            typer.echo(f"{path}: no digit found")
        elif multi:
            parts = ", ".join(f"{p.digit} ({p.confidence:.1%})" for p in preds)
            typer.echo(f"{path}: {''.join(str(p.digit) for p in preds)}  [{parts}]")
        elif top_k > 1:
            ranked = "  ".join(f"{d} {p:.1%}" for d, p in first.top_k(top_k))
            typer.echo(f"{path}: {first.digit}  ({ranked})")
        else:
            typer.echo(f"{path}: {first.digit} ({first.confidence:.1%})")
    if failed:
        if len(paths) > 1:
            say(f"{failed} of {len(paths)} files could not be classified")
        raise typer.Exit(2)


@app.command()
@one_line_errors
def camera(
    source: Annotated[str, typer.Option("--source", "-s", help="auto | picamera2 | opencv:N "
                                        "| VIDEO file | DIR of frames.")] = "auto",
    frames: Annotated[int | None, typer.Option("--frames", "-n", min=1, help="Stop after N "
                      "frames (default: until Ctrl-C or the end of a file/folder).",
                      show_default=False)] = None,
    roi: Annotated[str | None, typer.Option("--roi", help="Region of interest x,y,w,h in "
                   "pixels (default: centred square, 60% of the shorter side).",
                   show_default=False)] = None,
    model: Annotated[Path | None, typer.Option("--model", "-m", help="TFLite model "
                     "(default: the bundled int8 model).", show_default=False)] = None,
    json_out: JsonOpt = False,
    show: Annotated[bool, typer.Option("--show", help="Draw the ROI and the prediction in a "
                                       "window (needs a display and GUI OpenCV).")] = False,
    timeout: Annotated[float, typer.Option("--timeout", min=0.1, help="Seconds to wait for a "
                                           "frame before reconnecting.")] = 2.0,
    retries: Annotated[int, typer.Option("--retries", min=0, help="Reconnect attempts "
                                         "before giving up.")] = 3,
    runtime: RuntimeOpt = None,
    threads: ThreadsOpt = None,
) -> None:
    """Classify live camera frames (Pi camera, webcam), a video file or a folder of frames.

    Prints the digit when it changes (or a JSON line per frame) and frames/s at the end."""
    from .live import run_camera

    clf = _load(model, runtime, threads)
    code = run_camera(clf, source, frames=frames, roi=roi, json_out=json_out, show=show,
                      timeout=timeout, retries=retries, say=say)
    raise typer.Exit(code)


@app.command()
@one_line_errors
def check(
    model: ModelsOpt = None,
    data: Annotated[Path | None, typer.Option("--data", help="Folder with the MNIST test "
                    "files (default: MNIST_EDGE_DATA, the cache, else the bundled copy).",
                    show_default=False)] = None,
    max_drop: Annotated[float, typer.Option("--max-drop", min=0.0, help="Allowed accuracy "
                        "drop of a quantized model, in percentage points.")] = MAX_DROP_PP,
    min_agreement: Annotated[float, typer.Option("--min-agreement", min=0.0, max=1.0,
                             help="Required top-1 agreement with the reference.")] = MIN_AGREEMENT,
    limit: Annotated[int | None, typer.Option("--limit", min=1, help="Use only the first N "
                     "test images.", show_default=False)] = None,
    json_out: JsonOpt = False,
    runtime: RuntimeOpt = None,
    threads: ThreadsOpt = None,
    trust_model: TrustOpt = False,
) -> None:
    """Measure accuracy on the MNIST test split and gate quantized models.

    The first non-quantized model is the reference; each quantized model fails when it is
    more than --max-drop points less accurate or agrees on fewer than --min-agreement of
    the images. Exit 1 when a model fails the gate."""
    from . import data as mnist
    from . import evaluate
    from .progress import Progress

    paths = model or [DEFAULT_REFERENCE, DEFAULT_MODEL]
    clfs = [_load(p, runtime, threads, trust_model) for p in paths]
    images, labels = mnist.load_split("test", data)
    if limit:
        images, labels = images[:limit], labels[:limit]
    results = []
    with Progress(len(images) * len(clfs), "checking", enabled=not json_out) as bar:
        for clf in clfs:
            results.append(evaluate.measure(clf, images, labels, bar.advance))
    passed = evaluate.apply_gate(results, max_drop, min_agreement)
    if json_out:
        for r in results:
            typer.echo(json.dumps(r.to_json()))
        typer.echo(json.dumps({"passed": passed, "max_drop_pp": max_drop,
                               "min_agreement": min_agreement, "images": int(len(labels))}))
    else:
        typer.echo(f"{'model':50s} {'accuracy':>9s} {'agreement':>10s} {'drop pp':>8s}  gate")
        for r in results:
            agree = "—" if r.agreement is None else f"{r.agreement:.2%}"
            drop = "—" if r.drop_pp is None else f"{r.drop_pp:+.2f}"
            gate = "ref" if not r.quantized else ("pass" if r.passed else "FAIL")
            typer.echo(f"{Path(r.model).name:50s} {r.accuracy:9.2%} {agree:>10s} {drop:>8s}  {gate}")
        typer.echo(f"{len(labels):,} test images; gate {'passed' if passed else 'FAILED'} "
                   f"(max drop {max_drop} pp, min agreement {min_agreement:.0%})")
    for r in results:
        if not r.passed:
            say(f"gate failed: {r.model}: {r.reason}")
    raise typer.Exit(0 if passed else 1)


@app.command()
@one_line_errors
def bench(
    model: ModelsOpt = None,
    runs: Annotated[int, typer.Option("--runs", min=10, help="Timed invokes per model.")] = 2000,
    warmup: Annotated[int, typer.Option("--warmup", min=0, help="Untimed invokes first.")] = 100,
    json_out: JsonOpt = False,
    runtime: RuntimeOpt = None,
    threads: ThreadsOpt = None,
) -> None:
    """Time single-image inference: p50/p95/p99 latency, throughput, size, ratios."""
    from . import bench as timing
    from . import doctor

    paths = model or [DEFAULT_REFERENCE, DEFAULT_MODEL]
    rows = []
    for path in paths:
        clf = _load(path, runtime, threads)
        t = timing.time_wrapper(clf, runs=runs, warmup=warmup)
        bare = timing.time_bare(clf, runs=runs, warmup=warmup)
        batched = timing.batch_throughput(clf)
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


@app.command()
@one_line_errors
def info(
    model: Annotated[Path | None, typer.Option("--model", "-m", help="Model to describe "
                     "(default: the bundled int8 model).", show_default=False)] = None,
    json_out: JsonOpt = False,
    runtime: RuntimeOpt = None,
) -> None:
    """Runtime, versions, platform, the model's signature and manifest, and hints."""
    from . import doctor
    from . import model as models
    from . import runtime as runtimes

    facts = doctor.platform_facts()
    facts["mnist_edge"] = __version__
    try:
        facts["runtime"] = str(runtimes.choose(runtime.value if runtime else None))
    except MnistEdgeError as e:
        facts["runtime"] = f"none ({e})"
    try:
        clf = _load(model, runtime)
        facts["model"] = {"path": str(clf.path), "bytes": clf.size, "sha256": clf.sha256,
                          "quantized": clf.quantized, **clf.signature()}
        entry = models.manifest_entry(clf.path)
        if entry:
            facts["manifest"] = {k: entry[k] for k in ("variant", "test_accuracy",
                                 "agreement_with_float32", "gate") if k in entry}
    except MnistEdgeError as e:
        facts["model"] = {"error": str(e)}
    facts["hints"] = doctor.hints(facts)
    if json_out:
        typer.echo(json.dumps(facts))
        return
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


@app.command()
@one_line_errors
def show(
    index: Annotated[int, typer.Argument(min=0, help="Index of the digit in the split.")],
    split: Annotated[Split, typer.Option("--split", help="MNIST split.")] = Split.test,
    data: Annotated[Path | None, typer.Option("--data", help="Folder with the MNIST files.",
                    show_default=False)] = None,
    out: Annotated[Path | None, typer.Option("--out", "-o", help="Also save it as a PNG "
                   "(scaled up 10x).", show_default=False)] = None,
) -> None:
    """Draw an MNIST digit in the terminal (like the tutorial's plot of train_images[5])."""
    from . import data as mnist
    from .render import save_png, to_text

    images, labels = mnist.load_split(split.value, data)
    if index >= len(images):
        raise UsageError(f"index {index} is out of range: the {split.value} split has "
                            f"{len(images)} images (0-{len(images) - 1})")
    typer.echo(to_text(images[index]))
    typer.echo(f"{split.value}[{index}]: label {int(labels[index])}")
    if out is not None:
        save_png(images[index], out)
        say(f"wrote {out}")


_PASS_THROUGH: dict[str, Any] = {
    "allow_extra_args": True, "ignore_unknown_options": True, "help_option_names": []
}


@app.command(context_settings=_PASS_THROUGH, add_help_option=False)
def train(ctx: typer.Context) -> None:
    """Train the Keras CNN (needs the [train] extra; options: `mnist-edge train --help`)."""
    raise typer.Exit(_run_stage("train", ctx.args))


@app.command(context_settings=_PASS_THROUGH, add_help_option=False)
def convert(ctx: typer.Context) -> None:
    """Convert to TFLite, measure and gate (needs [train]; `mnist-edge convert --help`)."""
    raise typer.Exit(_run_stage("convert", ctx.args))


def _run_stage(name: str, args: list[str]) -> int:
    import importlib.util

    if importlib.util.find_spec("tensorflow") is None:
        say(f"error: `mnist-edge {name}` needs TensorFlow: pip install 'mnist-edge[train]'")
        return 2
    module = importlib.import_module(f"{name}.{name}")
    return int(module.main(args))


def main() -> None:
    try:
        app()
    except KeyboardInterrupt:
        say("interrupted")
        sys.exit(130)


if __name__ == "__main__":
    main()
