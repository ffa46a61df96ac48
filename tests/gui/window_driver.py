"""Driving the main window as a user would: drops, and waiting for runs to end."""

from __future__ import annotations

import os
from urllib.parse import quote_from_bytes

from PySide6.QtCore import QCoreApplication, QEvent, QMimeData, QPointF, Qt, QUrl
from PySide6.QtGui import QDropEvent

WAIT = 120_000  # ms: generous, for a loaded 2-core machine


def file_url(path) -> QUrl:
    """A file:// URL of ``path`` as a file manager writes it: the name's bytes, percent-
    encoded (``QUrl.fromLocalFile`` would lose the bytes of a name that is not UTF-8)."""
    raw = os.fsencode(os.path.abspath(path))
    return QUrl.fromEncoded(b"file://" + quote_from_bytes(raw).encode("ascii"))


def drop(window, paths) -> None:
    """Files or folders dropped on the window, through its real dropEvent."""
    mime = QMimeData()
    mime.setUrls([file_url(p) for p in paths])
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


def deliver_posted_events() -> None:
    """Deliver what is queued for the GUI thread now (queued signals), then deferred
    deletes: a point where "nothing more has arrived" means nothing more will, once the
    thread that could send it has ended."""
    QCoreApplication.sendPostedEvents()
    QCoreApplication.sendPostedEvents(None, QEvent.Type.DeferredDelete)
