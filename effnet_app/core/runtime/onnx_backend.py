"""ONNX Runtime as a ``Backend``: a verified export on the CPU, torch-free.

Threads are set, not left to ONNX Runtime: intra-op threads are the physical cores
(its default counts hyper-threads too), one inter-op thread (the graph is one chain),
and no spin-waiting for batches. A spinning runtime holds its cores for a while after
each batch, time the decode threads that share them need: measured end to end on a
2-core machine, 51 img/s without spinning against 45 with it (B0, 200 12-MP JPEGs; 49.7
against 45.8 on a 2-core AMD EPYC, 2026-12-03).

A single image is another matter: nothing is decoded while it runs, and waking sleeping
threads between the network's ~80 layers is what it pays for. Spinning ran B0 at batch 1
at 96 img/s against 72 without it. So a batch of one runs in a second, spinning session,
opened when the first such batch comes; a caller that knows it runs single images only
(one file on the command line) passes ``single_images=True`` and gets just that one.
"""

from __future__ import annotations

import logging
import threading
from importlib import metadata
from pathlib import Path

import numpy as np

from .export_backend import ExportBackend, damaged

log = logging.getLogger(__name__)


class OnnxRuntimeBackend(ExportBackend):
    """``model_path`` (an .onnx file) in an ONNX Runtime session on the CPU.

    ``session_config`` adds session configuration entries (``add_session_config_entry``)
    after the ones set here, for callers that tune the runtime further. With
    ``single_images`` the one session spins (see the module docstring).
    """

    name = "onnxruntime"
    title = "ONNX Runtime"

    def __init__(
        self,
        model_path: str | Path,
        threads: int | None = None,
        sha256: str | None = None,
        name_for_messages: str | None = None,
        session_config: dict[str, str] | None = None,
        single_images: bool = False,
    ) -> None:
        super().__init__(model_path, threads, sha256, name_for_messages)
        self.session_config = dict(session_config or {})
        self.single_images = single_images
        self.session = None
        self.single_session = None  # the spinning one for batches of one, when made
        self._single_lock = threading.Lock()

    @staticmethod
    def version() -> str | None:
        """The installed onnxruntime's version, read without importing it."""
        try:
            return metadata.version("onnxruntime")
        except metadata.PackageNotFoundError:
            return None

    def session_options(self, spinning: bool = False):
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = self.threads
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        # Every failure also reaches us as an exception with the same text; printed as
        # well, a batch that ran out of memory and went on in halves would look fatal.
        options.log_severity_level = 4
        options.add_session_config_entry(
            "session.intra_op.allow_spinning", "1" if spinning else "0"
        )
        options.add_session_config_entry("session.inter_op.allow_spinning", "0")
        for key, value in self.session_config.items():
            options.add_session_config_entry(key, value)
        return options

    def _session(self, spinning: bool):
        import onnxruntime as ort

        try:
            return ort.InferenceSession(
                str(self.model_path),
                self.session_options(spinning),
                providers=["CPUExecutionProvider"],
            )
        except Exception as exc:  # noqa: BLE001 - any parse or graph failure: not usable
            raise damaged(self.model_path, f"ONNX Runtime could not read it: {exc}") from exc

    def _open(self):
        self.session = self._session(spinning=self.single_images)
        forward_all = _forward_of(self.session)
        if self.single_images or self.threads == 1:
            return forward_all
        single = []  # batch -> logits on the spinning session, once the first one came

        def forward(batch: np.ndarray) -> np.ndarray:
            if len(batch) != 1:
                return forward_all(batch)
            with self._single_lock:
                if not single:
                    self.single_session = self._session(spinning=True)
                    single.append(_forward_of(self.single_session))
            return single[0](batch)

        return forward


def _forward_of(session):
    """Batch -> logits on ``session`` (ONNX Runtime's run is safe from several threads)."""
    input_name = session.get_inputs()[0].name
    output_name = session.get_outputs()[0].name

    def forward(batch: np.ndarray) -> np.ndarray:
        return session.run([output_name], {input_name: batch})[0]

    return forward
