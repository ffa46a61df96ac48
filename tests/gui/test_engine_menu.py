"""Model › Engine: the runtime that classifies, chosen in the menu, kept in the settings
and handed to the session; Fast mode only where this processor computes in bf16; and
the engine a run used, shown when it has finished."""

from __future__ import annotations

import shutil

import pytest
from exports import install_export
from window_driver import WAIT, classify_and_wait, drop

from effnet_app.core.runtime import choices
from effnet_app.core.runtime.classifier import PredictionBatch
from effnet_app.gui.engine_choice import BACKEND_KEY, PRECISION_KEY
from effnet_app.gui.main_window import MainWindow
from effnet_app.gui.settings import app_settings

ENGINES = ["auto", "torch", "onnxruntime", "openvino"]
OPTIMISE_WAIT = 300_000  # ms: export, check with every runtime, time each (~50 s idle)


def open_window(qtbot) -> MainWindow:
    w = MainWindow()
    qtbot.addWidget(w)
    with qtbot.waitSignal(w.catalog_loaded, timeout=WAIT):
        w.show()
    return w


def checked_engine(w) -> str:
    (name,) = [n for n, action in w.menu_actions.engines.items() if action.isChecked()]
    return name


def save_settings(**values) -> None:
    settings = app_settings()
    for key, value in values.items():
        settings.setValue(key, value)
    settings.sync()


def skip_without_engine_field() -> None:
    if "engine" not in getattr(PredictionBatch, "__dataclass_fields__", {}):
        pytest.skip("PredictionBatch has no engine field yet: the run cannot say its engine")


def probe_bf16(qtbot, w) -> bool:
    """Open the Engine submenu as a user would; wait for what the processor can do."""
    with qtbot.waitSignal(w.engine_controller.bf16_probed, timeout=WAIT) as blocker:
        w.menu_actions.engine_menu.aboutToShow.emit()
        assert w.engine_controller.probing  # in a Worker: the menu opens at once
        assert w.menu_actions.fast_mode.toolTip().startswith("<p>Finding out")
    return blocker.args[0]


def test_the_menu_lists_every_engine_and_the_choice_is_kept(qtbot, monkeypatch):
    monkeypatch.delenv(choices.ENGINE_ENV, raising=False)
    w = open_window(qtbot)
    a = w.menu_actions
    assert list(a.engines) == ENGINES == list(choices.BACKENDS)
    assert a.engines["auto"].text().replace("&", "") == "Auto (fastest on this computer)"
    assert [x.text() for x in a.engine_menu.actions()][-1].replace("&", "") == "Fast mode (bf16)"
    assert a.engine_menu.menuAction() in w.menuBar().actions()[2].menu().actions()
    assert checked_engine(w) == "auto" and (w.session.backend, w.session.precision) == (
        "auto",
        "fp32",
    )
    installed = choices.installed_runtimes()
    for name in installed:
        assert a.engines[name].isEnabled() and installed[name] in a.engines[name].toolTip()
    name = next(iter(installed), "torch")
    runs = []
    w.controller.run_started.connect(runs.append)
    a.engines[name].trigger()
    assert checked_engine(w) == name and w.session.backend == name
    assert runs == [] and not w.controller.running  # the next classification uses it
    assert w.settings.value(BACKEND_KEY) == name
    again = open_window(qtbot)
    assert checked_engine(again) == name and again.session.backend == name


def test_an_engine_set_in_the_environment_is_the_default(qtbot, monkeypatch):
    monkeypatch.setenv(choices.ENGINE_ENV, "torch")
    w = open_window(qtbot)
    assert checked_engine(w) == "torch" == w.session.backend
    w.menu_actions.engines["auto"].trigger()  # a choice in the menu wins from then on
    assert open_window(qtbot).session.backend == "auto"


def test_runtimes_that_are_not_installed_are_greyed_out_with_the_reason(qtbot, monkeypatch):
    save_settings(**{BACKEND_KEY: "openvino", PRECISION_KEY: "bf16"})
    monkeypatch.setattr(choices, "installed_runtimes", lambda: {})
    w = open_window(qtbot)
    a = w.menu_actions
    for name in ("onnxruntime", "openvino"):
        assert not a.engines[name].isEnabled()
        assert a.engines[name].toolTip() == (
            f"<p>{choices.LABELS[name]} is not installed here: pip install {name}</p>"
        )
    assert a.engines["auto"].isEnabled() and a.engines["torch"].isEnabled()
    # OpenVINO was chosen before it was uninstalled: Auto runs, the setting stays.
    assert checked_engine(w) == "auto" and w.session.backend == "auto"
    assert (w.session.precision, a.fast_mode.isEnabled(), a.fast_mode.isChecked()) == (
        "fp32",
        False,
        False,
    )
    assert "not installed" in a.fast_mode.toolTip()
    a.engine_menu.aboutToShow.emit()
    assert not w.engine_controller.probing and w.engine_controller.bf16 is None  # no import
    assert w.settings.value(BACKEND_KEY) == "openvino"


