"""The one module that chooses and imports a TFLite interpreter.

Order: LiteRT (`ai_edge_litert`, the maintained successor of tflite-runtime), then
`tflite_runtime` (frozen at 2.14, the runtime older Pi images carry). `--runtime` or the
`MNIST_EDGE_RUNTIME` environment variable forces one. Everything else receives a `Runtime`.
"""

from __future__ import annotations

import functools
import importlib
import os
from dataclasses import dataclass
from typing import Any

from mnist_edge.device.errors import RuntimeNotFoundError, UsageError

ENV_VAR = "MNIST_EDGE_RUNTIME"
# name -> (module holding Interpreter, distribution name)
RUNTIMES = {
    "litert": ("ai_edge_litert.interpreter", "ai-edge-litert"),
    "tflite-runtime": ("tflite_runtime.interpreter", "tflite-runtime"),
}
INSTALL_HINT = (
    "pip install ai-edge-litert (x86_64/aarch64), or on 32-bit Raspberry Pi OS: "
    "pip install tflite-runtime 'numpy<2' and set MNIST_EDGE_RUNTIME=tflite-runtime"
)


@dataclass(frozen=True)
class Runtime:
    name: str
    interpreter_class: Any
    dist: str = ""

    @property
    def version(self) -> str:
        return _dist_version(self.dist)

    def make(self, model_content: bytes, threads: int | None = None) -> Any:
        return self.interpreter_class(model_content=model_content, num_threads=threads)

    def __str__(self) -> str:
        return f"{self.name} {self.version}"


_cache: dict[str, Runtime] = {}


@functools.cache
def _dist_version(dist: str) -> str:
    """Read on demand: importlib.metadata costs ~10 ms of start-up that `classify` never uses."""
    from importlib import metadata

    try:
        return metadata.version(dist)
    except (metadata.PackageNotFoundError, ValueError):
        return "unknown"


def choose(name: str | None = None) -> Runtime:
    """The runtime named (or in MNIST_EDGE_RUNTIME), else the first one installed."""
    name = name or os.environ.get(ENV_VAR) or None
    if name is not None and name not in RUNTIMES:
        origin = ENV_VAR if name == os.environ.get(ENV_VAR) else "--runtime"
        raise UsageError(f"{origin}: unknown runtime {name!r}: choose one of {', '.join(RUNTIMES)}")
    candidates = [name] if name else list(RUNTIMES)
    problems = []
    for candidate in candidates:
        if candidate in _cache:
            return _cache[candidate]
        module_name, dist = RUNTIMES[candidate]
        try:
            module = importlib.import_module(module_name)
        except ImportError as e:
            problems.append(f"{candidate}: {e}")
            continue
        runtime = Runtime(candidate, module.Interpreter, dist)
        _cache[candidate] = runtime
        return runtime
    which = f"runtime {name!r} is" if name else "no TFLite runtime is"
    raise RuntimeNotFoundError(f"{which} not installed ({'; '.join(problems)}); {INSTALL_HINT}")


def available() -> dict[str, str]:
    """name -> version of every runtime that imports here, or an error text."""
    found = {}
    for candidate in RUNTIMES:
        try:
            found[candidate] = choose(candidate).version
        except RuntimeNotFoundError as e:
            found[candidate] = f"not available ({str(e).split(';')[0]})"
    return found
