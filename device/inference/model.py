"""Load a TFLite MNIST classifier and run it, whatever its input and output conventions.

Reads the model's own signature, so models made by other people work without options:
- input (1,28,28,1), (1,28,28) or (1,784); float32, int8 or uint8;
- float inputs take [0,1] pixels; quantized inputs take the quantized [0,1] pixels; a uint8
  input without quantization parameters takes the raw 0-255 pixels;
- softmax or logits output, float or quantized: `predict_one()` always returns
  probabilities (a quantized softmax dequantized, logits through softmax): 10, one per
  digit, or 11 for a model with an extra last output meaning "no digit" (NONE).

Every model input here is a white-on-black 28x28 uint8 image, as in MNIST.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from mnist_edge.device.errors import BadModelError, UnsupportedModelError
from mnist_edge.device.inference import quant, safety
from mnist_edge.device.inference.runtime import Runtime, choose
from mnist_edge.device.native_stderr import quiet_native_stderr

ACCEPTED_INPUT_SHAPES = ((28, 28, 1), (28, 28), (784,))
NONE = 10  # index of the "no digit" output of an 11-output model


@dataclass(frozen=True)
class TensorInfo:
    shape: tuple[int, ...]
    dtype: np.dtype
    scale: float
    zero_point: int

    @property
    def quantized(self) -> bool:
        return quant.is_quantized(self.dtype, self.scale)

    def describe(self) -> dict[str, Any]:
        return {
            "shape": list(self.shape),
            "dtype": self.dtype.name,
            "quantization": [self.scale, self.zero_point] if self.quantized else None,
        }


@dataclass
class Classifier:
    """One interpreter for one model, reused for every image."""

    path: Path
    runtime: Runtime
    interpreter: Any
    input: TensorInfo
    output: TensorInfo
    output_kind: str  # "softmax", "logits" or "unknown" (decided per call)
    sha256: str
    size: int
    _in_index: int = field(repr=False, default=0)
    _out_index: int = field(repr=False, default=0)
    classes: int = 10  # 10 digits, or 11 with "no digit" last
    quantized: bool = False  # weights or activations stored below float32 precision
    dynamic_batch: bool = False  # the model's signature has batch -1 (can run N at a time)

    @property
    def input_index(self) -> int:
        return self._in_index

    @property
    def output_index(self) -> int:
        return self._out_index

    @property
    def input_mode(self) -> str:
        """How pixels are fed: float01, quantized, or raw uint8."""
        if self.input.quantized:
            return "quantized"
        if np.issubdtype(self.input.dtype, np.integer):
            return "raw"
        return "float01"

    def __post_init__(self) -> None:
        # Per-pixel and per-output-code lookup tables: the hot path is two fancy indexes,
        # not float conversions, so the wrapper costs little beyond invoke() itself.
        self._in_lut = self._input_table()
        self._out_lut = self._output_table()
        self._in_shape = (1, *self.input.shape[1:])
        self._post = self._choose_post()

    def _input_table(self) -> np.ndarray:
        """Model input value for each pixel 0..255, following the module docstring."""
        pixels = np.arange(256, dtype=np.uint8)
        if self.input.quantized:
            return quant.quantize(pixels / 255.0, self.input.scale, self.input.zero_point,
                                  self.input.dtype)
        if self.input.dtype == np.uint8:
            return pixels  # no quantization parameters: raw 0-255 pixels
        if self.input.dtype == np.int8:
            return (pixels.astype(np.int16) - 128).astype(np.int8)
        return (pixels / np.float32(255.0)).astype(self.input.dtype)

    def _output_table(self) -> np.ndarray | None:
        """Dequantized value for each 8-bit output code, indexed by the code's bytes."""
        if self.output.quantized and self.output.dtype.itemsize == 1:
            codes = np.arange(256, dtype=np.uint8).view(self.output.dtype)
            return quant.dequantize(codes, self.output.scale, self.output.zero_point)
        return None

    def prepare(self, pixels: np.ndarray) -> np.ndarray:
        """uint8 images (N,28,28) -> the model's input dtype and layout, (N, *input_shape)."""
        pixels = np.asarray(pixels, dtype=np.uint8)
        n = pixels.shape[0] if pixels.ndim == 3 else 1
        return self._in_lut[pixels].reshape((n,) + self.input.shape[1:])

    def _choose_post(self) -> Callable[[np.ndarray], np.ndarray]:
        """Raw output (10,) -> 10 probabilities, decided once per model so the per-image
        path has no branches. A quantized softmax is returned dequantized (it sums to 1
        within a step or two of its scale, e.g. 1/256); a float softmax as it is; logits go
        through softmax."""
        lut, out = self._out_lut, self.output

        def dequantized(raw: np.ndarray) -> np.ndarray:
            if lut is not None:
                return lut[raw.view(np.uint8)]
            if out.quantized:
                return quant.dequantize(raw, out.scale, out.zero_point)
            return np.asarray(raw, dtype=np.float32)

        if self.output_kind == "softmax":
            return dequantized
        if self.output_kind == "logits":
            return lambda raw: softmax(dequantized(raw))

        def guess(raw: np.ndarray) -> np.ndarray:
            values = dequantized(raw)
            return values if _looks_like_probabilities(values) else softmax(values)

        return guess

    def predict_one(self, pixels: np.ndarray) -> np.ndarray:
        """One uint8 image (28,28) -> 10 probabilities: the per-image hot path."""
        interpreter = self.interpreter
        interpreter.set_tensor(self._in_index, self._in_lut[pixels].reshape(self._in_shape))
        interpreter.invoke()
        return self._post(interpreter.get_tensor(self._out_index).reshape(-1))

    def signature(self) -> dict[str, Any]:
        return {
            "input": self.input.describe(),
            "output": self.output.describe(),
            "input_mode": self.input_mode,
            "output_kind": self.output_kind,
        }


def softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - np.max(z))
    return (e / e.sum()).astype(np.float32)


def _looks_like_probabilities(v: np.ndarray) -> bool:
    return bool(v.min() >= 0 and abs(float(v.sum()) - 1.0) < 0.05)


def load(
    path: str | Path,
    *,
    runtime: Runtime | str | None = None,
    threads: int | None = None,
    trust_model: bool = False,
    isolate: bool = True,
) -> Classifier:
    """Load, verify and allocate a model; raise BadModelError with a one-line reason.

    A model that no manifest.json beside it vouches for is first loaded and invoked once in
    a forked child (`isolate`), so a crafted file that crashes the native runtime becomes an
    error message instead of a dead process."""
    path = Path(path)
    rt = runtime if isinstance(runtime, Runtime) else choose(runtime)
    content = safety.read_model_bytes(path)
    sha = hashlib.sha256(content).hexdigest()
    listed = safety.check_manifest(path, sha, trust_model)
    if not listed and isolate:
        safety.trial_load(path, content, rt, threads)
    try:
        with quiet_native_stderr():
            interpreter = rt.make(content, threads)
            interpreter.allocate_tensors()
    except (ValueError, RuntimeError) as e:
        msg = _first_line(e)
        if "Didn't find op" in msg or "is not supported" in msg:
            raise UnsupportedModelError(
                f"{path}: unsupported by the {rt} runtime ({msg}); "
                "use LiteRT (pip install ai-edge-litert) or another variant of the model"
            ) from None
        raise BadModelError(f"{path}: not a valid TFLite model ({msg})") from None
    inputs, outputs = interpreter.get_input_details(), interpreter.get_output_details()
    if len(inputs) != 1 or len(outputs) != 1:
        raise BadModelError(
            f"{path}: has {len(inputs)} inputs and {len(outputs)} outputs; "
            "an MNIST classifier has one of each"
        )
    tin, tout = _tensor_info(inputs[0]), _tensor_info(outputs[0])
    if tin.shape[1:] not in ACCEPTED_INPUT_SHAPES or tin.shape[0] not in (1, -1):
        raise BadModelError(
            f"{path}: input shape {list(tin.shape)} is not a 28x28 image "
            "(expected [1,28,28,1], [1,28,28] or [1,784])"
        )
    classes = int(np.prod(tout.shape[1:]))
    if classes not in (10, 11):
        raise BadModelError(f"{path}: output shape {list(tout.shape)} is not 10 digits "
                            "(or 10 digits and 'no digit')")
    if tin.dtype not in (np.float32, np.int8, np.uint8):
        raise BadModelError(f"{path}: input dtype {tin.dtype} is not float32, int8 or uint8")
    dynamic_batch = tin.shape[0] == -1
    if dynamic_batch:
        interpreter.resize_tensor_input(inputs[0]["index"], [1, *tin.shape[1:]])
        with quiet_native_stderr():
            interpreter.allocate_tensors()
        tin = TensorInfo((1, *tin.shape[1:]), tin.dtype, tin.scale, tin.zero_point)
    clf = Classifier(
        path=path,
        runtime=rt,
        interpreter=interpreter,
        input=tin,
        output=tout,
        output_kind=_output_kind(interpreter, outputs[0]["index"]),
        classes=classes,
        quantized=_has_quantized_tensors(interpreter),
        dynamic_batch=dynamic_batch,
        sha256=sha,
        size=len(content),
        _in_index=inputs[0]["index"],
        _out_index=outputs[0]["index"],
    )
    try:  # one invoke on a blank image: a model that loads but cannot run is refused here
        with quiet_native_stderr():
            probs = clf.predict_one(np.zeros((28, 28), np.uint8))
    except (RuntimeError, ValueError) as e:
        raise BadModelError(f"{path}: fails on a blank image ({_first_line(e)})") from None
    if probs.shape != (classes,) or not np.isfinite(probs).all():
        raise BadModelError(f"{path}: gives {probs.shape} non-finite or malformed outputs")
    return clf


