"""`mnist-edge check`, `bench` and `robustness`: accuracy, the gate, speed, robustness."""

import functools
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer

from mnist_edge.device.cli import support
from mnist_edge.device.cli.app import app, one_line_errors, say
from mnist_edge.device.cli.options import DataOpt, JsonOpt, ModelsOpt, RuntimeOpt, ThreadsOpt, TrustOpt
from mnist_edge.device.errors import BadModelError, UsageError
from mnist_edge.device.evaluation import evaluate
from mnist_edge.device.inference import bundled


@app.command(short_help="Accuracy and the quantization gate (exit 1: failed).")
@one_line_errors
def check(
    model: ModelsOpt = None,
    reference: Annotated[Path | None, typer.Option("--reference", metavar="MODEL", help="Compare "
                         "every other model with this one, overriding the manifests' references.",
                         show_default=False)] = None,
    data: DataOpt = None,
    images: Annotated[Path | None, typer.Option("--images", metavar="DIR", help="Your own "
                      "labelled images instead: DIR/0/*.png ... DIR/9/*.png, and DIR/none/ for "
                      "images that must read 'no digit'.", show_default=False)] = None,
    idx_files: Annotated[tuple[Path, Path] | None, typer.Option("--idx", metavar="IMAGES LABELS",
                         help="Any IDX images + labels pair instead (e.g. MNIST-C), fed to the "
                         "model as 28x28 inputs.", show_default=False)] = None,
    max_drop: Annotated[float, typer.Option("--max-drop", metavar="PP", help="Allowed accuracy "
                        "drop against the reference, in percentage points.")] = evaluate.MAX_DROP_PP,
    min_agreement: Annotated[float, typer.Option("--min-agreement", metavar="PCT", help="Required "
                             "share of images answered as the reference does, in percent."
                             )] = evaluate.MIN_AGREEMENT_PCT,
    min_accuracy: Annotated[float | None, typer.Option("--min-accuracy", metavar="PCT",
                            help="Absolute accuracy floor for every model, in percent.",
                            show_default=False)] = None,
    require_gate: Annotated[bool, typer.Option("--require-gate", help="Exit 1 when a model "
                            "cannot be gated (no reference, no floor).")] = False,
    limit: Annotated[int | None, typer.Option("--limit", min=1, help="Use only the first N "
                     "images.", show_default=False)] = None,
    per_class: Annotated[bool, typer.Option("--per-class", help="Per-class accuracy and the "
                         "confusion matrix of each model.")] = False,
    junit: Annotated[Path | None, typer.Option("--junit", metavar="FILE", help="Write JUnit "
                     "XML: a testcase per model.", show_default=False)] = None,
    markdown: Annotated[Path | None, typer.Option("--markdown", metavar="FILE", help="Write "
                        "the table as Markdown (also appended to $GITHUB_STEP_SUMMARY when "
                        "set).", show_default=False)] = None,
    baseline: Annotated[Path | None, typer.Option("--baseline", metavar="MODEL", help="Gate a "
                        "personalised model (one --model) against this one (e.g. robust): "
                        "--images is the writer's held-out examples; it passes only when its "
                        "error there falls and MNIST test drops at most --max-baseline-drop.",
                        show_default=False)] = None,
    max_baseline_drop: Annotated[float, typer.Option("--max-baseline-drop", metavar="PP",
                                 help="With --baseline: MNIST test accuracy the model may lose "
                                 "against it, in points.")] = 0.3,
    json_out: JsonOpt = False,
    runtime: RuntimeOpt = None,
    threads: ThreadsOpt = None,
    trust_model: TrustOpt = False,
) -> None:
    """Measure accuracy and gate quantized models (exit 1 when a gate fails).

    A quantized model is compared with its reference: --reference when given (for every other
    model), else the float model its manifest.json names (loaded from beside it when not
    given), else the first float model given. It fails when it is more than --max-drop points
    less accurate or agrees on fewer than --min-agreement percent of the images;
    --min-accuracy is a floor for all. A model with no reference and no floor is "not
    gated", never "pass"."""
    from mnist_edge.device.evaluation import gate, reports
    from mnist_edge.device.progress import Progress

    problem = evaluate.check_thresholds(max_drop, min_agreement, min_accuracy)
    if problem:
        raise UsageError(problem)
    thresholds = gate.Thresholds(max_drop, min_agreement, min_accuracy)
    loaded: dict[Path, Any] = {}

    def load(path: Path) -> Any:
        if path not in loaded:
            loaded[path] = support.load(path, runtime, threads, trust_model)
        return loaded[path]

    if baseline is not None:
        if model is None or len(model) != 1 or images is None:
            raise UsageError("--baseline gates one personalised model: give one --model and the "
                             "writer's held-out examples with --images")
        personal_gate(model[0], baseline, images, data, thresholds, max_baseline_drop,
                      markdown, json_out, load)
    paths = model or [p for pair in bundled.families() for p in pair]
    if not paths:
        raise BadModelError("no bundled models in this install; pass --model FILE.tflite")
    paths = [bundled.resolve(p) for p in paths]
    ref = bundled.resolve(reference) if reference is not None else None

    for p in paths + ([ref] if ref else []):
        load(p)  # every given model is refused before any measuring starts
    evalset = _evalset(data, images, idx_files, limit, json_out)
    with Progress(len(evalset) * (len(paths) + 1), "checking", enabled=not json_out) as bar:
        results = gate.run(paths, evalset, load, thresholds, ref, bar.advance)
    verdict = gate.outcome(results, thresholds)
    if json_out:
        limits = {"max_drop_pp": max_drop, "min_agreement_pct": min_agreement,
                  "min_accuracy_pct": min_accuracy}
        for line in reports.json_lines(results, evalset.name, len(evalset), verdict.passed,
                                       limits, verdict.failed, verdict.ungated):
            typer.echo(line)
    else:
        typer.echo(reports.table(results, evalset.name, len(evalset), verdict.summary))
        if per_class:
            for r in results:
                typer.echo(reports.per_class_text(r, evalset.labels))
    for r in verdict.failed:
        say(f"gate failed: {r.model}: {r.reason}")
    _write_reports(results, evalset, verdict, per_class, junit, markdown)
    if verdict.failed:
        raise typer.Exit(1)
    if require_gate and (verdict.ungated or verdict.passed is None):
        say("--require-gate: not gated: "
            + (", ".join(r.model for r in verdict.ungated) or "every model"))
        raise typer.Exit(1)
    raise typer.Exit(0)


