"""The results table's Qt pieces: model roles, proxy sort and filters, summary, bars."""

from __future__ import annotations

from pathlib import Path

import pytest
from PySide6.QtCore import QModelIndex, QPersistentModelIndex, QRect, QSize, Qt
from PySide6.QtGui import QColor, QGuiApplication, QIcon, QImage, QPainter, QPalette
from PySide6.QtWidgets import QStyleOptionViewItem, QTableView

from effnet_app.core.runtime.classifier import ImageResult, Prediction
from effnet_app.gui.models.results_model import (
    CONFIDENCE,
    FILE,
    PREDICTIONS,
    PROBLEM,
    THUMBNAIL,
    PredictionsRole,
    ResultRole,
    ResultsFilterProxy,
    ResultsModel,
    SortRole,
    format_probability,
)
from effnet_app.gui.models.summary_model import COUNT, LABEL, LabelRole, SummaryModel
from effnet_app.gui.widgets.confidence_delegate import ConfidenceDelegate, paint_bars

DISPLAY = Qt.ItemDataRole.DisplayRole
TOOLTIP = Qt.ItemDataRole.ToolTipRole


def result(name: str, *pairs: tuple[str, float], problem: str | None = None) -> ImageResult:
    predictions = tuple(Prediction(label, p, i) for i, (label, p) in enumerate(pairs))
    return ImageResult(Path("/photos") / name, predictions, problem)


@pytest.fixture
def rows() -> list[ImageResult]:
    return [
        result("coffee.jpg", ("espresso", 0.953), ("cup", 0.014), ("coffee mug", 0.009)),
        result("Chelsea.jpg", ("tiger cat", 0.38), ("tabby, tabby cat", 0.31), ("lynx", 0.1)),
        result("broken.jpg", problem="truncated or damaged JPEG"),
        result("astronaut.jpg", ("space shuttle", 0.071), ("cup", 0.05), ("vest", 0.04)),
        result("mug.png", ("Cup", 0.62), ("espresso", 0.2), ("coffee mug", 0.1)),
    ]


@pytest.fixture
def model(qtbot, rows) -> ResultsModel:
    results = ResultsModel()
    results.append(rows)
    return results


def proxy_over(model: ResultsModel) -> ResultsFilterProxy:
    proxy = ResultsFilterProxy()
    proxy.setSourceModel(model)
    return proxy


def names(proxy) -> list[str]:
    return [proxy.index(row, FILE).data() for row in range(proxy.rowCount())]


# ---------------------------------------------------------------------------------------
# ResultsModel


def test_append_is_one_insert_per_batch(qtbot, rows):
    model = ResultsModel()
    inserts = []
    model.rowsInserted.connect(lambda _parent, first, last: inserts.append((first, last)))
    model.append(rows[:2])
    model.append(rows[2:])
    model.append([])
    big = [result(f"img{i}.jpg", ("cup", 0.5)) for i in range(5000)]
    model.append(big)
    assert inserts == [(0, 1), (2, 4), (5, 5004)]
    assert model.rowCount() == 5005 and model.columnCount() == 5
    assert model.result(2) is rows[2]
    assert model.results()[:5] == rows
    assert model.row_of(Path("/photos/astronaut.jpg")) == 3
    assert model.row_of("/photos/img9.jpg") == 14
    assert model.row_of("/nowhere.jpg") is None


def test_display_roles(model):
    def display(row, column):
        return model.index(row, column).data(DISPLAY)

    assert [model.headerData(c, Qt.Orientation.Horizontal) for c in range(5)] == [
        "",
        "File",
        "Predictions",
        "Confidence",
        "Problem",
    ]
    assert [display(0, c) for c in range(5)] == [None, "coffee.jpg", "espresso", "95.3%", ""]
    assert [display(2, c) for c in (FILE, PREDICTIONS, CONFIDENCE, PROBLEM)] == [
        "broken.jpg",
        "",
        "",
        "truncated or damaged JPEG",
    ]
    assert format_probability(0.0002) == "<0.1%"
    assert format_probability(0.0) == "0.0%"
    assert format_probability(1.0) == "100.0%"


