"""The command line: the same jobs as the window, headless.

Exit codes: 0 success, 1 some files had problems, 2 bad usage, missing model or device.
Heavy modules (torch) are imported inside the commands, so ``--help`` is instant.
"""

from __future__ import annotations

import argparse
import os
import sys

from . import __version__

EXIT_OK, EXIT_PROBLEMS, EXIT_USAGE = 0, 1, 2


def _cmd_paths(args: argparse.Namespace) -> int:
    from .core import about

    print(about.report())
    return EXIT_OK


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="effnet-app",
        description="Classify images with EfficientNet and train your own classes. "
        "Run `effnet-app-gui` (or `python -m effnet_app` with no arguments) for the window.",
    )
    parser.add_argument("-V", "--version", action="version", version=f"effnet-app {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    p = sub.add_parser("paths", help="show versions and the folders the app uses")
    p.set_defaults(func=_cmd_paths)
    from . import cli_engine

    cli_engine.add_commands(sub)
    return parser


COMMANDS = ("paths", "models", "download", "import-weights", "classify")


def wants_cli(argv: list[str]) -> bool:
    """True when ``python -m effnet_app`` should run the command line, not the window."""
    return bool(argv) and (argv[0] in COMMANDS or argv[0] in ("-h", "--help", "-V", "--version"))


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return EXIT_USAGE
    from .core.errors import AppError

    try:
        code = int(args.func(args))
        sys.stdout.flush()  # here, so a closed pipe is caught below, not at exit
        return code
    except AppError as exc:
        print(f"effnet-app: {exc.sentence}", file=sys.stderr)
        return EXIT_USAGE
    except BrokenPipeError:
        # The reader stopped early (`effnet-app classify DIR | head`): as other tools do,
        # stop quietly; pointing stdout at devnull keeps the exit flush from complaining.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141  # what a shell reports for a command ended by SIGPIPE
    except KeyboardInterrupt:
        print("effnet-app: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
