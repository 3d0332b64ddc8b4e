"""`mnist-edge models list|install|use|rollback`: the models on this device and the default."""

import hashlib
import json
from pathlib import Path
from typing import Annotated, Any

import typer

from mnist_edge.device.cli.app import app, one_line_errors, say
from mnist_edge.device.cli.options import JsonOpt

models_app = typer.Typer(
    help="The models on this device: the bundled ones and those installed here, and which one "
         "is the default of every command (`--model` overrides it). `serve` and `camera` take a "
         "new default on SIGHUP (systemctl reload mnist-edge). Models live in the data folder "
         "of the user who runs the command: for the shipped services (user mnist-edge) run "
         "`sudo -u mnist-edge /home/mnist-edge/venv/bin/mnist-edge models install DIR`, then "
         "`sudo systemctl reload mnist-edge`.",
    no_args_is_help=True)
app.add_typer(models_app, name="models", short_help="Install, list, choose and roll back models.")


@models_app.command("list", short_help="Every model here; * marks the default.")
@one_line_errors
def list_models(json_out: JsonOpt = False) -> None:
    """Every model by name, its file, SHA-256 and MNIST test accuracy; * marks the default."""
    from mnist_edge.device.inference import bundled, store

    default = store.default_name()
    rows: list[dict[str, Any]] = []
    for name, path in {**{n: p for n, p in bundled.NAMES.items() if p.is_file()},
                       **store.installed()}.items():
        accuracy = None
        try:
            manifest = json.loads((path.parent / "manifest.json").read_text())
            accuracy = next(m.get("test_accuracy") for m in manifest["models"] if m["file"] == path.name)
        except (OSError, ValueError, KeyError, StopIteration):
            pass
        rows.append({"name": name, "default": name == default, "file": str(path),
                     "sha256": hashlib.sha256(path.read_bytes()).hexdigest(),
                     "installed": name not in bundled.NAMES, "mnist_test_accuracy": accuracy})
    if json_out:
        typer.echo(json.dumps(rows, indent=2))
        return
    for r in rows:
        acc = f"{100 * r['mnist_test_accuracy']:.2f}%" if r["mnist_test_accuracy"] else "?"
        where = "installed" if r["installed"] else "bundled"
        typer.echo(f"{'*' if r['default'] else ' '} {r['name']:<22} {where:<9} MNIST {acc:<7} "
                   f"{r['sha256'][:12]}  {r['file']}")


@models_app.command(short_help="Verify, install and make the default.")
@one_line_errors
def install(
    source: Annotated[Path, typer.Argument(help="A converted family (a folder with manifest.json, "
                                           "as `mnist-edge convert` writes), or one .tflite with "
                                           "its manifest.json beside it.", show_default=False)],
    name: Annotated[str, typer.Option("--name", help="Its name here (an older install of the "
                                      "same name is kept as NAME~SHA8).")] = "personal",
) -> None:
    """Verify a model (hashes against its manifest, then a load and one invoke), install it
    and make it the default. The previous default stays for `models rollback`.

    It goes to this user's data folder ($XDG_DATA_HOME/mnist-edge/models): for the shipped
    services, which run as the user mnist-edge, install it as that user: `sudo -u mnist-edge
    /home/mnist-edge/venv/bin/mnist-edge models install DIR`."""
    from mnist_edge.device.inference import store

    old = store.install(source, name)
    say(f"installed {name} ({store.installed()[name]}); default: {name} (was {old}; "
        "`mnist-edge models rollback` goes back). Running `serve`/`camera`: send SIGHUP.")


@models_app.command(short_help="Make a model the default.")
@one_line_errors
def use(name: Annotated[str, typer.Argument(help="A name from `mnist-edge models list`.",
                                            show_default=False)]) -> None:
    """Make a model the default of every command."""
    from mnist_edge.device.inference import store

    old = store.use(name)
    say(f"default: {name} (was {old})")


@models_app.command(short_help="Back to the previous default (twice: forward again).")
@one_line_errors
def rollback() -> None:
    """Go back to the default before the last install or `use`. One step only: run twice, it
    goes forward again (a toggle between the last two defaults, not a history)."""
    from mnist_edge.device.inference import store

    now, before = store.rollback()
    say(f"default: {before} (was {now})")
