"""The classify subcommand: files and folders in, one row per file out, streamed."""

from __future__ import annotations

import argparse
from dataclasses import dataclass

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


def _prepare_classifier(args: argparse.Namespace):
    from ..core.models import registry
    from ..core.runtime.classifier import Classifier
    from .models import say_if_damaged

    spec = registry.resolve(args.model)
    path = registry.weights_path(spec)
    if path is None:
        if not args.download:
            raise _missing_weights(spec)
        say_if_damaged(spec)
        path = run_job(registry.fetch_weights(spec), args.quiet)
    return Classifier(spec, device=args.device, batch_size=args.batch_size, weights_path=path)


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
            f"({classifier.spec.name} on {classifier.device})"
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
    p.add_argument("--download", action="store_true", help="download missing weights first")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar or summary")
    p.set_defaults(func=_cmd_classify)
