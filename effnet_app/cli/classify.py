"""The classify subcommand: files and folders in, one row per file out, streamed."""

from __future__ import annotations

import argparse
from dataclasses import dataclass

from ..core.runtime.choices import BACKENDS, PRECISIONS, default_backend
from .common import EXIT_OK, EXIT_PROBLEMS, EXIT_USAGE, require_stdout, say
from .output import ResultsOutput
from .progress import progress_bar, run_job


def _missing_weights(spec):
    """The sentence for weights that are not usable here: damaged, or not downloaded."""
    from ..core.errors import WeightsError
    from ..core.models import weights

    key = spec.key.upper()
    damaged = weights.damaged_file(spec)
    if damaged is not None:
        return WeightsError(
            f"The {spec.name} weights at {damaged} are damaged: their checksum does not "
            f"match the published file. Run `effnet-app download {key}` to set that file "
            "aside and download it again (or add --download)."
        )
    return WeightsError(
        f"The weights for {spec.name} are not on this computer. Run "
        f"`effnet-app download {key}`, add --download, or use --model lite0, which works "
        "offline."
    )


def weights_here(spec, args: argparse.Namespace):
    """The spec's weights file, downloaded first with --download; else a WeightsError."""
    from ..core.models import registry
    from .models import say_if_damaged

    path = registry.weights_path(spec)
    if path is None:
        if not args.download:
            raise _missing_weights(spec)
        say_if_damaged(spec)
        path = run_job(registry.fetch_weights(spec), args.quiet)
    return path


def _prepare_classifier(args: argparse.Namespace):
    """The classifier for the request: the torch-free fast path when it is ready."""
    from ..core.errors import ExportError
    from ..core.runtime import engines

    plan = engines.fast_plan(args.model, args.device, args.backend, args.precision)
    if plan is not None:
        made = plan.classifier(batch_size=args.batch_size)
        try:
            run_job(made.load(), quiet=True)
            return made
        except ExportError as exc:
            from ..core.export import cache

            cache.discard(plan.info.key)
            say(f"effnet-app: {exc} It was removed; using PyTorch this time.")
            args.backend = "torch"
        except Exception as exc:  # noqa: BLE001 - an installed runtime that will not start
            say(f"effnet-app: {made.describe()} failed to start ({exc}); using PyTorch.")
            args.backend = "torch"
    return _optimised_classifier(args)


def _optimised_classifier(args: argparse.Namespace):
    from ..core.models import registry
    from ..core.runtime import engines

    spec = registry.resolve(args.model)
    path = weights_here(spec, args)
    job = engines.classifier_job(
        spec, path, args.device, args.backend, args.precision, args.batch_size
    )
    made = run_job(job, args.quiet)
    for note in () if args.quiet else made.notes:
        say(f"effnet-app: {note}")
    return made


def _say(bar, line: str) -> None:
    if bar:
        bar.say(line)
    else:
        say(line)


@dataclass
class _Tally:
    """Counts of a run; problems are said on stderr as they come, not kept."""

    classified: int = 0
    problems: int = 0

    def add(self, results, bar) -> None:
        for r in results:
            if r.problem:
                self.problems += 1
                line = f"problem: {r.path}: {r.problem}"
                _say(bar, line)
            else:
                self.classified += 1


def _run(classifier, paths, args: argparse.Namespace, output: ResultsOutput) -> _Tally:
    tally = _Tally()
    bar = progress_bar(args.quiet)
    job = classifier.predict(paths, top_k=args.top_k)
    try:
        for event in job:
            output.add(event.results)
            tally.add(event.results, bar)
            for note in () if args.quiet else event.notes:
                _say(bar, f"effnet-app: {note}")
            if bar and event.stage == "classifying":
                bar.update(event.progress)
    except BaseException:
        job.close()
        where = output.abort()
        if where:
            say(f"effnet-app: {where}")
        raise
    finally:
        job.close()
        if bar:
            bar.close()
    output.finish()
    return tally


def _cmd_classify(args: argparse.Namespace) -> int:
    if args.top_k < 1:
        say("effnet-app: --top-k must be at least 1")
        return EXIT_USAGE
    if args.batch_size is not None and args.batch_size < 1:
        say("effnet-app: --batch-size must be at least 1")
        return EXIT_USAGE
    if args.output is None:
        require_stdout()
    classifier = _prepare_classifier(args)
    top_k = min(args.top_k, classifier.spec.num_classes)
    unsure = classifier.spec.unknown_threshold is not None
    output = ResultsOutput(args.format, top_k, args.output, args.paths, unsure)
    tally = _run(classifier, args.paths, args, output)
    if not tally.classified + tally.problems:
        say("effnet-app: no images found in the given paths")
        return EXIT_PROBLEMS
    if not args.quiet:
        say(
            f"{tally.classified} classified, {tally.problems} with problems "
            f"({classifier.spec.name} on {classifier.device}, {classifier.describe()})"
        )
    return EXIT_PROBLEMS if tally.problems else EXIT_OK


def add_commands(sub) -> None:
    p = sub.add_parser("classify", help="classify images and folders")
    p.add_argument("paths", nargs="+", help="image files and folders (searched recursively)")
    p.add_argument(
        "--model", default="lite0", help="lite0 (default, offline), b0..b7, or a trained model"
    )
    p.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    p.add_argument("--top-k", type=int, default=5)
    p.add_argument("--format", choices=("table", "csv", "json"), default="table")
    p.add_argument(
        "--output",
        "-o",
        help="write results to this file instead of stdout (as FILE.part until the run ends)",
    )
    p.add_argument("--batch-size", type=int, default=None)
    p.add_argument(
        "--backend",
        choices=BACKENDS,
        default=default_backend(),
        help="the engine: auto (default: the fastest measured on this computer), torch, "
        "onnxruntime or openvino",
    )
    p.add_argument(
        "--precision",
        choices=PRECISIONS,
        default="fp32",
        help="fp32 (default), or bf16 for Fast mode on OpenVINO where the CPU has it and it "
        "agrees with fp32 on 99.5 %% of the reference photos",
    )
    p.add_argument("--download", action="store_true", help="download missing weights first")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar or summary")
    p.set_defaults(func=_cmd_classify)
