"""Atomic saves (never over a link, a device or a FIFO), names that never replace a file,
labels as folder names."""

from __future__ import annotations

import errno
import io
import os
import stat
import subprocess
import sys
import threading

import pytest

from effnet_app.core import fsutil
from effnet_app.core.errors import AppError, WeightsError
from effnet_app.core.fsutil import (
    atomic_file,
    atomic_write,
    rename_no_clobber,
    safe_folder_name,
    unique_path,
)


def _listing(folder):
    return sorted(p.name for p in folder.iterdir())


# --------------------------------------------------------------------------- atomic saves


def test_atomic_write_creates_folders_and_leaves_no_part_file(tmp_path):
    target = tmp_path / "deep" / "er" / "results.csv"
    assert atomic_write(target, "päth,ok\r\n") == target
    assert target.read_bytes() == "päth,ok\r\n".encode()
    assert _listing(target.parent) == ["results.csv"]
    atomic_write(target, b"\x00\x01")
    assert target.read_bytes() == b"\x00\x01"
    assert _listing(target.parent) == ["results.csv"]


def test_text_mode_keeps_newlines_as_given(tmp_path):
    target = tmp_path / "a.txt"
    with atomic_file(target, "w") as out:
        out.write("one\r\ntwo\nÄ")
    assert target.read_bytes() == "one\r\ntwo\nÄ".encode()


@pytest.mark.parametrize("error", [RuntimeError, KeyboardInterrupt])
def test_an_error_mid_write_keeps_the_old_file(tmp_path, error):
    target = tmp_path / "model.bin"
    target.write_bytes(b"old content")
    with pytest.raises(error):
        with atomic_file(target) as out:
            out.write(b"new half")
            out.flush()
            assert len(_listing(tmp_path)) == 2  # the part file really was there
            raise error()
    assert target.read_bytes() == b"old content"
    assert _listing(tmp_path) == ["model.bin"]


def test_part_file_is_hidden_beside_the_target(tmp_path):
    target = tmp_path / "x.json"
    with atomic_file(target) as out:
        (part,) = _listing(tmp_path)
        assert part.startswith(".x.json.") and part.endswith(".part")
        assert out.name == str(tmp_path / part)
    assert _listing(tmp_path) == ["x.json"]


def test_full_disk_is_a_sentence_and_leaves_nothing(tmp_path, monkeypatch):
    class FillsUp(io.FileIO):
        def write(self, data):
            raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(fsutil, "open", FillsUp, raising=False)
    with pytest.raises(WeightsError) as caught:
        atomic_write(tmp_path / "big.pth", b"x" * 10, error_type=WeightsError)
    assert "disk is full" in caught.value.sentence and str(tmp_path) in caught.value.sentence
    assert _listing(tmp_path) == []


def test_a_folder_in_the_way_is_a_sentence_and_leaves_nothing(tmp_path):
    (tmp_path / "out.csv").mkdir()
    with pytest.raises(AppError, match="Could not write out.csv in"):
        atomic_write(tmp_path / "out.csv", "text")
    assert _listing(tmp_path) == ["out.csv"] and (tmp_path / "out.csv").is_dir()


def test_only_new_file_modes(tmp_path):
    with pytest.raises(ValueError):
        with atomic_file(tmp_path / "a", "ab"):
            pass


# --------------------------------------------------------------------------- not ours to replace


def test_a_link_is_followed_its_target_written_and_the_link_kept(tmp_path):
    target = tmp_path / "real" / "results.csv"
    target.parent.mkdir()
    target.write_text("old")
    link = tmp_path / "latest.csv"
    link.symlink_to(target)
    atomic_write(link, "new")
    assert link.is_symlink() and os.readlink(link) == str(target)
    assert target.read_text() == "new"
    assert _listing(tmp_path) == ["latest.csv", "real"] and _listing(target.parent) == [
        "results.csv"
    ]


def test_a_dangling_link_gets_its_target_created(tmp_path):
    link = tmp_path / "out.csv"
    link.symlink_to(tmp_path / "made.csv")
    atomic_write(link, "rows")
    assert link.is_symlink() and (tmp_path / "made.csv").read_text() == "rows"


def test_an_existing_file_keeps_its_mode(tmp_path):
    target = tmp_path / "private.csv"
    target.write_text("old")
    target.chmod(0o600)
    atomic_write(target, "new")
    assert stat.S_IMODE(target.stat().st_mode) == 0o600 and target.read_text() == "new"
    target.chmod(0o640)
    with atomic_file(target, "w") as out:
        out.write("newer")
    assert stat.S_IMODE(target.stat().st_mode) == 0o640


