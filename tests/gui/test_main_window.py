"""The main window driven like a user would, with real workers and the real Lite0 weights."""

from __future__ import annotations

import os
import shutil
import threading
from pathlib import Path

import pytest
import torch
from loopback import LoopbackServer
from PySide6.QtCore import QMimeData, Qt, QUrl
from PySide6.QtGui import QGuiApplication, QImage
from served_weights import point_spec_at, random_weights
from window_driver import WAIT, classify_and_wait, drop

from effnet_app.core.jobs import Progress
from effnet_app.core.models import weights, zoo
from effnet_app.core.runtime import results_io
from effnet_app.core.runtime.classifier import ImageResult, PredictionBatch
from effnet_app.gui.controllers import catalog as catalog_controller
from effnet_app.gui.main_window import MainWindow
from effnet_app.gui.models.results_model import FILE, PROBLEM, THUMBNAIL
from effnet_app.gui.settings import app_settings
from effnet_app.gui.widgets.download_dialog import DownloadDialog

CATS = {"tabby", "tiger cat", "Egyptian cat", "Persian cat"}


@pytest.mark.slow
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


@pytest.mark.slow
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
    qtbot.waitUntil(lambda: first_worker.is_done, timeout=WAIT)  # it can send no more
    names = sorted(r.path.name for r in window.results.all_results())
    assert names == ["new_0.jpg", "new_1.jpg", "new_2.jpg"]


@pytest.mark.slow
def test_escape_cancels_within_a_batch(qtbot, window, sample_photos, tmp_path):
    for i in range(80):
        shutil.copy(sample_photos["camera"], tmp_path / f"c{i:02d}.jpg")
    with qtbot.waitSignal(window.controller.batch_arrived, timeout=WAIT):
        drop(window, [tmp_path])
    assert window.menu_actions.cancel.shortcut().toString() == "Esc"
    with qtbot.waitSignal(window.controller.run_cancelled, timeout=WAIT):
        window.menu_actions.cancel.trigger()
    assert window.results.count() < 80
    assert "Cancelled" in window.status_label.text()


@pytest.mark.slow
def test_export_round_trips_and_sort_never_overwrites(qtbot, window, photo_folder, tmp_path):
    classify_and_wait(qtbot, window, [photo_folder])
    shown = window.results.all_results()
    for fmt in ("csv", "json"):
        path = window.write_export(tmp_path / f"out.{fmt}", fmt)
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
    with qtbot.waitSignal(window.sorter.sort_finished, timeout=WAIT) as blocker:
        assert window.start_sort(dest, move=False, min_confidence=None)
    summary = blocker.args[0]
    assert (dest / "espresso" / "coffee.jpg").read_bytes() == b"an older file that must survive"
    assert (dest / "espresso" / "coffee (2).jpg").read_bytes() == (
        photo_folder / "coffee.jpg"
    ).read_bytes()
    assert (dest / "tripod" / "camera.jpg").is_file()
    assert summary.copied == 3 and summary.renamed == 1 and summary.skipped_problems == 1
    assert window.message_bar.isVisible() and "renamed" in window.message_bar.text.text()
    assert (photo_folder / "coffee.jpg").is_file()  # copied, not moved


@pytest.mark.slow
def test_moving_into_folders_updates_the_table(qtbot, window, photo_folder, tmp_path):
    classify_and_wait(qtbot, window, [photo_folder])
    dest = tmp_path / "moved"
    with qtbot.waitSignal(window.sorter.sort_finished, timeout=WAIT) as blocker:
        assert window.start_sort(dest, move=True, min_confidence=0.5)
    summary = blocker.args[0]
    assert summary.moved == 2 and summary.skipped_low_confidence == 1  # the cat is unsure
    assert not (photo_folder / "coffee.jpg").exists()
    rows = {r.path.name: r.path for r in window.results.all_results()}
    assert rows["coffee.jpg"] == dest / "espresso" / "coffee.jpg"
    assert rows["chelsea.jpg"] == photo_folder / "chelsea.jpg"  # left in place
    assert all(path.exists() for name, path in rows.items() if name != "readme.jpg")
    assert "below 50%" in window.message_bar.text.text()


