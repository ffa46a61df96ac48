"""The classify subcommand: files and folders in, one row per file out, streamed."""

from __future__ import annotations

import argparse
import os
from collections import Counter
from dataclasses import dataclass, field

from ..core.runtime.choices import BACKENDS, PRECISIONS, default_backend
from .common import (
    EXIT_OK,
    EXIT_PROBLEMS,
    EXIT_USAGE,
    raise_if_interrupted,
    require_stdout,
    say,
)
from .output import FORMATS, RESUMABLE, ResultsOutput
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
        made = plan.classifier(batch_size=args.batch_size, single=_one_file(args))
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


def _one_file(args: argparse.Namespace) -> bool:
    """Whether the request is one image file (its runtime is then set up for one)."""
    return not args.from_list and len(args.paths) == 1 and os.path.isfile(args.paths[0])


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
    """Counts of a run, per top label too; problems are said on stderr as they come."""

    classified: int = 0
    problems: int = 0
    labels: Counter = field(default_factory=Counter)

    def add(self, results, bar) -> None:
        for r in results:
            if r.problem:
                self.problems += 1
                line = f"problem: {r.path}: {r.problem}"
                _say(bar, line)
            else:
                self.classified += 1
                self.labels["not sure" if r.unsure else r.predictions[0].label] += 1

    def by_label(self, shown: int = 8) -> str:
        """ "by label: tabby 12, espresso 3 (and 4 more labels)", for the summary."""
        common = self.labels.most_common(shown)
        text = ", ".join(f"{label} {count}" for label, count in common)
        more = len(self.labels) - len(common)
        return f"by label: {text}" + (f" (and {more} more labels)" if more else "")


def _run(classifier, paths, args, output: ResultsOutput, first=None) -> _Tally:
    """Classify ``paths`` into ``output``; ``first``: a resumed run's rows known already."""
    tally = _Tally()
    bar = progress_bar(args.quiet)
    output.add(first or ())  # folders that cannot be read, found when planning a resume
    tally.add(first or (), bar)
    resumed_with_nothing_left = first is not None and not paths
    shards = output.shard_options()
    options = {"shards": shards} if shards is not None else {}
    job = (
        iter(()) if resumed_with_nothing_left else classifier.predict(paths, args.top_k, **options)
    )
    try:
        for event in job:
            output.add(event.results, stored=event.stored)
            tally.add(event.results, bar)
            for note in () if args.quiet else event.notes:
                _say(bar, f"effnet-app: {note}")
            if bar and event.stage == "classifying":
                bar.update(event.progress)
            raise_if_interrupted()  # after the rows: what was classified is kept
    except BaseException:
        _close(job)
        where = output.abort()
        if where:
            say(f"effnet-app: {where}")
        raise
    finally:
        _close(job)
        if bar:
            bar.close()
    output.finish()
    return tally


def _close(job) -> None:
    close = getattr(job, "close", None)
    if close is not None:
        close()


def _ray_classifier(args: argparse.Namespace):
    """The classifier that runs the job on Ray (local, or the cluster at ``args.ray``)."""
    try:
        from ..cluster import RayClassifier
    except ImportError:
        say(
            "effnet-app: Ray is not installed: pip install 'effnet_app[cluster]' "
            "(or make cluster-deps)"
        )
        return None
    return RayClassifier(
        args.model,
        address=args.ray,
        device=args.device,
        backend=args.backend,
        precision=args.precision,
        batch_size=args.batch_size,
        quiet=args.quiet,
    )


def _ray_address_or_path(args: argparse.Namespace) -> None:
    """``--ray photos/`` means a local Ray on photos/: argparse took the folder as the address."""
    address = args.ray
    if not address or address in ("local", "auto") or "://" in address:
        return
    if os.path.exists(address):
        args.paths = [address, *args.paths]
        args.ray = "local"


def _usage_problem(args: argparse.Namespace) -> str | None:
    """What is wrong with the request before anything is loaded; None when nothing is."""
    if args.top_k < 1:
        return "--top-k must be at least 1"
    if args.batch_size is not None and args.batch_size < 1:
        return "--batch-size must be at least 1"
    if not args.paths and not args.from_list:
        return "give image files or folders to classify, or --from-list FILE"
    if args.resume and args.output is None:
        return "--resume goes on with an earlier run's --output FILE: add --output"
    if args.resume and args.format not in RESUMABLE:
        return (
            f"--format {args.format} cannot be resumed (it is written whole); "
            "use --format csv, jsonl or parquet with --resume"
        )
    return None


def _inputs(args: argparse.Namespace) -> list:
    """The paths on the command line, then those of each --from-list file."""
    from ..core.data.listing import read_path_list

    inputs = list(args.paths)
    for listed in args.from_list or ():
        inputs.extend(read_path_list(listed))
    return inputs


