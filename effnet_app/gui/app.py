"""Start the window: QApplication, logging, the exception hook, then the main window.

Nothing here imports torch: the window is on screen before the first model loads.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import sys
import time
from importlib import resources
from logging.handlers import RotatingFileHandler

from PySide6.QtCore import Qt, QTimer
from PySide6.QtGui import QGuiApplication, QIcon
from PySide6.QtWidgets import QApplication, QWidget

from .. import APP_DISPLAY_NAME, APP_NAME, ORG_NAME, __version__
from ..core import paths

log = logging.getLogger("effnet_app")

# For tests and benchmarks/startup.py: print one JSON line when the window is shown,
# and optionally quit right after.
PROBE_ENV = "EFFNET_APP_STARTUP_PROBE"
QUIT_AFTER_SHOW_ENV = "EFFNET_APP_QUIT_AFTER_SHOW"


def setup_logging(level: int = logging.INFO) -> None:
    """Everything at INFO and above goes to a rotating file in the log folder."""
    root = logging.getLogger()
    if any(getattr(h, "_effnet_app", False) for h in root.handlers):
        return
    handler = RotatingFileHandler(
        paths.log_file(), maxBytes=2_000_000, backupCount=3, encoding="utf-8"
    )
    handler._effnet_app = True  # type: ignore[attr-defined]
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root.addHandler(handler)
    root.setLevel(min(root.level or level, level))


def app_icon() -> QIcon:
    icon = QIcon()
    assets = resources.files("effnet_app.assets")
    for size in (16, 32, 48, 64, 128, 256, 512):
        candidate = assets / f"icon-{size}.png"
        if candidate.is_file():
            icon.addFile(str(candidate))
    return icon


def create_application(argv: list[str] | None = None) -> QApplication:
    existing = QApplication.instance()
    if isinstance(existing, QApplication):
        return existing
    # Fractional scale factors (150%, 175%) render at their true size, not rounded.
    QGuiApplication.setHighDpiScaleFactorRoundingPolicy(
        Qt.HighDpiScaleFactorRoundingPolicy.PassThrough
    )
    app = QApplication([sys.argv[0] if sys.argv else APP_NAME, *(argv or [])])
    app.setApplicationName(APP_NAME)
    app.setApplicationDisplayName(APP_DISPLAY_NAME)
    app.setOrganizationName(ORG_NAME)
    app.setApplicationVersion(__version__)
    app.setDesktopFileName("effnet-app")
    app.setWindowIcon(app_icon())
    return app


class ExceptionHook:
    """``sys.excepthook``: log the traceback, show the error dialog, keep the app alive."""

    def __init__(self, parent_getter=lambda: None) -> None:
        self._parent_getter = parent_getter
        self._showing = False
        self.previous = sys.excepthook

    def __call__(self, exc_type, exc, tb) -> None:
        if issubclass(exc_type, KeyboardInterrupt):
            QApplication.quit()
            return
        log.error("Unhandled exception", exc_info=(exc_type, exc, tb))
        if exc.__traceback__ is None:
            exc = exc.with_traceback(tb)
        if self._showing:  # an error inside the dialog must not open dialogs forever
            return
        self._showing = True
        try:
            from .widgets.error_dialog import ErrorDialog

            ErrorDialog(exc, self._parent_getter()).exec()
        finally:
            self._showing = False

    def install(self) -> ExceptionHook:
        sys.excepthook = self
        return self


def _install_signal_handlers(app: QApplication) -> QTimer:
    """Ctrl+C and SIGTERM close the window cleanly; the timer lets Python see signals."""

    def on_signal(*_):
        for widget in app.topLevelWidgets():
            widget.close()
        app.quit()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    timer = QTimer()
    timer.start(200)
    timer.timeout.connect(lambda: None)
    return timer


def _announce_shown(window: QWidget, started: float) -> None:
    if os.environ.get(PROBE_ENV):
        print(
            json.dumps(
                {
                    "event": "window_shown",
                    "visible": window.isVisible(),
                    "torch_loaded": "torch" in sys.modules,
                    "seconds_in_main": round(time.perf_counter() - started, 4),
                }
            ),
            flush=True,
        )
    if os.environ.get(QUIT_AFTER_SHOW_ENV):
        window.close()


def main(argv: list[str] | None = None) -> int:
    started = time.perf_counter()
    argv = list(sys.argv[1:] if argv is None else argv)
    setup_logging()
    app = create_application()
    from .main_window import MainWindow
    from .workers import stop_all

    shown: list[QWidget] = []
    # Queued before the window exists, so it runs on the event loop's first turn ahead of
    # the window's own first jobs (the model list, which imports torch on a worker).
    QTimer.singleShot(0, lambda: _announce_shown(shown[0], started))
    window = MainWindow()
    hook = ExceptionHook(lambda: window).install()
    timer = _install_signal_handlers(app)
    window.show()
    shown.append(window)
    files = [a for a in argv if not a.startswith("-")]
    if files:
        QTimer.singleShot(0, lambda: window.receive_paths(files))
    log.info("effnet_app %s started", __version__)
    code = app.exec()
    timer.stop()
    sys.excepthook = hook.previous
    if not stop_all():
        # A job is stuck in a call that cannot be interrupted (an import, a driver call).
        # Ending the interpreter under it would abort; end the process directly instead.
        log.warning("a background job did not stop in time; exiting without waiting")
        logging.shutdown()
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    return code


if __name__ == "__main__":
    sys.exit(main())
