"""Engine subcommands (models, download, import-weights, classify): filled in by the engine."""

from __future__ import annotations


def add_commands(sub) -> None:
    return None
