"""Controllers against fake views and fake sessions, on real worker threads (no window)."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from PySide6.QtGui import QClipboard, QGuiApplication, QImage
from window_driver import deliver_posted_events

from effnet_app.core.errors import AppError
from effnet_app.core.jobs import NEVER, Progress
from effnet_app.core.runtime.classifier import ImageResult, Prediction, PredictionBatch
from effnet_app.gui.controllers import weights as weights_controller
from effnet_app.gui.controllers.classify import ClassifyController
from effnet_app.gui.controllers.paste import PasteController
from effnet_app.gui.controllers.sort import SortController
from effnet_app.gui.controllers.weights import WeightsController
from effnet_app.gui.workers import live_workers

WAIT = 10_000


class GatedSession:
    """``classify`` as the core's: a loading step, then one batch per path, each held at
    that path's gate until the test opens it."""

    def __init__(self) -> None:
        self.gates: dict[str, threading.Event] = {}
        self.calls: list[tuple] = []

    def gate(self, path: str) -> threading.Event:
        return self.gates.setdefault(path, threading.Event())

    def classify(self, key, device, paths, top_k=5, cancel=NEVER):
        self.calls.append((key, device, tuple(paths), top_k))
        yield PredictionBatch((), Progress(0, 1, "Loading…"), "loading")
        for n, path in enumerate(paths, 1):
            assert self.gate(path).wait(WAIT)
            row = ImageResult(Path(path), (Prediction(f"label of {path}", 0.9, 0),))
            yield PredictionBatch((row,), Progress(n, len(paths)))
        if "fails" in paths:
            raise AppError("It failed.")
        return len(paths)


class RecordingView:
    """What the window would show: every signal of the controller, in order."""

    def __init__(self, controller: ClassifyController) -> None:
        self.events: list[tuple] = []
        controller.run_started.connect(lambda g: self.events.append(("started", g)))
        controller.progressed.connect(lambda p: self.events.append(("loading", p.message)))
        controller.batch_arrived.connect(
            lambda b: self.events.append(("rows", [str(r.path) for r in b.results]))
        )
        controller.run_finished.connect(lambda n: self.events.append(("finished", n)))
        controller.run_cancelled.connect(lambda: self.events.append(("cancelled",)))
        controller.run_failed.connect(lambda e: self.events.append(("failed", str(e))))


@pytest.fixture
def session():
    made = GatedSession()
    yield made
    for gate in made.gates.values():
        gate.set()  # no job stays blocked past its test


def test_a_newer_run_drops_everything_the_older_one_still_sends(qtbot, session):
    controller = ClassifyController(session)
    view = RecordingView(controller)
    with qtbot.waitSignal(controller.progressed, timeout=WAIT):
        first = controller.start(["old"], "lite0", "cpu")
    old_worker = controller.worker
    second = controller.start(["new"], "lite0", "cpu")
    assert (first, second) == (1, 2)
    shown_before_second = view.events.index(("started", 2))
    session.gate("old").set()  # run 1 now yields a batch and returns, cancelled or not
    qtbot.waitUntil(lambda: old_worker.is_done, timeout=WAIT)
    with qtbot.waitSignal(controller.run_finished, timeout=WAIT):
        session.gate("new").set()
    deliver_posted_events()
    assert view.events[: shown_before_second + 1] == [
        ("started", 1),
        ("loading", "Loading…"),
        ("started", 2),
    ]
    assert view.events[shown_before_second + 1 :] == [
        ("loading", "Loading…"),
        ("rows", ["new"]),
        ("finished", 1),
    ]
    assert not controller.running and controller.worker is None


def test_a_discarded_run_sends_nothing_more(qtbot, session):
    controller = ClassifyController(session)
    view = RecordingView(controller)
    with qtbot.waitSignal(controller.progressed, timeout=WAIT):
        controller.start(["a"], "lite0", "cpu")
    worker = controller.worker
    controller.discard()
    session.gate("a").set()
    qtbot.waitUntil(lambda: worker.is_done, timeout=WAIT)
    deliver_posted_events()
    assert view.events == [("started", 1), ("loading", "Loading…")]
    assert controller.request is None and controller.last_paths == []


def test_a_failed_run_is_kept_to_run_again(qtbot, session):
    controller = ClassifyController(session)
    session.gate("fails").set()
    with qtbot.waitSignal(controller.run_failed, timeout=WAIT):
        controller.start(["fails"], "lite0", "cuda", top_k=3)
    assert controller.failed == controller.request
    assert controller.failed.device == "cuda" and controller.failed.top_k == 3
    session.gate("ok").set()
    with qtbot.waitSignal(controller.run_finished, timeout=WAIT):
        controller.start(["ok"], "lite0", "cpu")
    assert controller.failed is None


