"""Classifier on real photos with the real Lite0 weights, plus cancel, problems, OOM, devices."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch
from PIL import Image

from effnet_app.core import devices
from effnet_app.core.data import images
from effnet_app.core.data.pipeline import DRAFT_MARGIN
from effnet_app.core.errors import DeviceError, ModelError
from effnet_app.core.jobs import Cancelled, CancelToken
from effnet_app.core.models import weights, zoo
from effnet_app.core.runtime.classifier import (
    Classifier,
    ImageResult,
    PredictionBatch,
    classify_all,
)
from effnet_app.core.runtime.torch_backend import TorchBackend, fold_batch_norms

CAT_LABELS = {"tabby", "tiger cat", "Egyptian cat", "Persian cat", "Siamese cat"}


@pytest.fixture(scope="module")
def lite0() -> Classifier:
    classifier = Classifier(zoo.get_spec("lite0"), device="cpu", batch_size=4)
    classifier.ensure_loaded()
    return classifier


@pytest.fixture(scope="module")
def big_photos(sample_photos, tmp_path_factory) -> dict[str, Path]:
    """The sample photos enlarged to ~2000 px, so JPEG draft decoding really reduces them."""
    folder = tmp_path_factory.mktemp("big")
    out = {}
    for name, path in sample_photos.items():
        with Image.open(path) as image:
            big = image.resize((image.width * 4, image.height * 4), Image.Resampling.BICUBIC)
        out[name] = folder / f"{name}.jpg"
        big.save(out[name], quality=90)
    return out


def test_real_photos_classify_as_a_person_expects(lite0, sample_photos):
    results = {r.path.stem: r for r in classify_all(lite0, sample_photos.values(), top_k=5)}
    assert results["coffee"].top1.label in {"espresso", "cup", "coffee mug"}
    assert results["camera"].top1.label in {"tripod", "reflex camera", "Polaroid camera"}
    assert results["chelsea"].top1.label in CAT_LABELS
    for r in results.values():
        probs = [p.probability for p in r.predictions]
        assert len(probs) == 5 and probs == sorted(probs, reverse=True) and 0 < sum(probs) <= 1.0001


@pytest.mark.slow
def test_draft_decoding_agrees_with_full_decode_on_top1(lite0, big_photos):
    spec = lite0.spec
    for name, path in big_photos.items():
        target = round(spec.preprocess.resize_size * DRAFT_MARGIN)
        drafted = images.load_image(path, target_size=target)
        full = images.load_image(path)
        assert drafted.size[0] < full.size[0], "draft decoding did not reduce the image"
        via_classifier = lite0.pipeline().decode(path)
        assert torch.equal(via_classifier, spec.preprocess.apply(drafted))
        batch = torch.stack([via_classifier, spec.preprocess.apply(full)])
        with torch.inference_mode():
            top = lite0.model(batch.contiguous(memory_format=torch.channels_last)).argmax(1)
        assert top[0] == top[1], name


@pytest.mark.slow
@pytest.mark.parametrize("key", ["lite0", "b0"])
def test_folded_batch_norms_give_the_same_outputs(key, sample_photos):
    spec = zoo.get_spec(key)
    path = spec.bundled_weights()
    reference = weights.load_model(spec, path) if path else spec.build().eval()
    if path is None:  # B0 has no weights here: give its BatchNorms real statistics
        torch.manual_seed(0)
        for m in reference.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.uniform_(-0.5, 0.5), m.running_var.uniform_(0.5, 2.0)
                m.weight.data.uniform_(0.5, 1.5), m.bias.data.uniform_(-0.2, 0.2)
    import copy

    folded = fold_batch_norms(copy.deepcopy(reference))
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in folded.modules())
    x = spec.preprocess.apply(images.load_image(sample_photos["coffee"]))[None]
    with torch.inference_mode():
        a, b = reference(x), folded(x)
    assert torch.allclose(a, b, rtol=1e-3, atol=1e-3 * a.abs().max().item())
    assert a.argmax() == b.argmax()


def test_every_file_is_one_row_in_order_with_problems(lite0, sample_photos, tmp_path):
    folder = tmp_path / "mixed"
    folder.mkdir()
    for path in sample_photos.values():
        (folder / path.name).write_bytes(path.read_bytes())
    (folder / "zz_not_an_image.jpg").write_text("hello")
    (folder / "aa_empty.png").write_bytes(b"")
    missing = tmp_path / "gone.jpg"
    results = classify_all(lite0, [folder, missing])
    names = [r.path.name for r in results]
    assert names == sorted(names[:-1]) + ["gone.jpg"]
    problems = {r.path.name: r.problem for r in results if r.problem}
    assert set(problems) == {"zz_not_an_image.jpg", "aa_empty.png", "gone.jpg"}
    assert "not an image" in problems["zz_not_an_image.jpg"]
    assert all(r.predictions for r in results if not r.problem)
    assert len(results) == 7


def test_batches_report_progress_and_rate(lite0, sample_photos):
    events = [
        e for e in lite0.predict(list(sample_photos.values()) * 1) if isinstance(e, PredictionBatch)
    ]
    assert [e.progress.done for e in events] == [4]  # batch size 4, four photos
    assert events[-1].progress.total == 4 and events[-1].progress.rate > 0


def test_cancel_is_checked_between_batches(sample_photos, tmp_path):
    classifier = Classifier(zoo.get_spec("lite0"), device="cpu", batch_size=2)
    files = []
    for i in range(10):
        p = tmp_path / f"{i}.jpg"
        p.write_bytes(sample_photos["coffee"].read_bytes())
        files.append(p)
    token = CancelToken()
    seen = []
    with pytest.raises(Cancelled):
        for event in classifier.predict(files, cancel=token):
            if event.stage == "classifying":
                seen.append(event)
                token.cancel()
    assert len(seen) == 1 and seen[0].progress.done == 2


def test_empty_folder_gives_no_rows_and_says_so(lite0, tmp_path):
    events = list(lite0.predict([tmp_path]))
    batches = [e for e in events if isinstance(e, PredictionBatch)]
    assert batches[-1].results == () and "No images" in batches[-1].progress.message


def test_model_is_loaded_once_and_reused(monkeypatch, sample_photos):
    calls = []
    real = weights.load_model
    monkeypatch.setattr(weights, "load_model", lambda *a, **k: calls.append(1) or real(*a, **k))
    classifier = Classifier(zoo.get_spec("lite0"), device="cpu")
    classify_all(classifier, [sample_photos["coffee"]])
    classify_all(classifier, [sample_photos["chelsea"]])
    assert len(calls) == 1


def test_out_of_memory_halves_the_batch_and_goes_on(lite0, sample_photos, tmp_path):
    files = _copies(sample_photos["chelsea"], tmp_path, 8)
    sizes: list[int] = []

    def fussy(batch):  # a device that only fits two images at a time
        sizes.append(batch.shape[0])
        if batch.shape[0] > 2:
            raise RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return lite0.model(batch)

    classifier = _on_network(lite0, fussy, batch_size=8)
    for run in range(2):  # a lowered batch size lasts one run: the second starts at 8 again
        sizes.clear()
        events = [e for e in classifier.predict(files) if e.stage == "classifying"]
        results = [r for e in events for r in e.results]
        assert len(results) == 8 and all(r.top1.label in CAT_LABELS for r in results), run
        assert sizes == [8, 4, 2, 2, 2, 2], (run, sizes)
        assert "batch size lowered to 2" in events[0].progress.message
        assert "Out of memory on cpu: batch size lowered to 2." in events[0].notes
    assert classifier.batch_size == 8


def test_lowered_batch_size_holds_for_the_rest_of_its_run(lite0, sample_photos, tmp_path):
    files = _copies(sample_photos["chelsea"], tmp_path, 6)
    sizes: list[int] = []

    def fussy(batch):
        sizes.append(batch.shape[0])
        if batch.shape[0] > 1:
            raise RuntimeError("CUDA out of memory.")
        return lite0.model(batch)

    classifier = _on_network(lite0, fussy, batch_size=3)
    events = [e for e in classifier.predict(files) if e.stage == "classifying"]
    assert [len(e.results) for e in events] == [3, 3]
    # The first batch learns the limit; the second goes straight to single images.
    assert sizes == [3, 1, 1, 1, 1, 1, 1]
    assert events[0].notes and not events[1].notes


def _on_network(lite0: Classifier, network, batch_size: int) -> Classifier:
    """A classifier whose backend runs ``network`` (a wrapper around the real Lite0)."""
    backend = TorchBackend(lite0.spec, "cpu", model=network)
    return Classifier(lite0.spec, device="cpu", batch_size=batch_size, backend=backend)


def test_other_runtime_errors_are_not_mistaken_for_oom(lite0, sample_photos):
    def broken(batch):
        raise RuntimeError("mat1 and mat2 shapes cannot be multiplied")

    classifier = _on_network(lite0, broken, batch_size=4)
    with pytest.raises(RuntimeError, match="shapes"):
        classify_all(classifier, [sample_photos["coffee"]])


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the machine without CUDA")
def test_cuda_without_cuda_names_what_was_found():
    with pytest.raises(DeviceError) as info:
        Classifier(zoo.get_spec("lite0"), device="cuda")
    sentence = info.value.sentence
    assert "CUDA" in sentence and "CPU" in sentence
    assert ("no NVIDIA" in sentence) or ("without CUDA" in sentence)
    assert devices.resolve_device("auto") == "cpu"
    choices = {c.key: c for c in devices.list_devices()}
    assert choices["cuda"].available is False and choices["cuda"].reason
    with pytest.raises(DeviceError, match="not a device"):
        devices.resolve_device("tpu")


def test_image_result_top1():
    assert ImageResult(Path("x.jpg"), problem="empty file").top1 is None


def _copies(photo: Path, folder: Path, count: int) -> list[Path]:
    files = []
    for i in range(count):
        p = folder / f"{i}.jpg"
        p.write_bytes(photo.read_bytes())
        files.append(p)
    return files


def _cpu_allocation_failure() -> RuntimeError:
    """The error PyTorch's CPU allocator really raises when memory runs out."""
    try:
        torch.empty(2**62, dtype=torch.uint8)
    except RuntimeError as exc:
        return exc
    raise AssertionError("allocating 4 EiB succeeded")


