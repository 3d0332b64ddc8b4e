"""`mnist-edge info` and `mnist-edge show`: the runtime, the platform, a model, a digit."""

import json
from enum import Enum
from pathlib import Path
from typing import Annotated

import typer

from mnist_edge.device import __version__
from mnist_edge.device.cli import support
from mnist_edge.device.cli.app import app, one_line_errors, say
from mnist_edge.device.cli.options import DataOpt, JsonOpt, ModelOpt, RuntimeOpt, TrustOpt
from mnist_edge.device.errors import MnistEdgeError, UsageError


class Split(str, Enum):
    test = "test"
    train = "train"


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
        clf = support.load(model, runtime, trust=trust_model)
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
    from mnist_edge.device.reading.params import DEFAULT as READING
    from mnist_edge.device.reading.params import ENV_LOCALISER

    facts["reading"] = {"pipeline": READING.version(), "localiser": READING.localiser,
                        "chosen_by": ENV_LOCALISER}
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
    data: DataOpt = None,
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
