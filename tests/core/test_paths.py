from __future__ import annotations

import importlib
from pathlib import Path

import pytest

from effnet_app.core import paths


def test_home_override_moves_every_folder(app_home: Path):
    folders = paths.all_dirs()
    assert set(folders) == {"config", "models", "weights", "cache", "logs"}
    for name, folder in folders.items():
        assert folder.is_dir(), name
        assert app_home in folder.parents, f"{name} folder {folder} is outside {app_home}"
    assert app_home in paths.log_file().parents
    assert app_home in paths.thumbnails_dir().parents


def test_folders_created_on_demand(tmp_path, monkeypatch):
    home = tmp_path / "not-yet"
    monkeypatch.setenv(paths.HOME_ENV, str(home))
    assert not home.exists()
    weights = paths.weights_dir()
    assert weights.is_dir() and weights == home / "cache" / "weights"
    assert not (home / "data").exists()  # only what was asked for
    assert paths.models_dir() == home / "data" / "models"


def test_without_override_uses_platformdirs(monkeypatch, tmp_path):
    monkeypatch.delenv(paths.HOME_ENV, raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "cfg"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    importlib.reload(paths)
    assert paths.config_dir() == tmp_path / "cfg" / "effnet_app"
    assert paths.weights_dir() == tmp_path / "cache" / "effnet_app" / "weights"
    assert paths.models_dir() == tmp_path / "data" / "effnet_app" / "models"
    assert str(paths.log_dir()).startswith(str(tmp_path))


def test_a_home_that_cannot_hold_folders_is_a_sentence(tmp_path, monkeypatch):
    from effnet_app.core.errors import AppError

    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    monkeypatch.setenv(paths.HOME_ENV, str(blocker))
    with pytest.raises(AppError) as caught:
        paths.weights_dir()
    assert str(blocker) in caught.value.sentence and paths.HOME_ENV in caught.value.sentence
