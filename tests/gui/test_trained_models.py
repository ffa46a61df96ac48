"""The user's trained models in the main window: listed under their own header, used to
classify, renamed, deleted and imported through Manage trained models, explained in
About this model; and the training wizard opened from the menu and the empty window."""

from __future__ import annotations

import shutil
import sys
import threading
import types

import pytest
from PySide6.QtCore import QUrl, Signal
from PySide6.QtGui import QDesktopServices
from PySide6.QtWidgets import QFileDialog, QInputDialog, QMessageBox, QWizard
from window_driver import WAIT, classify_and_wait

from effnet_app.core import paths
from effnet_app.core.models import bundle, zoo
from effnet_app.core.runtime.catalog import classes_text
from effnet_app.gui.controllers import catalog as catalog_controller
from effnet_app.gui.main_window import MainWindow
from effnet_app.gui.widgets.pickers import KEY_ROLE, TRAINED_HEADER

CLASSES = ("cat", "dog", "other")
METRICS = {"accuracy": 0.91, "baseline": 0.4, "val_size": 30}
DATASET = {"source": "/data/pets", "images": 150, "counts": {"cat": 50, "dog": 60, "other": 40}}


def save(state, name="pets", folder=None) -> bundle.Bundle:
    return bundle.save_bundle(
        name, state, base="lite0", classes=CLASSES,
        preprocess=zoo.get_spec("lite0").preprocess, temperature=1.3, unknown_threshold=0.62,
        metrics=METRICS, dataset=DATASET, folder=folder,
    )  # fmt: skip


@pytest.fixture
def pets(lite_state) -> bundle.Bundle:
    return save(lite_state)


def open_window(qtbot) -> MainWindow:
    w = MainWindow()
    qtbot.addWidget(w)
    with qtbot.waitSignal(w.catalog_loaded, timeout=WAIT):
        w.show()
    return w


def picker_rows(w) -> list[tuple[str, str | None, bool]]:
    p = w.model_picker
    return [
        (p.itemText(i), p.itemData(i, KEY_ROLE), p.is_selectable_at(i)) for i in range(p.count())
    ]


def listed(w, key: str) -> bool:
    return w.model_picker.findData(key, KEY_ROLE) >= 0


# ---------------------------------------------------------------------- the picker


def test_the_picker_lists_trained_models_under_a_header(qtbot, pets):
    w = open_window(qtbot)
    rows = picker_rows(w)
    keys = [key for _, key, _ in rows]
    header = next(i for i, (text, _, _) in enumerate(rows) if text == TRAINED_HEADER)
    assert keys[header - 1] is None  # a separator above the header
    assert [k for k in keys[: header - 1]] == [s.key for s in zoo.pretrained_specs()]
    assert rows[header][2] is False and w.model_picker.headers() == [TRAINED_HEADER]
    text, key, selectable = rows[header + 1]
    date = w.catalog.model("user:pets").created_date
    assert key == "user:pets" and selectable and len(date) == 10
    assert text == f"pets  —  3 classes: cat, dog, other · accuracy 91% · {date}"
    tip = w.model_picker.itemData(header + 1, 3)  # ToolTipRole
    assert "cat, dog, other" in tip and 'says "not sure"' in tip
    w.model_picker.activated.emit(header)  # a click on the header chooses nothing
    assert w.model_key == "lite0"


def test_no_header_without_trained_models_and_long_class_lists_are_cut(qtbot):
    w = open_window(qtbot)
    assert w.model_picker.headers() == [] and None not in [k for _, k, _ in picker_rows(w)]
    names = [f"class{i}" for i in range(12)]
    assert classes_text(names) == "12 classes: class0, class1, class2, …"
    assert classes_text(["x" * 40]) == "1 class: " + "x" * 23 + "…"


def test_a_trained_model_classifies_a_photo_with_its_classes(qtbot, pets, sample_photos, tmp_path):
    w = open_window(qtbot)
    index = w.model_picker.findData("user:pets", KEY_ROLE)
    w.model_picker.setCurrentIndex(index)
    w.model_picker.activated.emit(index)  # the user picks it
    assert w.model_key == "user:pets"
    shutil.copy(sample_photos["chelsea"], tmp_path / "cat.jpg")
    rows = classify_and_wait(qtbot, w, [tmp_path])
    result = rows["cat.jpg"]
    assert {p.label for p in result.predictions} == set(CLASSES)
    assert "pets" in w.status_label.text()


def test_about_names_the_classes_accuracy_data_and_calibration(qtbot, pets):
    w = open_window(qtbot)
    w.choose_model("user:pets")
    text = w.about_model.toPlainText()
    assert "pets tells apart 3 classes: cat, dog, other." in text
    assert "91.0 %" in text and "40.0 %" in text  # beside what guessing would score
    assert "EfficientNet-Lite0" in text
    assert "150 images from /data/pets" in text and "cat 50, dog 60, other 40" in text
    assert 'Below 62 % confidence it says "not sure"' in text
    assert "Created 20" in text and str(pets.path) in text
    assert "The family" not in text
    w.choose_model("lite0")
    assert "The family" in w.about_model.toPlainText()