def test_cpu_out_of_memory_also_halves_the_batch(lite0, sample_photos, tmp_path):
    files = _copies(sample_photos["chelsea"], tmp_path, 4)
    failure = _cpu_allocation_failure()

    def small_machine(batch):  # fits two images at a time
        if batch.shape[0] > 2:
            raise failure
        return lite0.model(batch)

    classifier = _on_network(lite0, small_machine, batch_size=4)
    events = [e for e in classifier.predict(files) if e.stage == "classifying"]
    results = [r for e in events for r in e.results]
    assert len(results) == 4 and all(r.top1.label in CAT_LABELS for r in results)
    assert events[0].notes == ("Out of memory on cpu: batch size lowered to 2.",)


def test_out_of_memory_with_one_image_is_a_sentence(lite0, sample_photos):
    failure = _cpu_allocation_failure()

    def no_memory(batch):
        raise failure

    classifier = _on_network(lite0, no_memory, batch_size=4)
    with pytest.raises(ModelError) as caught:
        classify_all(classifier, [sample_photos["coffee"]])
    assert "memory" in caught.value.sentence and lite0.spec.name in caught.value.sentence


def test_an_unreadable_sub_folder_is_a_row_in_order(lite0, sample_photos, tmp_path, monkeypatch):
    root = tmp_path / "album"
    (root / "b_locked").mkdir(parents=True)
    (root / "c_open").mkdir()
    (root / "b_locked" / "hidden_from_us.jpg").write_bytes(sample_photos["coffee"].read_bytes())
    (root / "a.jpg").write_bytes(sample_photos["coffee"].read_bytes())
    (root / "c_open" / "d.jpg").write_bytes(sample_photos["chelsea"].read_bytes())
    real = os.scandir

    def scandir(path="."):  # tests run as root, where chmod 0 would not stop a listing
        if Path(path) == root / "b_locked":
            raise PermissionError(13, "Permission denied", str(path))
        return real(path)

    monkeypatch.setattr(os, "scandir", scandir)
    results = classify_all(lite0, [root])
    assert [r.path for r in results] == [
        root / "a.jpg",
        root / "b_locked",
        root / "c_open" / "d.jpg",
    ]
    assert results[1].problem == "folder could not be read (permission denied)"
    assert results[1].predictions == ()
    assert results[0].top1.label == "espresso" and results[2].top1.label in CAT_LABELS


