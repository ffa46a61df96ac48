"""The preview panel under quick selection changes, on real files and worker threads."""

from __future__ import annotations

from pathlib import Path

import pytest

from effnet_app.core.runtime.classifier import ImageResult, Prediction
from effnet_app.core.runtime.session import Session
from effnet_app.gui.widgets.preview import PreviewPanel
from effnet_app.gui.workers import Worker

WAIT = 30_000


def make_panel(qtbot) -> PreviewPanel:
    panel = PreviewPanel(Session(), lambda: ("lite0", "cpu"))
    qtbot.addWidget(panel)
    panel.show()
    return panel


def test_a_late_error_of_the_previous_row_does_not_reach_the_new_one(
    qtbot, sample_photos, tmp_path
):
    broken = tmp_path / "broken.jpg"
    broken.write_text("not a JPEG")
    panel = make_panel(qtbot)
    panel.show_result(ImageResult(Path(broken), (Prediction("espresso", 0.9, 967),)))
    old = panel._image_worker
    # The old job fails while the GUI thread is busy; the user moves on before its
    # error is delivered.
    assert old.wait(WAIT)
    good = ImageResult(Path(sample_photos["coffee"]), (Prediction("espresso", 0.9, 967),))
    panel.show_result(good)
    qtbot.waitUntil(lambda: panel.view.image is not None and old.is_done, timeout=WAIT)
    assert panel.status.text() == ""  # not "broken.jpg cannot be shown: …"
    assert panel.view.placeholder != "Cannot show this image"
    assert panel.result is good


@pytest.mark.slow
def test_quick_selections_do_not_pile_up_workers(qtbot, sample_photos):
    panel = make_panel(qtbot)
    results = [ImageResult(Path(p)) for p in sample_photos.values()]
    for i in range(40):
        panel.show_result(results[i % len(results)])
        qtbot.waitUntil(lambda: panel.view.image is not None, timeout=WAIT)
    qtbot.waitUntil(lambda: len(panel.findChildren(Worker)) <= 1, timeout=WAIT)
    assert panel.result is results[39 % len(results)]


def test_a_problem_row_shows_its_reason_without_decoding(qtbot, tmp_path):
    folder = tmp_path / "locked"
    folder.mkdir()
    panel = make_panel(qtbot)
    panel.show_result(ImageResult(folder, (), "could not be read (permission denied)"))
    assert panel.status.text() == "could not be read (permission denied)"
    assert panel._image_worker is None and panel.view.placeholder == "Cannot show this image"
    assert "locked" in panel.title.text()