# ---------------------------------------------------------------------- managing


def answer_names(monkeypatch, *names) -> list[str]:
    """QInputDialog answers each of ``names`` in turn; returns the prompts it showed."""
    prompts, answers = [], list(names)

    def get_text(parent, title, label, echo, text):
        prompts.append(label)
        return answers.pop(0), True

    monkeypatch.setattr(QInputDialog, "getText", staticmethod(get_text))
    return prompts


def answer_question(monkeypatch, answer) -> list[str]:
    texts = []

    def question(parent, title, text, buttons, default):
        texts.append(text)
        return answer

    monkeypatch.setattr(QMessageBox, "question", staticmethod(question))
    return texts


def test_rename_asks_again_with_the_core_sentence_and_follows_the_model_in_use(
    qtbot, pets, monkeypatch
):
    w = open_window(qtbot)
    w.choose_model("user:pets")
    dialog = w.manage_models()
    assert dialog.keys() == ["user:pets"] and dialog.selected_key() == "user:pets"
    prompts = answer_names(monkeypatch, "bad/name", "kittens")
    with qtbot.waitSignal(w.trained.model_renamed, timeout=WAIT):
        dialog.rename_button.click()
    assert "cannot be a model name" in prompts[1] and "cannot" not in prompts[0]
    qtbot.waitUntil(lambda: listed(w, "user:kittens"), timeout=WAIT)
    assert not listed(w, "user:pets")
    assert (paths.models_dir() / "kittens" / bundle.MANIFEST).is_file()
    assert not pets.path.exists()
    assert w.model_key == "user:kittens" == w.model_picker.current_key()
    assert "renamed" in w.message_bar.text.text()
    qtbot.waitUntil(lambda: dialog.keys() == ["user:kittens"], timeout=WAIT)
    assert dialog.selected_key() == "user:kittens"


def test_a_rename_onto_an_existing_name_is_refused_in_the_dialog(
    qtbot, pets, lite_state, monkeypatch
):
    save(lite_state, "dogs")
    w = open_window(qtbot)
    dialog = w.manage_models()
    dialog.select("user:pets")
    answer_names(monkeypatch, "dogs")
    with qtbot.waitSignal(w.trained.change_failed, timeout=WAIT):
        dialog.rename_button.click()
    assert "already exists" in dialog.message_bar.text.text()
    assert dialog.message_bar.level == "error" and pets.path.is_dir()


def test_deleting_the_model_in_use_falls_back_to_the_default(qtbot, pets, monkeypatch):
    w = open_window(qtbot)
    w.choose_model("user:pets")
    dialog = w.manage_models()
    texts = answer_question(monkeypatch, QMessageBox.StandardButton.Cancel)
    dialog.delete_button.click()
    assert "“pets”" in texts[0] and pets.path.is_dir() and not w.trained.running
    answer_question(monkeypatch, QMessageBox.StandardButton.Yes)
    with qtbot.waitSignal(w.trained.model_deleted, timeout=WAIT):
        dialog.delete_button.click()
    qtbot.waitUntil(lambda: not listed(w, "user:pets"), timeout=WAIT)
    assert not pets.path.exists() and list(paths.models_dir().iterdir()) == []
    assert w.model_key == zoo.DEFAULT_MODEL == w.model_picker.current_key()
    assert w.settings.value("model") == zoo.DEFAULT_MODEL
    assert "pets, the model in use, was deleted" in w.message_bar.text.text()
    assert w.model_picker.headers() == []
    qtbot.waitUntil(lambda: dialog.keys() == [], timeout=WAIT)
    assert dialog.empty_label.isVisibleTo(dialog) and not dialog.rename_button.isEnabled()


def test_import_a_folder_someone_gave_you(qtbot, lite_state, tmp_path, monkeypatch):
    given = save(lite_state, "given-model", folder=tmp_path / "usb")
    w = open_window(qtbot)
    dialog = w.manage_models()
    assert dialog.keys() == [] and dialog.empty_label.isVisibleTo(dialog)
    monkeypatch.setattr(
        QFileDialog, "getExistingDirectory", staticmethod(lambda *a, **k: str(given.path))
    )
    with qtbot.waitSignal(w.trained.model_imported, timeout=WAIT) as blocker:
        dialog.import_button.click()
    assert blocker.args == ["user:given-model"]
    qtbot.waitUntil(lambda: listed(w, "user:given-model"), timeout=WAIT)
    copied = paths.models_dir() / "given-model"
    assert (copied / bundle.WEIGHTS).read_bytes() == (given.path / bundle.WEIGHTS).read_bytes()
    assert given.path.is_dir()  # copied, not moved
    qtbot.waitUntil(lambda: dialog.keys() == ["user:given-model"], timeout=WAIT)
    assert dialog.table.topLevelItem(0).text(2) == "3 classes: cat, dog, other"
    assert dialog.table.topLevelItem(0).text(3) == "91.0 %"


