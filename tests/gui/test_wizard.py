"""The training wizard, driven as a user would: real scans, real training in workers."""

from __future__ import annotations

import shutil

import pytest
from datasets import make_shapes
from PySide6.QtCore import QSettings
from PySide6.QtWidgets import QInputDialog, QMessageBox
from window_driver import WAIT, drop

from effnet_app.core import paths
from effnet_app.gui.wizard import wizard as wiz
from effnet_app.gui.workers import live_workers, running_count

pytestmark = pytest.mark.slow

SHAPES3 = ("circle", "square", "triangle")


@pytest.fixture
def settings(tmp_path):
    return QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat)


@pytest.fixture
def wizard(qtbot, settings):
    w = wiz.TrainWizard(settings=settings)
    qtbot.addWidget(w)
    w.show()
    qtbot.waitUntil(lambda: w.options_page.base_key() is not None, timeout=WAIT)
    yield w
    # pytest-qt has closed and deleted the wizard by now (its Workers with it, which
    # cancels their jobs); their threads must end before the next test.
    qtbot.waitUntil(lambda: running_count() == 0, timeout=WAIT)


def _yes(monkeypatch):
    monkeypatch.setattr(QMessageBox, "question", lambda *a, **k: QMessageBox.StandardButton.Yes)


def scan(qtbot, w, folder):
    with qtbot.waitSignal(w.controller.scan_finished, timeout=WAIT):
        w.data_page.scan(folder)


def next_enabled(w) -> bool:
    return w.button(wiz.QWizard.WizardButton.NextButton).isEnabled()


def train_to_results(qtbot, w, mode="head", epochs=1):
    qtbot.waitUntil(lambda: next_enabled(w), timeout=WAIT)  # the scan's job has ended
    assert w.data_page.isComplete()
    w.next()
    assert w.currentId() == wiz.OPTIONS
    w.options_page.select_base("lite0")
    w.options_page.modes.button(1 if mode == "finetune" else 0).setChecked(True)
    w.options_page.epochs.setValue(epochs)
    with qtbot.waitSignal(w.controller.train_finished, timeout=WAIT * 3):
        w.next()
    qtbot.waitUntil(lambda: w.currentId() == wiz.RESULTS, timeout=WAIT)
    return w.state.result


def test_one_class_blocks_next_with_its_sentence(qtbot, wizard, tmp_path):
    folder = make_shapes(tmp_path / "one", classes=("circle",), per_class=4)
    scan(qtbot, wizard, folder)
    assert not wizard.data_page.isComplete()
    levels = [level for level, _ in wizard.data_page.check_texts()]
    assert "error" in levels
    assert any("class" in text for _, text in wizard.data_page.check_texts())


