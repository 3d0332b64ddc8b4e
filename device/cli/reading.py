"""`mnist-edge classify`: the digit in each image file."""

import json
from pathlib import Path
from typing import Annotated

import numpy as np
import typer

import mnist_edge
from mnist_edge.device.cli import support
from mnist_edge.device.cli.app import app, one_line_errors, say
from mnist_edge.device.cli.options import (
    DEFAULT_MIN_CONFIDENCE,
    JsonOpt,
    MinConfidenceOpt,
    ModelOpt,
    MultiOpt,
    RuntimeOpt,
    ThreadsOpt,
    TrustOpt,
)
from mnist_edge.device.errors import BadImageError, UsageError
from mnist_edge.device.reading.trace import Trace


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
    multi: MultiOpt = False,
    min_confidence: MinConfidenceOpt = DEFAULT_MIN_CONFIDENCE,
    save_to: Annotated[Path | None, typer.Option("--save-to", help="Also save each image as an "
                       "example of --label for `train --finetune` (as `collect` does).",
                       show_default=False)] = None,
    label: Annotated[str | None, typer.Option("--label", "-l", help="With --save-to: the digit "
                     "the images show (0-9, or 'none').", show_default=False)] = None,
    runtime: RuntimeOpt = None,
    threads: ThreadsOpt = None,
    trust_model: TrustOpt = False,
) -> None:
    """Classify the digit in each image file (photos, scans, drawings or MNIST arrays).

    A bad file is reported on stderr and skipped; the exit code is then 2."""
    from mnist_edge.device.reading import files

    if debug_dir is not None:
        support.writable_folder(debug_dir, "--debug-dir")
    if (save_to is None) != (label is None):
        raise UsageError("--save-to and --label go together (the folder, and the digit shown)")
    if label is not None and save_to is not None:
        from mnist_edge.device.data import examples
        from mnist_edge.device.live import collect
        from mnist_edge.device.reading import decode

        label = support.example_label(label)
        support.writable_folder(save_to, "--save-to")
    clf = support.load(model, runtime, threads, trust_model)
    failed = 0
    paths = files.expand(images, on_skip=lambda message: say(f"skipped: {message}"))
    written: set[str] = set()
    for path in paths:
        try:
            trace = Trace(images=True) if debug_dir is not None else None
            image = decode.load_gray(path) if save_to is not None else path  # kept to save
            preds = mnist_edge.read(image, clf, multi=multi, min_confidence=min_confidence,
                                    trace=trace or False).predictions
        except BadImageError as e:
            say(f"error: {e}")
            if json_out:
                typer.echo(json.dumps({"file": str(path), "error": str(e)}))
            failed += 1
            continue
        if debug_dir is not None:
            try:
                files.save_debug(debug_dir, path, preds, written, trace)
            except OSError as e:
                say(f"error: {debug_dir}: cannot write the debug image ({e.strerror or e})")
                failed += 1
        if save_to is not None and label is not None and isinstance(image, np.ndarray):
            saved = examples.save(save_to, label, image, preds[0].pixels,
                                  collect.record(clf, preds[0], str(path), 0))
            say(f"saved {path} as {saved}")
        if json_out:
            typer.echo(json.dumps(files.as_json(path, preds, str(clf.path), top_k, multi)))
        else:
            typer.echo(f"{path}: {files.describe(preds, multi, top_k)}")
    if failed:
        if len(paths) > 1:
            say(f"{failed} of {len(paths)} files could not be classified")
        raise typer.Exit(2)
