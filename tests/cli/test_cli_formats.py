"""classify --format csv|json|jsonl|parquet, rows with size and mtime, and --from-list."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys

import pytest

from effnet_app.cli.output import ResultsOutput
from effnet_app.core.runtime.classifier import ImageResult, Prediction
from effnet_app.core.runtime.results_io import read_results

pa = pytest.importorskip("pyarrow")
pq = pytest.importorskip("pyarrow.parquet")


def _rows(tmp_path, count: int, unsure: bool = False) -> list[ImageResult]:
    """Results about real files (so each has a size and an mtime), every third a problem."""
    rows = []
    for i in range(count):
        path = tmp_path / f"café {i}.jpg"
        path.write_bytes(b"x" * (i + 1))
        if i % 3 == 2:
            rows.append(ImageResult(path, problem="not an image"))
        else:
            ranked = (Prediction("espresso", 0.9, 967), Prediction("cup", 0.05, 968))
            rows.append(ImageResult(path, ranked, unsure=unsure and i % 2 == 0))
    return rows


def _same(back, rows, unsure: bool = False) -> None:
    assert [r.path for r in back] == [r.path for r in rows]
    assert [r.problem for r in back] == [r.problem for r in rows]
    assert [[(p.label, p.probability) for p in r.predictions] for r in back] == [
        [(p.label, p.probability) for p in r.predictions] for r in rows
    ]
    if unsure:
        assert [r.unsure for r in back] == [r.unsure for r in rows]


@pytest.mark.parametrize("fmt", ["csv", "json", "jsonl", "parquet"])
@pytest.mark.parametrize("unsure", [False, True])
def test_every_format_reads_back_with_size_and_mtime(tmp_path, fmt, unsure):
    rows = _rows(tmp_path, 7, unsure)
    out_file = tmp_path / f"out.{fmt}"
    output = ResultsOutput(fmt, 2, out_file, [], unsure)
    for start in range(0, len(rows), 3):
        output.add(rows[start : start + 3])
    output.finish()
    assert not (tmp_path / f"out.{fmt}.part").exists()
    _same(read_results(out_file), rows, unsure)
    if fmt == "parquet":
        records = pq.read_table(out_file).to_pylist()
        assert pq.read_schema(out_file).field("bytes").type == pa.int64()
    elif fmt == "csv":
        records = list(csv.DictReader(io.StringIO(out_file.read_text())))
    elif fmt == "json":
        records = json.loads(out_file.read_text())
    else:
        records = [json.loads(line) for line in out_file.read_text().splitlines()]
    for record, row in zip(records, rows, strict=True):
        info = os.stat(row.path)
        assert int(record["bytes"]) == info.st_size
        assert float(record["modified"]) == info.st_mtime  # exact: float seconds round-trip


def test_parquet_part_is_a_journal_of_whole_rows_until_the_end(tmp_path):
    rows = _rows(tmp_path, 5)
    out_file = tmp_path / "out.parquet"
    output = ResultsOutput("parquet", 2, out_file, [])
    output.add(rows[:3])
    part = tmp_path / "out.parquet.part"
    lines = part.read_bytes().splitlines(keepends=True)
    assert len(lines) == 3 and all(line.endswith(b"\n") for line in lines)
    assert [json.loads(line)["path"] for line in lines] == [str(r.path) for r in rows[:3]]
    assert not out_file.exists()
    output.add(rows[3:])
    output.finish()
    assert not part.exists() and pq.read_table(out_file).num_rows == 5


def test_old_results_files_still_read(tmp_path):
    old = tmp_path / "old.csv"
    old.write_text("path,problem,label_1,probability_1\r\n/a.jpg,,cup,0.500000\r\n")
    (back,) = read_results(old)
    assert back.top1.label == "cup" and back.top1.probability == 0.5


def test_cli_jsonl_and_parquet_agree_with_csv(run_cli, photo_folder, tmp_path):
    got = {}
    for fmt in ("csv", "jsonl", "parquet"):
        out_file = tmp_path / f"results.{fmt}"
        code, out, _ = run_cli(
            "classify", str(photo_folder), "--format", fmt, "-q", "-o", str(out_file)
        )
        assert code == 0 and out == ""
        got[fmt] = read_results(out_file)
    assert [r.path.name for r in got["csv"]] == ["chelsea.jpg", "coffee.jpg"]
    for fmt in ("jsonl", "parquet"):
        _same(got[fmt], got["csv"])
    table = pq.read_table(tmp_path / "results.parquet").to_pylist()
    assert table[1]["label_1"] == "espresso"
    assert table[1]["bytes"] == os.path.getsize(photo_folder / "coffee.jpg")


def test_parquet_to_stdout_is_refused(run_cli, photo_folder):
    code, out, err = run_cli("classify", str(photo_folder), "--format", "parquet")
    assert code == 3 and out == "" and "add --output FILE" in err


def _hidden_module_child(module: str, *args: str) -> subprocess.CompletedProcess:
    """``effnet-app ARGS`` in a child in which ``module`` cannot be imported."""
    code = (
        f"import sys; sys.modules[{module!r}] = None\n"
        "from effnet_app import cli\n"
        f"sys.exit(cli.main({list(args)!r}))\n"
    )
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)


@pytest.mark.slow  # a child process that loads the model
def test_parquet_without_pyarrow_says_how_to_install_it(photo_folder, tmp_path):
    out_file = str(tmp_path / "r.parquet")
    child = _hidden_module_child(
        "pyarrow", "classify", str(photo_folder), "--format", "parquet", "-o", out_file
    )
    assert child.returncode == 2 and "pip install 'effnet_app[cluster]'" in child.stderr
    assert "Traceback" not in child.stderr and not list(tmp_path.glob("r.parquet*"))


@pytest.mark.slow  # a child process that loads the model
def test_ray_without_ray_says_how_to_install_it(photo_folder):
    child = _hidden_module_child("effnet_app.cluster", "classify", str(photo_folder), "--ray")
    assert child.returncode == 2, child.stderr
    assert "Ray is not installed: pip install 'effnet_app[cluster]'" in child.stderr


# --------------------------------------------------------------------------- --from-list
def _write_list(kind: str, folder, paths) -> str:
    if kind == "text":
        target = folder / "list.txt"
        target.write_text("".join(f"{p}\n" for p in paths) + "\n")
    elif kind == "csv":
        target = folder / "list.csv"
        target.write_text("label,path\r\n" + "".join(f"x,{p}\r\n" for p in paths))
    elif kind == "csv-bare":
        target = folder / "bare.csv"
        target.write_text("".join(f"{p},x\r\n" for p in paths))
    else:
        target = folder / "list.parquet"
        pq.write_table(pa.table({"n": list(range(len(paths))), "path": paths}), target)
    return str(target)


@pytest.mark.parametrize("kind", ["text", "csv", "csv-bare", "parquet"])
def test_from_list_in_each_format_with_positional_paths(run_cli, photo_folder, tmp_path, kind):
    extra = tmp_path / "more"
    extra.mkdir()
    (extra / "broken.jpg").write_bytes(b"not a jpeg")
    listed = [str(photo_folder / "coffee.jpg"), str(extra / "broken.jpg")]
    out_file = tmp_path / "out.jsonl"
    code, _, err = run_cli(
        "classify",
        str(photo_folder / "chelsea.jpg"),
        "--from-list",
        _write_list(kind, tmp_path, listed),
        "--format",
        "jsonl",
        "-o",
        str(out_file),
    )
    assert code == 1 and "broken.jpg" in err  # one problem row: exit 1
    rows = read_results(out_file)
    assert [r.path.name for r in rows] == ["chelsea.jpg", "coffee.jpg", "broken.jpg"]
    assert rows[1].top1.label == "espresso" and rows[2].problem


def test_no_paths_and_no_list_is_bad_usage(run_cli, tmp_path):
    code, _, err = run_cli("classify", "--format", "csv")
    assert code == 2 and "--from-list FILE" in err
    code, _, err = run_cli("classify", "--from-list", str(tmp_path / "none.txt"))
    assert code == 2 and "There is no list of paths at" in err
    bad = tmp_path / "list.parquet"
    pq.write_table(pa.table({"file": ["a.jpg"]}), bad)
    code, _, err = run_cli("classify", "--from-list", str(bad))
    assert code == 2 and "no 'path' column" in err


# --------------------------------------------------------------------------- memory
_PEAK = """
import sys, tracemalloc
from pathlib import Path
from effnet_app.cli.output import ResultsOutput
from effnet_app.core.runtime.classifier import ImageResult, Prediction
from effnet_app.core.runtime.results_io import read_results

