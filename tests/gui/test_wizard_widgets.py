"""The training wizard's painted widgets, driven as a user would: real images, real clicks,
and the real thumbnail worker."""

from __future__ import annotations

import math
import shutil

import pytest
from datasets import make_shapes
from PySide6.QtCore import QPoint, Qt
from PySide6.QtGui import QColor, QImage
from window_driver import WAIT

from effnet_app.core.data.dataset import scan
from effnet_app.core.jobs import run_to_end
from effnet_app.core.training.config import TrainEpoch
from effnet_app.gui.thumbnails import ThumbnailCache
from effnet_app.gui.wizard.class_table import EXAMPLES, PROBLEMS, ClassTable
from effnet_app.gui.wizard.confusion import ConfusionMatrix
from effnet_app.gui.wizard.curves import EMA, TRAIN_COLOUR, VAL_COLOUR, Curves
from effnet_app.gui.wizard.image_grid import ImageGrid
from effnet_app.gui.wizard.layout_picture import LayoutPicture
from effnet_app.gui.wizard.scatter import ComparePlot


def _pixels_near(image: QImage, colour: QColor, tolerance: int = 40, step: int = 1) -> int:
    """How many pixels of ``image`` are within ``tolerance`` of ``colour`` (per channel)."""
    image = image.convertToFormat(QImage.Format.Format_RGB32)
    found = 0
    for y in range(0, image.height(), step):
        for x in range(0, image.width(), step):
            pixel = image.pixelColor(x, y)
            if (
                abs(pixel.red() - colour.red()) <= tolerance
                and abs(pixel.green() - colour.green()) <= tolerance
                and abs(pixel.blue() - colour.blue()) <= tolerance
            ):
                found += 1
    return found


def _colours(image: QImage) -> int:
    image = image.convertToFormat(QImage.Format.Format_RGB32)
    return len(
        {image.pixel(x, y) for y in range(0, image.height(), 2) for x in range(image.width())}
    )


@pytest.fixture
def cache(qtbot):
    cache = ThumbnailCache()
    yield cache
    cache.stop()
    assert cache.wait(WAIT)


# ---------------------------------------------------------------------------------- curves


def test_curves_get_one_point_per_epoch_and_batches_between(qtbot):
    curves = Curves()
    qtbot.addWidget(curves)
    curves.resize(640, 260)
    assert curves.epoch_count() == 0
    curves.add_batch_loss(5.0)  # a head solver step: before any epoch, not on the axis
    curves.add_epoch(TrainEpoch(0, "head", 0.9, 0.6, 1.0, 0.55))
    for loss in (0.8, 0.6, 0.4, 0.2):
        curves.add_batch_loss(loss)
    curves.add_epoch(TrainEpoch(1, "finetune", 0.5, 0.8, 0.7, 0.75))
    curves.add_batch_loss(0.3, fraction=0.5)
    curves.add_epoch(TrainEpoch(2, "finetune", 0.3, 0.9, 0.5, 0.85))

    series = curves.series()
    assert curves.epoch_count() == 3
    assert series["train_loss"] == [(0.0, 0.9), (1.0, 0.5), (2.0, 0.3)]
    assert series["val_loss"] == [(0.0, 1.0), (1.0, 0.7), (2.0, 0.5)]
    assert series["train_acc"] == [(0.0, 0.6), (1.0, 0.8), (2.0, 0.9)]
    assert series["val_acc"] == [(0.0, 0.55), (1.0, 0.75), (2.0, 0.85)]
    xs = [x for x, _ in series["batch_loss"]]
    assert xs == [0.25, 0.5, 0.75, 1.0, 1.5]  # spread over their epochs, in order
    smoothed = 0.8  # the head's solver steps do not leak into the first epoch's curve
    expected = [smoothed]
    for loss in (0.6, 0.4, 0.2, 0.3):
        smoothed = EMA * smoothed + (1 - EMA) * loss
        expected.append(smoothed)
    assert [y for _, y in series["batch_loss"]] == pytest.approx(expected)


def test_curves_paint_the_series_colours_and_wait_when_empty(qtbot):
    curves = Curves()
    qtbot.addWidget(curves)
    curves.resize(640, 260)
    empty = curves.grab().toImage()
    assert _pixels_near(empty, TRAIN_COLOUR, 30, 2) == 0
    curves.add_epoch(TrainEpoch(0, "head", 0.9, 0.6, 1.0, 0.55))
    curves.add_epoch(TrainEpoch(1, "finetune", 0.5, 0.8, math.nan, 0.75))  # NaN is skipped
    image = curves.grab().toImage()
    assert _pixels_near(image, TRAIN_COLOUR, 30, 2) > 20
    assert _pixels_near(image, VAL_COLOUR, 30, 2) > 10
    assert len(curves.series()["val_loss"]) == 1
    curves.clear()
    assert curves.epoch_count() == 0
    assert curves.series()["train_loss"] == []


# ---------------------------------------------------------------------------------- scatter


