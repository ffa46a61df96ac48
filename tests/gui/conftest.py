"""GUI test plumbing: let every background job end before the interpreter does."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session", autouse=True)
def _jobs_end_before_exit():
    """A window starts jobs (the model list imports torch) that a test may not wait for;
    a QThread still running when Python exits aborts the process, so wait here."""
    yield
    from PySide6.QtGui import QGuiApplication

    from effnet_app.gui.workers import stop_all

    # Data a test put on the clipboard would be freed after QApplication is gone: a crash.
    if QGuiApplication.instance() is not None:
        QGuiApplication.clipboard().clear()
    assert stop_all(timeout_ms=120_000), "a background job did not end"