@pytest.fixture
def settings_choose_cuda():
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    settings = app_settings()
    settings.setValue("device", "cuda")
    settings.sync()


def open_window(qtbot, catalog: bool = True) -> MainWindow:
    """The main window, shown; with ``catalog``, once its model list has loaded."""
    w = MainWindow()
    qtbot.addWidget(w)
    if catalog:
        with qtbot.waitSignal(w.catalog_loaded, timeout=WAIT):
            w.show()
    else:
        w.show()
    return w


def test_cuda_disabled_and_forced_cuda_gives_inline_message(
    qtbot, settings_choose_cuda, photo_folder
):
    w = open_window(qtbot)
    enabled, tip = w.device_picker.entry("cuda")
    assert enabled is False and "CUDA" in tip
    assert w.message_bar.isVisible() and w.message_bar.level == "warning"
    with qtbot.waitSignal(w.controller.run_failed, timeout=WAIT):
        drop(w, [photo_folder])
    assert w.message_bar.level == "error" and "CUDA" in w.message_bar.text.text()
    assert w.results.count() == 0
    assert "Use CPU" in w.message_bar.action_texts
    with qtbot.waitSignal(w.controller.run_finished, timeout=WAIT):
        w.message_bar.trigger("Use CPU")
    assert w.device == "cpu" and w.controller.request.device == "cpu"
    assert w.results.count() == 4 and "on cpu" in w.status_label.text()


@pytest.mark.parametrize("saved", ["cuda", "cuda:3"])
def test_the_device_picker_shows_the_device_the_runs_use(qtbot, settings_choose_cuda, saved):
    # It showed "Auto" while every run failed with "CUDA was chosen … choose CPU or Auto".
    settings = app_settings()
    settings.setValue("device", saved)
    settings.sync()
    w = open_window(qtbot)
    assert w.device_picker.current_key() == w.device == saved
    assert w.device_picker.entry(saved)[0] is False  # shown, greyed out, not choosable
    w.message_bar.trigger("Use CPU")
    assert w.device_picker.current_key() == w.device == "cpu"


def test_use_cpu_runs_the_failed_drop_again_when_the_catalog_came_later(
    qtbot, settings_choose_cuda, photo_folder, monkeypatch
):
    # Started with a folder (python -m effnet_app FOLDER): the run fails on CUDA before
    # the model list has loaded, whose warning then replaces the error in the bar.
    catalog_may_load = threading.Event()
    real_load = catalog_controller.load_catalog

    def held_back(cancel):
        assert catalog_may_load.wait(WAIT / 1000)
        return (yield from real_load(cancel))

    monkeypatch.setattr(catalog_controller, "load_catalog", held_back)
    w = open_window(qtbot, catalog=False)
    with qtbot.waitSignal(w.controller.run_failed, timeout=WAIT):
        drop(w, [photo_folder])
    with qtbot.waitSignal(w.catalog_loaded, timeout=WAIT):
        catalog_may_load.set()
    assert w.message_bar.level == "warning" and "Use CPU" in w.message_bar.action_texts
    with qtbot.waitSignal(w.controller.run_finished, timeout=WAIT):
        w.message_bar.trigger("Use CPU")
    assert not w.message_bar.isVisible()
    assert w.controller.request.device == "cpu" and w.results.count() == 4


def check_problem_row(qtbot, window, rows, path: Path) -> None:
    """The row of ``path`` shows its problem, asks for no thumbnail, and previews its
    reason when selected."""
    result = rows[path.name]
    assert result.problem and not result.predictions
    model = window.results.model
    row = model.row_of(path)
    assert model.index(row, PROBLEM).data() == result.problem
    assert model.index(row, FILE).data() == path.name
    assert model.index(row, THUMBNAIL).data(Qt.ItemDataRole.DecorationRole) is None
    assert not model.has_thumbnail(path) and window.results.thumbnails.failure(path) is None
    window.results.table.selectRow(window.results.proxy.mapFromSource(model.index(row, 0)).row())
    assert window.preview.result.path == path
    assert window.preview.status.text() == result.problem
    assert "with problems" in window.status_label.text()


