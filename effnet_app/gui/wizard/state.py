"""What the wizard's pages share: the folder, its scan, the options, the run and the edits."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class WizardState:
    folder: Path | None = None
    dataset: Any = None  # core.data.dataset.Dataset as scanned (before exclusions)
    edits: Any = None  # core.data.edits.DataEdits for ``dataset``'s folder
    config: Any = None  # core.training.TrainConfig of the last run
    result: Any = None  # core.training.TrainResult of the last run
    events: list = field(default_factory=list)  # the last run's log lines
    trained_on: Any = None  # the Dataset the last run trained on
    trained_excluded: tuple = ()  # the files it left out
    edits_at_run: int = 0  # how many edits there were when it started

    # (scan, edits, the edits made, the dataset they give): the last answer
    _applied: tuple = field(default=(), repr=False, compare=False)

    def training_data(self):
        """The dataset to train on: the scan with the user's moves and exclusions.

        Pages ask on the GUI thread, often (every model or device change), and applying
        the edits rebuilds the whole sample list, so the answer is kept until the scan or
        the list of edits changes.
        """
        if self.edits is None or not self.edits.edits:
            return self.dataset
        made = tuple(self.edits.edits)
        kept = self._applied
        if not kept or kept[0] is not self.dataset or kept[1] is not self.edits or kept[2] != made:
            self._applied = kept = (self.dataset, self.edits, made, self.edits.apply(self.dataset))
        return kept[3]
