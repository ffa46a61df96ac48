"""The export subcommand: a model as a checked ONNX or OpenVINO folder for other programs."""

from __future__ import annotations

import argparse

from .common import EXIT_OK, OutputError, raise_if_interrupted, say, write_stdout

_FORMAT_NAMES = {"onnx": "ONNX", "openvino": "OpenVINO IR"}


def _weights(spec, args: argparse.Namespace):
    from .classify import weights_here

    return weights_here(spec, args)


def _run_steps(job, quiet: bool):
    """Run the job to its end, saying each new step on stderr; returns its result."""
    last = None
    try:
        while True:
            try:
                event = next(job)
            except StopIteration as stop:
                return stop.value
            raise_if_interrupted()
            message = getattr(event, "message", "")
            if not quiet and message and message != last:
                say(message)
                last = message
    finally:
        job.close()


def _cmd_export(args: argparse.Namespace) -> int:
    from ..core.errors import ExportError
    from ..core.export import package
    from ..core.models import registry

    spec = registry.resolve(args.model)
    weights = _weights(spec, args)
    try:
        info = _run_steps(package.export_for_user(spec, weights, args.format, args.out), args.quiet)
    except ExportError as exc:
        if isinstance(exc.__cause__, OSError):  # the folder could not be written: as --output
            raise OutputError(exc.sentence, exc.detail) from exc
        raise
    size = sum(size for size, _ in info.files.values())
    write_stdout(
        f"Exported {info.name} to {info.folder} ({_FORMAT_NAMES[info.format]}, "
        f"{size / 1e6:.1f} MB); checked against PyTorch fp32:\n"
    )
    for agreement in info.agreements:
        write_stdout(f"  {agreement.describe()}\n")
    return EXIT_OK


def add_commands(sub) -> None:
    p = sub.add_parser(
        "export",
        help="write a model as ONNX or OpenVINO, checked, with labels, preprocessing and a README",
    )
    p.add_argument("model", help="lite0, b0..b7, or a trained model's name or folder")
    p.add_argument("--format", choices=("onnx", "openvino"), default="onnx")
    p.add_argument(
        "--out",
        required=True,
        help="a new or empty folder (or an earlier export, which is replaced)",
    )
    p.add_argument("--download", action="store_true", help="download missing weights first")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress lines on stderr")
    p.set_defaults(func=_cmd_export)
