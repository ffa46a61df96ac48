"""Joining Ray: a local Ray started for this run, or a running cluster.

``connect("local")`` starts an embedded Ray on this machine (no dashboard, usage
statistics off); ``connect("auto")`` or ``connect("ray://host:port")`` joins a cluster
that is already running, with the user's own Ray settings (their token included).
Whoever started Ray shuts it down: ``connect`` says whether it did, and a Ray that was
running already (a test's, a notebook's) is used as it is and left running.

Ray 2.60 listens on every network interface, whatever node address it is given, and a
Ray without authentication runs any code anyone who reaches it sends. So a local Ray
started here always takes token authentication with a fresh random token, held only in
this process's environment (which Ray's own processes inherit): nothing is written to
``~/.ray``, and a client without the token is refused.
"""

from __future__ import annotations

import logging
import os
import secrets
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from ..core.errors import AppError

log = logging.getLogger(__name__)

LOCAL = "local"


def private_token() -> None:
    """Token authentication with a fresh random token, for a Ray this process starts."""
    os.environ["RAY_AUTH_MODE"] = "token"
    os.environ["RAY_AUTH_TOKEN"] = secrets.token_hex(32)
    os.environ.pop("RAY_AUTH_TOKEN_PATH", None)
    try:  # Ray reads its settings once, at import: read them again, as Ray itself does
        from ray._raylet import Config

        Config.initialize("")
    except (ImportError, AttributeError):  # another Ray: its import reads the environment
        log.debug("Ray's settings were not read again", exc_info=True)


def _quiet_ray() -> None:
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    os.environ.setdefault("RAY_DISABLE_IMPORT_WARNING", "1")
    # Ray Data says its execution plan and each finished dataset at INFO; the app shows
    # its own one-line progress instead.
    logging.getLogger("ray").setLevel(logging.WARNING)
    logging.getLogger("ray.data").setLevel(logging.ERROR)


def connect(address: str | None = LOCAL, num_cpus: int | None = None) -> bool:
    """Make sure this process is connected to Ray; True when this call started it."""
    import ray

    _quiet_ray()
    if ray.is_initialized():
        return False
    options = {"log_to_driver": False, "configure_logging": False}
    try:
        with _own_sigterm_kept():
            if address in (None, "", LOCAL):
                private_token()
                ray.init(num_cpus=num_cpus, include_dashboard=False, **options)
            else:
                ray.init(address=address, **options)
    except (ConnectionError, RuntimeError, ValueError) as exc:
        where = "a local Ray" if address in (None, "", LOCAL) else f"the Ray cluster at {address}"
        raise AppError(f"Could not start or join {where}: {exc}") from exc
    _quiet_data()
    return True


@contextmanager
def _own_sigterm_kept() -> Iterator[None]:
    """``ray.init`` makes SIGTERM call ``sys.exit(15)``; a handler the app had set (the CLI's:
    stop cleanly, exit 143) is put back. Without one, Ray's stays (its exit shuts Ray down).
    """
    main = threading.current_thread() is threading.main_thread()
    before = signal.getsignal(signal.SIGTERM) if main else None
    try:
        yield
    finally:
        if callable(before) and signal.getsignal(signal.SIGTERM) is not before:
            signal.signal(signal.SIGTERM, before)


def _quiet_data() -> None:
    import ray.data

    context = ray.data.DataContext.get_current()
    context.enable_progress_bars = False
    context.print_on_execution_start = False


def resources() -> tuple[int, int]:
    """(CPUs, GPUs) of the whole cluster, as whole numbers."""
    import ray

    found = ray.cluster_resources()
    return int(found.get("CPU", 0)), int(found.get("GPU", 0))