fmt, count, folder = sys.argv[1], int(sys.argv[2]), Path(sys.argv[3])
ranked = tuple(Prediction(f"label {i}", 0.1, i) for i in range(5))
out_file = folder / f"{count}.{fmt}"
if fmt == "parquet":  # a first run, so the imports pyarrow makes on first use are not counted
    first = ResultsOutput(fmt, 5, folder / "first.parquet", [])
    first.add([ImageResult(f"{folder}/first.jpg", ranked)])
    first.finish()
tracemalloc.start()
output = ResultsOutput(fmt, 5, out_file, [])
for start in range(0, count, 64):
    output.add([ImageResult(f"{folder}/gone{i:06}.jpg", ranked)
                for i in range(start, min(count, start + 64))])
output.finish()
peak = tracemalloc.get_traced_memory()[1]
tracemalloc.stop()
assert count > 10_000 or len(read_results(out_file)) == count
print(peak)
"""


@pytest.mark.slow
@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_memory_stays_flat_over_100000_rows(tmp_path, fmt):
    """Python's allocations peak the same for 100,000 rows as for 10,000 (none are kept).

    Parquet's conversion of its journal included: it holds one batch of rows as Python
    objects at a time, so its peak stays under a few MB too (a whole chunk of 8,192 row
    dicts was about 18 MB, and two of them were alive at once).
    Each count is measured in a fresh interpreter: tracemalloc counts every thread's
    allocations, and threads left by other tests in this process would be counted too.
    The rows name their files as text: 100,000 distinct ``Path`` objects would grow the
    table of names pathlib interns, which is the caller's list of paths, not the output.
    """

    def peak(count: int) -> int:
        run = [sys.executable, "-c", _PEAK, fmt, str(count), str(tmp_path)]
        done = subprocess.run(run, capture_output=True, text=True, timeout=240)
        assert done.returncode == 0, done.stderr[-2000:]
        return int(done.stdout.split()[-1])

    small, large = peak(10_000), peak(100_000)
    assert large < small * 1.2 + 250_000, (small, large)
    assert large < 3_000_000, (small, large)
