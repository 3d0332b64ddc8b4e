"""Latency of single-image invokes: seeded input, warm-up, then many timed calls."""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from mnist_edge.device.inference.model import Classifier


@dataclass
class Timing:
    p50_us: float
    p95_us: float
    p99_us: float
    throughput_per_s: float

    def to_json(self) -> dict[str, float]:
        return {k: round(v, 2) for k, v in self.__dict__.items()}


def sample_images(n: int = 64, seed: int = 0) -> np.ndarray:
    """Seeded uint8 inputs; latency does not depend on what the digits look like."""
    return np.random.default_rng(seed).integers(0, 256, size=(n, 28, 28), dtype=np.uint8)


def time_wrapper(clf: Classifier, runs: int = 1000, warmup: int = 50) -> Timing:
    """The CLI's own path: pixels -> input, set/invoke/get, probabilities, per image."""
    images = sample_images()
    for i in range(warmup):
        clf.predict_one(images[i % len(images)])
    samples = np.empty(runs)
    for i in range(runs):
        t0 = time.perf_counter_ns()
        clf.predict_one(images[i % len(images)])
        samples[i] = time.perf_counter_ns() - t0
    return _summary(samples)


def time_bare(clf: Classifier, runs: int = 1000, warmup: int = 50) -> Timing:
    """Only set_tensor + invoke + get_tensor on pre-made inputs: the baseline."""
    prepared = clf.prepare(sample_images())
    interp, i_in, i_out = clf.interpreter, clf.input_index, clf.output_index
    for i in range(warmup):
        interp.set_tensor(i_in, prepared[i % len(prepared)][None])
        interp.invoke()
        interp.get_tensor(i_out)
    samples = np.empty(runs)
    for i in range(runs):
        x = prepared[i % len(prepared)][None]
        t0 = time.perf_counter_ns()
        interp.set_tensor(i_in, x)
        interp.invoke()
        interp.get_tensor(i_out)
        samples[i] = time.perf_counter_ns() - t0
    return _summary(samples)


def batch_throughput(clf: Classifier, batch: int = 64, runs: int = 50) -> float | None:
    """Images/s with `batch` images per invoke, in a separate interpreter; None when the
    model's batch size is fixed at 1."""
    if not clf.dynamic_batch:
        return None
    from mnist_edge.device.native_stderr import quiet_native_stderr

    with quiet_native_stderr():
        interp = clf.runtime.make(clf.path.read_bytes())
        interp.resize_tensor_input(clf.input_index, [batch, *clf.input.shape[1:]])
        interp.allocate_tensors()
    x = clf.prepare(sample_images(batch))
    for _ in range(3):
        interp.set_tensor(clf.input_index, x)
        interp.invoke()
    t0 = time.perf_counter()
    for _ in range(runs):
        interp.set_tensor(clf.input_index, x)
        interp.invoke()
        interp.get_tensor(clf.output_index)
    return batch * runs / (time.perf_counter() - t0)


def _summary(ns: np.ndarray) -> Timing:
    us = ns / 1000.0
    p50, p95, p99 = np.percentile(us, [50, 95, 99])
    return Timing(float(p50), float(p95), float(p99), float(1e6 / us.mean()))
