"""The exception hook, the error dialog, and the window shell."""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path

from PySide6.QtCore import QMimeData, QPointF, Qt, QUrl
from PySide6.QtGui import QDropEvent
from PySide6.QtWidgets import QApplication
from window_driver import file_url

from effnet_app.core.errors import WeightsError
from effnet_app.gui import app as gui_app
from effnet_app.gui.main_window import MainWindow
from effnet_app.gui.widgets.drop_overlay import paths_from_mime
from effnet_app.gui.widgets.error_dialog import ErrorDialog


def _raise_and_hook(hook, exc):
    try:
        raise exc
    except type(exc):
        hook(*sys.exc_info())


def test_excepthook_shows_dialog_and_logs(qtbot, monkeypatch, app_home):
    gui_app.setup_logging()
    shown = []
    monkeypatch.setattr(ErrorDialog, "exec", lambda self: shown.append(self) or 0)
    hook = gui_app.ExceptionHook()
    _raise_and_hook(hook, ZeroDivisionError("boom in a slot"))
    assert len(shown) == 1
    dialog = shown[0]
    assert "ZeroDivisionError" in dialog.text()
    assert str(app_home) in dialog.informativeText()  # says where the log is
    assert "Traceback" in dialog.details and "PyTorch" in dialog.details and "GPU" in dialog.details
    for handler in logging.getLogger().handlers:
        handler.flush()
    text = (app_home / "logs" / "effnet_app.log").read_text()
    assert "Unhandled exception" in text and "boom in a slot" in text and "Traceback" in text


def test_dialog_shows_the_app_error_sentence_and_copies_details(qtbot):
    err = WeightsError("Could not download B3. Retry, or set a mirror.")
    dialog = ErrorDialog(err)
    qtbot.addWidget(dialog)
    assert dialog.text() == err.sentence
    dialog.copy_button.click()
    assert QApplication.clipboard().text() == dialog.details


def test_window_remembers_geometry(qtbot):
    first = MainWindow()
    qtbot.addWidget(first)
    first.show()
    first.setGeometry(10, 30, 780, 540)  # inside the offscreen 800x600 screen
    first.close()
    second = MainWindow()
    qtbot.addWidget(second)
    assert (second.width(), second.height()) == (780, 540)


def test_drop_of_files_and_folders_emits_paths(qtbot, tmp_path: Path):
    window = MainWindow()
    qtbot.addWidget(window)
    window.show()
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(tmp_path)), QUrl.fromLocalFile(str(tmp_path / "a.jpg"))])
    event = QDropEvent(
        QPointF(10, 10),
        Qt.DropAction.CopyAction,
        mime,
        Qt.MouseButton.LeftButton,
        Qt.KeyboardModifier.NoModifier,
    )
    with qtbot.waitSignal(window.paths_received) as blocker:
        window.dropEvent(event)
    assert blocker.args[0] == [str(tmp_path), str(tmp_path / "a.jpg")]


def test_about_lists_versions_and_folders(qtbot, app_home):
    window = MainWindow()
    qtbot.addWidget(window)
    text = window.about_text()
    assert "PyTorch" in text and str(app_home) in text
    assert window.menu_actions.quit.shortcut().toString() == "Ctrl+Q"


def test_a_dropped_name_that_is_not_utf8_keeps_its_bytes(qtbot, tmp_path: Path):
    odd = tmp_path / os.fsdecode(b"caf\xe9.png")
    mime = QMimeData()
    mime.setUrls([file_url(odd)])  # file:///…/caf%E9.png, as a file manager writes it
    assert paths_from_mime(mime) == [str(odd)]
