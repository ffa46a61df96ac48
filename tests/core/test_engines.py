"""Engines: auto measures and chooses, the torch-free path, and falling back to PyTorch.

One real optimisation of Lite0 (export, verification, timed trial) is made per module
in its own app home; each test copies that cache into its own home.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from exports import install_export

from effnet_app.core.jobs import run_to_end
from effnet_app.core.models import registry
from effnet_app.core.runtime import choices, engines
from effnet_app.core.runtime.classifier import classify_all
from effnet_app.core.runtime.session import Session

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def optimised_cache(tmp_path_factory, lite0_export) -> Path:
    """The cache folder of a home where Lite0 was optimised once (auto, CPU).

    The session's checked export is installed first, so this times the engines only.
    """
    home = tmp_path_factory.mktemp("optimised_home")
    before = os.environ.get("EFFNET_APP_HOME")
    os.environ["EFFNET_APP_HOME"] = str(home)
    try:
        install_export(lite0_export)
        spec = registry.resolve("lite0")
        made = run_to_end(engines.classifier_job(spec, registry.weights_path(spec), "cpu"))
        assert made.loaded and not made.notes, made.notes
    finally:
        if before is None:
            os.environ.pop("EFFNET_APP_HOME", None)
        else:
            os.environ["EFFNET_APP_HOME"] = before
    return home / "cache"


@pytest.fixture
def optimised(optimised_cache, app_home, monkeypatch) -> Path:
    """This test's home holds the optimised Lite0; the engine is left to choose (auto)."""
    monkeypatch.delenv(choices.ENGINE_ENV, raising=False)
    shutil.copytree(optimised_cache, app_home / "cache", dirs_exist_ok=True)
    return app_home


def _choice():
    plan = engines.fast_plan("lite0", "cpu")
    assert plan is not None, "the optimised home should give the fast path"
    return plan


def test_auto_measured_every_installed_runtime_and_took_the_fastest(optimised):
    plan = _choice()
    rates = plan.choice.rates
    assert set(rates) == {"torch", *choices.installed_runtimes()}
    assert all(rate > 0 for rate in rates.values())
    assert plan.backend == max(rates, key=rates.get)
    assert plan.precision == "fp32"
    assert "measured" in plan.choice.reason or "fastest" in plan.choice.reason
    alone = plan.choice.single_rates  # single images, timed apart, torch-free runtimes only
    assert set(alone) == set(choices.installed_runtimes()) and all(r > 0 for r in alone.values())
    fastest = max(alone, key=alone.get)
    if plan.backend not in alone or alone[fastest] >= choices.SPLIT_MARGIN * alone[plan.backend]:
        assert plan.single_backend == fastest
    else:  # not clearly faster alone: one runtime does both
        assert plan.single_backend == plan.backend and plan.choice.single == ""


def _split_plan(batches: str, single: str) -> engines.Plan:
    info = _choice().info
    choice = choices.Choice(batches, rates={"onnxruntime": 1.0, "openvino": 1.0}, single=single)
    return engines.Plan(info, batches, "fp32", choice)


def test_single_images_run_on_the_runtime_measured_fastest_alone(optimised, sample_photos):
    from effnet_app.core.runtime.backend import SplitBackend

    plan = _split_plan("openvino", "onnxruntime")
    made = plan.classifier()
    assert isinstance(made.backend, SplitBackend) and made.backend.name == "openvino"
    photos = [sample_photos["coffee"], sample_photos["chelsea"]]
    folder = classify_all(made, photos)
    assert made.backend.single is None  # batches never open the other runtime
    (one,) = classify_all(made, photos[:1])
    assert made.backend.single.name == "onnxruntime" and made.backend.single.single_images
    assert one.top1.label == folder[0].top1.label == "espresso"
    assert abs(one.top1.probability - folder[0].top1.probability) < 1e-4
    assert "one image: ONNX Runtime" in made.backend.describe()
    # One file on the command line: only the runtime quickest to start, set up for one,
    # even where another was faster per image; a runtime chosen by hand stays.
    alone = plan.classifier(single=True)
    assert alone.backend.name == "onnxruntime" and alone.backend.single_images
    ov = _split_plan("openvino", "openvino")
    assert ov.classifier(single=True).backend.name == "onnxruntime"
    by_hand = engines.Plan(plan.info, "openvino", "fp32")
    assert by_hand.classifier(single=True).backend.performance_hint == "LATENCY"
    # Remembered with its single-image half, the torch-free path builds the same.
    key = choices.choice_key(plan.info.sha256, "fp32", "auto")
    choices.remember(key, plan.choice)
    again = engines.fast_plan("lite0", "cpu")
    assert (again.backend, again.single_backend) == ("openvino", "onnxruntime")


