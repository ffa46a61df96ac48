"""Model › Manage trained models: rename, delete and import bundle folders.

Each change is a core call run in a Worker (an import copies a 16 MB folder and checks
its hash; a rename or delete on a slow network drive takes a moment too), one at a time.
The window reloads the model list when a change has been made.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QObject, Signal

from ...core.jobs import NEVER, CancelToken, Progress
from ...core.models import bundle
from .single_job import SingleJob


class TrainedModelsController(QObject):
    change_started = Signal(str)  # what is being done, as a sentence
    model_renamed = Signal(str, str)  # old key, new key
    model_deleted = Signal(str)  # key of the deleted model
    model_imported = Signal(str)  # key of the imported model
    change_failed = Signal(object)  # the exception; nothing was changed

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._job = SingleJob(self)
        self._key = ""  # the model the running change is about

    @property
    def running(self) -> bool:
        return self._job.running

    def rename(self, key: str, new_name: str) -> bool:
        """False, and nothing started, while another change is still running."""
        sentence = f"Renaming {_name(key)} to {new_name}…"
        return self._start(rename_job, (key, new_name), key, self._on_rename_returned, sentence)

    def delete(self, key: str) -> bool:
        sentence = f"Deleting {_name(key)}…"
        return self._start(delete_job, (key,), key, self._on_delete_returned, sentence)

    def import_folder(self, folder: str | Path) -> bool:
        folder = Path(folder)
        sentence = f"Importing {folder.name}…"
        return self._start(import_job, (folder,), "", self._on_import_returned, sentence)

    def _start(self, job, args: tuple, key: str, on_returned, sentence: str) -> bool:
        worker = self._job.start(
            job, *args, on={"returned": on_returned, "errored": self.change_failed.emit}
        )
        if worker is None:
            return False
        self._key = key
        self.change_started.emit(sentence)
        return True

    def _on_rename_returned(self, renamed: object) -> None:
        self.model_renamed.emit(self._key, renamed.key)

    def _on_delete_returned(self, _none: object) -> None:
        self.model_deleted.emit(self._key)

    def _on_import_returned(self, imported: object) -> None:
        self.model_imported.emit(imported.key)


def _name(key: str) -> str:
    return key.removeprefix(bundle.KEY_PREFIX)


def rename_job(key: str, new_name: str, cancel: CancelToken = NEVER):
    """Job: the bundle ``key`` under ``new_name``; returns the renamed Bundle."""
    yield Progress(0, 1, f"Renaming {_name(key)} to {new_name}…", "steps")
    cancel.raise_if_cancelled()
    return bundle.rename_bundle(key, new_name)


def delete_job(key: str, cancel: CancelToken = NEVER):
    """Job: remove the bundle ``key`` (renamed away first, so it is gone at once)."""
    yield Progress(0, 1, f"Deleting {_name(key)}…", "steps")
    cancel.raise_if_cancelled()
    bundle.delete_bundle(key)


def import_job(folder: Path, cancel: CancelToken = NEVER):
    """Job: copy a bundle folder someone gave the user into the models folder, checked."""
    yield Progress(0, 1, f"Importing {folder.name}…", "steps")
    cancel.raise_if_cancelled()
    return bundle.import_bundle(folder)