def test_an_unreadable_folder_is_a_row_with_its_reason(qtbot, window, tiny_folder, monkeypatch):
    locked = tiny_folder / "locked"
    locked.mkdir()
    real_classify = window.session.classify

    def with_locked_folder(key, device, paths, top_k=5, cancel=None):
        done = yield from real_classify(key, device, paths, top_k, cancel)
        row = ImageResult(locked, (), "could not be read (permission denied)")  # as the core will
        yield PredictionBatch((row,), Progress(done + 1, done + 1))
        return done + 1

    monkeypatch.setattr(window.session, "classify", with_locked_folder)
    rows = classify_and_wait(qtbot, window, [tiny_folder])
    check_problem_row(qtbot, window, rows, locked)


def test_the_core_reports_an_unreadable_sub_folder(qtbot, window, tiny_folder, monkeypatch):
    locked = tiny_folder / "locked"
    locked.mkdir()
    real_scandir = os.scandir

    def scandir(path="."):  # the tests run as root, who may read any folder
        if Path(path) == locked:
            raise PermissionError(13, "Permission denied", str(path))
        return real_scandir(path)

    monkeypatch.setattr(os, "scandir", scandir)
    rows = classify_and_wait(qtbot, window, [tiny_folder])
    assert "could not be read" in rows["locked"].problem
    check_problem_row(qtbot, window, rows, locked)


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


class Downloads:
    """What the download dialog showed; it presses Cancel once ``cancel_after`` bytes came."""

    def __init__(self, window, cancel_after: int | None = None) -> None:
        self.events = []
        self.cancel_after = cancel_after
        self.window = window
        window.weights.download_progressed.connect(self._on_progressed)

    def _on_progressed(self, progress) -> None:
        self.events.append(progress)
        if self.cancel_after is not None and progress.done >= self.cancel_after:
            self.dialog().reject()

    def dialog(self) -> DownloadDialog:
        (dialog,) = [d for d in self.window.findChildren(DownloadDialog) if d.isVisible()]
        return dialog


def test_missing_weights_download_with_progress(qtbot, window, served_b0):
    server, spec, data = served_b0
    downloads = Downloads(window)
    assert window.catalog.model("b0").available is False
    assert window.choose_model("b0") is True
    byte_events = [e for e in downloads.events if e.total]
    assert byte_events and byte_events[-1].done == len(data) and byte_events[-1].total == len(data)
    assert weights.cached_path(spec).read_bytes() == data
    assert window.model_key == "b0" and window.catalog.model("b0").available
    assert app_settings().value("model") == "b0"
    qtbot.waitUntil(lambda: not window.weights.downloading, timeout=WAIT)


def test_cancelled_download_leaves_no_file(qtbot, window, served_b0):
    server, spec, data = served_b0
    server.delay, server.chunk_size = 0.05, 16 * 1024
    downloads = Downloads(window, cancel_after=32 * 1024)  # kept: PySide holds it weakly
    assert window.choose_model("b0") is False
    assert downloads.events[-1].done < len(data)
    assert "cancelled" in window.message_bar.text.text()
    qtbot.waitUntil(lambda: not window.weights.downloading, timeout=WAIT)
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


@pytest.mark.slow
def test_paste_files_and_a_clipboard_image(qtbot, window, sample_photos, app_home):
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(sample_photos["coffee"]))])
    QGuiApplication.clipboard().setMimeData(mime)
    with qtbot.waitSignal(window.controller.run_finished, timeout=WAIT):
        window.menu_actions.paste.trigger()
    assert [r.top1.label for r in window.results.all_results()] == ["espresso"]
    QGuiApplication.clipboard().setImage(QImage(str(sample_photos["camera"])))
    with qtbot.waitSignal(window.controller.run_finished, timeout=WAIT):
        window.menu_actions.paste.trigger()
    (result,) = window.results.all_results()
    assert result.top1.label == "tripod" and app_home in result.path.parents


@pytest.mark.slow
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