def test_tooltips_follow_top_k_shown(model):
    assert model.index(0, FILE).data(TOOLTIP) == str(Path("/photos/coffee.jpg"))
    assert model.index(0, PREDICTIONS).data(TOOLTIP).splitlines() == [
        "95.3%  espresso",
        "1.4%  cup",
        "0.9%  coffee mug",
    ]
    assert "truncated" in model.index(2, PROBLEM).data(TOOLTIP)
    changed = []
    model.dataChanged.connect(lambda a, b, roles: changed.append((a.column(), b.row())))
    model.set_top_k_shown(1)
    assert changed == [(PREDICTIONS, 4)]
    assert model.index(0, PREDICTIONS).data(TOOLTIP) == "95.3%  espresso"
    assert [p.label for p in model.index(0, PREDICTIONS).data(PredictionsRole)] == ["espresso"]


def test_result_sort_and_foreground_roles(model, rows):
    assert model.index(1, PROBLEM).data(ResultRole) is rows[1]
    assert model.index(1, FILE).data(SortRole) == "chelsea.jpg"
    assert model.index(1, PREDICTIONS).data(SortRole) == "tiger cat"
    assert model.index(1, CONFIDENCE).data(SortRole) == pytest.approx(0.38)
    assert model.index(2, CONFIDENCE).data(SortRole) == -1.0
    assert model.index(3, THUMBNAIL).data(SortRole) == 3  # arrival order
    text = QGuiApplication.palette().color(QPalette.ColorRole.Text)
    problem = model.index(2, FILE).data(Qt.ItemDataRole.ForegroundRole)
    assert isinstance(problem, QColor) and problem != text
    assert problem.red() > problem.green() and problem.red() > problem.blue()
    assert model.index(0, FILE).data(Qt.ItemDataRole.ForegroundRole) is None


def test_thumbnails_are_asked_for_once_shown_then_stored_per_cell(qtbot, model):
    asked = []
    model.thumbnail_requested.connect(asked.append)
    for _repaint in range(2):
        for row in range(model.rowCount()):
            assert model.index(row, THUMBNAIL).data(Qt.ItemDataRole.DecorationRole) is None
    # Once per file, and not for the problem row: it has nothing to show.
    expected = [str(Path("/photos") / n) for n in ("coffee.jpg", "Chelsea.jpg")]
    expected += [str(Path("/photos") / n) for n in ("astronaut.jpg", "mug.png")]
    assert asked == expected
    model.forget_thumbnail_requests()  # the cache dropped its queue: ask again
    model.index(1, THUMBNAIL).data(Qt.ItemDataRole.DecorationRole)
    assert asked[-1] == str(Path("/photos/Chelsea.jpg")) and len(asked) == 5
    changed = []
    model.dataChanged.connect(lambda a, b, roles: changed.append((a.row(), a.column(), b.row())))
    image = QImage(128, 96, QImage.Format.Format_RGB888)
    image.fill(QColor("teal"))
    model.set_thumbnail(str(Path("/photos/astronaut.jpg")), image)
    model.set_thumbnail("/not/in/the/table.jpg", image)
    assert changed == [(3, THUMBNAIL, 3)]
    icon = model.index(3, THUMBNAIL).data(Qt.ItemDataRole.DecorationRole)
    assert isinstance(icon, QIcon) and not icon.isNull()
    assert model.index(3, FILE).data(Qt.ItemDataRole.DecorationRole) is None
    assert model.has_thumbnail(Path("/photos/astronaut.jpg"))
    model.clear()
    assert model.rowCount() == 0 and not model.has_thumbnail(Path("/photos/astronaut.jpg"))


# ---------------------------------------------------------------------------------------
# ResultsFilterProxy


def test_sort_by_label_and_by_confidence(model):
    proxy = proxy_over(model)
    proxy.sort(PREDICTIONS, Qt.SortOrder.AscendingOrder)
    # "" (the problem) < "cup" == "Cup" ignoring case < "espresso" < "space..." < "tiger cat"
    assert names(proxy) == ["broken.jpg", "mug.png", "coffee.jpg", "astronaut.jpg", "Chelsea.jpg"]
    proxy.sort(CONFIDENCE, Qt.SortOrder.DescendingOrder)
    assert names(proxy) == ["coffee.jpg", "mug.png", "Chelsea.jpg", "astronaut.jpg", "broken.jpg"]
    proxy.sort(FILE, Qt.SortOrder.AscendingOrder)
    assert names(proxy) == ["astronaut.jpg", "broken.jpg", "Chelsea.jpg", "coffee.jpg", "mug.png"]
    model.append([result("zebra.jpg", ("zebra", 0.99))])
    model.append([result("b.jpg", ("cup", 0.5))])
    assert names(proxy)[:3] == ["astronaut.jpg", "b.jpg", "broken.jpg"]  # stays sorted