def test_corrupt_files_warn_and_training_runs_on_the_rest(qtbot, wizard, tmp_path):
    folder = make_shapes(tmp_path / "shapes", classes=SHAPES3, per_class=8, size=48)
    (folder / "circle" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    scan(qtbot, wizard, folder)
    checks = wizard.data_page.check_texts()
    assert any(level == "warning" and "broken.png" in text or "unreadable" in text
               for level, text in checks), checks  # fmt: skip
    result = train_to_results(qtbot, wizard)
    assert result.train_size + result.val_size == 24


def test_the_whole_path_saves_a_model_and_remembers_the_options(qtbot, wizard, tmp_path, settings):
    folder = make_shapes(tmp_path / "shapes", classes=SHAPES3, per_class=10, size=48)
    scan(qtbot, wizard, folder)
    result = train_to_results(qtbot, wizard)
    assert wizard.training_page.curves.epoch_count() == len(result.history) == 1
    assert wizard.results_page.per_class.rowCount() == 3
    assert "not sure" in wizard.results_page.calibration.text()
    wizard.next()
    assert wizard.currentId() == wiz.SAVE
    name = wizard.save_page.name.text()
    assert name and "circle" in name
    with qtbot.waitSignal(wizard.model_saved, timeout=WAIT) as saved:
        wizard.button(wiz.QWizard.WizardButton.FinishButton).click()
    key, use_now = saved.args
    assert key == f"user:{name}" and use_now
    assert (paths.models_dir() / name / "manifest.json").is_file()
    assert settings.value("wizard/folder") == str(folder)
    assert settings.value("wizard/base") == "lite0"
    again = wiz.TrainWizard(settings=settings)
    qtbot.addWidget(again)
    assert again.data_page.path_edit.text() == str(folder)


def test_cancel_during_training_saves_nothing_and_can_train_again(
    qtbot, wizard, tmp_path, monkeypatch
):
    _yes(monkeypatch)
    folder = make_shapes(tmp_path / "shapes", classes=SHAPES3, per_class=10, size=48)
    scan(qtbot, wizard, folder)
    wizard.next()
    wizard.options_page.select_base("lite0")
    with qtbot.waitSignal(wizard.controller.train_event, timeout=WAIT):
        wizard.next()
    with qtbot.waitSignal(wizard.controller.train_cancelled, timeout=WAIT):
        assert wizard.training_page.ask_cancel()
    assert wizard.currentId() == wiz.OPTIONS
    assert "cancelled" in wizard.options_page.note.text()
    assert not any(paths.models_dir().iterdir()) if paths.models_dir().exists() else True
    with qtbot.waitSignal(wizard.controller.train_finished, timeout=WAIT * 3):
        wizard.next()
    qtbot.waitUntil(lambda: wizard.currentId() == wiz.RESULTS, timeout=WAIT)


def test_closing_mid_training_stops_the_worker(qtbot, settings, tmp_path, monkeypatch):
    _yes(monkeypatch)
    w = wiz.TrainWizard(settings=settings)
    qtbot.addWidget(w)
    w.show()
    qtbot.waitUntil(lambda: w.options_page.base_key() is not None, timeout=WAIT)
    folder = make_shapes(tmp_path / "shapes", classes=SHAPES3, per_class=10, size=48)
    scan(qtbot, w, folder)
    w.next()
    with qtbot.waitSignal(w.controller.train_event, timeout=WAIT):
        w.next()
    w.reject()
    assert not w.isVisible()
    qtbot.waitUntil(lambda: not w.controller.busy, timeout=WAIT)
    qtbot.waitUntil(lambda: live_workers() == 0, timeout=WAIT)


def test_results_matrix_cells_and_moving_a_photo_with_undo(qtbot, wizard, tmp_path, monkeypatch):
    from effnet_app.core.training.tools import images_in_cell

    folder = make_shapes(tmp_path / "shapes", classes=SHAPES3, per_class=10, size=48)
    other = make_shapes(tmp_path / "more", classes=("square",), per_class=12, size=48, seed=5)
    victim = folder / "circle" / "odd_one.png"
    shutil.copy(other / "square" / "square_11.png", victim)  # a square labelled circle
    scan(qtbot, wizard, folder)
    result = train_to_results(qtbot, wizard, mode="finetune", epochs=2)
    assert wizard.training_page.curves.epoch_count() == len(result.history) >= 2
    page = wizard.results_page
    for t in range(3):
        for p in range(3):
            page.matrix.cell_chosen.emit(t, p)
            shown = sorted(page.cell_images.paths())
            expected = sorted(images_in_cell(result.val_predictions, t, p))
            assert shown == expected and len(shown) == result.confusion[t][p]
    tab = page.labels
    monkeypatch.setattr(QInputDialog, "getItem", lambda *a, **k: ("square", True))
    _yes(monkeypatch)
    edits = wizard.state.edits
    edits.move_to_class(victim, "square")  # what "Move to class…" does once confirmed
    tab._fill()
    moved = edits.edits[-1].target
    assert moved.exists() and moved.parent.name == "square" and not victim.exists()
    tab.undo()
    assert victim.exists() and not moved.exists()
    assert tab.changes.count() == 0


def test_move_button_asks_then_moves(qtbot, wizard, tmp_path, monkeypatch):
    folder = make_shapes(tmp_path / "shapes", classes=SHAPES3, per_class=10, size=48)
    scan(qtbot, wizard, folder)
    train_to_results(qtbot, wizard)
    tab = wizard.results_page.labels
    target = folder / "circle" / "circle_01.png"
    tab.grid.set_images([(target, target.name, "")])
    tab.grid.item(0).setSelected(True)
    asked = []
    monkeypatch.setattr(QInputDialog, "getItem", lambda *a, **k: ("triangle", True))
    monkeypatch.setattr(
        QMessageBox, "question",
        lambda *a, **k: asked.append(a[2]) or QMessageBox.StandardButton.No,
    )  # fmt: skip
    tab.move_selected()
    assert asked and target.exists()  # declined: nothing moved
    _yes(monkeypatch)
    tab.grid.set_images([(target, target.name, "")])
    tab.grid.item(0).setSelected(True)
    tab.move_selected()
    assert not target.exists() and (folder / "triangle" / "circle_01.png").exists()
    assert tab.changes.count() == 1
    moved = wizard.state.training_data()
    assert any(s.path.name == "circle_01.png" and moved.classes[s.label] == "triangle"
               for s in moved.samples)  # fmt: skip


def test_try_it_shows_the_new_classes(qtbot, wizard, tmp_path):
    folder = make_shapes(tmp_path / "shapes", classes=SHAPES3, per_class=10, size=48)
    scan(qtbot, wizard, folder)
    train_to_results(qtbot, wizard)
    tab = wizard.results_page.try_tab
    with qtbot.waitSignal(wizard.controller.tried, timeout=WAIT):
        drop(tab, [folder / "square" / "square_05.png"])
    lines = tab.result_texts()
    assert lines and lines[0].split(": ")[1] in (*SHAPES3, "not sure")


def test_compare_models_plots_two_points(qtbot, wizard, tmp_path):
    folder = make_shapes(tmp_path / "shapes", classes=SHAPES3, per_class=8, size=48)
    scan(qtbot, wizard, folder)
    wizard.next()
    box = wizard.options_page.compare
    box.bases = ["lite0", "lite1"]
    box.set_dataset(wizard.state.training_data())
    with qtbot.waitSignal(wizard.controller.compare_finished, timeout=WAIT * 3):
        box.button.click()
    assert len(box.plot.points()) == 2
    qtbot.waitUntil(lambda: box.button.text() == "Compare" and next_enabled(wizard), timeout=WAIT)
    point = box.plot.points()[1]
    box.plot.point_chosen.emit(point.key)
    assert wizard.options_page.base_key() == point.key


def test_from_the_main_window_to_a_model_in_use(qtbot, window, tmp_path):
    from window_driver import classify_and_wait

    folder = make_shapes(tmp_path / "shapes", classes=SHAPES3, per_class=12, size=64)
    w = window.open_training_wizard()
    assert w is window.wizard and w.isVisible()
    qtbot.waitUntil(lambda: w.options_page.base_key() is not None, timeout=WAIT)
    scan(qtbot, w, folder)
    train_to_results(qtbot, w)
    w.next()
    name = w.save_page.name.text()
    with qtbot.waitSignal(window.catalog_loaded, timeout=WAIT):
        w.button(wiz.QWizard.WizardButton.FinishButton).click()
    qtbot.waitUntil(lambda: window.model_key == f"user:{name}", timeout=WAIT)
    assert window.model_picker.current_key() == f"user:{name}"
    fresh = make_shapes(tmp_path / "fresh", classes=("square",), per_class=3, size=64, seed=9)
    rows = classify_and_wait(qtbot, window, sorted((fresh / "square").iterdir()))
    tops = [r.top1.label for r in rows.values()]
    assert set(tops) <= set(SHAPES3)
    assert tops.count("square") >= 2, tops


def test_replace_is_asked_again_for_each_name(qtbot, wizard):
    page = wizard.save_page
    (paths.models_dir() / "taken").mkdir(parents=True)
    (paths.models_dir() / "other").mkdir(parents=True)
    page.name.setText("taken")
    assert page.replace.isVisible() or not page.replace.isHidden()
    page.replace.setChecked(True)
    assert page._problem() is None
    page.name.setText("other")
    assert not page.replace.isChecked()
    assert "exists" in page._problem()


def test_options_are_remembered_even_a_zero(qtbot, wizard, settings):
    page = wizard.options_page
    page.weight_decay.setValue(0.0)
    page.epochs.setValue(7)
    page.modes.button(1).setChecked(True)
    page.save_settings()
    again = wiz.TrainWizard(settings=settings)
    qtbot.addWidget(again)
    assert again.options_page.weight_decay.value() == 0.0
    assert again.options_page.epochs.value() == 7
    assert again.options_page.mode() == "finetune"


def test_training_data_follows_every_edit_and_undo(tmp_path):
    from effnet_app.core.data import dataset as datasets
    from effnet_app.core.data.edits import DataEdits
    from effnet_app.core.jobs import run_to_end
    from effnet_app.gui.wizard.state import WizardState

    folder = make_shapes(tmp_path / "shapes", classes=SHAPES3, per_class=4, size=32)
    scanned = run_to_end(datasets.scan(folder))
    state = WizardState(dataset=scanned, edits=DataEdits(scanned))
    first, second = scanned.samples[0].path, scanned.samples[1].path
    state.edits.exclude(first)
    without_first = state.training_data()
    assert state.training_data() is without_first  # asked again: the same answer
    assert first not in {s.path for s in without_first.samples}
    state.edits.undo()
    state.edits.exclude(second)
    paths = {s.path for s in state.training_data().samples}
    assert first in paths and second not in paths
