"""Model › Engine: whether this processor computes in bf16 (Fast mode), found out once.

Asking OpenVINO imports it (a moment, and memory), so it is asked in a Worker, and only
when it matters: when the Engine submenu is first opened, or at start when the saved
setting asks for Fast mode.
"""

from __future__ import annotations

import logging

from PySide6.QtCore import QObject, Signal

from ...core.jobs import NEVER, CancelToken, Progress
from .single_job import SingleJob

log = logging.getLogger(__name__)


class EngineController(QObject):
    bf16_probed = Signal(bool)  # True: OpenVINO computes in bf16 on this CPU

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._job = SingleJob(self)
        self.bf16: bool | None = None  # None until probed
        self.probe_error = ""  # why OpenVINO could not say, when it could not

    @property
    def probing(self) -> bool:
        return self._job.running

    def probe(self) -> bool:
        """Start finding out, unless it is known or being found out; True when started."""
        if self.bf16 is not None or self._job.running:
            return False
        worker = self._job.start(
            bf16_job, on={"returned": self._on_probe_returned, "errored": self._on_probe_errored}
        )
        return worker is not None

    def _on_probe_returned(self, supported: object) -> None:
        self.bf16 = bool(supported)
        self.bf16_probed.emit(self.bf16)

    def _on_probe_errored(self, exc: object) -> None:
        log.warning("could not ask OpenVINO whether this CPU computes in bf16: %s", exc)
        self.bf16, self.probe_error = False, str(exc)
        self.bf16_probed.emit(False)


def bf16_job(cancel: CancelToken = NEVER):
    """Job: whether OpenVINO lists bf16 among this CPU's capabilities (imports openvino)."""
    yield Progress(0, 1, "Checking whether this processor computes in bf16…", "steps")
    cancel.raise_if_cancelled()
    from ...core.runtime.openvino_backend import OpenVinoBackend

    return OpenVinoBackend.bf16_supported()
