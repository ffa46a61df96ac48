"""The main window's menus and the dialogs they open (weights, paste, theme).

Kept apart from main_window.py so the window stays layout and wiring.
"""

from __future__ import annotations

import itertools
import os
import time
from pathlib import Path

from PySide6.QtCore import QBuffer, QByteArray, QIODevice
from PySide6.QtGui import QAction, QGuiApplication, QImage, QKeySequence
from PySide6.QtWidgets import QFileDialog, QInputDialog

from ..core import fsutil, paths
from ..core.errors import AppError
from ..core.jobs import Progress
from ..core.models.weights import MIRROR_ENV
from ..core.runtime import session
from . import output_actions
from .theme import THEMES, apply_theme
from .widgets.download_dialog import DownloadDialog
from .widgets.drop_overlay import paths_from_mime
from .workers import Worker


def _action(window, menu, text: str, shortcut, slot, tip: str = "") -> QAction:
    action = QAction(text, window)
    if shortcut:
        action.setShortcut(QKeySequence(shortcut))
    if tip:
        action.setStatusTip(tip)
    action.triggered.connect(slot)
    menu.addAction(action)
    return action


def build_menus(w) -> None:
    bar = w.menuBar()
    m = bar.addMenu("&File")
    w.open_images_action = _action(
        w, m, "&Open images…", QKeySequence.StandardKey.Open, w.open_images
    )
    w.open_folder_action = _action(w, m, "Open &folder…", "Ctrl+Shift+O", w.open_folder)
    w.paste_action = _action(
        w,
        m,
        "&Paste images",
        QKeySequence.StandardKey.Paste,
        lambda: paste(w),
        "Classify files or an image from the clipboard",
    )
    m.addSeparator()
    w.export_action = _action(
        w, m, "&Export results…", "Ctrl+E", lambda: output_actions.export_results(w)
    )
    w.sort_action = _action(
        w, m, "&Sort into folders…", "Ctrl+Shift+S", lambda: output_actions.sort_into_folders(w)
    )
    m.addSeparator()
    w.quit_action = _action(w, m, "&Quit", "Ctrl+Q", w.close)

    m = bar.addMenu("&Classify")
    w.cancel_action = _action(w, m, "&Cancel", "Esc", w.cancel_run, "Stop the running job")
    w.again_action = _action(w, m, "Classify &again", "F5", w.classify_again)
    w.clear_action = _action(w, m, "C&lear results", "Ctrl+L", lambda: clear_results(w))

    m = bar.addMenu("&Model")
    w.about_model_action = _action(
        w, m, "&About this model", "F2", lambda: w.side_tabs.setCurrentWidget(w.about_model)
    )
    w.import_weights_action = _action(
        w, m, "&Import weights file…", "Ctrl+I", lambda: import_weights(w, w.model_key)
    )
    w.mirror_action = _action(w, m, "Download &mirror…", "Ctrl+Shift+M", lambda: set_mirror(w))

    m = bar.addMenu("&View")
    theme_menu = m.addMenu("&Theme")
    w.theme_actions = {}
    for name in THEMES:
        action = _action(
            w, theme_menu, name.capitalize(), "", lambda _=False, n=name: set_theme(w, n)
        )
        action.setCheckable(True)
        action.setChecked(name == str(w.settings.value("theme", "system")))
        w.theme_actions[name] = action

    m = bar.addMenu("&Help")
    w.about_action = _action(w, m, "&About", "F1", w.show_about)
    w.log_action = _action(
        w, m, "Show &log folder", "Ctrl+Shift+L", lambda: open_folder(paths.log_dir())
    )


def clear_results(w) -> None:
    w.controller.discard()  # its "Cancelled: …" must not replace "Ready" below
    w.run_status.set_running(False)
    w.run_status.show_text("")
    w.results.clear()
    w.preview.show_result(None)
    w.controller.last_paths = []
    w.stack.setCurrentWidget(w.empty_state)
    w.status_label.setText("Ready")


