"""Helpers that make folders of real photos for tests."""

from __future__ import annotations

import shutil
from pathlib import Path


def photo_copies(photo: Path, folder: Path, count: int, stem: str = "img") -> Path:
    """``count`` copies of one photo in ``folder``: a run over them takes a while."""
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(count):
        shutil.copy(photo, folder / f"{stem}{i:03}.jpg")
    return folder
