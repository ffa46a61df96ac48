"""GUI test plumbing: let every background job end before the interpreter does."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from window_driver import WAIT


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


@pytest.fixture
def window(qtbot):
    """The main window, shown, with its model list loaded."""
    from effnet_app.gui.main_window import MainWindow

    w = MainWindow()
    qtbot.addWidget(w)
    with qtbot.waitSignal(w.catalog_loaded, timeout=WAIT):
        w.show()
    yield w
    w.cancel_run()


@pytest.fixture
def photo_folder(sample_photos, tmp_path) -> Path:
    """Three real photos and one text file named .jpg."""
    folder = tmp_path / "photos"
    folder.mkdir()
    for name in ("coffee", "chelsea", "camera"):
        shutil.copy(sample_photos[name], folder / f"{name}.jpg")
    (folder / "readme.jpg").write_text("I am not a picture")
    return folder
