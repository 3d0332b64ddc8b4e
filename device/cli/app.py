"""The typer app, the one-line error wrapper and the entry point."""

import contextlib
import functools
import sys
from collections.abc import Callable
from typing import Annotated, Any, TypeVar

import typer

from mnist_edge.device import __version__
from mnist_edge.device.errors import MnistEdgeError

app = typer.Typer(
    help=(
        "`mnist-edge`: classify digits in files and camera frames, check quantized accuracy, "
        "benchmark, and inspect models, on a Raspberry Pi or anywhere, without TensorFlow.\n\n"
        "Exit codes: 0 success; 1 a check failed or a runtime/device failure; 2 bad input or usage."
    ),
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"]},
)


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
