"""Edit › Paste: files copied in a file manager, or an image copied from another app.

A clipboard image is encoded and saved as a PNG in a Worker (a large screenshot takes a
moment), under a name reserved first, so two quick pastes never share one.
"""

from __future__ import annotations

import itertools
import os
import time
from pathlib import Path

from PySide6.QtCore import QBuffer, QByteArray, QIODevice, QObject, Signal
from PySide6.QtGui import QClipboard, QGuiApplication, QImage

from ...core import fsutil
from ...core.errors import AppError
from ...core.jobs import Progress
from ..widgets.drop_overlay import paths_from_mime
from .single_job import SingleJob


class PasteController(QObject):
    paths_pasted = Signal(object)  # list[str]: files and folders that were on the clipboard
    paste_saved = Signal(object)  # Path of the clipboard image, saved as a PNG
    paste_failed = Signal(object)  # the exception
    nothing_pasted = Signal()  # the clipboard held no image and no files

    def __init__(self, folder: Path, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.folder = folder
        self._job = SingleJob(self)

    @property
    def running(self) -> bool:
        return self._job.running

    def paste(self, clipboard: QClipboard | None = None) -> None:
        clipboard = clipboard or QGuiApplication.clipboard()
        mime = clipboard.mimeData()  # None when the clipboard is empty
        found = paths_from_mime(mime) if mime is not None else []
        if found:
            self.paths_pasted.emit(found)
            return
        image = clipboard.image()
        if image.isNull():
            self.nothing_pasted.emit()
            return
        # A paste while the last one is still being saved is dropped: it is the same key
        # press repeated, and the first one's image is on its way.
        self._job.start(
            save_pasted_job,
            image,
            self.folder,
            on={"returned": self.paste_saved.emit, "errored": self.paste_failed.emit},
        )


def save_pasted_job(image: QImage, folder: Path, cancel):
    """Worker job: the clipboard image as a PNG under a name no other paste has."""
    yield Progress(0, 1, "Saving the pasted image…")
    folder.mkdir(parents=True, exist_ok=True)
    stem = time.strftime("clipboard-%Y%m%d-%H%M%S")
    for n in itertools.count(1):
        target = folder / (f"{stem}.png" if n == 1 else f"{stem} ({n}).png")
        try:
            os.close(os.open(target, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
            break
        except FileExistsError:
            continue
    data = QByteArray()
    buffer = QBuffer(data)
    buffer.open(QIODevice.OpenModeFlag.WriteOnly)
    if not image.save(buffer, "PNG"):
        target.unlink(missing_ok=True)
        raise AppError("The pasted image could not be encoded as PNG. Save it to a file first.")
    cancel.raise_if_cancelled()
    fsutil.atomic_write(target, bytes(data.data()))
    return target
