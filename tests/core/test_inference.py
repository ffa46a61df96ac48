"""Classifier on real photos with the real Lite0 weights, plus cancel, problems, OOM, devices."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from PIL import Image

from effnet_app.core import devices
from effnet_app.core.data import images
from effnet_app.core.errors import DeviceError, ModelError
from effnet_app.core.jobs import Cancelled, CancelToken
from effnet_app.core.models import weights, zoo
from effnet_app.core.runtime.classifier import (
    DRAFT_MARGIN,
    Classifier,
    ImageResult,
    PredictionBatch,
    classify_all,
    fold_batch_norms,
)

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


def test_draft_decoding_agrees_with_full_decode_on_top1(lite0, big_photos):
    spec = lite0.spec
    for name, path in big_photos.items():
        target = round(spec.preprocess.resize_size * DRAFT_MARGIN)
        drafted = images.load_image(path, target_size=target)
        full = images.load_image(path)
        assert drafted.size[0] < full.size[0], "draft decoding did not reduce the image"
        via_classifier = lite0._decode(path)
        assert torch.equal(via_classifier, spec.preprocess.apply(drafted))
        batch = torch.stack([via_classifier, spec.preprocess.apply(full)])
        with torch.inference_mode():
            top = lite0._model(batch.contiguous(memory_format=torch.channels_last)).argmax(1)
        assert top[0] == top[1], name


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
    files = []
    for i in range(8):
        p = tmp_path / f"{i}.jpg"
        p.write_bytes(sample_photos["chelsea"].read_bytes())
        files.append(p)
    classifier = Classifier(lite0.spec, device="cpu", batch_size=8)
    real_model = lite0._model

    def fussy(batch):  # a device that only fits two images at a time
        if batch.shape[0] > 2:
            raise RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return real_model(batch)

    classifier._model = fussy
    events = [e for e in classifier.predict(files) if isinstance(e, PredictionBatch)]
    results = [r for e in events for r in e.results]
    assert len(results) == 8 and all(r.top1.label in CAT_LABELS for r in results)
    assert "batch size lowered to 2" in events[0].progress.message
    assert classifier.batch_size == 2


def test_other_runtime_errors_are_not_mistaken_for_oom(lite0, sample_photos):
    classifier = Classifier(lite0.spec, device="cpu")

    def broken(batch):
        raise RuntimeError("mat1 and mat2 shapes cannot be multiplied")

    classifier._model = broken
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
    classifier = Classifier(lite0.spec, device="cpu", batch_size=4)
    real_model, failure = lite0._model, _cpu_allocation_failure()

    def small_machine(batch):  # fits two images at a time
        if batch.shape[0] > 2:
            raise failure
        return real_model(batch)

    classifier._model = small_machine
    results = classify_all(classifier, files)
    assert len(results) == 4 and all(r.top1.label in CAT_LABELS for r in results)
    assert classifier.batch_size == 2


def test_out_of_memory_with_one_image_is_a_sentence(lite0, sample_photos):
    classifier = Classifier(lite0.spec, device="cpu", batch_size=4)
    failure = _cpu_allocation_failure()

    def no_memory(batch):
        raise failure

    classifier._model = no_memory
    with pytest.raises(ModelError) as caught:
        classify_all(classifier, [sample_photos["coffee"]])
    assert "memory" in caught.value.sentence and lite0.spec.name in caught.value.sentence
