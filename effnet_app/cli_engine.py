"""Engine subcommands: models, download, import-weights, classify."""

from __future__ import annotations

import argparse
import io
import sys
from pathlib import Path

EXIT_OK, EXIT_PROBLEMS, EXIT_USAGE = 0, 1, 2


class ProgressBar:
    """A one-line bar on stderr; on a pipe, a line every 10 %, so logs stay short."""

    def __init__(self, stream=None, width: int = 30) -> None:
        self.stream = stream or sys.stderr
        self.width = width
        self.tty = self.stream.isatty()
        self._last_decile = -1

    def update(self, progress) -> None:
        total = progress.total or 0
        done = progress.done
        if progress.unit == "bytes":
            amount = f"{done / 1e6:.1f}/{total / 1e6:.1f} MB" if total else f"{done / 1e6:.1f} MB"
            rate = f"{progress.rate / 1e6:.1f} MB/s" if progress.rate else ""
        else:
            amount = f"{done}/{total}" if total else str(done)
            rate = f"{progress.rate:.1f} {progress.unit}/s" if progress.rate else ""
        eta = f"ETA {progress.eta:.0f}s" if progress.eta is not None and total else ""
        fraction = progress.fraction or 0.0
        bar = "#" * int(fraction * self.width)
        line = f"[{bar:<{self.width}}] {amount} {rate} {eta}".rstrip()
        if self.tty:
            self.stream.write("\r" + line.ljust(79))
        else:
            decile = int(fraction * 10)
            if decile == self._last_decile:
                return
            self._last_decile = decile
            self.stream.write(line + "\n")
        self.stream.flush()

    def close(self) -> None:
        if self.tty:
            self.stream.write("\n")
            self.stream.flush()


# ---------------------------------------------------------------------- models


def _cmd_models(args: argparse.Namespace) -> int:
    from .core.models import weights, zoo

    rows = [("model", "name", "input", "params", "GFLOPS", "top-1", "weights")]
    for spec in zoo.pretrained_specs():
        state = "on disk" if weights.is_available(spec) else "not downloaded"
        if spec.bundled_weights() is not None:
            state = "bundled"
        rows.append(
            (
                spec.key,
                spec.name,
                f"{spec.resolution}px",
                f"{spec.params / 1e6:.1f}M",
                f"{spec.gflops:.2f}" if spec.gflops else "-",
                f"{spec.top1:.1f}%" if spec.top1 else "-",
                state,
            )
        )
    _print_table(rows)
    return EXIT_OK


def _print_table(rows, stream=None) -> None:
    stream = stream or sys.stdout
    widths = [max(len(str(r[i])) for r in rows) for i in range(len(rows[0]))]
    for row in rows:
        stream.write(
            "  ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() + "\n"
        )


# ---------------------------------------------------------------------- weights


def _run_with_bar(job, quiet: bool = False):
    from .core.jobs import Progress

    bar = None if quiet else ProgressBar()
    try:
        while True:
            try:
                event = next(job)
            except StopIteration as stop:
                return stop.value
            progress = getattr(event, "progress", event)
            if bar and isinstance(progress, Progress):
                bar.update(progress)
    finally:
        job.close()
        if bar:
            bar.close()


def _cmd_download(args: argparse.Namespace) -> int:
    from .core.models import weights, zoo

    spec = zoo.get_spec(args.model)
    found = weights.cached_path(spec)
    if found and not args.force:
        print(f"{spec.name}: weights already on disk at {found}")
        return EXIT_OK
    path = _run_with_bar(weights.download(spec, mirror=args.mirror), args.quiet)
    print(f"{spec.name}: weights saved to {path}")
    return EXIT_OK


def _cmd_import_weights(args: argparse.Namespace) -> int:
    from .core.models import weights, zoo

    spec = zoo.get_spec(args.model)
    path = weights.import_weights(spec, Path(args.file))
    print(f"{spec.name}: weights imported to {path}")
    return EXIT_OK


# ---------------------------------------------------------------------- classify


def _rows_table(results) -> str:
    out = io.StringIO()
    rows = [("file", "top-1", "confidence", "also")]
    for r in results:
        if r.problem:
            rows.append((str(r.path), "PROBLEM: " + r.problem, "", ""))
            continue
        top, rest = r.predictions[0], r.predictions[1:]
        also = ", ".join(f"{p.label} {p.probability:.0%}" for p in rest[:2])
        rows.append((str(r.path), top.label, f"{top.probability:.1%}", also))
    _print_table(rows, out)
    return out.getvalue()


