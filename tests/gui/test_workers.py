"""Worker on real threads: order, cancel, errors, and owners that go away."""

from __future__ import annotations

import threading
import time

import pytest
from PySide6.QtWidgets import QWidget
from window_driver import deliver_posted_events

from effnet_app.core.errors import AppError
from effnet_app.core.jobs import Cancelled, Progress
from effnet_app.gui.workers import Worker, live_workers, running_count


def counting_job(n, cancel, delay=0.0, gate: threading.Event | None = None):
    for i in range(n):
        cancel.raise_if_cancelled()
        if gate is not None:
            gate.wait(5)
        time.sleep(delay)
        yield Progress(i + 1, n)
    return f"counted {n}"


def failing_job(cancel):
    yield Progress(1, 2)
    raise AppError("The model file is damaged. Download it again.")


def test_progress_arrives_in_order_then_returned(qtbot):
    worker = Worker(counting_job, 20)
    seen, results, threads = [], [], []
    worker.yielded.connect(lambda p: (seen.append(p.done), threads.append(threading.get_ident())))
    worker.returned.connect(results.append)
    with qtbot.waitSignal(worker.returned, timeout=10_000):
        worker.start()
    assert seen == list(range(1, 21))
    assert results == ["counted 20"]
    assert set(threads) == {threading.get_ident()}  # delivered on the GUI thread


def test_cancel_stops_at_next_step_and_emits_cancelled(qtbot):
    gate = threading.Event()
    worker = Worker(counting_job, 1000, delay=0.001, gate=gate)
    steps, returned = [], []
    worker.yielded.connect(lambda p: steps.append(p.done))
    worker.returned.connect(returned.append)
    worker.start()
    gate.set()
    qtbot.waitUntil(lambda: len(steps) >= 3, timeout=10_000)
    with qtbot.waitSignal(worker.cancelled, timeout=10_000):
        worker.cancel()
    assert worker.wait(5000)
    assert returned == []
    assert len(steps) < 1000


def test_cancel_before_a_finishing_step_is_still_cancelled(qtbot):
    # The job ends without checking the token again: the worker still reports cancelled.
    gate = threading.Event()

    def quick(cancel):
        yield Progress(1, 1)
        gate.wait(10)
        return "late result"

    worker = Worker(quick)
    returned = []
    worker.returned.connect(returned.append)
    with qtbot.waitSignal(worker.yielded, timeout=10_000):
        worker.start()
    worker.cancel()
    with qtbot.waitSignal(worker.cancelled, timeout=10_000):
        gate.set()
    assert returned == []


def test_exception_arrives_as_errored_with_sentence(qtbot):
    worker = Worker(failing_job)
    with qtbot.waitSignal(worker.errored, timeout=10_000) as blocker:
        worker.start()
    error = blocker.args[0]
    assert isinstance(error, AppError)
    assert error.sentence == "The model file is damaged. Download it again."


def test_result_never_reaches_a_closed_window(qtbot):
    window = QWidget()
    gate = threading.Event()
    received = []
    worker = Worker(counting_job, 3, gate=gate, parent=window)
    worker.returned.connect(lambda r: received.append(r))
    worker.yielded.connect(lambda p: received.append(p))
    token = worker.token
    worker.start()
    window.close()
    window.deleteLater()
    qtbot.waitUntil(lambda: token.cancelled, timeout=5000)  # deleting the owner cancels
    gate.set()
    qtbot.waitUntil(lambda: running_count() == 0, timeout=10_000)
    deliver_posted_events()  # anything the thread sent before it ended
    assert received == []


@pytest.mark.parametrize("n", [0, 1])
def test_empty_and_single_step_jobs(qtbot, n):
    worker = Worker(counting_job, n)
    with qtbot.waitSignal(worker.returned, timeout=10_000) as blocker:
        worker.start()
    assert blocker.args == [f"counted {n}"]


def test_an_error_after_cancel_is_reported_as_cancelled(qtbot):
    # The owner gave up on the job (a newer selection): its late failure must not reach views.
    inside, gate = threading.Event(), threading.Event()

    def fails_late(cancel):
        inside.set()
        gate.wait(5)  # past its last cancel check when the owner cancels
        raise AppError("This image cannot be shown.")
        yield

    worker = Worker(fails_late)
    errors, cancelled = [], []
    worker.errored.connect(errors.append)
    worker.cancelled.connect(lambda exc: cancelled.append(exc))
    worker.start()
    qtbot.waitUntil(inside.is_set, timeout=10_000)
    worker.cancel()
    with qtbot.waitSignal(worker.ended, timeout=10_000):
        gate.set()
    assert errors == [] and cancelled == [None]


def test_clean_up_is_done_before_cancelled_arrives(qtbot):
    cleaned = threading.Event()
    step = threading.Event()

    def job(cancel):
        try:
            while True:
                step.set()
                time.sleep(0.01)
                yield Progress(1)
        finally:
            time.sleep(0.2)  # a slow clean-up, like deleting a large partial file
            cleaned.set()

    worker = Worker(job)
    seen_at_cancel = []
    worker.cancelled.connect(lambda: seen_at_cancel.append(cleaned.is_set()))
    worker.start()
    assert step.wait(5)
    with qtbot.waitSignal(worker.cancelled, timeout=10_000):
        worker.cancel()
    assert seen_at_cancel == [True]


def test_cancelled_carries_what_the_job_did(qtbot):
    class Partly(Cancelled):
        done = 3

    def job(cancel):
        yield Progress(1)
        raise Partly("stopped after 3")

    worker = Worker(job)
    with qtbot.waitSignal(worker.cancelled, timeout=10_000) as blocker:
        worker.start()
    assert isinstance(blocker.args[0], Partly) and blocker.args[0].done == 3


def test_a_worker_deletes_itself_once_it_has_ended(qtbot):
    deliver_posted_events()
    before = live_workers()
    owner = QWidget()
    order = []
    worker = Worker(counting_job, 2, parent=owner)
    worker.returned.connect(lambda _r: order.append("returned"))
    worker.ended.connect(lambda: order.append("ended"))
    worker.destroyed.connect(lambda: order.append("destroyed"))
    assert live_workers() == before + 1
    with qtbot.waitSignal(worker.ended, timeout=10_000):
        worker.start()
    qtbot.waitUntil(lambda: live_workers() == before, timeout=10_000)
    assert order == ["returned", "ended", "destroyed"]
    assert owner.findChildren(Worker) == []


def test_a_job_cancelled_at_a_yield_can_report_what_it_did(qtbot):
    # Like sorting: cancel is checked after each step, and the Cancelled carries the count.
    class StoppedAfter(Cancelled):
        def __init__(self, done: int) -> None:
            super().__init__(f"stopped after {done}")
            self.done = done

    step = threading.Event()

    def job(cancel):
        for done in range(1000):
            if cancel.cancelled:
                raise StoppedAfter(done)
            step.set()
            yield Progress(done)
        return "all done"

    worker = Worker(job)
    worker.start()
    assert step.wait(5)
    with qtbot.waitSignal(worker.cancelled, timeout=10_000) as blocker:
        worker.cancel()
    assert isinstance(blocker.args[0], StoppedAfter) and 0 < blocker.args[0].done < 1000
