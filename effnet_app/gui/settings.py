"""The app's QSettings, stored as an ini file in the app's config folder."""

from __future__ import annotations

from PySide6.QtCore import QSettings

from ..core import paths


def app_settings() -> QSettings:
    return QSettings(str(paths.config_dir() / "settings.ini"), QSettings.Format.IniFormat)