def test_a_fifo_is_written_through(tmp_path):
    fifo = tmp_path / "rows.fifo"
    os.mkfifo(fifo)
    received: list[bytes] = []
    reader = threading.Thread(target=lambda: received.append(fifo.read_bytes()), daemon=True)
    reader.start()
    atomic_write(fifo, "one\ntwo\n")
    reader.join(timeout=30)
    assert received == [b"one\ntwo\n"]
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode) and _listing(tmp_path) == ["rows.fifo"]


def test_a_full_device_is_a_sentence_and_stays_a_device():
    if not stat.S_ISCHR(os.stat("/dev/full").st_mode):
        pytest.skip("needs Linux's /dev/full")
    with pytest.raises(AppError) as caught:
        atomic_write("/dev/full", "x" * 100_000)
    assert "/dev/full" in caught.value.sentence and "full" in caught.value.sentence
    assert stat.S_ISCHR(os.lstat("/dev/full").st_mode)


@pytest.mark.parametrize("via", ["/dev/stdout", "a link to /proc/self/fd/1"])
def test_stdout_named_as_a_file_is_written_through(tmp_path, via):
    """In a child process: its stdout, named as a path, gets the bytes and stays a link."""
    name = via
    if via != "/dev/stdout":
        name = str(tmp_path / "to-stdout")
        os.symlink("/proc/self/fd/1", name)
    code = (
        "import os, sys\n"
        "from effnet_app.core.fsutil import atomic_write\n"
        f"atomic_write({name!r}, 'through\\n')\n"
        f"print(os.path.islink({name!r}), file=sys.stderr)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert out.stdout == "through\n" and out.stderr.strip() == "True"
    assert os.path.islink(name)


def test_a_folder_through_a_link_is_a_sentence_before_anything_is_written(tmp_path):
    (tmp_path / "folder").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "folder")
    with pytest.raises(AppError, match="Could not write link in .*Is a directory"):
        fsutil.OutputFile(tmp_path / "link")
    assert _listing(tmp_path) == ["folder", "link"] and _listing(tmp_path / "folder") == []


def test_output_file_with_a_visible_part_keeps_it_when_asked(tmp_path):
    target = tmp_path / "results.csv"
    out = fsutil.OutputFile(target, visible_part=True)
    out.stream.write(b"header\n")
    out.stream.flush()
    assert _listing(tmp_path) == ["results.csv.part"] and out.written_to == out.part
    out.close(keep_part=True)
    assert (tmp_path / "results.csv.part").read_bytes() == b"header\n"
    # The next run replaces the part file the last one left, and commits.
    again = fsutil.OutputFile(target, visible_part=True)
    again.stream.write(b"all\n")
    assert again.commit() == target and target.read_bytes() == b"all\n"
    assert _listing(tmp_path) == ["results.csv"]


def test_a_part_name_taken_by_a_link_is_not_replaced(tmp_path):
    keep = tmp_path / "keep.txt"
    keep.write_text("mine")
    (tmp_path / "results.csv.part").symlink_to(keep)
    with pytest.raises(AppError, match="Could not write results.csv"):
        fsutil.OutputFile(tmp_path / "results.csv", visible_part=True)
    assert keep.read_text() == "mine" and (tmp_path / "results.csv.part").is_symlink()


def test_same_file_among_sees_links_and_hard_links(tmp_path):
    photo = tmp_path / "photo.jpg"
    photo.write_bytes(b"jpeg")
    (tmp_path / "hard.jpg").hardlink_to(photo)
    (tmp_path / "soft.jpg").symlink_to(photo)
    other = tmp_path / "other.jpg"
    other.write_bytes(b"jpeg")
    files = [other, photo]
    assert fsutil.same_file_among(tmp_path / "hard.jpg", files) == photo
    assert fsutil.same_file_among(tmp_path / "soft.jpg", files) == photo
    assert fsutil.same_file_among(tmp_path / "new.csv", files) is None
    assert fsutil.same_file_among(tmp_path / "x.csv", [tmp_path / "gone.jpg"]) is None


# --------------------------------------------------------------------------- names


def test_unique_path_counts_up_from_two(tmp_path):
    wanted = tmp_path / "cat.jpg"
    assert unique_path(wanted) == wanted
    wanted.write_bytes(b"1")
    assert unique_path(wanted) == tmp_path / "cat (2).jpg"
    (tmp_path / "cat (2).jpg").write_bytes(b"2")
    (tmp_path / "cat (3).jpg").write_bytes(b"3")
    assert unique_path(wanted) == tmp_path / "cat (4).jpg"
    assert unique_path(tmp_path / "README") == tmp_path / "README"