def test_label_filter_matches_top1_label_or_file_name(model):
    proxy = proxy_over(model)
    proxy.set_label_filter("CUP")
    assert set(names(proxy)) == {"mug.png"}  # "cup" as a lower-ranked label does not count
    proxy.set_label_filter("cat")
    assert set(names(proxy)) == {"Chelsea.jpg"}
    proxy.set_label_filter(".jpg")
    assert set(names(proxy)) == {"coffee.jpg", "Chelsea.jpg", "broken.jpg", "astronaut.jpg"}
    proxy.set_label_filter("  ")
    assert proxy.rowCount() == 5


def test_confidence_below_and_problems_only(qtbot, model):
    proxy = proxy_over(model)
    counts = []
    proxy.counts_changed.connect(lambda shown, total: counts.append((shown, total)))
    proxy.set_confidence_below(0.5)
    assert set(names(proxy)) == {"Chelsea.jpg", "astronaut.jpg"}  # problem rows hidden
    proxy.set_confidence_below(0.62)
    assert set(names(proxy)) == {"Chelsea.jpg", "astronaut.jpg"}  # strictly below
    proxy.set_label_filter("space")
    assert names(proxy) == ["astronaut.jpg"]
    proxy.set_label_filter("")
    proxy.set_confidence_below(None)
    proxy.set_problems_only(True)
    assert names(proxy) == ["broken.jpg"]
    assert proxy.counts() == (1, 5)
    model.append([result("gone.jpg", problem="file not found"), result("ok.jpg", ("cup", 0.9))])
    assert names(proxy) == ["broken.jpg", "gone.jpg"]
    proxy.set_problems_only(False)
    assert proxy.counts() == (7, 7)
    assert counts[:4] == [(2, 5), (1, 5), (2, 5), (5, 5)]
    assert counts[-1] == (7, 7)


# ---------------------------------------------------------------------------------------
# SummaryModel


def summary_rows(summary: SummaryModel) -> list[tuple[str, int]]:
    return [
        (summary.index(r, LABEL).data(), summary.index(r, COUNT).data())
        for r in range(summary.rowCount())
    ]


def test_summary_counts_follow_the_results(qtbot, rows):
    model = ResultsModel()
    summary = SummaryModel(model)
    assert summary.rowCount() == 0 and summary.counts() == {}
    model.append(rows[:3])
    assert summary_rows(summary) == [("espresso", 1), ("tiger cat", 1), ("Problems", 1)]
    model.append(rows[3:] + [result("m2.jpg", ("Cup", 0.7)), result("m3.jpg", ("Cup", 0.7))])
    assert summary_rows(summary) == [
        ("Cup", 3),
        ("espresso", 1),
        ("space shuttle", 1),
        ("tiger cat", 1),
        ("Problems", 1),
    ]
    assert summary.counts() == {"Cup": 3, "espresso": 1, "space shuttle": 1, "tiger cat": 1}
    assert list(summary.counts()) == ["Cup", "espresso", "space shuttle", "tiger cat"]
    assert summary.problem_count() == 1
    assert summary.index(4, LABEL).data(LabelRole) is None
    assert summary.index(0, LABEL).data(LabelRole) == "Cup"
    model.clear()
    assert summary.rowCount() == 0 and summary.counts() == {} and summary.problem_count() == 0


def test_summary_resort_keeps_selected_label(qtbot):
    model = ResultsModel()
    summary = SummaryModel(model)
    model.append([result("a.jpg", ("ant", 0.9)), result("b.jpg", ("bee", 0.9))])
    model.append([result("b2.jpg", ("bee", 0.9))])
    assert summary_rows(summary) == [("bee", 2), ("ant", 1)]
    ant = QPersistentModelIndex(summary.index(1, LABEL))
    model.append([result(f"a{i}.jpg", ("ant", 0.9)) for i in range(3)])
    assert summary_rows(summary) == [("ant", 4), ("bee", 2)]
    assert ant.isValid() and ant.row() == 0 and ant.data() == "ant"
    other = ResultsModel()
    other.append([result("x.jpg", ("xylophone", 0.5))])
    summary.set_source(other)
    model.append([result("late.jpg", ("ant", 0.9))])  # the old model no longer counts
    assert summary_rows(summary) == [("xylophone", 1)]


