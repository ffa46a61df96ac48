"""The command line: the same jobs as the window, headless.

Each group of subcommands is a module with ``add_commands(subparsers)``: ``models``
(paths, models, download, import-weights, delete-model, rename-model), ``classify``,
``training`` (check-data, train, evaluate) and ``export`` (a checked ONNX or OpenVINO
folder); add one to ``GROUPS`` and ``python -m effnet_app`` routes its commands here,
since the names come from the parser.
Heavy modules (torch) are imported inside the commands, so ``--help`` is instant.

Exit codes (``common.EXIT_CODES``, shown by ``--help``):
  0    success: every file classified
  1    some files had problems (listed on stderr), or no images were found
  2    bad usage, a missing or damaged model, an unusable device
  3    the results could not be written (stdout or --output closed or full)
  130  interrupted with Ctrl+C
  141  the reader of the output went away (`effnet-app ... | head`)
  143  stopped by SIGTERM (cleanly, as with Ctrl+C)
"""

from __future__ import annotations

import argparse

from .. import __version__
from . import classify, export, models, training
from .common import EXIT_CODES, EXIT_USAGE, exit_codes_text, run_command

__all__ = ["EXIT_CODES", "GROUPS", "build_parser", "command_names", "main", "wants_cli"]

# Modules with add_commands(subparsers), in --help's order.
GROUPS = (models, classify, training, export)
_GLOBAL_OPTIONS = ("-h", "--help", "-V", "--version")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="effnet-app",
        description="Classify images with EfficientNet and train your own classes.\nRun "
        "`effnet-app-gui` (or `python -m effnet_app` with no arguments) for the window.",
        epilog=exit_codes_text(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("-V", "--version", action="version", version=f"effnet-app {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for group in GROUPS:
        group.add_commands(sub)
    return parser


def command_names(parser: argparse.ArgumentParser | None = None) -> tuple[str, ...]:
    """The subcommands the parser knows, read from the parser itself."""
    parser = parser or build_parser()
    for action in parser._actions:  # argparse keeps its subparsers action only here
        if isinstance(action, argparse._SubParsersAction):
            return tuple(action.choices)
    return ()


def wants_cli(argv: list[str]) -> bool:
    """True when ``python -m effnet_app`` should run the command line, not the window."""
    return bool(argv) and (argv[0] in _GLOBAL_OPTIONS or argv[0] in command_names())


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return EXIT_USAGE
    return run_command(args.func, args)
