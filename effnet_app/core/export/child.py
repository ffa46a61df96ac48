"""Making an export in a child process, so that the app's own threads never wait for it.

Tracing a network with ``torch.onnx`` is mostly Python: done in the GUI process, it held
the interpreter lock for seconds at a time and the window stopped repainting (measured
by ``benchmarks/gui_responsiveness.py``). The child runs the same ``export_job`` and
reports its progress as one JSON line per step on its stdout; the parent turns those
lines back into ``Progress`` and reads the finished folder's ``export.json``. Cancelling
kills the child; the caller removes the folder, as after any failure.

The child rebuilds the model's spec from what names it (a zoo key, or a trained bundle's
folder), so nothing but text and file paths crosses the boundary.
"""

from __future__ import annotations

import json
import os
import queue
import subprocess
import sys
import threading
from collections.abc import Generator
from pathlib import Path

from ..errors import AppError, ExportError, ExportRefused, sentence_of
from ..jobs import NEVER, Cancelled, CancelToken, Progress
from .sidecar import ExportInfo, read_export

POLL_S = 0.1  # how often a waiting parent looks at its cancel token


def _request(spec, weights_path, folder, limit) -> str:
    source = str(spec.bundle_path) if spec.bundle_path is not None else spec.key
    weights = None if weights_path is None else os.fspath(weights_path)
    return json.dumps(
        {"model": source, "weights": weights, "folder": os.fspath(folder), "limit": limit}
    )


def _pump(stream, lines: queue.Queue) -> None:
    for line in stream:
        lines.put(line)
    lines.put(None)


def _stop(child: subprocess.Popen) -> None:
    if child.poll() is None:
        child.kill()
    child.wait()


def export_in_child(
    spec,
    weights_path: str | os.PathLike | None,
    folder: str | os.PathLike,
    cancel: CancelToken = NEVER,
    limit: int | None = None,
) -> Generator[Progress, None, ExportInfo]:
    """Job: ``onnx_export.export_job`` for ``spec``, run by a child Python process."""
    child = subprocess.Popen(
        [sys.executable, "-m", __name__, _request(spec, weights_path, folder, limit)],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        text=True,
        encoding="utf-8",
    )
    lines: queue.Queue = queue.Queue()
    threading.Thread(target=_pump, args=(child.stdout, lines), daemon=True).start()
    outcome: dict = {}
    try:
        while True:
            cancel.raise_if_cancelled()
            try:
                line = lines.get(timeout=POLL_S)
            except queue.Empty:
                continue
            if line is None:
                break
            try:
                message = json.loads(line)
            except ValueError:  # a library's own print on stdout, not ours
                continue
            if not isinstance(message, dict):
                continue
            if "progress" in message:
                yield Progress(*message["progress"])
            else:
                outcome = message
    finally:
        _stop(child)
    return _result(outcome, child.returncode, folder, spec)


def _result(outcome: dict, code: int, folder, spec) -> ExportInfo:
    if outcome.get("done"):
        return read_export(folder)
    if outcome.get("cancelled"):
        raise Cancelled()
    if "error" in outcome:
        kind = outcome.get("kind")
        error = {"refused": ExportRefused, "export": ExportError}.get(kind, AppError)
        raise error(outcome["error"])
    raise ExportError(
        f"Making the optimised copy of {spec.name} stopped unexpectedly (exit code {code})."
    )


def _say(message: dict) -> None:
    sys.stdout.write(json.dumps(message) + "\n")
    sys.stdout.flush()


def main(argv: list[str]) -> int:
    """The child: run the export asked for in ``argv[0]``, one JSON line per event."""
    from ..models import registry
    from .onnx_export import export_job

    request = json.loads(argv[0])
    try:
        name = request["model"]
        spec = registry.resolve(Path(name) if os.sep in name else name)
        job = export_job(spec, request["weights"], request["folder"], limit=request["limit"])
        while True:
            try:
                step = next(job)
            except StopIteration:
                break
            _say({"progress": [step.done, step.total, step.message, step.unit]})
    except Cancelled:
        _say({"cancelled": True})
        return 1
    except Exception as exc:  # noqa: BLE001 - the parent says it in a sentence
        kind = "refused" if isinstance(exc, ExportRefused) else "export"
        kind = kind if isinstance(exc, ExportError) else "other"
        _say({"error": sentence_of(exc), "kind": kind})
        return 1
    _say({"done": True})
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
