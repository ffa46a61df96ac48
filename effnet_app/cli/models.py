"""Subcommands about models and their weights: paths, models, download, import-weights."""

from __future__ import annotations

import argparse
from pathlib import Path

from .common import EXIT_OK, say, table_text, write_stdout
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

    p = sub.add_parser("models", help="list the models, their figures and whether weights are here")
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
