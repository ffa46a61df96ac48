"""The window appears before torch is imported, and the app exits cleanly when asked."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest


def _start(extra_env: dict[str, str], app_home) -> subprocess.Popen:
    env = {
        **os.environ,
        "QT_QPA_PLATFORM": "offscreen",
        "EFFNET_APP_HOME": str(app_home),
        "EFFNET_APP_STARTUP_PROBE": "1",
        **extra_env,
    }
    return subprocess.Popen(
        [sys.executable, "-m", "effnet_app"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )


def _shown_event(proc: subprocess.Popen) -> dict:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        if line.startswith("{"):
            return json.loads(line)
    proc.kill()
    raise AssertionError(f"no window_shown line; stderr: {proc.stderr.read()}")


@pytest.mark.slow
def test_window_shows_before_torch_and_quits_cleanly(app_home):
    proc = _start({"EFFNET_APP_QUIT_AFTER_SHOW": "1"}, app_home)
    event = _shown_event(proc)
    assert event["event"] == "window_shown" and event["visible"] is True
    assert event["torch_loaded"] is False
    assert proc.wait(timeout=60) == 0
    assert "Traceback" not in proc.stderr.read()
    assert (app_home / "logs" / "effnet_app.log").is_file()


@pytest.mark.slow
def test_sigterm_closes_the_window_cleanly(app_home):
    proc = _start({}, app_home)
    _shown_event(proc)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=60) == 0
    settings = (app_home / "config" / "settings.ini").read_text()
    assert "geometry" in settings  # closing saved the window's geometry
