"""Subcommands that teach and test your own classes: check-data, train, evaluate.

Progress, phases and a line per epoch go to stderr; the report (the scan, the metrics)
goes to stdout. A dataset with errors is refused before anything starts (exit 2, with
the sentences). Training keeps everything in memory until it ends; the bundle is then
written atomically, so Ctrl+C or SIGTERM during training leaves nothing on disk.
"""

from __future__ import annotations

import argparse
import os

from ..core.errors import AppError
from .common import EXIT_OK, EXIT_USAGE, say, table_text, write_stdout
from .progress import run_job

ISSUES_SHOWN = 5  # likely mislabelled images listed by path


# --------------------------------------------------------------------------- data
def scan_dataset(source: str, min_side: int | None, quiet: bool):
    from ..core.data import dataset as datasets

    return run_job(datasets.scan(source, min_side=min_side), quiet)


def scan_text(dataset) -> str:
    """Per class: images, unreadable, duplicates, small; then the checks, one a line."""
    rows = [("class", "images", "unreadable", "duplicates", "small")]
    for r in dataset.reports:
        rows.append((r.name, r.count, len(r.unreadable), r.duplicates, r.small))
    text = table_text(rows)
    if dataset.conflicts:
        text += f"{len(dataset.conflicts)} images are under two or more classes (left out)\n"
    return text + "".join(f"{c.level}: {c.sentence}\n" for c in dataset.checks)


def say_checks(dataset) -> bool:
    """Warnings and errors on stderr; True when the dataset is usable."""
    for check in dataset.checks:
        if check.level in ("warning", "error"):
            say(f"{check.level}: {check.sentence}")
    if not dataset.usable:
        say("effnet-app: the dataset cannot be used until the errors above are fixed")
    return dataset.usable


def _cmd_check_data(args: argparse.Namespace) -> int:
    from ..core.models import registry

    spec = registry.resolve(args.model)
    dataset = scan_dataset(args.data, spec.resolution, args.quiet)
    write_stdout(scan_text(dataset))
    if dataset.usable:
        write_stdout(f"usable: {len(dataset.samples)} images in {len(dataset.classes)} classes\n")
        return EXIT_OK
    write_stdout("not usable: fix the errors above\n")
    return EXIT_USAGE


# --------------------------------------------------------------------------- metrics
def _pct(value) -> str:
    return "-" if value is None else f"{value:.3f}"


def metrics_text(result) -> str:
    """Accuracy (first line) beside the baseline, per-class scores, the confusion matrix."""
    classes = list(result.classes)
    lines = [
        f"accuracy: {result.accuracy:.3f}  (always guessing the biggest class: "
        f"{result.baseline:.3f})\n\n"
    ]
    rows = [("class", "precision", "recall", "f1", "images")]
    for c in result.per_class:
        rows.append(
            (c["name"], _pct(c["precision"]), _pct(c["recall"]), _pct(c["f1"]), c["support"])
        )
    lines.append(table_text(rows))
    matrix = [("true \\ predicted", *classes)]
    matrix += [(name, *row) for name, row in zip(classes, result.confusion, strict=True)]
    lines.append("\nconfusion (rows: true class, columns: predicted)\n" + table_text(matrix))
    return "".join(lines)


def train_report(result) -> str:
    """The metrics, then the "not sure" threshold and the likely mislabelled images."""
    text = metrics_text(result)
    if result.unknown_threshold < 0.005:
        text += "\nthe model never says 'not sure': it was sure and right on validation\n"
    else:
        text += (
            f"\nbelow {result.unknown_threshold * 100:.0f} % confidence the model says "
            f"'not sure' ({result.unknown_flagged * 100:.0f} % of validation images; "
            f"{result.unknown_errors_avoided} wrong answers avoided)\n"
        )
    issues = result.label_issues
    if not issues:
        return text + "no images look mislabelled\n"
    text += f"{len(issues)} images may be mislabelled; the most likely:\n"
    for i in issues[:ISSUES_SHOWN]:
        given, suggested = result.classes[i["given"]], result.classes[i["suggested"]]
        text += f"  {i['path']}  ({given}, looks like {suggested})\n"
    return text


