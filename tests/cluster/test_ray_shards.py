"""A Ray job's Parquet: shards written by the workers, one summary, and --resume over them."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest
from test_ray_classifier import assert_same

from effnet_app.cli.resume import prepare_shards
from effnet_app.cluster import RayClassifier
from effnet_app.core.data.folders import expand_paths
from effnet_app.core.runtime import engines, results_shards
from effnet_app.core.runtime.classifier import classify_all
from effnet_app.core.runtime.results_io import read_results
from effnet_app.core.runtime.results_shards import ShardFolder

pytestmark = pytest.mark.slow  # Ray actors


def _local_rows(folder):
    plan = engines.fast_plan("lite0", "cpu", "onnxruntime")
    local = plan.classifier()
    local.ensure_loaded()
    return classify_all(local, [folder], top_k=3)


def _run_into(classifier, folder: ShardFolder, paths, stop_after: int | None = None) -> int:
    """Rows of a job into a shard folder, as the CLI does; stops after ``stop_after`` rows."""
    written = 0
    job = classifier.predict(paths, 3, shards=folder.options(3, False))
    try:
        for event in job:
            assert event.stored or not event.results
            written += len(event.results)
            if stop_after is not None and written >= stop_after:
                break
    finally:
        job.close()
    return written


def test_cli_ray_parquet_is_a_folder_of_shards_and_a_summary(
    lite0_onnx, odd_folder, tmp_path, app_home
):
    out = tmp_path / "rows.parquet"
    env = {**os.environ, "EFFNET_APP_HOME": str(app_home)}
    command = [sys.executable, "-m", "effnet_app", "classify", str(odd_folder), "--ray",
               "--backend", "onnxruntime", "--device", "cpu", "--format", "parquet",
               "-o", str(out), "--top-k", "3", "--batch-size", "2"]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 1, done.stderr  # some files are problems
    assert out.is_dir() and not (tmp_path / "rows.parquet.part").exists()
    shards = results_shards.shard_files(out)
    assert len(shards) >= 2, "each batch is its own shard"
    assert sorted(p.name for p in out.iterdir()) == sorted(
        [results_shards.JOB, results_shards.SUMMARY, *(s.name for s in shards)]
    )
    rows = read_results(out)
    assert_same(_local_rows(odd_folder), rows)
    summary = json.loads((out / results_shards.SUMMARY).read_text())
    assert (summary["rows"], summary["problems"], summary["classified"]) == (9, 5, 4)
    tops = [r.predictions[0].label for r in rows if not r.problem]
    assert sum(summary["labels"].values()) == 4 and summary["labels"][tops[0]] >= 1
    assert summary["model"] and "ONNX Runtime" in summary["engine"]
    assert "by label: " in done.stderr and "4 classified, 5 with problems" in done.stderr
    import pyarrow.parquet as pq  # any Parquet reader takes the folder as one table

    assert pq.read_table(out).num_rows == 9


def test_resume_over_shards_skips_done_redoes_changed_and_drops_repeats(
    local_ray, lite0_onnx, sample_photos, tmp_path
):
    photos = tmp_path / "photos"
    photos.mkdir()
    for name, path in sample_photos.items():
        shutil.copy(path, photos / f"{name}.jpg")
    count = len(sample_photos)
    target = tmp_path / "out.parquet"
    remote = RayClassifier("lite0", device="cpu", backend="onnxruntime", batch_size=1)
    try:
        first = ShardFolder(target)
        written = _run_into(remote, first, [photos], stop_after=2)
        first.keep()  # the driver stopped: its part folder stays for --resume
        first.close()
        shards = results_shards.shard_files(first.part)
        assert len(shards) >= written >= 2
        done_before = sum(len(results_shards.shard_keys(s)) for s in shards)
        # A repeated shard (a copy under another name) and a file changed since its row.
        shutil.copy(shards[0], first.part / "shard-0000repeat.parquet")
        changed = results_shards.shard_keys(shards[1])[0][0]
        os.utime(changed, (1_000_000_000, 1_000_000_000))
        plan = prepare_shards(target, 3, False, expand_paths([photos]))
        assert plan.done == done_before - 1 and plan.rows == done_before - 1
        assert len(plan.todo) == count - plan.done
        assert os.path.abspath(changed) in {os.path.abspath(p) for p in plan.todo}
        again = ShardFolder(target, append=True)
        more = _run_into(remote, again, plan.todo)
        again.commit(plan.rows + more)
    finally:
        remote.close()
    rows = read_results(target)
    names = sorted(r.path.name for r in rows)
    assert names == sorted(os.listdir(photos)), "every photo once, none twice"
    summary = json.loads((target / results_shards.SUMMARY).read_text())
    assert summary["rows"] == count and summary["problems"] == 0
    plan = prepare_shards(target, 3, False, expand_paths([photos]))
    assert plan.complete == target and plan.done == count


def test_a_commit_that_misses_rows_keeps_the_part_and_says_why(tmp_path, sample_photos):
    pytest.importorskip("pyarrow")
    from effnet_app.core.runtime.classifier import ImageResult

    target = tmp_path / "out.parquet"
    folder = ShardFolder(target)
    folder.store([ImageResult(sample_photos["coffee"], problem="not an image")], 3, False)
    with pytest.raises(Exception, match="holds 1 rows, not the 2 of this run"):
        folder.commit(2)
    assert folder.part.is_dir() and not target.exists()