def _evalset(data: Path | None, images: Path | None, idx_files: tuple[Path, Path] | None,
             limit: int | None, quiet: bool) -> Any:
    """The images `check` measures on: an IDX pair, a labelled folder or MNIST test, cut to
    `limit` (with a line when the set is smaller)."""
    from mnist_edge.device.evaluation import datasets
    from mnist_edge.device.progress import Progress

    if images is not None and idx_files is not None:
        raise UsageError("--images and --idx are two different data sets: give one")
    if idx_files is not None:
        evalset = datasets.idx_pair(*idx_files)
    elif images is not None:
        count = len(datasets.class_files(images))
        with Progress(count, "preprocessing", enabled=not quiet) as bar:
            evalset = datasets.image_folder(images, bar.advance)
    else:
        evalset = datasets.mnist_test(data)
    if limit is None:
        return evalset
    if limit > len(evalset):
        say(f"--limit {limit:,} is more than the {len(evalset):,} images of "
            f"{evalset.name}: using all of them")
        return evalset
    return evalset.first(limit)


def _write_reports(results: Any, evalset: Any, verdict: Any, per_class: bool,
                   junit: Path | None, markdown: Path | None) -> None:
    """JUnit and Markdown where asked, and the Markdown appended to $GITHUB_STEP_SUMMARY."""
    from mnist_edge.device import atomic
    from mnist_edge.device.evaluation import reports

    md = reports.markdown(results, evalset.name, verdict.summary, evalset.labels if per_class else None)
    outputs = [(junit, reports.junit(results, evalset.name, len(evalset))),
               (markdown, md.encode())]
    for target, content in outputs:
        if target is not None:
            support.write_report(functools.partial(atomic.write_bytes, target, content), target)
    step_summary = os.environ.get("GITHUB_STEP_SUMMARY")
    if step_summary:
        def append() -> None:
            with open(step_summary, "a", encoding="utf-8") as f:
                f.write(md + "\n")
        support.write_report(append, Path(step_summary))


