"""OpenVINO as a ``Backend``: a verified export (.onnx, or .xml + .bin) on the CPU, torch-free.

The precision is always set explicitly. OpenVINO's CPU default is bf16 wherever the
processor has it (AMX, AVX512-BF16), which moved Lite0's logits by up to 0.13 against
fp32: "fp32" asks for f32, and "bf16" is refused with a sentence on a processor that
lacks it (and, like any faster path, is only chosen after an agreement check elsewhere).
Threads are the physical cores, as for ONNX Runtime. A batch is split over the compiled
model's infer requests (one per stream, see ``PERFORMANCE_HINT``), which run at once.
"""

from __future__ import annotations

import hashlib
import logging
import os
import threading
from contextlib import suppress
from functools import cache
from importlib import metadata
from pathlib import Path

import numpy as np

from ..errors import ExportError
from ..fsutil import atomic_write
from . import cpu
from .export_backend import ExportBackend, damaged, file_sha256

log = logging.getLogger(__name__)

PRECISIONS = {"fp32": "f32", "bf16": "bf16"}  # ours -> INFERENCE_PRECISION_HINT

# LATENCY compiles one stream that runs each request on every thread; THROUGHPUT makes
# several streams (one per core here) with one request each, and a batch split over
# them keeps every core on its own images (depthwise convolutions parallelise poorly
# inside one inference). Measured on a 2-core AMD EPYC (AVX2), 2 threads, f32, img/s,
# best and median of the 1-second runs in which nothing else waited for a CPU:
#                      batch 16: LATENCY   THROUGHPUT     batch 1: LATENCY   THROUGHPUT
#   Lite0                        130 / 90   140 / 94               112 / 81    62 / 52
#   B0 (random weights)           96 / 56   100 / 65                79 / 56    47 / 36
# THROUGHPUT is faster for the batches folders are classified in; a single image then
# runs on one stream, about half as fast, so a batch of one runs on a LATENCY model
# compiled when the first such batch comes (and a caller that knows it only has one
# image, one file on the command line, passes performance_hint="LATENCY" from the start).
PERFORMANCE_HINT = "THROUGHPUT"


@cache
def _core():
    import openvino as ov

    return ov.Core()


class BlobCache:
    """OpenVINO's compiled model kept between runs, used only while its SHA-256 holds.

    Compiling Lite0's ONNX file takes about 200 ms here; importing the compiled model
    that OpenVINO exports takes about 55 ms: most of what a one-image ``classify`` waits
    for after its imports. OpenVINO's own ``CACHE_DIR`` is not used: it names a blob by
    the model's path rather than its contents (an .xml re-exported with new weights in
    its .bin ran the old weights), and it never checks a blob (one with 4 KB overwritten
    loaded silently and moved Lite0's logits by 6). Here a blob is named by the SHA-256
    of the model files (the .bin beside an .xml too), the config and OpenVINO's version,
    and is one file: the SHA-256 of its data, a newline, then the data, written
    atomically. A blob that does not match is removed and the model compiled again. The
    newest ``KEEP`` blobs are kept.
    """

    KEEP = 8

    def __init__(self, model_path: Path, model_sha256: str | None, config: dict) -> None:
        self.path = None
        if model_sha256:
            from .. import paths

            weights = Path(model_path).with_suffix(".bin")
            parts = [model_sha256, OpenVinoBackend.version() or ""]
            parts += [file_sha256(weights)] if Path(model_path).suffix == ".xml" else []
            parts += [f"{k}={config[k]}" for k in sorted(config)]
            key = hashlib.sha256("|".join(parts).encode()).hexdigest()[:32]
            self.path = paths.cache_dir() / "openvino" / f"{key}.blob"

    def load(self, core, config: dict):
        """The compiled model from a checked blob; None when there is none that holds."""
        if self.path is None:
            return None
        try:
            recorded, _, data = self.path.read_bytes().partition(b"\n")
        except OSError:
            return None
        try:
            if hashlib.sha256(data).hexdigest().encode() != recorded:
                raise ValueError("its SHA-256 does not match")
            compiled = core.import_model(data, "CPU", config)
        except Exception:  # noqa: BLE001 - damaged or from another build: compiled anew
            log.info("OpenVINO's compiled model %s is not used", self.path, exc_info=True)
            with suppress(OSError):
                self.path.unlink()
            return None
        with suppress(OSError):
            os.utime(self.path)  # the newest are kept
        return compiled

    def save(self, compiled) -> None:
        """Keep ``compiled`` for later runs (best effort: a full disk only costs time)."""
        if self.path is None:
            return
        with suppress(Exception):
            data = compiled.export_model()
            data = data.getvalue() if hasattr(data, "getvalue") else bytes(data)
            digest = hashlib.sha256(data).hexdigest().encode()
            atomic_write(self.path, digest + b"\n" + data)
            self._prune()

    def _prune(self) -> None:
        blobs = sorted(self.path.parent.glob("*.blob"), key=_mtime, reverse=True)
        for old in blobs[self.KEEP :]:
            with suppress(OSError):
                old.unlink()


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:
        return 0.0


