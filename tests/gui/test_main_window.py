"""The main window driven like a user would, with real workers and the real Lite0 weights."""

from __future__ import annotations

import shutil

import pytest
import torch
from loopback import LoopbackServer
from PySide6.QtCore import QMimeData, QUrl
from PySide6.QtGui import QGuiApplication, QImage
from served_weights import point_spec_at, random_weights
from window_driver import WAIT, classify_and_wait, drop

from effnet_app.core.models import weights, zoo
from effnet_app.core.runtime import results_io
from effnet_app.gui import menus, output_actions
from effnet_app.gui.main_window import MainWindow
from effnet_app.gui.settings import app_settings
from effnet_app.gui.widgets.download_dialog import DownloadDialog

CATS = {"tabby", "tiger cat", "Egyptian cat", "Persian cat"}


def test_drop_folder_fills_table_with_expected_labels(qtbot, window, photo_folder):
    rows = classify_and_wait(qtbot, window, [photo_folder])
    assert set(rows) == {"coffee.jpg", "chelsea.jpg", "camera.jpg", "readme.jpg"}
    assert rows["coffee.jpg"].top1.label == "espresso"
    assert rows["chelsea.jpg"].top1.label in CATS
    assert rows["camera.jpg"].top1.label == "tripod"
    assert "not an image" in rows["readme.jpg"].problem
    assert window.results.summary.counts()["espresso"] == 1
    assert "3 classified, 1 with problems" in window.status_label.text()
    assert window.stack.currentWidget() is window.main_split


def test_second_drop_cancels_first_and_no_stale_rows(qtbot, window, sample_photos, tmp_path):
    first, second = tmp_path / "first", tmp_path / "second"
    first.mkdir(), second.mkdir()
    for i in range(60):
        shutil.copy(sample_photos["coffee"], first / f"old_{i:02d}.jpg")
    for i in range(3):
        shutil.copy(sample_photos["chelsea"], second / f"new_{i}.jpg")
    with qtbot.waitSignal(window.controller.batch_arrived, timeout=WAIT):
        drop(window, [first])
    first_worker = window.controller.worker
    with qtbot.waitSignal(window.controller.run_finished, timeout=WAIT):
        drop(window, [second])
    qtbot.waitUntil(lambda: first_worker.is_done, timeout=WAIT)
    qtbot.wait(200)
    names = sorted(r.path.name for r in window.results.all_results())
    assert names == ["new_0.jpg", "new_1.jpg", "new_2.jpg"]


def test_escape_cancels_within_a_batch(qtbot, window, sample_photos, tmp_path):
    for i in range(80):
        shutil.copy(sample_photos["camera"], tmp_path / f"c{i:02d}.jpg")
    with qtbot.waitSignal(window.controller.batch_arrived, timeout=WAIT):
        drop(window, [tmp_path])
    assert window.cancel_action.shortcut().toString() == "Esc"
    with qtbot.waitSignal(window.controller.run_cancelled, timeout=WAIT):
        window.cancel_action.trigger()
    assert window.results.count() < 80
    assert "Cancelled" in window.status_label.text()


def test_export_round_trips_and_sort_never_overwrites(qtbot, window, photo_folder, tmp_path):
    classify_and_wait(qtbot, window, [photo_folder])
    shown = window.results.all_results()
    for fmt in ("csv", "json"):
        path = output_actions.write_export(window, tmp_path / f"out.{fmt}", fmt)
        back = results_io.read_results(path)
        assert [r.path for r in back] == [r.path for r in shown]
        for a, b in zip(back, shown, strict=True):
            assert a.problem == b.problem
            assert [p.label for p in a.predictions] == [p.label for p in b.predictions]
            for pa, pb in zip(a.predictions, b.predictions, strict=True):
                assert pa.probability == pytest.approx(pb.probability, abs=1e-6)
    dest = tmp_path / "sorted"
    (dest / "espresso").mkdir(parents=True)
    (dest / "espresso" / "coffee.jpg").write_bytes(b"an older file that must survive")
    worker = output_actions.start_sort(window, dest, move=False, min_confidence=None)
    with qtbot.waitSignal(worker.finished, timeout=WAIT) as blocker:
        pass
    summary = blocker.args[0]
    assert (dest / "espresso" / "coffee.jpg").read_bytes() == b"an older file that must survive"
    assert (dest / "espresso" / "coffee (2).jpg").read_bytes() == (
        photo_folder / "coffee.jpg"
    ).read_bytes()
    assert (dest / "tripod" / "camera.jpg").is_file()
    assert summary.copied == 3 and summary.renamed == 1 and summary.skipped_problems == 1
    assert window.message_bar.isVisible() and "renamed" in window.message_bar.text.text()
    assert (photo_folder / "coffee.jpg").is_file()  # copied, not moved


def test_moving_into_folders_updates_the_table(qtbot, window, photo_folder, tmp_path):
    classify_and_wait(qtbot, window, [photo_folder])
    dest = tmp_path / "moved"
    worker = output_actions.start_sort(window, dest, move=True, min_confidence=0.5)
    with qtbot.waitSignal(worker.finished, timeout=WAIT) as blocker:
        pass
    summary = blocker.args[0]
    assert summary.moved == 2 and summary.skipped_low_confidence == 1  # the cat is unsure
    assert not (photo_folder / "coffee.jpg").exists()
    rows = {r.path.name: r.path for r in window.results.all_results()}
    assert rows["coffee.jpg"] == dest / "espresso" / "coffee.jpg"
    assert rows["chelsea.jpg"] == photo_folder / "chelsea.jpg"  # left in place
    assert all(path.exists() for name, path in rows.items() if name != "readme.jpg")
    assert "below 50%" in window.message_bar.text.text()


