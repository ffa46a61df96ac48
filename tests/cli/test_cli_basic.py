"""The parser, routing, exit codes and what happens when stdout cannot be written."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from effnet_app import __version__, cli
from effnet_app.cli import common

README = Path(__file__).resolve().parents[2] / "README.md"


def test_version_and_help(run_child):
    out = run_child("--version")
    assert out.returncode == 0 and out.stdout.strip() == f"effnet-app {__version__}"
    out = run_child("--help")
    assert out.returncode == 0 and "classify" in out.stdout and "models" in out.stdout


def test_every_exit_code_is_documented_in_help_docstring_and_readme(run_child):
    help_text = run_child("--help").stdout
    readme = README.read_text(encoding="utf-8")
    section = readme[readme.index("## Command line") :]
    section = section[: section.index("\n## ", 3)]
    for code, what in common.EXIT_CODES:
        assert re.search(rf"^\s+{code}\s+{re.escape(what)}$", help_text, re.M), code
        assert re.search(rf"^\s+{code}\s+{re.escape(what)}$", cli.__doc__, re.M), code
        assert f"**{code}**" in section, code


def test_paths_command_lists_folders_under_home(app_home, run_cli):
    code, out, _ = run_cli("paths")
    assert code == 0
    assert str(app_home) in out and "weights folder" in out and "PyTorch" in out


def test_bad_usage_exits_2():
    with pytest.raises(SystemExit) as caught:
        cli.main(["no-such-command"])
    assert caught.value.code == 2


def test_wants_cli_routes_every_command_the_parser_knows():
    names = cli.command_names()
    assert {"paths", "models", "download", "import-weights", "classify"} <= set(names)
    sub = next(a for a in cli.build_parser()._actions if a.dest == "command")
    assert names == tuple(sub.choices)  # read from the parser, not kept by hand
    assert all(cli.wants_cli([name, "x"]) for name in names)
    assert cli.wants_cli(["--version"]) and cli.wants_cli(["-h"])
    assert not cli.wants_cli([])
    assert not cli.wants_cli(["/home/me/photos"])  # paths from the .desktop file: the window


def test_a_reader_that_stops_early_gets_no_traceback(run_child):
    """`effnet-app paths | head -1`: the pipe closes before everything is written."""
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        out = run_child("paths", stdout=write_end)
    finally:
        os.close(write_end)
    assert "Traceback" not in out.stderr and "Exception ignored" not in out.stderr
    assert out.returncode == common.EXIT_PIPE


@pytest.mark.parametrize("command", ["paths", pytest.param("models", marks=pytest.mark.slow)])
def test_a_full_stdout_is_a_sentence_and_exit_3(run_child, command):
    with open("/dev/full", "w") as full:
        out = run_child(command, stdout=full)
    assert out.returncode == common.EXIT_OUTPUT == 3
    assert "Could not write to standard output" in out.stderr and "full" in out.stderr
    assert "Traceback" not in out.stderr and "Exception ignored" not in out.stderr


@pytest.mark.parametrize("command", ["paths", pytest.param("models", marks=pytest.mark.slow)])
def test_a_closed_stdout_is_a_sentence_and_exit_3(run_child, command):
    out = run_child(command, close_stdout=True)
    assert out.returncode == common.EXIT_OUTPUT
    assert "Standard output is closed" in out.stderr
    assert "Traceback" not in out.stderr and "Exception ignored" not in out.stderr


LOST_CTRL_C = """
import os, signal, time
from effnet_app.cli import common
from effnet_app.cli.progress import run_job
from effnet_app.core.jobs import Progress

steps, ended = [], []

def job():
    try:
        for step in range(50):
            if step == 3:
                try:  # as a __del__, a weakref callback or a library's bare except would
                    os.kill(os.getpid(), signal.SIGINT)
                    time.sleep(1.0)  # the handler raises in here
                except KeyboardInterrupt:
                    pass
            steps.append(step)
            yield Progress(step, 50)
    finally:
        ended.append(True)

code = common.run_command(lambda args: run_job(job(), quiet=True) or 0, None)
print(code, steps, ended, signal.getsignal(signal.SIGINT) is signal.default_int_handler)
"""


def test_a_ctrl_c_lost_on_its_way_still_stops_the_job():
    """A signal's handler runs wherever the main thread is; a raise there can be lost.

    In a fresh interpreter: a test process's own signal state depends on what ran before.
    """
    import subprocess
    import sys

    child = subprocess.run(
        [sys.executable, "-c", LOST_CTRL_C], capture_output=True, text=True, timeout=60
    )
    assert child.returncode == 0, child.stderr[-2000:]
    # Stopped at the step after the lost raise, the job's cleanup ran, the handler is back.
    assert child.stdout.split("\n")[0] == f"{common.EXIT_INTERRUPTED} [0, 1, 2, 3] [True] True"
