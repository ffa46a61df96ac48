"""Model › Export…: the model in use written as ONNX into a folder of the user's, with
real Workers and the session's real, checked export of Lite0 (``lite0_export``: made
once, ~30 s); Cancel leaves nothing behind; a model without weights says why."""

from __future__ import annotations

from pathlib import Path

import pytest
from exports import install_export
from PySide6.QtCore import QUrl
from PySide6.QtGui import QDesktopServices
from PySide6.QtWidgets import QFileDialog
from window_driver import WAIT

from effnet_app.core.runtime import choices
from effnet_app.gui.main_window import MainWindow
from effnet_app.gui.widgets.export_dialog import EXPORTS_FOLDER, ExportDialog, default_folder

EXPORT_WAIT = 300_000  # ms: export, then every installed runtime checks it
FILES = {"model.onnx", "labels.txt", "preprocessing.json", "README.md"}

needs_onnxruntime = pytest.mark.skipif(
    "onnxruntime" not in choices.installed_runtimes(), reason="checks the ONNX Runtime line"
)


def open_window(qtbot) -> MainWindow:
    w = MainWindow()
    qtbot.addWidget(w)
    with qtbot.waitSignal(w.catalog_loaded, timeout=WAIT):
        w.show()
    return w


def open_dialog(w) -> ExportDialog:
    w.menu_actions.export_model.trigger()
    dialog = w.export_dialog
    assert dialog is not None and dialog.isVisible() and dialog.key == w.model_key
    return dialog


def test_the_dialog_offers_the_formats_and_a_folder_named_after_the_model(
    qtbot, tmp_path, monkeypatch
):
    w = open_window(qtbot)
    dialog = open_dialog(w)
    assert dialog.windowTitle() == f"Export {w._model_name()}"
    home = Path.home()
    assert (
        dialog.folder() == home / EXPORTS_FOLDER / "lite0-onnx" == default_folder("lite0", "onnx")
    )
    installed = choices.installed_runtimes()
    assert dialog.format_buttons["openvino"].isEnabled() is ("openvino" in installed)
    if "openvino" in installed:
        dialog.set_format("openvino")  # the default folder follows the format
        assert dialog.folder() == home / EXPORTS_FOLDER / "lite0-openvino"
        dialog.set_format("onnx")
    assert default_folder("user:my pets", "onnx", tmp_path) == tmp_path / EXPORTS_FOLDER / (
        "my pets-onnx"
    )
    monkeypatch.setattr(
        QFileDialog, "getExistingDirectory", staticmethod(lambda *a, **k: str(tmp_path))
    )
    dialog.choose_button.click()  # a new folder named after the model, inside the one chosen
    assert dialog.folder() == tmp_path / "lite0-onnx"
    if "openvino" in installed:
        dialog.set_format("openvino")  # a folder the user chose stays
        assert dialog.folder() == tmp_path / "lite0-onnx"
    assert not dialog.cancel_button.isVisible() and not dialog.show_button.isVisible()
    assert w.export_model() is dialog  # one dialog, raised again


@pytest.mark.slow
@needs_onnxruntime
def test_export_writes_a_checked_folder_and_shows_the_agreement(
    qtbot, tmp_path, monkeypatch, lite0_export
):
    install_export(lite0_export)  # the session's one real export, checked: copied from it
    w = open_window(qtbot)
    dialog = open_dialog(w)
    dialog.set_folder(tmp_path / "exports" / "lite0-onnx")
    messages = []
    w.exporter.export_progressed.connect(lambda p: messages.append(dialog.detail.text()))
    with qtbot.waitSignal(w.exporter.export_started, timeout=WAIT):
        dialog.export_button.click()
    assert dialog.cancel_button.isVisible() and not dialog.export_button.isEnabled()
    assert dialog.bar.isVisible() and not dialog.folder_edit.isEnabled()
    with qtbot.waitSignal(w.exporter.export_ended, timeout=EXPORT_WAIT):
        pass
    assert dialog.error is None, dialog.message_bar.text.text()
    info = dialog.info
    folder = tmp_path / "exports" / "lite0-onnx"
    assert Path(info.folder) == folder
    assert FILES <= {p.name for p in folder.iterdir()}
    labels = (folder / "labels.txt").read_text(encoding="utf-8").splitlines()
    assert len(labels) == 1000 and labels[967] == "espresso"
    assert any(m.startswith("Exported EfficientNet-Lite0 to") for m in messages), messages
    text = dialog.result.text()
    assert info.agreements and all(a.passes() for a in info.agreements)
    for agreement in info.agreements:
        assert agreement.describe() in text
    assert "onnxruntime fp32: top-1 agrees on" in text
    assert dialog.result.isVisible() and not dialog.cancel_button.isVisible()
    assert dialog.export_button.isEnabled() and dialog.show_button.isVisible()
    opened = []
    monkeypatch.setattr(QDesktopServices, "openUrl", staticmethod(opened.append))
    dialog.show_button.click()
    assert opened == [QUrl.fromLocalFile(str(folder))]