def test_unique_path_counts_a_broken_link_as_taken(tmp_path):
    (tmp_path / "a.png").symlink_to(tmp_path / "gone.png")
    assert unique_path(tmp_path / "a.png") == tmp_path / "a (2).png"


def test_rename_no_clobber_never_replaces(tmp_path):
    (tmp_path / "dog.jpg").write_bytes(b"first")
    for n, content in ((2, b"second"), (3, b"third")):
        src = tmp_path / f"incoming{n}"
        src.write_bytes(content)
        assert rename_no_clobber(src, tmp_path / "dog.jpg") == tmp_path / f"dog ({n}).jpg"
        assert not src.exists()
    assert (tmp_path / "dog.jpg").read_bytes() == b"first"
    assert (tmp_path / "dog (3).jpg").read_bytes() == b"third"


def test_rename_no_clobber_without_hard_links(tmp_path, monkeypatch):
    def no_links(src, dst, **kwargs):
        raise PermissionError(errno.EPERM, "Operation not permitted")

    monkeypatch.setattr(os, "link", no_links)
    (tmp_path / "a.jpg").write_bytes(b"kept")
    src = tmp_path / "new"
    src.write_bytes(b"new")
    assert rename_no_clobber(src, tmp_path / "a.jpg") == tmp_path / "a (2).jpg"
    assert (tmp_path / "a.jpg").read_bytes() == b"kept" and not src.exists()
    with pytest.raises(OSError):
        rename_no_clobber(tmp_path / "missing", tmp_path / "b.jpg")
    assert _listing(tmp_path) == ["a (2).jpg", "a.jpg"]


@pytest.mark.parametrize(
    ("label", "expected"),
    [
        ("tabby cat", "tabby cat"),
        ("a/b", "a_b"),
        ("a\\b", "a_b"),
        ("..", "unnamed"),
        ("../../etc", "_.._etc"),
        (".hidden", "hidden"),
        ("CON", "_CON"),
        ("lpt1.txt", "_lpt1.txt"),
        ("console", "console"),
        ("what?", "what_"),
        ('<a>:"b"|c*', "_a___b__c_"),
        ("  ", "unnamed"),
        ("", "unnamed"),
        ("dots...", "dots"),
        ("tab\there", "tab_here"),
        ("caffè crème", "caffè crème"),
    ],
)
def test_safe_folder_name(label, expected, tmp_path):
    name = safe_folder_name(label)
    assert name == expected
    folder = tmp_path / name
    folder.mkdir()
    assert folder.parent == tmp_path  # one level, inside the destination


def test_safe_folder_name_is_short():
    assert len(safe_folder_name("x" * 500)) == fsutil.MAX_FOLDER_NAME


def test_remove_stale_parts_keeps_live_ones(tmp_path):
    import os
    import time

    from effnet_app.core.fsutil import remove_stale_parts

    target = tmp_path / "w.pth"
    stale = tmp_path / ".w.pth.aaaa1111.part"
    live = tmp_path / ".w.pth.bbbb2222.part"
    other = tmp_path / ".x.pth.cccc3333.part"
    for p in (stale, live, other):
        p.write_bytes(b"partial")
    old = time.time() - 3600
    os.utime(stale, (old, old))
    os.utime(other, (old, old))
    assert remove_stale_parts(target) == 1
    assert not stale.exists() and live.exists() and other.exists()


@pytest.mark.skipif(not hasattr(os, "O_NOFOLLOW"), reason="POSIX file locks")
def test_a_part_file_another_run_is_writing_is_left_to_it(tmp_path):
    """Two runs with the same --output: the second is refused; the first commits its own."""
    target = tmp_path / "results.csv"
    first = fsutil.OutputFile(target, visible_part=True)
    first.stream.write(b"first run\n")
    first.stream.flush()
    with pytest.raises(AppError, match="Another run is writing results.csv.part"):
        fsutil.OutputFile(target, visible_part=True)
    assert first.commit() == target and target.read_bytes() == b"first run\n"
    assert _listing(tmp_path) == ["results.csv"]


def test_a_part_file_replaced_meanwhile_is_not_committed(tmp_path):
    """A part file someone else put under our part's name never takes the target's name."""
    target = tmp_path / "results.csv"
    out = fsutil.OutputFile(target, visible_part=True)
    out.stream.write(b"ours\n")
    out.part.unlink()
    out.part.write_bytes(b"theirs\n")
    with pytest.raises(AppError, match="results.csv.part was replaced"):
        out.commit()
    assert not target.exists() and (tmp_path / "results.csv.part").read_bytes() == b"theirs\n"