def test_fast_path_agrees_with_torch_on_real_photos(optimised, sample_photos):
    photos = list(sample_photos.values())
    fast = _choice().classifier()
    exact = Session(backend="torch").classifier("lite0", "cpu")
    for a, b in zip(classify_all(fast, photos), classify_all(exact, photos), strict=True):
        assert a.top1.label == b.top1.label
        assert abs(a.top1.probability - b.top1.probability) < 1e-4
    assert fast.backend.name in choices.RUNTIMES


@pytest.mark.parametrize("backend", ["onnxruntime", "openvino"])
def test_each_runtime_chosen_explicitly_gives_the_same_answers(optimised, sample_photos, backend):
    plan = engines.fast_plan("lite0", "cpu", backend)
    assert plan is not None and plan.backend == backend
    rows = classify_all(plan.classifier(), [sample_photos["coffee"], sample_photos["chelsea"]])
    assert rows[0].top1.label == "espresso"
    assert "cat" in rows[1].top1.label


def _set_up_for_one(backend) -> bool:
    if backend.name == "onnxruntime":
        return backend.single_images
    return backend.performance_hint == "LATENCY"


@pytest.mark.parametrize("backend", ["onnxruntime", "openvino"])
def test_one_file_on_the_command_line_sets_the_runtime_up_for_one_image(
    optimised, sample_photos, tmp_path, backend
):
    from effnet_app.cli import build_parser
    from effnet_app.cli.classify import _prepare_classifier

    def prepared(*paths):
        args = build_parser().parse_args(["classify", *map(str, paths), "--backend", backend])
        return _prepare_classifier(args)

    one = prepared(sample_photos["coffee"])
    assert one.backend.name == backend and _set_up_for_one(one.backend)
    assert classify_all(one, [sample_photos["coffee"]])[0].top1.label == "espresso"
    folder = tmp_path / "photos"
    folder.mkdir()
    assert not _set_up_for_one(prepared(folder).backend)  # a folder: set up for batches
    two = prepared(sample_photos["coffee"], sample_photos["chelsea"])
    assert not _set_up_for_one(two.backend)


def test_classify_command_does_not_import_torch_on_the_fast_path(optimised, sample_photos):
    script = (
        "import sys\n"
        "from effnet_app.cli import main\n"
        f"code = main(['classify', {str(sample_photos['coffee'])!r}, '--device', 'cpu',"
        " '--format', 'json'])\n"
        "print('TORCH-LOADED', 'torch' in sys.modules, 'torchvision' in sys.modules)\n"
        "sys.exit(code)\n"
    )
    env = {**os.environ, "EFFNET_APP_HOME": str(optimised)}
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert "TORCH-LOADED False False" in done.stdout
    rows = json.loads(done.stdout.split("TORCH-LOADED")[0])
    assert rows[0]["predictions"][0]["label"] == "espresso"
    one = choices.LABELS[_choice().one_file_backend]  # one file: the quickest to start
    assert _choice().one_file_backend == "onnxruntime"
    assert f"{one} fp32" in done.stderr  # the summary says which


