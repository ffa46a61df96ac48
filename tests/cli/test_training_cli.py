"""check-data, train, evaluate, trained models in `models`, delete/rename, "not sure"."""

from __future__ import annotations

import csv
import io
import json
import os
import signal
import subprocess
import sys

import pytest
from datasets import make_shapes

from effnet_app.core import paths


@pytest.fixture
def shapes(tmp_path):
    return make_shapes(tmp_path / "shapes", per_class=12, size=64)


def models_dir_entries() -> list[str]:
    folder = paths.models_dir()
    return sorted(os.listdir(folder)) if folder.is_dir() else []


def test_check_data_good_folder_exit_0(run_cli, shapes):
    code, out, _ = run_cli("check-data", str(shapes), "-q")
    assert code == 0
    assert out.splitlines()[0].split() == ["class", "images", "unreadable", "duplicates", "small"]
    assert "circle    12" in out
    assert "usable: 36 images in 3 classes" in out


def test_check_data_one_class_exit_2_with_the_sentence(run_cli, tmp_path):
    data = make_shapes(tmp_path / "one", classes=("circle",), per_class=4)
    code, out, _ = run_cli("check-data", str(data), "-q")
    assert code == 2
    assert "error: Only one class was found ('circle'); a model needs at least two" in out


def test_train_refuses_one_class_before_starting(run_cli, tmp_path):
    data = make_shapes(tmp_path / "one", classes=("circle",), per_class=4)
    code, _, err = run_cli("train", str(data), "--out", "x", "-q")
    assert code == 2 and "Only one class was found" in err
    assert models_dir_entries() == []


def test_train_bad_data_folder_exit_2(run_cli, tmp_path):
    code, _, err = run_cli("train", str(tmp_path / "nowhere"), "-q")
    assert code == 2 and err.startswith("effnet-app: ")


@pytest.mark.slow
def test_train_models_classify_evaluate_rename_delete(run_cli, shapes):
    code, out, err = run_cli("train", str(shapes), "--epochs", "2", "--out", "shapes")
    assert code == 0, err
    assert out.startswith("accuracy: ")
    assert "true \\ predicted  circle" in out
    assert "'not sure'" in out
    assert "saved as shapes in " in out
    assert "effnet-app classify PHOTOS --model shapes" in out
    assert "epoch 0 (head): train loss" in err
    assert models_dir_entries() == ["shapes"]

    code, out, _ = run_cli("models")
    assert code == 0
    trained = out.split("trained models\n", 1)[1].splitlines()
    assert trained[0].split() == ["name", "base", "classes", "accuracy", "created"]
    assert trained[1].split()[:3] == ["shapes", "lite0", "3"]

    one = make_shapes(shapes.parent / "new", per_class=1, seed=7) / "square" / "square_00.png"
    code, out, _ = run_cli("classify", str(one), "--model", "shapes", "--format", "csv", "-q")
    assert code == 0
    row = next(csv.DictReader(io.StringIO(out)))
    assert row["label_1"] == "square" and row["unsure"] in ("true", "false")

    code, out, _ = run_cli("evaluate", "shapes", str(shapes), "-q")
    assert code == 0 and out.startswith("accuracy: ")

    code, _, err = run_cli("train", str(shapes), "--out", "shapes", "-q")
    assert code == 2 and 'called "shapes" already exists' in err

    assert run_cli("rename-model", "shapes", "forms")[0] == 0
    assert models_dir_entries() == ["forms"]
    code, _, err = run_cli("delete-model", "forms")  # no terminal here: refused
    assert code == 2 and "--yes" in err
    assert run_cli("delete-model", "forms", "--yes")[0] == 0
    assert models_dir_entries() == []
    code, _, err = run_cli("delete-model", "forms", "--yes")
    assert code == 2 and 'no trained model called "forms"' in err


def _unsure_bundle(name: str):
    """A Lite0 bundle whose head is all zeros: every class 1/3, below its 0.999 threshold."""
    from effnet_app.core.models import bundle, zoo

    spec = zoo.get_spec("lite0")
    state = spec.build(num_classes=3).state_dict()
    for key in ("classifier.1.weight", "classifier.1.bias"):
        state[key].zero_()
    return bundle.save_bundle(
        name,
        state,
        base="lite0",
        classes=("circle", "square", "triangle"),
        preprocess=spec.preprocess,
        unknown_threshold=0.999,
    )


def test_not_sure_in_table_csv_and_json(run_cli, shapes):
    _unsure_bundle("doubtful")
    image = str(shapes / "circle" / "circle_00.png")
    code, out, _ = run_cli("classify", image, "--model", "doubtful", "-q")
    assert code == 0
    row = out.splitlines()[1]
    assert "not sure" in row and "33.3%" in row
    assert "circle 33%" in row and "square 33%" in row  # the candidates, in "also"

    code, out, _ = run_cli("classify", image, "--model", "doubtful", "--format", "csv", "-q")
    assert out.splitlines()[0].endswith(",probability_3,unsure,bytes,modified")
    assert next(csv.DictReader(io.StringIO(out)))["unsure"] == "true"

    code, out, _ = run_cli("classify", image, "--model", "doubtful", "--format", "json", "-q")
    assert json.loads(out)[0]["unsure"] is True


def test_zoo_csv_has_no_unsure_column(run_cli, shapes):
    image = str(shapes / "circle" / "circle_00.png")
    code, out, _ = run_cli("classify", image, "--format", "csv", "--top-k", "1", "-q")
    assert code == 0 and out.splitlines()[0] == "path,problem,label_1,probability_1,bytes,modified"


@pytest.mark.slow
def test_sigterm_during_training_leaves_nothing(tmp_path, wait_until):
    data = make_shapes(tmp_path / "shapes", per_class=30, size=64)
    log = tmp_path / "stderr.txt"
    with log.open("w") as err:
        child = subprocess.Popen(
            [sys.executable, "-m", "effnet_app", "train", str(data), "--mode", "finetune"]
            + ["--epochs", "20", "--out", "stopped"],
            stdout=subprocess.DEVNULL,
            stderr=err,
        )
        try:
            wait_until(lambda: "epoch 0 (head)" in log.read_text(), "the head's epoch line")
            child.send_signal(signal.SIGTERM)
            assert child.wait(timeout=240) == 143
        finally:
            if child.poll() is None:
                child.kill()
    assert "stopped by SIGTERM" in log.read_text()
    assert models_dir_entries() == []  # no bundle, no .part folder
