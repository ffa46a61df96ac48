"""Fixtures for the command line: sample photos in a folder, and running the CLI."""

from __future__ import annotations

import shutil
import subprocess
import sys

import pytest

from effnet_app import cli


@pytest.fixture
def photo_folder(sample_photos, tmp_path):
    folder = tmp_path / "photos"
    folder.mkdir()
    for name in ("coffee", "chelsea"):
        shutil.copy(sample_photos[name], folder / f"{name}.jpg")
    return folder


@pytest.fixture
def run_cli(capsys):
    """Run ``effnet-app ARGS`` in this process: (exit code, stdout, stderr)."""

    def run(*args: str) -> tuple[int, str, str]:
        code = cli.main(list(args))
        out = capsys.readouterr()
        return code, out.out, out.err

    return run


@pytest.fixture
def run_child():
    """Run ``python -m effnet_app ARGS`` in a child process; stdout and stderr as text."""

    def run(
        *args: str, stdout=subprocess.PIPE, close_stdout: bool = False, **kwargs
    ) -> subprocess.CompletedProcess:
        command = [sys.executable, "-m", "effnet_app", *args]
        if close_stdout:  # as `effnet-app ARGS >&-` runs it: file descriptor 1 closed
            command, stdout = ["sh", "-c", 'exec "$0" "$@" >&-', *command], None
        return subprocess.run(
            command, stdout=stdout, stderr=subprocess.PIPE, text=True, timeout=300, **kwargs
        )

    return run


@pytest.fixture
def wait_until():
    """``wait_until(condition, what)``: poll until ``condition()`` is truthy, returning it.

    Waits for a child process to reach a state (never asserts how long that took); gives
    up with an assertion after a deadline generous enough for a busy machine.
    """

    from resume_helpers import wait_for

    return wait_for
