"""Every folder the app uses, from platformdirs, with one override.

``EFFNET_APP_HOME`` puts every folder under one directory (tests, portable installs).
Folders are created when first asked for.
"""

from __future__ import annotations

import os
from pathlib import Path

import platformdirs

from .. import APP_NAME
from .errors import AppError

HOME_ENV = "EFFNET_APP_HOME"


def _base(kind: str) -> Path:
    home = os.environ.get(HOME_ENV)
    if home:
        return Path(home).expanduser() / kind
    finder = {
        "config": platformdirs.user_config_dir,
        "data": platformdirs.user_data_dir,
        "cache": platformdirs.user_cache_dir,
        "logs": platformdirs.user_log_dir,
    }[kind]
    return Path(finder(APP_NAME, appauthor=False))


def _ensure(path: Path) -> Path:
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:  # read-only home, or EFFNET_APP_HOME naming a file
        raise AppError(
            f"Could not create the folder {path} ({exc.strerror or exc}). Check that you "
            f"may write there, or set {HOME_ENV} to a folder you can write to.",
            detail=repr(exc),
        ) from exc
    return path


def config_dir() -> Path:
    """Settings (QSettings ini file)."""
    return _ensure(_base("config"))


def data_dir() -> Path:
    """User data that must survive: trained models."""
    return _ensure(_base("data"))


def models_dir() -> Path:
    """Trained model bundles, one folder each."""
    return _ensure(_base("data") / "models")


def cache_dir() -> Path:
    """Things that can be downloaded or rebuilt again."""
    return _ensure(_base("cache"))


def weights_dir() -> Path:
    """Downloaded pretrained weights."""
    return _ensure(_base("cache") / "weights")


def thumbnails_dir() -> Path:
    return _ensure(_base("cache") / "thumbnails")


def log_dir() -> Path:
    return _ensure(_base("logs"))


def log_file() -> Path:
    return log_dir() / "effnet_app.log"


def all_dirs() -> dict[str, Path]:
    """Name -> folder, for the About box and ``effnet-app paths``."""
    return {
        "config": config_dir(),
        "models": models_dir(),
        "weights": weights_dir(),
        "cache": cache_dir(),
        "logs": log_dir(),
    }
