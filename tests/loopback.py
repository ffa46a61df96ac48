"""A real HTTP server on 127.0.0.1 for tests, which misbehaves on request.

It serves bytes from a dict ``{"/path": b"..."}`` on an ephemeral port, from a
``ThreadingHTTPServer`` on a daemon thread, so code under test talks real HTTP over a
real socket. Switches (attributes; change them between requests if a test needs to):

``status``        answer every request with this HTTP status (e.g. 404, 503), no body
``drop_after``    close the connection after this many body bytes of a response
``drop_times``    how many responses are cut that way (None: every one)
``honour_range``  answer ``Range: bytes=N-`` with 206 and the rest; False: 200 and all
``delay``         seconds to sleep after each chunk (slow streaming) ...
``max_delay``     ... but at most this many seconds of sleep per response
``corrupt``       flip the first bytes of every body (same length, wrong content)
``chunk_size``    bytes per write

Every request is recorded in ``requests`` (path, Range header, status, bytes sent).
Nothing waits forever: each connection times out, sleeps end when the server stops, and
the server stops itself after ``lifetime`` seconds. Use it as a context manager::

    with LoopbackServer({"/w.pth": data}, drop_after=1000) as server:
        fetch(server.url_for("/w.pth"))
        assert server.requests[1].range == "bytes=1000-"
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

HOST = "127.0.0.1"


@dataclass(frozen=True)
class Served:
    """One request as the server saw and answered it."""

    path: str
    range: str | None
    status: int
    sent: int  # body bytes written
    dropped: bool  # the connection was cut before the body ended


class LoopbackServer:
    def __init__(
        self,
        files: dict[str, bytes] | None = None,
        *,
        status: int | None = None,
        drop_after: int | None = None,
        drop_times: int | None = 1,
        honour_range: bool = True,
        delay: float = 0.0,
        max_delay: float = 5.0,
        corrupt: bool = False,
        chunk_size: int = 16 * 1024,
        lifetime: float = 60.0,
    ) -> None:
        self.files = dict(files or {})
        self.status = status
        self.drop_after = drop_after
        self.drop_times = drop_times
        self.honour_range = honour_range
        self.delay = delay
        self.max_delay = max_delay
        self.corrupt = corrupt
        self.chunk_size = chunk_size
        self.lifetime = lifetime
        self.requests: list[Served] = []
        self._drops = 0
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._httpd: ThreadingHTTPServer | None = None
        self._timer: threading.Timer | None = None

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> LoopbackServer:
        httpd = ThreadingHTTPServer((HOST, 0), _make_handler(self))
        httpd.daemon_threads = True  # a stuck handler never blocks interpreter exit
        self._httpd = httpd
        serve = partial(httpd.serve_forever, poll_interval=0.05)  # quick to stop
        threading.Thread(target=serve, name="loopback-http", daemon=True).start()
        self._timer = threading.Timer(self.lifetime, self.stop)
        self._timer.daemon = True
        self._timer.start()
        return self

    def stop(self) -> None:
        """Stop serving and close the socket; safe to call twice or from any thread."""
        self._stopping.set()
        with self._lock:
            httpd, self._httpd = self._httpd, None
        if self._timer is not None and self._timer is not threading.current_thread():
            self._timer.cancel()
        if httpd is not None:
            httpd.shutdown()
            httpd.server_close()

    def __enter__(self) -> LoopbackServer:
        return self.start()

    def __exit__(self, *exc_info) -> None:
        self.stop()

    # ------------------------------------------------------------------ addresses

    @property
    def port(self) -> int:
        if self._httpd is None:
            raise RuntimeError("the loopback server is not running")
        return self._httpd.server_address[1]

    @property
    def url(self) -> str:
        """The base URL, without a trailing slash (what a mirror setting holds)."""
        return f"http://{HOST}:{self.port}"

    def url_for(self, path: str) -> str:
        return self.url + "/" + path.lstrip("/")

    # ------------------------------------------------------------------ behaviour

    def _take_drop(self) -> bool:
        """Whether the response starting now should be cut (and count it if so)."""
        if self.drop_after is None:
            return False
        with self._lock:
            if self.drop_times is not None and self._drops >= self.drop_times:
                return False
            self._drops += 1
            return True

    def _record(self, served: Served) -> None:
        with self._lock:
            self.requests.append(served)


def closed_port_url(path: str = "/") -> str:
    """A loopback URL where nothing listens: connecting is refused, as when offline."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((HOST, 0))
        port = probe.getsockname()[1]
    return f"http://{HOST}:{port}/{path.lstrip('/')}"


@contextmanager
def silent_url(path: str = "/") -> Iterator[str]:
    """A loopback URL whose server accepts connections but never answers (a timeout)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as listener:
        listener.bind((HOST, 0))
        listener.listen(8)  # the kernel completes handshakes; nobody ever reads
        yield f"http://{HOST}:{listener.getsockname()[1]}/{path.lstrip('/')}"


def _parse_range(header: str | None, size: int) -> int | None:
    """The start offset of ``bytes=N-`` or ``bytes=N-M``; None when absent or unusable."""
    if not header or not header.startswith("bytes="):
        return None
    start = header[len("bytes=") :].split("-", 1)[0]
    return int(start) if start.isdigit() and int(start) < size else None


def _make_handler(owner: LoopbackServer):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        timeout = 10  # seconds a connection may sit idle

        def do_GET(self) -> None:  # noqa: N802 (the name http.server calls)
            self.close_connection = True
            wanted = self.headers.get("Range")
            body = owner.files.get(self.path.split("?", 1)[0])
            if owner.status is not None or body is None:
                status = owner.status or 404
                self._head(status, 0)
                owner._record(Served(self.path, wanted, status, 0, False))
                return
            if owner.corrupt:
                body = bytes(b ^ 0xFF for b in body[:64]) + body[64:]
            start = _parse_range(wanted, len(body)) if owner.honour_range else None
            status = 206 if start is not None else 200
            start = start or 0
            extra = {"Content-Range": f"bytes {start}-{len(body) - 1}/{len(body)}"}
            self._head(status, len(body) - start, extra if status == 206 else {})
            sent, dropped = self._body(body[start:])
            owner._record(Served(self.path, wanted, status, sent, dropped))

        def _head(self, status: int, length: int, extra: dict | None = None) -> None:
            self.send_response(status)
            self.send_header("Content-Type", "application/octet-stream")
            self.send_header("Content-Length", str(length))
            self.send_header("Accept-Ranges", "bytes" if owner.honour_range else "none")
            self.send_header("Connection", "close")
            for name, value in (extra or {}).items():
                self.send_header(name, value)
            self.end_headers()

        def _body(self, data: bytes) -> tuple[int, bool]:
            """Write ``data`` in chunks, cutting or slowing it as the switches say."""
            limit = owner.drop_after if owner._take_drop() else None
            end = len(data) if limit is None else min(limit, len(data))
            sent, slept = 0, 0.0
            try:
                while sent < end and not owner._stopping.is_set():
                    piece = data[sent : min(end, sent + owner.chunk_size)]
                    self.wfile.write(piece)
                    self.wfile.flush()
                    sent += len(piece)
                    if owner.delay and slept < owner.max_delay:
                        owner._stopping.wait(owner.delay)
                        slept += owner.delay
            except (BrokenPipeError, ConnectionResetError):  # the client went away
                return sent, True
            return sent, sent < len(data)

        def log_message(self, format: str, *args) -> None:  # noqa: A002 (base class name)
            pass  # keep test output clean

    return Handler
