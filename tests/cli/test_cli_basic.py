from __future__ import annotations

import subprocess
import sys

from effnet_app import __version__, cli


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "effnet_app", *args], capture_output=True, text=True, timeout=120
    )


def test_version_and_help():
    out = run("--version")
    assert out.returncode == 0 and out.stdout.strip() == f"effnet-app {__version__}"
    out = run("--help")
    assert out.returncode == 0 and "classify" in out.stdout and "models" in out.stdout


def test_paths_command_lists_folders_under_home(app_home, capsys):
    assert cli.main(["paths"]) == 0
    text = capsys.readouterr().out
    assert str(app_home) in text and "weights folder" in text and "PyTorch" in text


def test_bad_usage_exits_2(capsys):
    try:
        cli.main(["no-such-command"])
    except SystemExit as exc:
        assert exc.code == 2
    else:  # pragma: no cover - argparse always exits here
        raise AssertionError("argparse accepted an unknown command")


def test_wants_cli_routes_paths_to_gui():
    assert cli.wants_cli(["classify", "x.jpg"])
    assert cli.wants_cli(["--version"])
    assert not cli.wants_cli([])
    assert not cli.wants_cli(
        ["/home/me/photos"]
    )  # paths given by the .desktop file open the window