def test_ten_runs_leave_no_worker_behind(qtbot, session):
    controller = ClassifyController(session)
    deliver_posted_events()
    before = live_workers()
    counts = []
    for i in range(10):
        session.gate(f"img{i}").set()
        with qtbot.waitSignal(controller.run_finished, timeout=WAIT):
            controller.start([f"img{i}"], "lite0", "cpu")
        qtbot.waitUntil(lambda: live_workers() == before, timeout=WAIT)
        counts.append(live_workers())
    assert counts == [before] * 10
    assert controller.worker is None


def test_sorting_reports_its_summary_and_the_worker_goes(qtbot, tmp_path):
    photo = tmp_path / "cup.jpg"
    photo.write_bytes(b"not really a photo, but sorting only copies it")
    rows = [ImageResult(photo, (Prediction("cup", 0.9, 0),))]
    sorter = SortController()
    deliver_posted_events()
    before = live_workers()
    with qtbot.waitSignal(sorter.sort_finished, timeout=WAIT) as blocker:
        assert sorter.start(rows, tmp_path / "out", move=False, min_confidence=None)
        assert sorter.running
        assert not sorter.start(rows, tmp_path / "out", move=False, min_confidence=None)
    assert blocker.args[0].copied == 1 and (tmp_path / "out" / "cup" / "cup.jpg").is_file()
    qtbot.waitUntil(lambda: live_workers() == before and not sorter.running, timeout=WAIT)


def test_paste_saves_a_clipboard_image_and_says_when_there_is_none(qtbot, tmp_path):
    paster = PasteController(tmp_path / "pasted")
    clipboard = QGuiApplication.clipboard()
    empty = []
    paster.nothing_pasted.connect(lambda: empty.append(True))
    clipboard.clear(QClipboard.Mode.Clipboard)
    paster.paste()
    assert empty == [True]
    image = QImage(40, 30, QImage.Format.Format_RGB32)
    image.fill(0x336699)
    clipboard.setImage(image)
    with qtbot.waitSignal(paster.paste_saved, timeout=WAIT) as blocker:
        paster.paste()
    saved = blocker.args[0]
    assert saved.parent == tmp_path / "pasted" and QImage(str(saved)).size().toTuple() == (40, 30)
    clipboard.clear()


def test_a_download_asked_for_while_a_cancelled_one_stops_runs_next(qtbot, monkeypatch):
    gates = {"b0": threading.Event(), "b1": threading.Event()}

    def fake_download(key, mirror=None, cancel=NEVER):
        yield Progress(0, 10, unit="bytes")
        assert gates[key].wait(WAIT)  # a stalled connection: no cancel check until it moves
        cancel.raise_if_cancelled()
        return Path(f"/weights/{key}.pth")

    monkeypatch.setattr(weights_controller.session, "download", fake_download)
    controller = WeightsController()
    outcomes = []
    controller.download_finished.connect(lambda key, path: outcomes.append(("done", key, path)))
    controller.download_cancelled.connect(lambda key: outcomes.append(("cancelled", key)))
    with qtbot.waitSignal(controller.download_progressed, timeout=WAIT):
        controller.download("b0", None)
    controller.cancel_download()  # the dialog closed; the job is stuck in its read
    controller.download("b1", None)
    assert controller.downloading and outcomes == []
    gates["b1"].set()
    with qtbot.waitSignal(controller.download_finished, timeout=WAIT):
        gates["b0"].set()
    assert outcomes == [("done", "b1", Path("/weights/b1.pth"))]
    qtbot.waitUntil(lambda: not controller.downloading, timeout=WAIT)


def test_cancelling_the_download_that_waits_for_a_stuck_one_starts_nothing(qtbot, monkeypatch):
    # Cancel, Retry, Cancel again while the first download is stuck on its connection:
    # the user cancelled both, so nothing may download once the first one lets go.
    gate = threading.Event()
    called = []

    def fake_download(key, mirror=None, cancel=NEVER):
        called.append(key)
        yield Progress(0, 10, unit="bytes")
        assert gate.wait(WAIT)  # a stalled connection: no cancel check until it moves
        cancel.raise_if_cancelled()
        return Path(f"/weights/{key}.pth")

    monkeypatch.setattr(weights_controller.session, "download", fake_download)
    controller = WeightsController()
    outcomes = []
    controller.download_finished.connect(lambda key, path: outcomes.append(("done", key)))
    controller.download_cancelled.connect(lambda key: outcomes.append(("cancelled", key)))
    with qtbot.waitSignal(controller.download_progressed, timeout=WAIT):
        controller.download("b0", None)
    controller.cancel_download()  # the first dialog's Cancel
    controller.download("b0", None)  # Retry: waits for the stuck one
    controller.cancel_download()  # the second dialog's Cancel
    with qtbot.waitSignal(controller.download_cancelled, timeout=WAIT):
        gate.set()
    deliver_posted_events()
    assert called == ["b0"] and not controller.downloading
    assert outcomes == [("cancelled", "b0")]