# --------------------------------------------------------------------------- train
def _config(args: argparse.Namespace):
    from ..core.training import TrainConfig

    if args.epochs < 1 or (args.batch_size is not None and args.batch_size < 1):
        raise AppError("--epochs and --batch-size must be at least 1.")
    try:
        return TrainConfig(
            base=args.model,
            device=args.device,
            mode=args.mode,
            epochs=args.epochs,
            batch_size=args.batch_size,
            val_fraction=args.val,
            seed=args.seed,
        )
    except ValueError as exc:
        raise AppError(f"Cannot train with these options: {exc}.") from exc


def _free_name(name: str | None, replace: bool) -> None:
    """Refuse an --out name that cannot be a bundle, or one taken (unless --replace)."""
    from ..core import paths
    from ..core.models import bundle

    if name is None:
        return
    bundle.validate_name(name)
    if os.path.lexists(paths.models_dir() / name) and not replace:
        raise AppError(
            f'A trained model called "{name}" already exists. Choose another --out name, '
            "add --replace, or remove it with `effnet-app delete-model`."
        )


def _event_line(event) -> str | None:
    from ..core.training import TrainEpoch, TrainMessage, TrainPhase

    if isinstance(event, TrainEpoch):
        return (
            f"epoch {event.epoch} ({event.phase}): train loss {event.train_loss:.3f} "
            f"acc {event.train_acc:.3f}, val loss {event.val_loss:.3f} acc {event.val_acc:.3f}"
        )
    if isinstance(event, TrainPhase):
        return event.message
    if isinstance(event, TrainMessage):
        return f"{event.level}: {event.text}"
    return None


def _cmd_train(args: argparse.Namespace) -> int:
    from ..core import training
    from ..core.models import bundle, zoo

    config = _config(args)
    spec = zoo.get_spec(args.model)
    _free_name(args.out, args.replace)
    dataset = scan_dataset(args.data, spec.resolution, args.quiet)
    if not say_checks(dataset):
        return EXIT_USAGE
    name = args.out or bundle.default_name(dataset.classes, spec.key)
    result = run_job(training.train(config, dataset), args.quiet, _event_line)
    write_stdout(train_report(result))
    saved = training.save_result(result, name, dataset, replace=args.replace)
    write_stdout(
        f"\nsaved as {saved.name} in {saved.path}\n"
        f"use it: effnet-app classify PHOTOS --model {saved.name}\n"
    )
    return EXIT_OK


# --------------------------------------------------------------------------- evaluate
def _cmd_evaluate(args: argparse.Namespace) -> int:
    from ..core import training
    from ..core.models import registry

    spec = registry.resolve(args.model)
    dataset = scan_dataset(args.data, spec.resolution, args.quiet)
    if not dataset.samples:
        raise AppError(f"There are no usable images in {args.data} to evaluate on.")
    result = run_job(training.evaluate(spec, dataset, device=args.device), args.quiet)
    for path, reason in result.problems:
        say(f"problem: {path}: {reason}")
    write_stdout(metrics_text(result))
    return EXIT_OK


def add_commands(sub) -> None:
    p = sub.add_parser("check-data", help="scan a labelled folder and say what is wrong")
    p.add_argument("data", help="a folder of class folders, train/ and val/, or a CSV")
    p.add_argument("--model", default="lite0", help="the model it is for (input size)")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=_cmd_check_data)

    p = sub.add_parser("train", help="teach a model your own classes from a labelled folder")
    p.add_argument("data", help="a folder of class folders, train/ and val/, or a CSV")
    p.add_argument("--model", default="lite0", help="the base model: lite0 (default), b0..b7")
    p.add_argument(
        "--mode",
        choices=("head", "finetune"),
        default="head",
        help="head: a new last layer on cached features (quick, the default); finetune: "
        "then the last stages too, kept only if that beats the head on validation",
    )
    p.add_argument(
        "--epochs",
        type=int,
        default=10,
        help="fine-tuning epochs at most (early stopping may end sooner); the head in "
        "head mode is solved to convergence, so it does not count there",
    )
    p.add_argument("--out", help="the trained model's name (default: from the classes)")
    p.add_argument("--replace", action="store_true", help="replace a model of that name")
    p.add_argument("--val", type=float, default=0.2, help="fraction kept for validation")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    p.add_argument("--batch-size", type=int, default=None)
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar or epochs")
    p.set_defaults(func=_cmd_train)

    p = sub.add_parser("evaluate", help="measure a model on a labelled folder")
    p.add_argument("model", help="a trained model's name or folder, or a zoo key")
    p.add_argument("data", help="a folder of class folders, train/ and val/, or a CSV")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=_cmd_evaluate)
