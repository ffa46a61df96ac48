"""The list of models and devices, loaded once after the window is on screen (it imports
torch, which takes seconds)."""

from __future__ import annotations

from PySide6.QtCore import QObject, Signal

from ...core.runtime.catalog import load_catalog
from .single_job import SingleJob


class CatalogController(QObject):
    catalog_loaded = Signal(object)  # Catalog
    catalog_failed = Signal(object)  # the exception

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._job = SingleJob(self)

    def load(self) -> None:
        self._job.start(
            load_catalog,
            on={"returned": self.catalog_loaded.emit, "errored": self.catalog_failed.emit},
        )