def test_compare_plot_click_on_a_point_chooses_it(qtbot):
    plot = ComparePlot()
    qtbot.addWidget(plot)
    plot.resize(520, 300)
    plot.show()
    qtbot.waitExposed(plot)
    points = [("lite0", "Lite0", 4.0, 0.91), ("b0", "B0", 6.0, 0.93), ("b4", "B4", 60.0, 0.96)]
    for point in points:
        plot.add_point(*point)
    assert [p.key for p in plot.points()] == ["lite0", "b0", "b4"]
    left = plot.point_position("lite0")
    right = plot.point_position("b4")
    assert left.x() < plot.point_position("b0").x() < right.x()  # faster to the left
    assert right.y() < left.y()  # more accurate higher up
    for key in ("b0", "b4", "lite0"):
        with qtbot.waitSignal(plot.point_chosen, timeout=1000) as blocker:
            qtbot.mouseClick(
                plot, Qt.MouseButton.LeftButton, pos=plot.point_position(key).toPoint()
            )
        assert blocker.args == [key]
        assert plot.chosen() == key
    with qtbot.assertNotEmitted(plot.point_chosen):
        qtbot.mouseClick(plot, Qt.MouseButton.LeftButton, pos=QPoint(2, 2))
    assert _pixels_near(plot.grab().toImage(), TRAIN_COLOUR, 30) > 20
    plot.clear()
    assert plot.points() == []


# ---------------------------------------------------------------------------------- confusion


def test_confusion_cell_click_says_true_and_predicted(qtbot):
    matrix = ConfusionMatrix()
    qtbot.addWidget(matrix)
    classes = ["circle", "square", "a class with a really long name indeed"]
    matrix.set_matrix(classes, [[9, 1, 0], [2, 7, 1], [0, 3, 6]])
    matrix.resize(600, 300)
    matrix.show()
    qtbot.waitExposed(matrix)
    assert matrix.item(1, 0).text() == "2"
    assert matrix.horizontalHeaderItem(0).toolTip() == "predicted: circle"
    assert matrix.verticalHeaderItem(2).toolTip() == f"true: {classes[2]}"
    assert matrix.horizontalHeaderItem(2).text().endswith("…")  # elided, full in the tooltip
    assert "taken for 'square'" in matrix.item(2, 1).toolTip()
    with qtbot.waitSignal(matrix.cell_chosen, timeout=1000) as blocker:
        center = matrix.cell_rect(2, 1).center()
        qtbot.mouseClick(matrix.viewport(), Qt.MouseButton.LeftButton, pos=center)
    assert blocker.args == [2, 1]
    with pytest.raises(ValueError):
        matrix.set_matrix(["a", "b"], [[1, 2]])


# ---------------------------------------------------------------------------------- image grid


def test_image_grid_shows_thumbnails_and_a_broken_icon(qtbot, photo_folder, cache):
    grid = ImageGrid(cache)
    qtbot.addWidget(grid)
    files = sorted(photo_folder.iterdir())
    grid.set_images([(p, p.name, str(p)) for p in files])
    assert grid.paths() == files
    assert set(grid.states().values()) == {"waiting"}  # placeholders first
    qtbot.waitUntil(lambda: "waiting" not in grid.states().values(), timeout=WAIT)
    broken = photo_folder / "readme.jpg"
    assert grid.states() == {p: "failed" if p == broken else "ready" for p in files}
    row = files.index(broken)
    assert "No picture:" in grid.item(row).toolTip()
    assert not grid.item(row).icon().isNull()
    grid.item(0).setSelected(True)
    grid.item(2).setSelected(True)
    assert grid.selected_paths() == [files[0], files[2]]
    grid.resize(640, 300)
    assert _colours(grid.grab().toImage()) > 200  # photos, not flat placeholders


# ---------------------------------------------------------------------------------- class table


def test_class_table_shows_counts_problems_and_examples(qtbot, tmp_path, cache):
    root = make_shapes(tmp_path / "shapes", per_class=5)
    (root / "square" / "broken.png").write_text("not a picture")
    shutil.copy(root / "circle" / "circle_00.png", root / "circle" / "copy.png")
    dataset = run_to_end(scan(root))
    table = ClassTable(cache)
    qtbot.addWidget(table)
    table.set_dataset(dataset)
    assert table.rowCount() == 3
    assert [table.item(r, 0).text() for r in range(3)] == ["circle", "square", "triangle"]
    assert [table.count_of(r) for r in range(3)] == [5, 5, 5]
    assert table.largest() == 5
    assert table.item(0, PROBLEMS).text() == "1 duplicate"
    assert table.item(1, PROBLEMS).text() == "1 unreadable"
    assert "broken.png" in table.item(1, PROBLEMS).toolTip()
    assert table.item(2, PROBLEMS).text() == "none"
    assert table.example_paths(1) == list(dataset.reports[1].examples)
    qtbot.waitUntil(lambda: all(table.examples_shown(r) == 3 for r in range(3)), timeout=WAIT)
    table.resize(640, 300)
    image = table.grab(table.visualItemRect(table.item(2, EXAMPLES))).toImage()
    assert _colours(image) > 20


def test_layout_picture_draws_a_folder_tree(qtbot):
    picture = LayoutPicture()
    qtbot.addWidget(picture)
    hint = picture.sizeHint()
    assert 150 <= hint.width() <= 400 and 80 <= hint.height() <= 220
    picture.resize(hint)
    assert _colours(picture.grab().toImage()) > 10
