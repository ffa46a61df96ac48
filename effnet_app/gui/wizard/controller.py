"""The training wizard's jobs: scan, estimate, train, compare, try and save, each in a Worker.

One ``SingleJob`` per kind of job, so a scan and an estimate can run while the user looks
at the options, but never two trainings at once. Every signal arrives on the GUI thread;
the pages only connect to them. Core jobs are imported when first started, so opening the
wizard does not load PyTorch on the GUI thread.
"""

from __future__ import annotations

from PySide6.QtCore import QObject, Signal

from ..controllers.single_job import SingleJob


def _preload(cancel):
    from ...core.training import preload

    return (yield from preload(cancel))


def _scan(folder, min_side, cancel):
    from ...core.data import dataset

    return (yield from dataset.scan(folder, min_side=min_side, cancel=cancel))


def _estimate(base, data, device, val_fraction, cancel):
    from ...core.training import tools

    return (yield from tools.estimate(base, data, device, val_fraction, cancel=cancel))


def _train(config, data, cancel):
    from ...core.training import train

    return (yield from train(config, data, cancel))


def _compare(bases, data, config, cancel):
    from ...core.training import tools

    return (yield from tools.compare(bases, data, config, cancel=cancel))


def _try(result, paths, device, cancel):
    from ...core.training import tools

    yield from tools.try_images(result, paths, device, cancel=cancel)


def _save(result, name, data, replace, excluded, cancel):
    from ...core.training import tools

    cancel.raise_if_cancelled()
    return tools.save_result(result, name, data, replace=replace, excluded=excluded)
    yield  # a job: a generator, even though saving reports no progress


