"""ONNX Runtime as a ``Backend``: a verified export on the CPU, torch-free.

Threads are set, not left to ONNX Runtime: intra-op threads are the physical cores
(its default counts hyper-threads too), one inter-op thread (the graph is one chain),
and no spin-waiting. A spinning runtime holds its cores for a while after each batch,
time the decode threads that share them need: measured end to end on a 2-core machine,
51 img/s without spinning against 45 with it.
"""

from __future__ import annotations

import logging
from importlib import metadata
from pathlib import Path

import numpy as np

from .export_backend import ExportBackend, damaged

log = logging.getLogger(__name__)


class OnnxRuntimeBackend(ExportBackend):
    """``model_path`` (an .onnx file) in an ONNX Runtime session on the CPU.

    ``session_config`` adds session configuration entries (``add_session_config_entry``)
    after the ones set here, for callers that tune the runtime further.
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
    ) -> None:
        super().__init__(model_path, threads, sha256, name_for_messages)
        self.session_config = dict(session_config or {})
        self.session = None

    @staticmethod
    def version() -> str | None:
        """The installed onnxruntime's version, read without importing it."""
        try:
            return metadata.version("onnxruntime")
        except metadata.PackageNotFoundError:
            return None

    def session_options(self):
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = self.threads
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        # Every failure also reaches us as an exception with the same text; printed as
        # well, a batch that ran out of memory and went on in halves would look fatal.
        options.log_severity_level = 4
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        options.add_session_config_entry("session.inter_op.allow_spinning", "0")
        for key, value in self.session_config.items():
            options.add_session_config_entry(key, value)
        return options

    def _open(self):
        import onnxruntime as ort

        try:
            session = ort.InferenceSession(
                str(self.model_path), self.session_options(), providers=["CPUExecutionProvider"]
            )
        except Exception as exc:  # noqa: BLE001 - any parse or graph failure: not usable
            raise damaged(self.model_path, f"ONNX Runtime could not read it: {exc}") from exc
        self.session = session
        input_name = session.get_inputs()[0].name
        output_name = session.get_outputs()[0].name

        def forward(batch: np.ndarray) -> np.ndarray:
            return session.run([output_name], {input_name: batch})[0]

        return forward
