"""Entry point of the PyInstaller build (packaging/effnet_app.spec).

With no arguments, or with image paths (a file manager's "Open with"), it opens the window:
effnet_app.gui.app:main. Given one of the command-line subcommands (``classify``,
``models``, ``paths``, ...) it runs that instead, like ``python -m effnet_app``; this lets a
terminal check that the bundled torch and weights work: ``effnet-app paths``.
"""

from __future__ import annotations

import multiprocessing
import os
import sys


def _ensure_std_streams() -> None:
    # A windowed (console=False) build on Windows starts with sys.stdout/stderr set to None;
    # anything that writes to them (a library's warning, a stray print) would then raise.
    for name in ("stdout", "stderr"):
        if getattr(sys, name) is None:
            setattr(sys, name, open(os.devnull, "w", encoding="utf-8"))


def main() -> int:
    multiprocessing.freeze_support()  # data-loader workers re-run this executable
    _ensure_std_streams()
    argv = sys.argv[1:]
    from effnet_app import cli

    if cli.wants_cli(argv):
        return cli.main(argv)
    from effnet_app.gui.app import main as gui_main

    return gui_main(argv)


if __name__ == "__main__":
    sys.exit(main())