def test_cuda_disabled_and_forced_cuda_gives_inline_message(qtbot, photo_folder):
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    settings = app_settings()
    settings.setValue("device", "cuda")
    settings.sync()
    w = MainWindow()
    qtbot.addWidget(w)
    with qtbot.waitSignal(w.catalog_loaded, timeout=WAIT):
        w.show()
    enabled, tip = w.device_picker.entry("cuda")
    assert enabled is False and "CUDA" in tip
    assert w.message_bar.isVisible() and w.message_bar.level == "warning"
    with qtbot.waitSignal(w.controller.run_failed, timeout=WAIT):
        drop(w, [photo_folder])
    assert w.message_bar.level == "error" and "CUDA" in w.message_bar.text.text()
    assert "Use CPU" in w.message_bar.action_texts
    with qtbot.waitSignal(w.controller.run_finished, timeout=WAIT):
        w.message_bar.trigger("Use CPU")
    assert w.device == "cpu" and w.results.count() == 4


# ---------------------------------------------------------------------- downloads


@pytest.fixture
def served_b0(monkeypatch, tmp_path):
    """B0 with a randomly initialised state dict, named like torchvision names files."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    name, data = random_weights("b0")
    point_spec_at(monkeypatch, "b0", name)
    with LoopbackServer({f"/mirror/{name}": data}, chunk_size=64 * 1024) as server:
        monkeypatch.setenv(weights.MIRROR_ENV, server.url + "/mirror")
        yield server, zoo.get_spec("b0"), data


class RecordingDialog(DownloadDialog):
    cancel_after_bytes: int | None = None
    instances: list = []

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.events = []
        RecordingDialog.instances.append(self)
        self.worker.progressed.connect(self._record)

    def _record(self, progress):
        self.events.append(progress)
        limit = RecordingDialog.cancel_after_bytes
        if limit is not None and progress.done >= limit:
            self.reject()


def test_missing_weights_download_with_progress(qtbot, window, served_b0, monkeypatch):
    server, spec, data = served_b0
    RecordingDialog.cancel_after_bytes, RecordingDialog.instances = None, []
    monkeypatch.setattr(menus, "DownloadDialog", RecordingDialog)
    assert window.catalog.model("b0").available is False
    assert window.choose_model("b0") is True
    dialog = RecordingDialog.instances[-1]
    byte_events = [e for e in dialog.events if e.total]
    assert byte_events and byte_events[-1].done == len(data) and byte_events[-1].total == len(data)
    assert weights.cached_path(spec).read_bytes() == data
    assert window.model_key == "b0" and window.catalog.model("b0").available
    assert app_settings().value("model") == "b0"


def test_cancelled_download_leaves_no_file(qtbot, window, served_b0, monkeypatch):
    server, spec, data = served_b0
    server.delay, server.chunk_size = 0.05, 16 * 1024
    RecordingDialog.cancel_after_bytes, RecordingDialog.instances = 32 * 1024, []
    monkeypatch.setattr(menus, "DownloadDialog", RecordingDialog)
    assert window.choose_model("b0") is False
    assert RecordingDialog.instances[-1].cancelled
    qtbot.waitUntil(lambda: RecordingDialog.instances[-1].worker.is_done, timeout=WAIT)
    assert list(weights.cache_file(spec).parent.iterdir()) == []
    assert window.model_key == "lite0" and window.model_picker.current_key() == "lite0"


def test_failing_server_shows_inline_message_with_actions(qtbot, window, served_b0):
    server, spec, _ = served_b0
    server.status = 404
    assert window.choose_model("b0") is False
    bar = window.message_bar
    assert bar.isVisible() and bar.level == "error"
    assert "import-weights" in bar.text.text() or "mirror" in bar.text.text().lower()
    assert {"Use a mirror…", "Import file…"} <= set(bar.action_texts)
    assert weights.cached_path(spec) is None


# ---------------------------------------------------------------------- paste, preview


def test_paste_files_and_a_clipboard_image(qtbot, window, sample_photos, app_home):
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(sample_photos["coffee"]))])
    QGuiApplication.clipboard().setMimeData(mime)
    with qtbot.waitSignal(window.controller.run_finished, timeout=WAIT):
        window.paste_action.trigger()
    assert [r.top1.label for r in window.results.all_results()] == ["espresso"]
    QGuiApplication.clipboard().setImage(QImage(str(sample_photos["camera"])))
    with qtbot.waitSignal(window.controller.run_finished, timeout=WAIT):
        window.paste_action.trigger()
    (result,) = window.results.all_results()
    assert result.top1.label == "tripod" and app_home in result.path.parents


def test_preview_shows_image_and_heatmap(qtbot, window, sample_photos, tmp_path):
    shutil.copy(sample_photos["chelsea"], tmp_path / "cat.jpg")
    classify_and_wait(qtbot, window, [tmp_path])
    preview = window.preview
    qtbot.waitUntil(lambda: preview.view.image is not None, timeout=WAIT)
    assert preview.result.path.name == "cat.jpg"
    preview.heatmap_box.setChecked(True)
    qtbot.waitUntil(lambda: preview.view.overlay is not None, timeout=WAIT)
    assert preview.view.overlay.size() == preview.view.image.size()
    assert "Heatmap for" in preview.status.text()
    preview.opacity.setValue(0)
    assert preview.view.opacity == 0
    preview.heatmap_box.setChecked(False)
    assert preview.view.overlay is None
    preview.heatmap_box.setChecked(True)  # the same image and model: shown again at once
    assert preview.view.overlay is not None
