"""ONNX Runtime as a ``Backend``: a verified export on the CPU, torch-free.

Threads are set, not left to ONNX Runtime (its default counts hyper-threads too, and
spins). A batch is split over "streams": one session with one intra-op thread, run at
once from as many threads as there are physical cores, each on its own images, as
OpenVINO's THROUGHPUT mode does. The network's depthwise convolutions and ~80 small
layers parallelise poorly inside one run, so whole images per core beat every core on
every layer; and with no intra-op pool nothing spins, so the decode threads that share
the cores get them the moment a run ends. Measured on a 2-core AMD EPYC (2026-12-03,
model only, img/s, B0 random weights / Lite0): batch 16, streams 120 / 141 against a
2-thread session 105 / 133 spinning and 93 / 130 not spinning. (Before streams, batches
ran on a 2-thread session that did not spin: end to end it had been faster than a
spinning one, 49.7 against 45.8 img/s, B0, 200 12-MP JPEGs.)

A single image run alone (one file dropped or given: ``RunState.alone``) cannot be
split: nothing is decoded while it runs, and waking sleeping threads between the
network's layers is what it pays for. Spinning ran B0 at batch 1 at 96 img/s against 72
without it (one stream: 67). So such an image runs in a second, spinning session with
every core, opened when the first comes (a folder's last batch of one does not open it,
and runs on one stream); a caller that knows it runs single images only (one file on the
command line) passes ``single_images=True`` and gets just that one.
"""

from __future__ import annotations

import logging
import threading
from concurrent.futures import ThreadPoolExecutor
from importlib import metadata
from pathlib import Path

import numpy as np

from .export_backend import ExportBackend, damaged

log = logging.getLogger(__name__)


class OnnxRuntimeBackend(ExportBackend):
    """``model_path`` (an .onnx file) in an ONNX Runtime session on the CPU.

    ``session_config`` adds session configuration entries (``add_session_config_entry``)
    after the ones set here, for callers that tune the runtime further. With
    ``single_images`` the one session spins (see the module docstring). ``streams`` is
    how many runs share a batch: ``threads`` unless ``single_images``.
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
        self.streams = 1 if single_images else self.threads
        self.session = None
        self.single_session = None  # the spinning one for images run alone, when made
        self._single_forward = None
        self._single_failed = False
        self._single_lock = threading.Lock()

    @staticmethod
    def version() -> str | None:
        """The installed onnxruntime's version, read without importing it."""
        try:
            return metadata.version("onnxruntime")
        except metadata.PackageNotFoundError:
            return None

    def session_options(self, spinning: bool = False):
        """Every core in one run when ``spinning`` (images alone), else one per stream."""
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = self.threads if spinning else self.threads // self.streams
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
        if self.streams > 1:
            forward_all = _in_streams(forward_all, self.streams)
        if self.single_images or self.threads == 1:
            return lambda batch, alone=False: forward_all(batch)

        def forward(batch: np.ndarray, alone: bool = False) -> np.ndarray:
            return (self._alone(forward_all) if alone else forward_all)(batch)

        return forward

    def _alone(self, forward_all):
        """The spinning session's forward, opened on first use; if it cannot be opened
        (short of memory, say), ``forward_all`` from then on: it runs one image too, on
        one stream (B0: 67 img/s against 104 spinning on two cores)."""
        with self._single_lock:
            if self.single_session is None and not self._single_failed:
                try:
                    self.single_session = self._session(spinning=True)
                except Exception as exc:  # noqa: BLE001 - the batch session goes on alone
                    log.warning("single images run on one core, in the batch session: %s", exc)
                    self._single_failed = True
            if self.single_session is None:
                return forward_all
            if self._single_forward is None:
                self._single_forward = _forward_of(self.single_session)
            return self._single_forward


def _in_streams(forward, streams: int):
    """``forward`` over a batch split in up to ``streams`` parts that run at once: the
    first in the calling thread, the others in a pool (ONNX Runtime releases the GIL).
    Every part is waited for before anything is raised, so none runs on a batch the
    caller has moved on from; the first part's failure wins, then the others' in order.
    The pool's idle threads end when the backend is collected."""
    pool = ThreadPoolExecutor(streams - 1, thread_name_prefix="onnxruntime-stream")

    def run(batch: np.ndarray) -> np.ndarray:
        if len(batch) < 2:
            return forward(batch)
        parts = np.array_split(batch, min(streams, len(batch)))
        others, failure, out = [], None, []
        try:
            for part in parts[1:]:  # one at a time: a failed submit leaves the rest waited for
                others.append(pool.submit(forward, part))
            out.append(forward(parts[0]))
        except Exception as exc:  # noqa: BLE001 - raised below, once the others are done
            failure = exc
        finally:
            for future in others:
                try:
                    out.append(future.result())
                except Exception as exc:  # noqa: BLE001 - the first failure is the one raised
                    failure = failure or exc
        if failure is not None:
            raise failure
        return np.concatenate(out)

    return run


def _forward_of(session):
    """Batch -> logits on ``session`` (ONNX Runtime's run is safe from several threads)."""
    input_name = session.get_inputs()[0].name
    output_name = session.get_outputs()[0].name

    def forward(batch: np.ndarray) -> np.ndarray:
        return session.run([output_name], {input_name: batch})[0]

    return forward
