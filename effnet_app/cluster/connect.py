"""Joining Ray: a local Ray started for this run, or a running cluster.

``connect("local")`` starts an embedded Ray on this machine (127.0.0.1, no dashboard,
usage statistics off); ``connect("auto")`` or ``connect("ray://host:port")`` joins a
cluster that is already running. Whoever started Ray shuts it down: ``connect`` says
whether it did, and a Ray that was running already (a test's, a notebook's) is used as
it is and left running.
"""

from __future__ import annotations

import logging
import os

from ..core.errors import AppError

LOCAL = "local"


def _quiet_ray() -> None:
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    os.environ.setdefault("RAY_DISABLE_IMPORT_WARNING", "1")
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")  # a local Ray on 127.0.0.1 only
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
        if address in (None, "", LOCAL):
            ray.init(
                num_cpus=num_cpus,
                include_dashboard=False,
                _node_ip_address="127.0.0.1",
                **options,
            )
        else:
            ray.init(address=address, **options)
    except (ConnectionError, RuntimeError, ValueError) as exc:
        where = "a local Ray" if address in (None, "", LOCAL) else f"the Ray cluster at {address}"
        raise AppError(f"Could not start or join {where}: {exc}") from exc
    _quiet_data()
    return True


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