@needs_onnxruntime
def test_cancel_stops_the_export_and_leaves_no_folder(qtbot, tmp_path):
    w = open_window(qtbot)
    dialog = open_dialog(w)
    folder = tmp_path / "lite0-onnx"
    dialog.set_folder(folder)
    seen = []

    def cancel_once_the_core_works(progress) -> None:
        seen.append(progress.message)
        if len(seen) == 2:  # the export job's own first step: the folder is made by now
            dialog.cancel_button.click()

    w.exporter.export_progressed.connect(cancel_once_the_core_works)
    with qtbot.waitSignal(w.exporter.export_cancelled, timeout=EXPORT_WAIT):
        dialog.export_button.click()
    qtbot.waitUntil(lambda: not w.exporter.running, timeout=WAIT)
    assert len(seen) == 2 and not folder.exists()
    assert dialog.detail.text() == "Export cancelled; nothing was kept."
    assert dialog.info is None and dialog.export_button.isEnabled()
    assert not dialog.cancel_button.isVisible() and not dialog.show_button.isVisible()


def test_a_model_without_weights_says_why(qtbot, tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))  # no weights cached there
    w = open_window(qtbot)
    w.model_key = "b3"  # chosen last time; its weights were never downloaded
    dialog = open_dialog(w)
    dialog.set_folder(tmp_path / "b3-onnx")
    with qtbot.waitSignal(w.exporter.export_failed, timeout=WAIT):
        dialog.export_button.click()
    qtbot.waitUntil(lambda: not w.exporter.running, timeout=WAIT)
    assert dialog.message_bar.level == "error"
    assert "not on this computer yet" in dialog.message_bar.text.text()
    assert not (tmp_path / "b3-onnx").exists() and dialog.export_button.isEnabled()


def test_closing_the_dialog_cancels_its_export(qtbot, tmp_path):
    w = open_window(qtbot)
    dialog = open_dialog(w)
    dialog.set_folder(tmp_path / "lite0-onnx")
    with qtbot.waitSignal(w.exporter.export_cancelled, timeout=EXPORT_WAIT):
        dialog.export_button.click()
        dialog.close_button.click()
    assert not dialog.isVisible() and not (tmp_path / "lite0-onnx").exists()


def test_formats_without_a_runtime_to_check_them_are_greyed_out(qtbot, monkeypatch):
    w = open_window(qtbot)
    monkeypatch.setattr(choices, "installed_runtimes", lambda: {"onnxruntime": "1"})
    dialog = ExportDialog(w.exporter, "lite0", "EfficientNet-Lite0", w)
    qtbot.addWidget(dialog)
    onnx, openvino = dialog.format_buttons["onnx"], dialog.format_buttons["openvino"]
    assert onnx.isEnabled() and onnx.isChecked() and dialog.export_button.isEnabled()
    assert not openvino.isEnabled() and "pip install openvino" in openvino.toolTip()
    monkeypatch.setattr(choices, "installed_runtimes", lambda: {})
    dialog = ExportDialog(w.exporter, "lite0", "EfficientNet-Lite0", w)
    qtbot.addWidget(dialog)
    assert not dialog.format_buttons["onnx"].isEnabled() and not dialog.export_button.isEnabled()
    assert dialog.format_buttons["onnx"].toolTip() == (
        "Needs ONNX Runtime or OpenVINO to check the export, and neither is installed here: "
        "pip install onnxruntime"
    )
