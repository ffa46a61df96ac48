"""Architecture rules, checked in fresh interpreters through sys.modules."""

from __future__ import annotations

import json
import pkgutil
import subprocess
import sys

import pytest

import effnet_app.core


def _modules_loaded_by(code: str) -> set[str]:
    out = subprocess.run(
        [sys.executable, "-c", code + "\nimport sys, json; print(json.dumps(sorted(sys.modules)))"],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    return set(json.loads(out.stdout.strip().splitlines()[-1]))


@pytest.mark.slow  # imports every core module, torch included, in a fresh interpreter
def test_core_modules_never_load_qt():
    names = [m.name for m in pkgutil.walk_packages(effnet_app.core.__path__, "effnet_app.core.")]
    # Sub-packages too: models, data, runtime and whatever comes next.
    assert {
        "effnet_app.core.jobs",
        "effnet_app.core.models.zoo",
        "effnet_app.core.runtime.classifier",
    } <= set(names)
    loaded = _modules_loaded_by("\n".join(f"import {n}" for n in names))
    assert set(names) <= loaded
    qt = sorted(m for m in loaded if m.split(".")[0] in {"PySide6", "shiboken6", "PyQt5", "PyQt6"})
    assert qt == []


def test_main_window_does_not_load_torch():
    loaded = _modules_loaded_by("import effnet_app.gui.main_window, effnet_app.gui.app")
    assert "effnet_app.gui.main_window" in loaded
    assert "PySide6.QtWidgets" in loaded
    assert "torch" not in loaded and "torchvision" not in loaded


def test_cli_help_does_not_load_torch():
    code = "import effnet_app.cli as c; c.build_parser().format_help(); c.wants_cli(['classify'])"
    loaded = _modules_loaded_by(code)
    assert {"effnet_app.cli", "effnet_app.cli.classify", "effnet_app.cli.models"} <= loaded
    assert "torch" not in loaded and "torchvision" not in loaded