# ---------------------------------------------------------------------------------------
# ConfidenceDelegate and paint_bars


def test_delegate_paints_every_column_and_size_grows_with_lines(qtbot, model):
    view = QTableView()
    qtbot.addWidget(view)
    view.setModel(model)
    delegate = ConfidenceDelegate(view)
    view.setItemDelegate(delegate)
    option = QStyleOptionViewItem()
    option.font = view.font()
    option.decorationSize = QSize(56, 56)
    index = model.index(0, PREDICTIONS)
    three = delegate.sizeHint(option, index)
    delegate.set_lines(5)
    five = delegate.sizeHint(option, index)
    assert five.height() > three.height() > 0
    assert delegate.sizeHint(option, model.index(0, THUMBNAIL)).height() >= 56
    assert delegate.row_height(view.font(), 56) >= five.height()
    image = QImage(400, 120, QImage.Format.Format_ARGB32)
    image.fill(Qt.GlobalColor.white)
    painter = QPainter(image)
    try:
        for row in range(model.rowCount()):
            for column in range(model.columnCount()):
                option.rect = QRect(0, 0, 400, five.height())
                delegate.paint(painter, option, model.index(row, column))
    finally:
        painter.end()


def bar_palette() -> QPalette:
    palette = QPalette()
    palette.setColor(QPalette.ColorRole.Highlight, QColor(200, 0, 100))
    palette.setColor(QPalette.ColorRole.HighlightedText, QColor(0, 255, 0))
    palette.setColor(QPalette.ColorRole.Base, QColor(255, 255, 255))
    palette.setColor(QPalette.ColorRole.Text, QColor(0, 0, 0))
    return palette


@pytest.mark.parametrize("selected", [False, True])
def test_bar_is_drawn_in_the_highlight_colour_to_its_length(qtbot, selected):
    palette = bar_palette()
    image = QImage(300, 40, QImage.Format.Format_ARGB32)
    image.fill(QColor(255, 255, 255))
    painter = QPainter(image)
    try:
        prediction = Prediction("espresso", 0.5, 0)
        paint_bars(painter, QRect(0, 0, 300, 40), [prediction], palette, selected=selected)
    finally:
        painter.end()
    wanted = QColor(0, 255, 0) if selected else QColor(200, 0, 100)
    row = [image.pixelColor(x, 20) for x in range(300)]
    # The bar starts after the label column (45% of the width): its first pixels are the
    # bar colour, a run as long as half the groove, which then goes on in the track colour.
    start = next(x for x in range(130, 300) if row[x] == wanted)
    assert start < 160
    end = next(x for x in range(start, 300) if row[x] != wanted)
    groove_end = next(x for x in range(end, 300) if row[x] == QColor(255, 255, 255))
    assert row[end + 3] not in (wanted, QColor(255, 255, 255))  # the empty part of the track
    assert end - start == pytest.approx((groove_end - start) / 2, abs=3)
    assert groove_end - start > 60


def test_confidence_bars_in_a_view_scale_with_probability(qtbot, model):
    view = QTableView()
    qtbot.addWidget(view)
    view.setPalette(bar_palette())
    proxy = proxy_over(model)
    view.setModel(proxy)
    view.setItemDelegate(ConfidenceDelegate(view))
    view.setColumnWidth(CONFIDENCE, 200)
    view.verticalHeader().setDefaultSectionSize(60)
    view.resize(900, 400)
    view.show()
    qtbot.waitExposed(view)
    shot = view.viewport().grab().toImage()
    wanted = QColor(200, 0, 100)

    def highlight_pixels(row: int) -> int:
        rect = view.visualRect(proxy.index(row, CONFIDENCE))
        y = rect.center().y()
        scale = shot.devicePixelRatio()
        xs = range(int(rect.left() * scale), int(rect.right() * scale))
        return sum(shot.pixelColor(x, int(y * scale)) == wanted for x in xs)

    espresso, mug, problem = highlight_pixels(0), highlight_pixels(4), highlight_pixels(2)
    assert problem == 0
    assert espresso > 0 and mug > 0
    assert espresso / mug == pytest.approx(0.953 / 0.62, rel=0.15)


def test_invalid_index_has_no_data(model):
    assert model.data(QModelIndex()) is None
    assert model.rowCount(model.index(0, 0)) == 0