def test_importing_a_folder_that_is_no_model_says_why(qtbot, tmp_path, monkeypatch):
    w = open_window(qtbot)
    dialog = w.manage_models()
    monkeypatch.setattr(
        QFileDialog, "getExistingDirectory", staticmethod(lambda *a, **k: str(tmp_path))
    )
    with qtbot.waitSignal(w.trained.change_failed, timeout=WAIT):
        dialog.import_button.click()
    assert "manifest.json" in dialog.message_bar.text.text()
    assert list(paths.models_dir().iterdir()) == []


def test_show_in_file_manager_opens_the_model_folder(qtbot, pets, monkeypatch):
    opened = []
    monkeypatch.setattr(QDesktopServices, "openUrl", staticmethod(opened.append))
    w = open_window(qtbot)
    dialog = w.manage_models()
    dialog.show_button.click()
    assert opened == [QUrl.fromLocalFile(str(pets.path))]


# ---------------------------------------------------------------------- the wizard


class StubWizard(QWizard):
    """Stands in for the real TrainWizard: same constructor and signal."""

    model_saved = Signal(str, bool)
    made: list = []

    def __init__(self, parent, settings, catalog) -> None:
        super().__init__(parent)
        self.settings, self.catalog = settings, catalog
        StubWizard.made.append(self)


@pytest.fixture
def stub_wizard(monkeypatch):
    module = types.ModuleType("effnet_app.gui.wizard.wizard")
    module.TrainWizard = StubWizard
    monkeypatch.setitem(sys.modules, "effnet_app.gui.wizard.wizard", module)
    StubWizard.made = []
    return StubWizard


def test_the_menu_and_the_empty_window_open_one_wizard(qtbot, stub_wizard):
    w = open_window(qtbot)
    w.menu_actions.train_model.trigger()
    (wizard,) = stub_wizard.made
    assert wizard.isVisible() and not wizard.isModal()
    assert wizard.parent() is w and wizard.settings is w.settings and wizard.catalog is w.catalog
    w.empty_state.train_button.click()  # raised, not made again
    assert stub_wizard.made == [wizard] and w.wizard is wizard
    wizard.reject()
    assert w.wizard is None
    w.empty_state.train_button.click()
    assert len(stub_wizard.made) == 2 and w.wizard is stub_wizard.made[1]


def test_a_saved_model_is_listed_and_used_when_asked(qtbot, stub_wizard, lite_state):
    w = open_window(qtbot)
    wizard = w.open_training_wizard()
    save(lite_state, "fresh")
    with qtbot.waitSignal(w.catalog_loaded, timeout=WAIT):
        wizard.model_saved.emit("user:fresh", False)
    assert listed(w, "user:fresh") and w.model_key == "lite0"
    save(lite_state, "fresher")
    with qtbot.waitSignal(w.catalog_loaded, timeout=WAIT):
        wizard.model_saved.emit("user:fresher", True)
    assert w.model_key == "user:fresher" == w.model_picker.current_key()


def hold_next_list(monkeypatch) -> threading.Event:
    """The next model list is made at once but delivered only once the event is set."""
    release = threading.Event()
    real_load = catalog_controller.load_catalog

    def stale_first(cancel):
        result = yield from real_load(cancel)
        if not release.is_set():
            assert release.wait(WAIT / 1000)
        return result

    monkeypatch.setattr(catalog_controller, "load_catalog", stale_first)
    return release


@pytest.fixture
def held_list(monkeypatch) -> threading.Event:
    return hold_next_list(monkeypatch)


def test_a_model_saved_while_the_list_loads_is_chosen_from_the_next_list(
    qtbot, stub_wizard, lite_state, held_list
):
    w = MainWindow()
    qtbot.addWidget(w)
    w.show()
    qtbot.waitUntil(lambda: w.catalog_controller._job.running, timeout=WAIT)
    save(lite_state, "late")
    w.on_model_trained("user:late", True)
    held_list.set()
    qtbot.waitUntil(lambda: w.model_key == "user:late", timeout=WAIT)
    assert listed(w, "user:late") and "not in the model list" not in w.message_bar.text.text()


def test_a_list_made_before_a_rename_does_not_drop_the_renamed_model(qtbot, pets, monkeypatch):
    w = open_window(qtbot)
    w.choose_model("user:pets")
    release = hold_next_list(monkeypatch)
    w.reload_catalog()
    qtbot.waitUntil(lambda: w.catalog_controller._job.running, timeout=WAIT)
    with qtbot.waitSignal(w.trained.model_renamed, timeout=WAIT):
        w.trained.rename("user:pets", "kittens")
    release.set()
    qtbot.waitUntil(lambda: listed(w, "user:kittens"), timeout=WAIT)
    assert w.model_key == "user:kittens" == w.model_picker.current_key()
    assert "no longer" not in w.message_bar.text.text()