class TrainingController(QObject):
    scan_progressed = Signal(object)  # Progress
    scan_finished = Signal(object)  # Dataset
    scan_failed = Signal(object)  # the exception
    estimate_finished = Signal(object)  # tools.Estimate
    estimate_failed = Signal(object)
    train_started = Signal()
    train_event = Signal(object)  # TrainPhase | TrainBatch | TrainEpoch | TrainMessage | Progress
    train_finished = Signal(object)  # TrainResult
    train_failed = Signal(object)
    train_cancelled = Signal()
    compare_event = Signal(object)  # Progress | TrainMessage | ComparePoint | other events
    compare_finished = Signal(object)  # tuple of ComparePoint
    compare_failed = Signal(object)
    compare_cancelled = Signal()
    tried = Signal(object)  # PredictionBatch
    try_failed = Signal(object)
    saved = Signal(object)  # Bundle
    save_failed = Signal(object)
    # A job has ended: ``busy``, ``training``, ... are up to date now (during a job's own
    # returned/errored signals it still counts as running).
    jobs_changed = Signal()

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._scan = SingleJob(self)
        self._estimate = SingleJob(self)
        self._train = SingleJob(self)
        self._compare = SingleJob(self)
        self._try = SingleJob(self)
        self._save = SingleJob(self)
        self._preload = SingleJob(self)
        self._pending_scan: tuple | None = None
        self._pending_try: tuple | None = None

    # ------------------------------------------------------------------ state
    @property
    def training(self) -> bool:
        return self._train.running

    @property
    def comparing(self) -> bool:
        return self._compare.running

    @property
    def busy(self) -> bool:
        jobs = (self._scan, self._estimate, self._train, self._compare, self._try, self._save)
        return any(job.running for job in jobs)

    def cancel_all(self) -> None:
        """Everything but a save in progress (which is atomic and quick)."""
        self._pending_scan = self._pending_try = None
        for job in (
            self._preload,
            self._scan,
            self._estimate,
            self._train,
            self._compare,
            self._try,
        ):
            job.cancel()

    # ------------------------------------------------------------------ jobs
    def preload(self) -> None:
        """Import what training needs now, while the user chooses a folder: those imports
        would stall the GUI for a quarter of a second in the middle of a run."""
        self._preload.start(_preload, on={"ended": self.jobs_changed.emit})

    @property
    def saving(self) -> bool:
        return self._save.running

    def cancel_estimate(self) -> None:
        self._estimate.cancel()

    def cancel_try(self) -> None:
        self._pending_try = None
        self._try.cancel()

    @property
    def preloading(self) -> bool:
        return self._preload.running

    def scan(self, folder, min_side: int) -> None:
        """Scan ``folder``; a scan still running is cancelled and this one follows it."""
        self._pending_scan = (folder, min_side)
        self._scan.cancel()
        self._start_pending_scan()

    def _start_pending_scan(self) -> None:
        if self._scan.running or self._pending_scan is None:
            return
        folder, min_side = self._pending_scan
        self._pending_scan = None
        self._scan.start(
            _scan,
            folder,
            min_side,
            on={
                "yielded": self.scan_progressed.emit,
                "returned": self.scan_finished.emit,
                "errored": self.scan_failed.emit,
                "ended": self._on_scan_ended,
            },
        )

    def _on_scan_ended(self) -> None:
        self._start_pending_scan()
        self.jobs_changed.emit()

    def _on_try_ended(self) -> None:
        self._start_pending_try()
        self.jobs_changed.emit()

    @property
    def scanning(self) -> bool:
        return self._scan.running or self._pending_scan is not None

    def estimate(self, base: str, data, device: str, val_fraction: float) -> bool:
        if self._estimate.running:
            return False
        return (
            self._estimate.start(
                _estimate,
                base,
                data,
                device,
                val_fraction,
                on={
                    "returned": self.estimate_finished.emit,
                    "errored": self.estimate_failed.emit,
                    "ended": self.jobs_changed.emit,
                },
            )
            is not None
        )

    def train(self, config, data) -> bool:
        if self._train.running or self._compare.running:
            return False
        worker = self._train.start(
            _train,
            config,
            data,
            on={
                "yielded": self.train_event.emit,
                "returned": self.train_finished.emit,
                "errored": self.train_failed.emit,
                "cancelled": self._on_train_cancelled,
                "ended": self.jobs_changed.emit,
            },
        )
        if worker is not None:
            self.train_started.emit()
        return worker is not None

    def cancel_training(self) -> None:
        self._train.cancel()

    def _on_train_cancelled(self, _exc) -> None:
        self.train_cancelled.emit()

    def compare(self, bases, data, config) -> bool:
        if self._train.running or self._compare.running:
            return False
        return (
            self._compare.start(
                _compare,
                list(bases),
                data,
                config,
                on={
                    "yielded": self.compare_event.emit,
                    "returned": self.compare_finished.emit,
                    "errored": self.compare_failed.emit,
                    "cancelled": self._on_compare_cancelled,
                    "ended": self.jobs_changed.emit,
                },
            )
            is not None
        )

    def cancel_compare(self) -> None:
        self._compare.cancel()

    def _on_compare_cancelled(self, _exc) -> None:
        self.compare_cancelled.emit()

    def try_images(self, result, paths, device: str = "cpu") -> None:
        """Classify ``paths`` with the unsaved model; a newer request replaces an older one."""
        self._pending_try = (result, list(paths), device)
        self._try.cancel()
        self._start_pending_try()

    def _start_pending_try(self) -> None:
        if self._try.running or self._pending_try is None:
            return
        result, paths, device = self._pending_try
        self._pending_try = None
        self._try.start(
            _try,
            result,
            paths,
            device,
            on={
                "yielded": self.tried.emit,
                "errored": self.try_failed.emit,
                "ended": self._on_try_ended,
            },
        )

    def save(self, result, name: str, data, replace: bool = False, excluded=()) -> bool:
        if self._save.running:
            return False
        return (
            self._save.start(
                _save,
                result,
                name,
                data,
                replace,
                tuple(excluded),
                on={
                    "returned": self.saved.emit,
                    "errored": self.save_failed.emit,
                    "ended": self.jobs_changed.emit,
                },
            )
            is not None
        )
