"""Two jobs at once in the main window: a sort that is still moving files while the user
drops, presses F5, switches model or clears; real widgets and real worker threads."""

from __future__ import annotations

import threading

import pytest
from window_driver import WAIT, classify_and_wait, drop

from effnet_app.core.runtime import results_io


@pytest.fixture
def held_sort(monkeypatch):
    """The real sort, held after its first step until the test sets the gate."""
    gate = threading.Event()
    real_sort = results_io.sort_into_folders

    def held(results, destination, **kwargs):
        job = real_sort(results, destination, **kwargs)
        yield next(job)
        assert gate.wait(WAIT / 1000)
        return (yield from job)

    monkeypatch.setattr(results_io, "sort_into_folders", held)
    yield gate
    gate.set()


def start_held_move(qtbot, window, held_sort, destination) -> None:
    with qtbot.waitSignal(window.sorter.sort_progressed, timeout=WAIT):
        assert window.start_sort(destination, move=True, min_confidence=None)
    assert window.run_status.cancel_button.isVisibleTo(window)


@pytest.mark.slow
@pytest.mark.parametrize("how", ["F5", "drop", "model"])
def test_no_classification_starts_while_files_are_being_moved(
    qtbot, window, photo_folder, tmp_path, held_sort, how
):
    classify_and_wait(qtbot, window, [photo_folder])
    start_held_move(qtbot, window, held_sort, tmp_path / "moved")
    started = []
    window.controller.run_started.connect(started.append)
    if how == "F5":
        window.menu_actions.again.trigger()
    elif how == "drop":
        drop(window, [photo_folder])
    else:
        window.choose_model("lite1")
    assert started == []  # it would read the files being moved: "not found" rows
    assert "sorting" in window.message_bar.text.text().lower()
    assert window.run_status.cancel_button.isVisibleTo(window)  # Esc still stops the sort
    with qtbot.waitSignal(window.sorter.sort_finished, timeout=WAIT):
        held_sort.set()
    rows = window.results.all_results()
    assert len(rows) == 4 and all(r.path.exists() for r in rows if not r.problem)


@pytest.mark.slow
def test_clearing_during_a_sort_keeps_its_cancel_button(
    qtbot, window, photo_folder, tmp_path, held_sort
):
    classify_and_wait(qtbot, window, [photo_folder])
    start_held_move(qtbot, window, held_sort, tmp_path / "moved")
    window.menu_actions.clear.trigger()
    assert window.results.count() == 0
    assert window.run_status.cancel_button.isVisibleTo(window)  # the sort goes on
    with qtbot.waitSignal(window.sorter.sort_finished, timeout=WAIT):
        held_sort.set()
    assert not window.run_status.cancel_button.isVisibleTo(window)
    assert "Moved" in window.message_bar.text.text()


@pytest.mark.slow
def test_export_waits_for_the_running_classification(
    qtbot, window, sample_photos, tmp_path, monkeypatch
):
    # A CSV of the first batches, reported as "Exported N rows", looked complete.
    from photos import photo_copies
    from PySide6.QtWidgets import QFileDialog

    asked = []
    monkeypatch.setattr(QFileDialog, "getSaveFileName", lambda *a, **k: asked.append(a) or ("", ""))
    many = photo_copies(sample_photos["camera"], tmp_path / "many", 80, stem="c")
    with qtbot.waitSignal(window.controller.batch_arrived, timeout=WAIT):
        drop(window, [many])
    window.menu_actions.export.trigger()
    assert asked == []
    assert "Wait until the running job has finished" in window.message_bar.text.text()


@pytest.mark.parametrize(
    ("typed", "chosen", "written"),
    [
        ("results.csv", "JSON (*.json)", "results.csv"),
        ("results.json", "CSV (*.csv)", "results.json"),
        ("results", "JSON (*.json)", "results.json"),
    ],
)
def test_the_typed_extension_decides_the_export_format(
    qtbot, window, tmp_path, monkeypatch, typed, chosen, written
):
    from pathlib import Path

    from PySide6.QtWidgets import QFileDialog

    from effnet_app.core.runtime.classifier import ImageResult, Prediction

    window.results.append([ImageResult(Path("/x/a.jpg"), (Prediction("tabby", 0.9, 281),))])
    monkeypatch.setattr(
        QFileDialog, "getSaveFileName", lambda *a, **k: (str(tmp_path / typed), chosen)
    )
    window.menu_actions.export.trigger()
    assert [p.name for p in tmp_path.iterdir()] == [written]
    back = results_io.read_results(tmp_path / written)
    assert [r.top1.label for r in back] == ["tabby"]