def _cmd_classify(args: argparse.Namespace) -> int:
    _ray_address_or_path(args)
    problem = _usage_problem(args)
    if problem:
        say(f"effnet-app: {problem}")
        return EXIT_USAGE
    inputs = _inputs(args)
    if args.output is None:
        require_stdout()
    classifier = _ray_classifier(args) if args.ray else _prepare_classifier(args)
    if classifier is None:
        return EXIT_USAGE
    try:
        return _classify(classifier, inputs, args)
    finally:
        if args.ray:
            _close(classifier)


def _resume(classifier, inputs: list, args: argparse.Namespace, top_k: int, unsure: bool):
    """The resume plan; said on stderr (None: a run from the start)."""
    from ..core.data.folders import expand_paths
    from .resume import prepare, prepare_shards

    found = expand_paths(inputs)
    if _writes_shards(args):
        plan = prepare_shards(args.output, top_k, unsure, found, classifier.spec.name)
    else:
        plan = prepare(args.format, args.output, top_k, unsure, found)
    if plan.rows is None:
        say(f"effnet-app: nothing to resume at {args.output}; starting from the beginning.")
        return None
    if plan.complete is not None:
        say(f"effnet-app: all {plan.done} files are in {plan.complete} already; nothing to do.")
    elif not args.quiet:
        say(f"effnet-app: {plan.sentence()}")
    return plan


def _writes_shards(args: argparse.Namespace) -> bool:
    """A Ray job's Parquet: a folder of shards its workers write (one file locally)."""
    return bool(args.ray) and args.format == "parquet"


def _classify(classifier, inputs: list, args: argparse.Namespace) -> int:
    top_k = min(args.top_k, classifier.spec.num_classes)
    unsure = classifier.spec.unknown_threshold is not None
    plan = _resume(classifier, inputs, args, top_k, unsure) if args.resume else None
    if plan is not None and plan.complete is not None:
        return EXIT_PROBLEMS if plan.problems else EXIT_OK
    paths, first = inputs, None
    if plan is not None:
        from ..core.data.images import ImageProblem
        from ..core.runtime.classifier import ImageResult

        paths = [f for f in plan.todo if not isinstance(f, ImageProblem)]
        first = tuple(
            ImageResult(f.path, problem=f.reason) for f in plan.todo if isinstance(f, ImageProblem)
        )
    resumed = None if plan is None else plan.rows
    about = {"model": classifier.spec.name, "engine": classifier.describe()}
    output = ResultsOutput(
        args.format, top_k, args.output, paths, unsure, resumed, _writes_shards(args), about
    )
    tally = _run(classifier, paths, args, output, first)
    before = 0 if plan is None else plan.done
    if not tally.classified + tally.problems + before:
        say("effnet-app: no images found in the given paths")
        return EXIT_PROBLEMS
    if not args.quiet:
        done = f", {before} done before" if plan is not None else ""
        say(
            f"{tally.classified} classified, {tally.problems} with problems{done} "
            f"({classifier.spec.name} on {classifier.device}, {classifier.describe()})"
        )
        if tally.labels:
            say(tally.by_label())
    problems = tally.problems + (0 if plan is None else plan.problems)
    return EXIT_PROBLEMS if problems else EXIT_OK


def _add_engine_options(p) -> None:
    """Where and on what the model runs: --backend, --precision, --ray."""
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
    p.add_argument(
        "--ray",
        nargs="?",
        const="local",
        default=None,
        metavar="ADDRESS",
        help="run the job on Ray: alone, a local Ray started for this run; 'auto' or "
        "ray://host:port joins a running cluster (needs pip install 'effnet_app[cluster]')",
    )


def add_commands(sub) -> None:
    p = sub.add_parser("classify", help="classify images and folders")
    p.add_argument("paths", nargs="*", help="image files and folders (searched recursively)")
    p.add_argument(
        "--from-list",
        action="append",
        metavar="FILE",
        help="also classify the paths listed in FILE: text (one a line), CSV (a path "
        "column, or the first) or Parquet (a path column); may be given more than once",
    )
    p.add_argument(
        "--model", default="lite0", help="lite0 (default, offline), b0..b7, or a trained model"
    )
    p.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    p.add_argument("--top-k", type=int, default=5)
    p.add_argument(
        "--format",
        choices=FORMATS,
        default="table",
        help="table (default), csv, json, jsonl (JSON Lines) or parquet (needs pyarrow)",
    )
    p.add_argument(
        "--resume",
        action="store_true",
        help="go on with an interrupted run: keep the rows in FILE.part (csv, jsonl, "
        "parquet), classify only the files not written yet or changed since",
    )
    p.add_argument(
        "--output",
        "-o",
        help="write results to this file instead of stdout (as FILE.part until the run ends)",
    )
    p.add_argument("--batch-size", type=int, default=None)
    p.add_argument("--download", action="store_true", help="download missing weights first")
    _add_engine_options(p)
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar or summary")
    p.set_defaults(func=_cmd_classify)