def set_theme(w, name: str) -> None:
    w.settings.setValue("theme", name)
    for key, action in w.theme_actions.items():
        action.setChecked(key == name)
    apply_theme(name)


def open_folder(folder: Path) -> None:
    from PySide6.QtCore import QUrl
    from PySide6.QtGui import QDesktopServices

    QDesktopServices.openUrl(QUrl.fromLocalFile(str(folder)))


# ---------------------------------------------------------------------- paste


def paste(w) -> None:
    """Files copied in a file manager, or an image copied from a browser or editor."""
    mime = QGuiApplication.clipboard().mimeData()  # None when the clipboard is empty
    found = paths_from_mime(mime) if mime is not None else []
    if found:
        w.receive_paths(found)
        return
    image = QGuiApplication.clipboard().image()
    if image.isNull():
        w.message_bar.show_message(
            "The clipboard holds no image or image files to classify.", "info"
        )
        return
    worker = Worker(save_pasted_job, image, paths.data_dir() / "pasted", parent=w)
    worker.finished.connect(lambda target: w.receive_paths([str(target)]))
    worker.errored.connect(w.show_problem)
    w.paste_worker = worker
    worker.start()


def save_pasted_job(image: QImage, folder: Path, cancel):
    """Worker job: the clipboard image as a PNG under a name no other paste has.

    Encoding a large screenshot takes a moment, so it happens off the GUI thread; the
    name is reserved with an exclusive create first, so two quick pastes never share it.
    """
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


# ---------------------------------------------------------------------- weights


def mirror_url(w) -> str | None:
    return str(w.settings.value("weights/mirror", "") or os.environ.get(MIRROR_ENV, "")) or None


def weights_actions(w, key: str) -> list:
    return [
        ("Retry", lambda: w.choose_model(key)),
        ("Use a mirror…", lambda: set_mirror(w, retry_key=key)),
        ("Import file…", lambda: import_weights(w, key)),
    ]


def download_weights(w, key: str) -> bool:
    """Download ``key``'s weights with a progress dialog; on failure say so in the bar."""
    info = w.catalog.model(key) if w.catalog else None
    name = info.name if info else key
    dialog = DownloadDialog(key, name, mirror_url(w), w)
    w.download_dialog = dialog
    dialog.exec()
    w.download_dialog = None
    if dialog.path is not None:
        w.mark_available(key)
        w.message_bar.show_message(f"{name} is ready: its weights were saved.", "info")
        return True
    if dialog.error is not None:
        w.show_problem(dialog.error, key)
    elif dialog.cancelled:
        w.message_bar.show_message(f"Download of {name} cancelled; nothing was kept.", "info")
    return False


def set_mirror(w, retry_key: str | None = None) -> None:
    current = str(w.settings.value("weights/mirror", "") or "")
    text, ok = QInputDialog.getText(
        w,
        "Download mirror",
        "Base URL of a server that holds torchvision's weight files under their usual names\n"
        "(leave empty to download from the original address):",
        text=current,
    )
    if not ok:
        return
    w.settings.setValue("weights/mirror", text.strip())
    if retry_key:
        w.choose_model(retry_key)


def import_weights(w, key: str) -> None:
    file, _ = QFileDialog.getOpenFileName(
        w, "Import weights file", w._last_folder(), "PyTorch weights (*.pth *.pt);;All files (*)"
    )
    if file:
        start_import(w, key, file)


def start_import(w, key: str, file: str) -> Worker:
    worker = Worker(session.import_file, key, file, parent=w)
    w.status_label.setText(f"Checking {Path(file).name}…")

    def done(_path) -> None:
        w.status_label.setText(f"Imported {Path(file).name}")
        w.mark_available(key)
        w.message_bar.show_message(f"Imported {Path(file).name}; the model is ready.", "info")
        w.choose_model(key)

    def failed(exc) -> None:  # "Checking …" must not stay in the status bar
        w.status_label.setText(f"Could not import {Path(file).name}")
        w.show_problem(exc, key)

    worker.finished.connect(done)
    worker.errored.connect(failed)
    w.import_worker = worker
    worker.start()
    return worker