@app.command(short_help="Latency, throughput and size, as ratios.")
@one_line_errors
def bench(
    model: ModelsOpt = None,
    runs: Annotated[int, typer.Option("--runs", min=10, help="Timed invokes per model.")] = 2000,
    warmup: Annotated[int, typer.Option("--warmup", min=0, help="Untimed invokes first.")] = 100,
    json_out: JsonOpt = False,
    runtime: RuntimeOpt = None,
    threads: ThreadsOpt = None,
    trust_model: TrustOpt = False,
) -> None:
    """Time single-image inference: p50/p95/p99 latency, throughput, size, ratios."""
    from mnist_edge.device.inference import doctor, timing

    paths = model or [p for pair in bundled.families() for p in pair]
    rows: list[dict[str, Any]] = []
    for path in paths:
        clf = support.load(path, runtime, threads, trust_model)
        t = timing.time_wrapper(clf, runs=runs, warmup=warmup)
        bare = timing.time_bare(clf, runs=runs, warmup=warmup)
        batched = timing.batch_throughput(clf, runs=max(2, runs // 40))  # 2000 runs: 50 batches
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


@app.command(short_help="MNIST-C, photos and empty frames, side by side.")
@one_line_errors
def robustness(
    model: ModelsOpt = None,
    mnistc: Annotated[Path | None, typer.Option("--mnistc", metavar="DIR", help="MNIST-C folder "
                      "(15 corruption IDX files + labels; default: MNIST_EDGE_MNISTC, else "
                      "skipped).", show_default=False)] = None,
    data: DataOpt = None,
    per_style: Annotated[int, typer.Option("--per-style", min=10, help="Photo renders and empty "
                         "frames per paper style.")] = 200,
    realphotos: Annotated[Path | None, typer.Option("--realphotos", metavar="DIR", help="Real "
                          "photos to measure (labels.csv + images/, as ../shared/realphotos-dev; "
                          "default: MNIST_EDGE_REALPHOTOS, else skipped).",
                          show_default=False)] = None,
    json_out: JsonOpt = False,
    markdown: Annotated[Path | None, typer.Option("--markdown", metavar="FILE", help="Write the "
                        "table as Markdown.", show_default=False)] = None,
    report: Annotated[Path | None, typer.Option("--report", metavar="FILE", help="Put the table "
                      "into this Markdown file (e.g. models/report.md), replacing an earlier one.",
                      show_default=False)] = None,
    runtime: RuntimeOpt = None,
    threads: ThreadsOpt = None,
    trust_model: TrustOpt = False,
) -> None:
    """Robustness side by side: MNIST-C, photo renders, empty frames, real photos, size,
    latency."""

    from mnist_edge.device import atomic
    from mnist_edge.device.evaluation import datasets
    from mnist_edge.device.evaluation import real_photos as real
    from mnist_edge.device.evaluation import robustness as rb
    from mnist_edge.device.progress import Progress

    order = ["tutorial", "tutorial-float32", "robust", "robust-float32"]
    paths = [bundled.resolve(p) for p in model] if model else \
        [bundled.NAMES[n] for n in order if bundled.NAMES[n].is_file()]
    if not paths:
        raise BadModelError("no bundled models in this install; pass --model FILE.tflite")
    clfs = [support.load(p, runtime, threads, trust_model) for p in paths]
    folder = mnistc or (Path(os.environ["MNIST_EDGE_MNISTC"]) if os.environ.get("MNIST_EDGE_MNISTC")
                        else None)
    sets = rb.load_mnistc(folder) if folder is not None else None
    test = datasets.mnist_test(data)
    with Progress(2 * per_style * 9, "rendering frames", enabled=not json_out) as bar:
        photos = rb.render_frames(test.images, test.labels, per_style, False, bar.advance)
        empties = rb.render_frames(test.images, test.labels, per_style, True, bar.advance)
    real_dir = realphotos or (Path(os.environ["MNIST_EDGE_REALPHOTOS"])
                              if os.environ.get("MNIST_EDGE_REALPHOTOS") else None)
    items = real.load(real_dir) if real_dir is not None else []
    rows = []
    with Progress(len(clfs), "scoring models", enabled=not json_out) as bar:
        for clf in clfs:
            rows.append(rb.score(clf, (test.images, test.labels), sets, photos, empties))
            if items:
                rows[-1].real = real.score(clf, items)
            bar.advance(1)
    for r in rows:
        r.latency_ratio = r.p50_us / rows[0].p50_us
    short = {p: n for n, p in bundled.NAMES.items()}
    names = [short.get(p, p.name) for p in paths]
    table = rb.markdown(rows, names, per_style, str(folder) if folder else None,
                        str(real_dir) if real_dir else None)
    if json_out:
        for name, r in zip(names, rows, strict=True):
            typer.echo(json.dumps({"name": name, **r.to_json()}))
    else:
        typer.echo(table)
    if markdown is not None:
        support.write_report(lambda: atomic.write_text(markdown, table), markdown)
    if report is not None:
        old = report.read_text() if report.is_file() else ""
        support.write_report(lambda: atomic.write_text(report, rb.replace_section(old, table)), report)


def personal_gate(model: Path, baseline: Path, images: Path, data: Path | None,
                  thresholds: Any, max_baseline_drop: float, markdown: Path | None,
                  json_out: bool, load: Callable[[Path], Any]) -> None:
    """check --baseline: the personalised model's three conditions (evaluation/personal.py)."""
    from mnist_edge.device import atomic
    from mnist_edge.device.evaluation import datasets, gate, personal
    from mnist_edge.device.progress import Progress

    if max_baseline_drop < 0:
        raise UsageError("--max-baseline-drop must be at least 0")
    mine, base = bundled.resolve(model), bundled.resolve(baseline)
    for path in (mine, base):
        load(path)  # both refused before any measuring
    with Progress(len(datasets.class_files(images)), "preprocessing", enabled=not json_out) as bar:
        writer_set = datasets.image_folder(images, bar.advance)
    mnist_set = datasets.mnist_test(data)
    say(f"measuring {mine.name} and {base.name} on {len(mnist_set):,} MNIST test images and "
        f"{len(writer_set)} held-out examples")
    quant = gate.run([mine], mnist_set, load, thresholds)[0]
    mnist = personal.Comparison("MNIST test", personal.measure(load(base), mnist_set), quant,
                                mnist_set.labels)
    writer = personal.Comparison(f"the writer's held-out examples ({images})",
                                 personal.measure(load(base), writer_set),
                                 personal.measure(load(mine), writer_set), writer_set.labels)
    verdict = personal.judge(quant, mnist, writer, max_baseline_drop)
    md = personal.markdown(verdict, base.name, mine.name)
    typer.echo(json.dumps(personal.as_json(verdict, base.name, mine.name)) if json_out else md)
    if markdown is not None:
        support.write_report(functools.partial(atomic.write_text, markdown, md), markdown)
    for warning in verdict.warnings:
        say(f"warning: {warning}")
    for failure in verdict.failures:
        say(f"gate failed: {failure}")
    raise typer.Exit(0 if verdict.passed else 1)