def _write_stdout(text: str) -> None:
    try:
        sys.stdout.write(text)
    except UnicodeEncodeError:
        # A name the terminal's encoding cannot show (bytes that are not UTF-8 arrive as
        # surrogates; a legacy code page lacks most scripts): escape it, never crash.
        encoding = sys.stdout.encoding or "utf-8"
        sys.stdout.write(text.encode(encoding, "backslashreplace").decode(encoding))


def format_results(results, fmt: str, top_k: int) -> str:
    from .core.runtime import results_io

    if fmt == "json":
        return results_io.to_json(results)
    if fmt == "csv":
        return results_io.to_csv(results, top_k)
    return _rows_table(results)


def _prepare_classifier(args: argparse.Namespace):
    from .core.errors import WeightsError
    from .core.models import weights, zoo
    from .core.runtime.classifier import Classifier

    spec = zoo.get_spec(args.model)
    path = weights.cached_path(spec)
    if path is None:
        if not args.download:
            raise WeightsError(
                f"The weights for {spec.name} are not on this computer. Run "
                f"`effnet-app download {spec.key.upper()}`, add --download, or use "
                "--model lite0, which works offline."
            )
        path = _run_with_bar(weights.download(spec), args.quiet)
    return Classifier(spec, device=args.device, batch_size=args.batch_size, weights_path=path)


def _cmd_classify(args: argparse.Namespace) -> int:
    if args.top_k < 1:
        print("effnet-app: --top-k must be at least 1", file=sys.stderr)
        return EXIT_USAGE
    if args.batch_size is not None and args.batch_size < 1:
        print("effnet-app: --batch-size must be at least 1", file=sys.stderr)
        return EXIT_USAGE
    classifier = _prepare_classifier(args)
    results = []
    bar = None if args.quiet else ProgressBar()
    job = classifier.predict(args.paths, top_k=args.top_k)
    try:
        for event in job:
            results.extend(event.results)
            if bar and event.stage == "classifying":
                bar.update(event.progress)
    finally:
        job.close()
        if bar:
            bar.close()
    text = format_results(results, args.format, min(args.top_k, classifier.spec.num_classes))
    if args.output:
        from .core.fsutil import atomic_write

        atomic_write(args.output, text)
    else:
        _write_stdout(text)
    problems = [r for r in results if r.problem]
    for r in problems:
        print(f"problem: {r.path}: {r.problem}", file=sys.stderr)
    if not results:
        print("effnet-app: no images found in the given paths", file=sys.stderr)
        return EXIT_PROBLEMS
    if not args.quiet:
        print(
            f"{len(results) - len(problems)} classified, {len(problems)} with problems "
            f"({classifier.spec.name} on {classifier.device})",
            file=sys.stderr,
        )
    return EXIT_PROBLEMS if problems else EXIT_OK


# ---------------------------------------------------------------------- parser


def add_commands(sub) -> None:
    p = sub.add_parser("models", help="list the models, their figures and whether weights are here")
    p.set_defaults(func=_cmd_models)

    p = sub.add_parser("download", help="download a model's pretrained weights")
    p.add_argument("model", help="b0..b7 (lite0 ships with the app)")
    p.add_argument("--mirror", help="base URL of a mirror holding torchvision's file names")
    p.add_argument("--force", action="store_true", help="download even if already present")
    p.add_argument("-q", "--quiet", action="store_true")
    p.set_defaults(func=_cmd_download)

    p = sub.add_parser("import-weights", help="use a weights file you downloaded by hand")
    p.add_argument("model")
    p.add_argument("file")
    p.set_defaults(func=_cmd_import_weights)

    p = sub.add_parser("classify", help="classify images and folders")
    p.add_argument("paths", nargs="+", help="image files and folders (searched recursively)")
    p.add_argument("--model", default="lite0", help="lite0 (default, offline), b0..b7")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    p.add_argument("--top-k", type=int, default=5)
    p.add_argument("--format", choices=("table", "csv", "json"), default="table")
    p.add_argument("--output", "-o", help="write results to this file instead of stdout")
    p.add_argument("--batch-size", type=int, default=None)
    p.add_argument("--download", action="store_true", help="download missing weights first")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar or summary")
    p.set_defaults(func=_cmd_classify)