class OpenVinoBackend(ExportBackend):
    """``model_path`` compiled by OpenVINO for the CPU at ``precision`` ("fp32", "bf16").

    ``sha256`` covers ``model_path`` itself (for an .xml, not the .bin beside it).
    ``performance_hint`` "LATENCY" suits a caller that knows it runs single images.
    """

    name = "openvino"
    title = "OpenVINO"

    def __init__(
        self,
        model_path: str | Path,
        precision: str = "fp32",
        threads: int | None = None,
        sha256: str | None = None,
        name_for_messages: str | None = None,
        performance_hint: str | None = None,
    ) -> None:
        if precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {sorted(PRECISIONS)}, not {precision!r}")
        super().__init__(model_path, threads, sha256, name_for_messages)
        self.precision = precision
        self.performance_hint = performance_hint or PERFORMANCE_HINT
        self.compiled = None
        self._lock = threading.Lock()  # the requests are reused: runs from two threads take turns

    @staticmethod
    def version() -> str | None:
        """The installed openvino's version, read without importing it."""
        try:
            return metadata.version("openvino")
        except metadata.PackageNotFoundError:
            return None

    @staticmethod
    def bf16_supported() -> bool:
        """Whether OpenVINO's CPU plugin can compute in bf16 on this processor."""
        return "BF16" in _core().get_property("CPU", "OPTIMIZATION_CAPABILITIES")

    def config(self, hint: str | None = None) -> dict:
        return {
            "INFERENCE_PRECISION_HINT": PRECISIONS[self.precision],
            "INFERENCE_NUM_THREADS": self.threads,
            "PERFORMANCE_HINT": hint or self.performance_hint,
        }

    def _compile(self, hint: str | None = None):
        if self.precision == "bf16" and not self.bf16_supported():
            raise ExportError(
                f"This computer's processor ({cpu.cpu_name()}) cannot compute in bf16, so "
                "the fast bf16 mode is not available here. Use fp32.",
                detail="OPTIMIZATION_CAPABILITIES: "
                + " ".join(_core().get_property("CPU", "OPTIMIZATION_CAPABILITIES")),
            )
        core, config = _core(), self.config(hint)
        blobs = BlobCache(self.model_path, self.sha256, config)
        compiled = blobs.load(core, config)
        if compiled is not None:
            return compiled
        try:
            compiled = core.compile_model(str(self.model_path), "CPU", config)
        except Exception as exc:  # noqa: BLE001 - any read or compile failure: not usable
            raise damaged(self.model_path, f"OpenVINO could not read it: {exc}") from exc
        blobs.save(compiled)
        return compiled

    def _run_single(self, batch: np.ndarray, single: list, lock) -> np.ndarray:
        """One image on every thread (LATENCY): THROUGHPUT would run it on one stream,
        at about half the speed (B0 here: 94 against 155 images/s)."""
        with lock:
            if not single:
                single.append(self._compile("LATENCY").create_infer_request())
            request = single[0]
            request.infer({0: batch}, share_inputs=True)
            return request.get_output_tensor(0).data.copy()

    def _open(self):
        self.compiled = compiled = self._compile()
        jobs = max(
            1, min(self.threads, int(compiled.get_property("OPTIMAL_NUMBER_OF_INFER_REQUESTS")))
        )
        requests = [compiled.create_infer_request() for _ in range(jobs)]
        lock = self._lock

        single = []  # a LATENCY model for images run alone, compiled when the first comes

        def forward(batch: np.ndarray, alone: bool = False) -> np.ndarray:
            if alone and jobs > 1:
                return self._run_single(batch, single, lock)
            parts = np.array_split(batch, max(1, min(jobs, len(batch))))
            with lock:
                started = []
                try:
                    for request, part in zip(requests, parts, strict=False):
                        request.start_async({0: part}, share_inputs=True)
                        started.append(request)
                finally:
                    _wait_all(started)  # never leave a request running on our arrays
                out = [r.get_output_tensor(0).data.copy() for r in started]
            return out[0] if len(out) == 1 else np.concatenate(out)

        return forward


def _wait_all(requests) -> None:
    """Wait for every request, then raise the first failure among them (if any)."""
    failure = None
    for request in requests:
        try:
            request.wait()
        except Exception as exc:  # noqa: BLE001 - re-raised below, after the others finish
            failure = failure or exc
    if failure is not None:
        raise failure