@pytest.mark.skipif("openvino" not in choices.installed_runtimes(), reason="needs OpenVINO")
def test_fast_mode_is_offered_only_where_this_processor_computes_in_bf16(qtbot, monkeypatch):
    monkeypatch.delenv(choices.ENGINE_ENV, raising=False)
    w = open_window(qtbot)
    fast = w.menu_actions.fast_mode
    assert not fast.isEnabled()  # until the processor is known
    supported = probe_bf16(qtbot, w)
    from effnet_app.core.runtime.openvino_backend import OpenVinoBackend

    assert supported == OpenVinoBackend.bf16_supported()  # measured, not assumed
    assert fast.isEnabled() is supported
    if not supported:
        assert "does not compute in bf16" in fast.toolTip()
        fast.trigger()  # a disabled action does nothing
        assert w.session.precision == "fp32" and w.settings.value(PRECISION_KEY) is None
    else:
        fast.trigger()
        assert fast.isChecked() and w.session.precision == "bf16"
        assert w.settings.value(PRECISION_KEY) == "bf16"
    w.menu_actions.engines["torch"].trigger()
    assert not fast.isEnabled() and "OpenVINO only" in fast.toolTip()
    assert w.session.precision == "fp32"


@pytest.mark.skipif("openvino" not in choices.installed_runtimes(), reason="needs OpenVINO")
def test_fast_mode_saved_last_time_is_checked_at_start(qtbot, monkeypatch):
    monkeypatch.delenv(choices.ENGINE_ENV, raising=False)
    save_settings(**{PRECISION_KEY: "bf16"})
    w = MainWindow()
    qtbot.addWidget(w)
    assert w.engine_controller.probing or w.engine_controller.bf16 is not None
    qtbot.waitUntil(lambda: w.engine_controller.bf16 is not None, timeout=WAIT)
    supported = w.engine_controller.bf16
    assert w.session.precision == ("bf16" if supported else "fp32")
    assert w.menu_actions.fast_mode.isChecked() is supported


@pytest.mark.slow
def test_a_run_names_its_engine_and_says_why_a_faster_one_was_not_used(
    qtbot, monkeypatch, sample_photos, tmp_path
):
    installed = choices.installed_runtimes()
    if "onnxruntime" not in installed:
        pytest.skip("needs ONNX Runtime to choose it")
    w = open_window(qtbot)
    w.menu_actions.engines["onnxruntime"].trigger()
    # Uninstalled after it was chosen: loading falls back to PyTorch and says so.
    monkeypatch.setattr(choices, "installed_runtimes", lambda: {"openvino": "0"})
    shutil.copy(sample_photos["coffee"], tmp_path / "coffee.jpg")
    rows = classify_and_wait(qtbot, w, [tmp_path])
    assert rows["coffee.jpg"].top1.label == "espresso"
    assert "ONNX Runtime is not installed; using PyTorch." in w.message_bar.text.text()
    skip_without_engine_field()
    assert w.status_label.text().endswith("on cpu · PyTorch fp32)")
    assert w.run_engine == "PyTorch fp32"


@pytest.mark.slow
def test_auto_shows_optimising_while_it_measures_then_the_engine_it_chose(
    qtbot, monkeypatch, sample_photos, tmp_path, lite0_export
):
    """The first Auto run on a CPU times each engine on the model's checked export (made
    first when there is none: here the session's): the status bar says so while it does,
    and names the engine chosen once the run is done."""
    install_export(lite0_export)
    monkeypatch.delenv(choices.ENGINE_ENV, raising=False)
    w = open_window(qtbot)
    w.choose_device("cpu")
    seen: list[tuple[str, bool]] = []

    def look(_progress) -> None:  # after the window's own handler has shown it
        seen.append((w.run_status.label.text(), w.run_status.label.isVisibleTo(w)))

    w.controller.progressed.connect(look)
    shutil.copy(sample_photos["chelsea"], tmp_path / "cat.jpg")
    with qtbot.waitSignal(w.controller.run_finished, timeout=OPTIMISE_WAIT):
        drop(w, [tmp_path])
    optimising = [text for text, visible in seen if text.startswith("Optimising") and visible]
    assert optimising, seen
    skip_without_engine_field()
    labels = [choices.LABELS[name] for name in ("torch", *choices.installed_runtimes())]
    assert any(w.run_engine.startswith(label) for label in labels), w.run_engine
    assert w.status_label.text().endswith(f"on cpu · {w.run_engine})")
