"""Driving the main window as a user would: drops, and waiting for runs to end."""

from __future__ import annotations

from PySide6.QtCore import QMimeData, QPointF, Qt, QUrl
from PySide6.QtGui import QDropEvent

WAIT = 120_000  # ms: generous, for a loaded 2-core machine


def drop(window, paths) -> None:
    """Files or folders dropped on the window, through its real dropEvent."""
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(p)) for p in paths])
    event = QDropEvent(
        QPointF(20, 20),
        Qt.DropAction.CopyAction,
        mime,
        Qt.MouseButton.LeftButton,
        Qt.KeyboardModifier.NoModifier,
    )
    window.dropEvent(event)


def classify_and_wait(qtbot, window, paths) -> dict:
    """Drop ``paths``, wait for the run to finish; file name -> ImageResult."""
    with qtbot.waitSignal(window.controller.run_finished, timeout=WAIT):
        drop(window, paths)
    return {r.path.name: r for r in window.results.all_results()}
