"""What the main window does with results: File › Export results…, File › Sort into
folders… and Classify › Clear results.

``OutputActions`` is a part of ``MainWindow`` (mixed into it), kept in its own module so the
window's file stays layout and wiring; sorting itself is the SortController's job.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtWidgets import QFileDialog

from ..core.errors import AppError
from ..core.runtime import results_io
from .display import display_path
from .models.results_model import ResultRole
from .widgets.sort_dialog import ask_sort


class OutputActions:
    """Export, sort and clear the results the window shows."""

    def _connect_output_controllers(self) -> None:
        s = self.sorter
        s.sort_started.connect(self._on_sorter_sort_started)
        s.sort_progressed.connect(self.run_status.show_progress)
        s.sort_finished.connect(self._on_sorter_sort_finished)
        s.sort_cancelled.connect(self._on_sorter_sort_cancelled)
        s.sort_failed.connect(self._on_sorter_sort_failed)

    def run_info(self) -> results_io.RunInfo:
        return results_io.RunInfo(self.model_key, self._model_name(), self._device_name())

    # ------------------------------------------------------------------ export

    def _busy(self, then: str) -> bool:
        """Whether a job still changes the results; says so in the bar."""
        if self.controller.running or self.sorter.running:
            self.message_bar.show_message(
                f"Wait until the running job has finished (or press Esc to cancel it), {then}.",
                "info",
            )
            return True
        return False

    def export_results(self) -> None:
        if not self.results.all_results():
            self.message_bar.show_message("There are no results to export yet.", "info")
            return
        if self._busy("then export"):  # half a run's rows would look like all of them
            return
        start = str(Path(self._last_folder()) / "effnet-results.csv")
        path, chosen = QFileDialog.getSaveFileName(
            self, "Export results", start, "CSV (*.csv);;JSON (*.json)"
        )
        if path:
            self.write_export(Path(path), export_format(path, chosen))

    def write_export(self, path: Path, fmt: str) -> Path | None:
        if path.suffix.lower() != f".{fmt}":
            path = path.with_name(path.name + f".{fmt}")
        rows = self.results.all_results()
        try:
            results_io.write_results(path, rows, fmt, self.top_k, self.run_info())
        except AppError as exc:
            self.show_problem(exc)
            return None
        self.status_label.setText(f"Exported {len(rows)} rows to {display_path(path)}")
        return path

    # ------------------------------------------------------------------ sort

    def sort_into_folders(self) -> None:
        results = self.results.all_results()
        if not results:
            self.message_bar.show_message("There are no results to sort yet.", "info")
            return
        # Sorting half a run would leave the rest behind, and moving files the
        # classifier is about to read turns them into "not found" rows.
        if self._busy("then sort"):
            return
        choice = ask_sort(self, str(Path(self._last_folder()) / "sorted"), len(results))
        if choice is not None:
            self.start_sort(choice.destination, choice.move, choice.min_confidence)

    def start_sort(self, destination: Path, move: bool, min_confidence: float | None) -> bool:
        return self.sorter.start(self.results.all_results(), destination, move, min_confidence)

    def _on_sorter_sort_started(self) -> None:
        self.run_status.set_running(True)

    def _on_sorter_sort_finished(self, summary) -> None:
        self._sort_ended(summary)
        level = "warning" if summary.errors else "info"
        self.message_bar.show_message(summary.sentence(), level)
        self.status_label.setText(summary.sentence())

    def _on_sorter_sort_cancelled(self, partial) -> None:
        self._sort_ended(partial)
        done = f" {partial.sentence()}" if partial is not None else ""
        self.message_bar.show_message(
            f"Sorting cancelled; what was sorted stays sorted.{done}", "info"
        )

    def _on_sorter_sort_failed(self, exc: BaseException) -> None:
        self.run_status.set_running(False)
        self.show_problem(exc)

    def _sort_ended(self, summary) -> None:
        self.run_status.set_running(False)
        self.run_status.show_text("")
        if summary is not None and summary.move and summary.placed:
            # After a move, the table follows the files to their new folders.
            self.results.model.relocate(summary.placed)
            self.preview.show_result(self.results.table.currentIndex().data(ResultRole))

    # ------------------------------------------------------------------ clear

    def clear_results(self) -> None:
        self.controller.discard()  # its "Cancelled: …" must not replace "Ready" below
        if not self.sorter.running:  # a sort goes on: its progress and Cancel stay
            self.run_status.set_running(False)
            self.run_status.show_text("")
        self.results.clear()
        self.preview.show_result(None)
        self.stack.setCurrentWidget(self.empty_state)
        self.status_label.setText("Ready")


def export_format(path: str, chosen_filter: str) -> str:
    """The extension the user typed decides; the chosen filter only when there is none."""
    suffix = Path(path).suffix.lower()
    if suffix in (".csv", ".json"):
        return suffix[1:]
    return "json" if chosen_filter.startswith("JSON") else "csv"
