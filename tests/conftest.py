"""Shared fixtures: a private app home for every test, and small real images."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

# A suite started in the background by a script (`make test &` in a script) inherits SIGINT
# ignored, and so would every child process a test starts: the app rightly leaves an
# ignored Ctrl+C ignored, and the Ctrl+C tests would fail. Children get the default, as
# from a terminal (a Python handler is reset to the default in a new program).
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)


@pytest.fixture(autouse=True)
def app_home(tmp_path_factory, monkeypatch) -> Path:
    """Every test gets its own EFFNET_APP_HOME: tests never touch the real home folder."""
    home = tmp_path_factory.mktemp("app_home")
    monkeypatch.setenv("EFFNET_APP_HOME", str(home))
    monkeypatch.delenv("EFFNET_APP_WEIGHTS_URL", raising=False)
    # PyTorch unless a test asks for another engine: "auto" would export and time every
    # model a test touches (tests/core/test_engines.py and the export tests cover it).
    monkeypatch.setenv("EFFNET_APP_ENGINE", "torch")
    return home


@pytest.fixture(scope="session")
def sample_photos(tmp_path_factory) -> dict[str, Path]:
    """Real photos from scikit-image, written as JPEGs: name -> path."""
    from PIL import Image
    from skimage import data

    folder = tmp_path_factory.mktemp("photos")
    out = {}
    for name in ("coffee", "chelsea", "camera", "astronaut"):
        array = getattr(data, name)()
        path = folder / f"{name}.jpg"
        Image.fromarray(array).convert("RGB").save(path, quality=92)
        out[name] = path
    return out


@pytest.fixture
def tiny_folder(tmp_path) -> Path:
    """A few small synthetic images in nested folders, plus one file that is not an image."""
    from PIL import Image

    root = tmp_path / "tiny"
    (root / "sub").mkdir(parents=True)
    colours = [(200, 30, 30), (30, 200, 30), (30, 30, 200)]
    for i, colour in enumerate(colours):
        Image.new("RGB", (64 + 8 * i, 48), colour).save(root / f"img{i}.png")
    Image.new("RGB", (40, 40), (120, 120, 0)).save(root / "sub" / "deep.jpg")
    (root / "notes.txt").write_text("not an image")
    (root / "broken.jpg").write_text("this is text, not a JPEG")
    return root


# Once every test has run and pytest has printed its summary, end the process directly.
# Tearing down an interpreter that holds Qt, torch and their thread pools can crash in
# C++ destructors that run in an arbitrary order; that would turn a green run red
# without any test failing. The app's own shutdown is tested in tests/gui/test_startup.py
# in a real subprocess, which this does not affect.
_exit_status: int | None = None


def pytest_sessionfinish(session, exitstatus) -> None:
    global _exit_status
    _exit_status = int(exitstatus)


@pytest.hookimpl(trylast=True)
def pytest_unconfigure(config) -> None:
    if _exit_status is not None and os.environ.get("EFFNET_TEST_SOFT_EXIT") != "1":
        import logging
        import sys

        logging.shutdown()
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(_exit_status)


@pytest.fixture(scope="module")
def lite_state() -> dict:
    """Lite0's real backbone with a new, seeded head for 3 classes (cat, dog, other): the
    state dict of a trained bundle, without training one."""
    import torch

    from effnet_app.core.models import weights, zoo

    spec = zoo.get_spec("lite0")
    backbone = {
        k: v for k, v in weights.load_model(spec).state_dict().items() if "classifier" not in k
    }
    torch.manual_seed(0)
    model = spec.build(num_classes=3)
    model.load_state_dict(backbone, strict=False)
    return {k: v.clone() for k, v in model.state_dict().items()}


@pytest.fixture(scope="session")
def lite0_export(tmp_path_factory):
    """Lite0 with its real ImageNet weights, exported and checked once per session.

    An ``ExportInfo`` whose folder is private to the session; ``exports.install_export``
    copies it into a test's own cache, where the app finds it.
    """
    from exports import make_export

    from effnet_app.core.models import zoo

    spec = zoo.get_spec("lite0")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("EFFNET_APP_HOME", str(tmp_path_factory.mktemp("lite0_export_home")))
        folder = tmp_path_factory.mktemp("lite0_export") / "lite0"
        return make_export(spec, folder, weights_path=spec.bundled_weights())