_PEAK_SCRIPT = """
import json, sys, threading, psutil
from effnet_app.core.models import registry
from effnet_app.core.runtime.classifier import Classifier, classify_all

# Eight threads whatever the machine, so memory kept per decode thread would show.
classifier = Classifier(registry.resolve("lite0"), device="cpu", decode_threads=8)
classify_all(classifier, [sys.argv[2]])  # loads, and makes a first run's allocations
process = psutil.Process()
baseline = peak = process.memory_info().rss
finished = threading.Event()

def sample():
    global peak
    while not finished.wait(0.005):
        peak = max(peak, process.memory_info().rss)

sampler = threading.Thread(target=sample)
sampler.start()
results = classify_all(classifier, [sys.argv[1]])
finished.set()
sampler.join()
print(json.dumps({"rise_mb": (peak - baseline) / 1e6, "rows": len(results),
                  "problems": [r.problem for r in results if r.problem]}))
"""


@pytest.mark.slow
def test_a_folder_of_huge_pngs_stays_within_memory(sample_photos, tmp_path):
    import json
    import shutil
    import subprocess
    import sys

    from PIL import ImageDraw

    folder = tmp_path / "huge"
    folder.mkdir()
    side = 10_000  # 100 MP, the most load_image accepts; mostly flat so it saves fast
    image = Image.new("RGBA", (side, side), (40, 120, 200, 255))
    ImageDraw.Draw(image).ellipse(
        (side // 4, side // 4, 3 * side // 4, 3 * side // 4), (220, 60, 30, 128)
    )
    image.save(folder / "huge0.png", compress_level=1)
    del image
    for i in range(1, 6):
        shutil.copyfile(folder / "huge0.png", folder / f"huge{i}.png")
    done = subprocess.run(
        [sys.executable, "-c", _PEAK_SCRIPT, str(folder), str(sample_photos["coffee"])],
        capture_output=True,
        text=True,
        timeout=240,
        check=True,
    )
    report = json.loads(done.stdout.strip().splitlines()[-1])
    print(report)
    assert report["rows"] == 6 and report["problems"] == [], report
    assert report["rise_mb"] < 1500, report
