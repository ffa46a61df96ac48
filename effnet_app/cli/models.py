"""Subcommands about models: paths, models, download, import-weights, delete-model, rename-model."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..core.errors import AppError
from .common import EXIT_OK, EXIT_USAGE, say, table_text, write_stdout
from .progress import run_job


def _cmd_paths(args: argparse.Namespace) -> int:
    from ..core import about

    write_stdout(about.report() + "\n")
    return EXIT_OK


def weights_state(spec) -> str:
    """What ``models`` says about a spec's weights: bundled, on disk, damaged or not here."""
    from ..core.models import registry, weights

    if registry.is_bundled(spec):
        return "bundled"
    if registry.weights_path(spec) is not None:
        return "on disk"
    return "damaged" if weights.damaged_file(spec) is not None else "not downloaded"


def _cmd_models(args: argparse.Namespace) -> int:
    from ..core.models import registry

    rows = [("model", "name", "input", "params", "GFLOPS", "top-1", "weights")]
    for spec in registry.list_models():
        if spec.family == "trained":
            continue
        rows.append(
            (
                spec.key,
                spec.name,
                f"{spec.resolution}px",
                f"{spec.params / 1e6:.1f}M",
                f"{spec.gflops:.2f}" if spec.gflops else "-",
                f"{spec.top1:.1f}%" if spec.top1 else "-",
                weights_state(spec),
            )
        )
    write_stdout(table_text(rows))
    trained = trained_table()
    if trained:
        write_stdout("\ntrained models\n" + trained)
    return EXIT_OK


def trained_table() -> str:
    """The trained bundles as a table (name, base, classes, accuracy, date), or ""."""
    from ..core.models import bundle

    rows = [("name", "base", "classes", "accuracy", "created")]
    for b in bundle.list_bundles():
        accuracy = (b.metrics or {}).get("accuracy")
        rows.append(
            (
                b.name,
                b.base,
                len(b.classes),
                "-" if accuracy is None else f"{accuracy:.1%}",
                b.created[:10] or "-",
            )
        )
    return table_text(rows) if len(rows) > 1 else ""


def _confirmed(name: str, yes: bool) -> bool:
    """--yes, or a "y" typed on a terminal; without a terminal, refused with a sentence."""
    import sys

    if yes:
        return True
    if sys.stdin is None or not sys.stdin.isatty():
        raise AppError(f'Deleting "{name}" needs confirmation: add --yes to delete it.')
    try:
        answer = input(f'Delete the trained model "{name}"? It cannot be undone. [y/N] ')
    except EOFError:
        return False
    return answer.strip().lower() in ("y", "yes")


def _cmd_delete_model(args: argparse.Namespace) -> int:
    from ..core.models import bundle

    found = bundle.find_bundle(args.name)
    if not _confirmed(found.name, args.yes):
        say("effnet-app: nothing deleted")
        return EXIT_USAGE
    bundle.delete_bundle(found.path)
    write_stdout(f"deleted {found.name} ({found.path})\n")
    return EXIT_OK


def _cmd_rename_model(args: argparse.Namespace) -> int:
    from ..core.models import bundle

    renamed = bundle.rename_bundle(args.old, args.new)
    write_stdout(f"renamed {args.old} to {renamed.name} ({renamed.path})\n")
    return EXIT_OK


def say_if_damaged(spec) -> None:
    """Before a download: name the damaged file it replaces (``download`` sets it aside)."""
    from ..core.models import weights
    from ..core.models.checksums import DAMAGED_SUFFIX

    damaged = weights.damaged_file(spec)
    if damaged is not None:
        say(
            f"effnet-app: {damaged} is damaged (its checksum does not match the published "
            f"file); it is set aside as {damaged.name}{DAMAGED_SUFFIX} and downloaded again."
        )


def _cmd_download(args: argparse.Namespace) -> int:
    from ..core.models import registry

    spec = registry.resolve(args.model)
    found = registry.weights_path(spec)
    if found and not args.force:
        write_stdout(f"{spec.name}: weights already on disk at {found}\n")
        return EXIT_OK
    say_if_damaged(spec)
    path = run_job(registry.download_weights(spec, mirror=args.mirror), args.quiet)
    write_stdout(f"{spec.name}: weights saved to {path}\n")
    return EXIT_OK


def _cmd_import_weights(args: argparse.Namespace) -> int:
    from ..core.models import registry

    spec = registry.resolve(args.model)
    path = registry.import_weights(spec, Path(args.file))
    write_stdout(f"{spec.name}: weights imported to {path}\n")
    return EXIT_OK


def add_commands(sub) -> None:
    p = sub.add_parser("paths", help="show versions and the folders the app uses")
    p.set_defaults(func=_cmd_paths)

    p = sub.add_parser(
        "models", help="list the models (and your trained ones) and whether weights are here"
    )
    p.set_defaults(func=_cmd_models)

    p = sub.add_parser("download", help="download a model's pretrained weights")
    p.add_argument("model", help="b0..b7 (lite0 ships with the app)")
    p.add_argument("--mirror", help="base URL of a mirror holding torchvision's file names")
    p.add_argument("--force", action="store_true", help="download even if already present")
    p.add_argument("-q", "--quiet", action="store_true")
    p.set_defaults(func=_cmd_download)

    p = sub.add_parser(
        "import-weights", help="use the published weights file you downloaded by hand"
    )
    p.add_argument("model")
    p.add_argument("file")
    p.set_defaults(func=_cmd_import_weights)

    p = sub.add_parser("delete-model", help="delete a trained model")
    p.add_argument("name")
    p.add_argument("--yes", "-y", action="store_true", help="do not ask for confirmation")
    p.set_defaults(func=_cmd_delete_model)

    p = sub.add_parser("rename-model", help="give a trained model a new name")
    p.add_argument("old")
    p.add_argument("new")
    p.set_defaults(func=_cmd_rename_model)
