"""The main window's actions (with their shortcuts) and the menus that group them.

Only QActions and menus are built here; the window connects each action's ``triggered``
to what it does, and opens any dialog itself.
"""

from __future__ import annotations

from collections.abc import Iterable

from PySide6.QtGui import QAction, QActionGroup, QKeySequence
from PySide6.QtWidgets import QMenu, QMenuBar, QWidget

Shortcut = QKeySequence.StandardKey | str

# Model › Engine: the runtime classification uses (core.runtime.choices.BACKENDS).
ENGINE_TEXTS = (
    ("auto", "&Auto (fastest on this computer)"),
    ("torch", "&PyTorch"),
    ("onnxruntime", "&ONNX Runtime"),
    ("openvino", "Open&VINO"),
)


def _action(parent: QWidget, text: str, shortcut: Shortcut = "", tip: str = "") -> QAction:
    action = QAction(text, parent)
    if shortcut:
        action.setShortcut(QKeySequence(shortcut))
    if tip:
        action.setStatusTip(tip)
    return action


class MenuActions:
    """Every action of the menu bar, by name."""

    def __init__(self, parent: QWidget, themes: Iterable[str], theme: str) -> None:
        self._file(parent)
        self._classify(parent)
        self._model(parent)
        self._view(parent, themes, theme)
        self._help(parent)

    def _file(self, parent: QWidget) -> None:
        self.open_images = _action(parent, "&Open images…", QKeySequence.StandardKey.Open)
        self.open_folder = _action(parent, "Open &folder…", "Ctrl+Shift+O")
        self.paste = _action(
            parent,
            "&Paste images",
            QKeySequence.StandardKey.Paste,
            "Classify files or an image from the clipboard",
        )
        self.export = _action(parent, "&Export results…", "Ctrl+E")
        self.sort = _action(parent, "&Sort into folders…", "Ctrl+Shift+S")
        self.quit = _action(parent, "&Quit", "Ctrl+Q")

    def _classify(self, parent: QWidget) -> None:
        self.cancel = _action(parent, "&Cancel", "Esc", "Stop the running job")
        self.again = _action(parent, "Classify &again", "F5")
        self.clear = _action(parent, "C&lear results", "Ctrl+L")

    def _model(self, parent: QWidget) -> None:
        self.train_model = _action(
            parent, "&Train a new model…", "Ctrl+T", "Teach a model your own classes"
        )
        self.manage_models = _action(
            parent, "Ma&nage trained models…", "", "Rename, delete or import trained models"
        )
        self.about_model = _action(parent, "&About this model", "F2")
        self.import_weights = _action(parent, "&Import weights file…", "Ctrl+I")
        self.mirror = _action(parent, "Download &mirror…", "Ctrl+Shift+M")
        self.export_model = _action(
            parent, "&Export…", "", "Save the model for ONNX Runtime or OpenVINO, outside the app"
        )
        self._engine(parent)

    def _engine(self, parent: QWidget) -> None:
        self.engine_group = QActionGroup(parent)  # exclusive: one engine is checked
        self.engines: dict[str, QAction] = {}
        for name, text in ENGINE_TEXTS:
            action = _action(parent, text)
            action.setCheckable(True)
            action.setData(name)
            self.engine_group.addAction(action)
            self.engines[name] = action
        self.fast_mode = _action(parent, "&Fast mode (bf16)")
        self.fast_mode.setCheckable(True)
        self.fast_mode.setEnabled(False)  # until this processor is known to compute in bf16
        self.engine_menu: QMenu | None = None  # the submenu, made by build_menus

    def _view(self, parent: QWidget, themes: Iterable[str], theme: str) -> None:
        self.theme_group = QActionGroup(parent)  # exclusive: one theme is checked
        self.themes: dict[str, QAction] = {}
        for name in themes:
            action = _action(parent, name.capitalize())
            action.setCheckable(True)
            action.setChecked(name == theme)
            action.setData(name)
            self.theme_group.addAction(action)
            self.themes[name] = action

    def _help(self, parent: QWidget) -> None:
        self.about = _action(parent, "&About", "F1")
        self.log = _action(parent, "Show &log folder", "Ctrl+Shift+L")


def _menu(bar: QMenuBar, title: str, *groups: Iterable[QAction]) -> QMenu:
    """A menu of ``groups`` of actions, with a separator between groups."""
    menu = bar.addMenu(title)
    for i, group in enumerate(groups):
        if i:
            menu.addSeparator()
        menu.addActions(list(group))
    return menu


def build_menus(bar: QMenuBar, a: MenuActions) -> None:
    _menu(
        bar,
        "&File",
        (a.open_images, a.open_folder, a.paste),
        (a.export, a.sort),
        (a.quit,),
    )
    _menu(bar, "&Classify", (a.cancel, a.again, a.clear))
    model = _menu(
        bar,
        "&Model",
        (a.train_model, a.manage_models),
        (a.about_model, a.import_weights, a.mirror),
    )
    model.addSeparator()
    a.engine_menu = model.addMenu("En&gine")
    a.engine_menu.setToolTipsVisible(True)  # why an engine is greyed out
    a.engine_menu.addActions(list(a.engines.values()))
    a.engine_menu.addSeparator()
    a.engine_menu.addAction(a.fast_mode)
    model.addAction(a.export_model)
    view = _menu(bar, "&View")
    view.addMenu("&Theme").addActions(list(a.themes.values()))
    _menu(bar, "&Help", (a.about, a.log))