def _tensor_info(detail: dict[str, Any]) -> TensorInfo:
    shape = tuple(int(s) for s in detail.get("shape_signature", detail["shape"]))
    if not shape:
        shape = tuple(int(s) for s in detail["shape"])
    scale, zero_point = detail.get("quantization", (0.0, 0))
    return TensorInfo(shape, np.dtype(detail["dtype"]), float(scale), int(zero_point))


def _has_quantized_tensors(interpreter: Any) -> bool:
    """True for int8/uint8 quantized, dynamic-range (int8 weights) and float16 models."""
    for t in interpreter.get_tensor_details():
        scales = t.get("quantization_parameters", {}).get("scales", ())
        if np.dtype(t["dtype"]) in (np.float16, np.int8) or len(scales):
            return True
    return False


_PASS_THROUGH = {"QUANTIZE", "DEQUANTIZE", "RESHAPE", "SQUEEZE", "IDENTITY"}


def _output_kind(interpreter: Any, out_index: int) -> str:
    """softmax or logits, read from the op that produces the output; unknown if hidden."""
    try:
        ops = interpreter._get_ops_details()
    except Exception:  # private API: absent in some runtime versions
        return "unknown"
    producer = {
        int(o): op
        for op in ops
        if op.get("op_name") != "DELEGATE"  # XNNPACK's fused node also lists the output
        for o in op.get("outputs", [])
    }
    tensor = out_index
    for _ in range(8):
        op = producer.get(tensor)
        if op is None:
            return "unknown"
        name = str(op.get("op_name", ""))
        if name == "SOFTMAX":
            return "softmax"
        if name not in _PASS_THROUGH or not len(op.get("inputs", [])):
            return "logits"
        tensor = int(op["inputs"][0])
    return "unknown"


def _first_line(e: BaseException) -> str:
    text = str(e).strip() or type(e).__name__
    return text.splitlines()[0][:300]