def test_a_damaged_export_is_refused_and_torch_answers(optimised, sample_photos):
    model_file = _choice().info.model_path
    before = model_file.stat()
    data = bytearray(model_file.read_bytes())
    data[len(data) // 2 : len(data) // 2 + 64] = bytes(64)  # same size, other bytes
    model_file.write_bytes(bytes(data))
    os.utime(model_file, ns=(before.st_atime_ns, before.st_mtime_ns))  # only the hash can tell
    session = Session()
    events = list(session.classify("lite0", "cpu", [sample_photos["coffee"]], top_k=1))
    notes = [n for e in events for n in e.notes]
    assert any("damaged" in n and "PyTorch" in n for n in notes), notes
    rows = [r for e in events for r in e.results]
    assert rows[0].top1.label == "espresso"
    assert engines.fast_plan("lite0", "cpu") is None  # removed, to be made again


def test_the_command_line_says_so_too(optimised, sample_photos):
    model_file = _choice().info.model_path
    model_file.write_bytes(b"not a model" + model_file.read_bytes()[11:])
    env = {**os.environ, "EFFNET_APP_HOME": str(optimised)}
    done = subprocess.run(
        [sys.executable, "-m", "effnet_app", "classify", str(sample_photos["coffee"]),
         "--device", "cpu", "--format", "csv"],
        capture_output=True, text=True, env=env, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "damaged" in done.stderr and "PyTorch" in done.stderr
    assert "espresso" in done.stdout


def test_without_onnxruntime_and_openvino_torch_is_used(app_home, monkeypatch, sample_photos):
    monkeypatch.delenv(choices.ENGINE_ENV, raising=False)
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # import fails, as if not installed
    monkeypatch.setitem(sys.modules, "openvino", None)
    assert choices.installed_runtimes() == {}
    spec = registry.resolve("lite0")
    made = run_to_end(engines.classifier_job(spec, registry.weights_path(spec), "cpu"))
    assert made.backend.name == "torch"
    assert classify_all(made, [sample_photos["coffee"]])[0].top1.label == "espresso"
    assert not (app_home / "cache" / "exports").exists()  # nothing was exported for nothing


def test_a_runtime_that_fails_its_trial_is_left_out(optimised, monkeypatch):
    from effnet_app.core.runtime.openvino_backend import OpenVinoBackend

    def broken(self, batch, state=None):
        raise RuntimeError("simulated runtime failure")

    choices.forget_all()
    monkeypatch.setattr(OpenVinoBackend, "run", broken)
    spec = registry.resolve("lite0")
    made = run_to_end(engines.classifier_job(spec, registry.weights_path(spec), "cpu"))
    assert made.backend.name != "openvino"
    assert "openvino" not in _choice_or_torch()


def _choice_or_torch() -> dict:
    data = json.loads(
        (Path(os.environ["EFFNET_APP_HOME"]) / "cache" / choices.CHOICES_FILE).read_text()
    )
    (entry,) = data.values()
    return entry["rates"]


def test_fast_mode_without_bf16_says_why_and_runs_fp32(optimised):
    from effnet_app.core.runtime.openvino_backend import OpenVinoBackend

    if OpenVinoBackend.bf16_supported():
        pytest.skip("this CPU has bf16: the refusal path is for CPUs without it")
    spec = registry.resolve("lite0")
    job = engines.classifier_job(spec, registry.weights_path(spec), "cpu", precision="bf16")
    made = run_to_end(job)
    assert made.backend.precision == "fp32"
    assert any("no bf16" in note for note in made.notes), made.notes


def test_fast_mode_with_bf16_is_used_only_where_it_agrees(optimised):
    """On a CPU with bf16 the gate decides: 99.5 % top-1 agreement with fp32, or fp32 runs.

    How close bf16 comes depends on the CPU: an AVX512-BF16 EPYC here agreed on 94.7 %
    of the reference photos with Lite0, so there the app must say so and run fp32.
    """
    from effnet_app.core.runtime.backend import RunState
    from effnet_app.core.runtime.openvino_backend import OpenVinoBackend
    from effnet_app.core.runtime.reference import reference_batch

    if not OpenVinoBackend.bf16_supported():
        pytest.skip("this CPU has no bf16: the refusal path is tested above")
    spec = registry.resolve("lite0")
    job = engines.classifier_job(spec, registry.weights_path(spec), "cpu", precision="bf16")
    made = run_to_end(job)
    info = engines.fast_plan("lite0", "cpu", "openvino").info
    batch = reference_batch(info.preprocess)
    exact = engines.runtime_backend("openvino", info, "fp32")
    fast = engines.runtime_backend("openvino", info, "bf16")
    exact.load(), fast.load()
    agreed = engines.top1_agreement(exact.run(batch, RunState(16)), fast.run(batch, RunState(16)))
    if agreed < 0.995:
        assert made.backend.precision == "fp32"
        assert any("Fast mode (bf16) agreed with fp32 on only" in n for n in made.notes)
    else:
        assert made.backend.precision == "bf16" or made.backend.name != "openvino"


def test_an_explicit_runtime_that_is_missing_says_so(app_home, monkeypatch):
    monkeypatch.setitem(sys.modules, "openvino", None)
    spec = registry.resolve("lite0")
    job = engines.classifier_job(spec, registry.weights_path(spec), "cpu", backend="openvino")
    made = run_to_end(job)
    assert made.backend.name == "torch"
    assert made.notes == ("OpenVINO is not installed; using PyTorch.",)


def test_a_damaged_choices_file_only_costs_a_measurement(optimised):
    (optimised / "cache" / choices.CHOICES_FILE).write_text("{not json")
    assert engines.fast_plan("lite0", "cpu") is None
    assert choices.remembered("anything") is None
