"""A run waiting for another run's optimisation can still be cancelled at once."""

from __future__ import annotations

import threading
import time

import pytest

from effnet_app.core.jobs import Cancelled, CancelToken
from effnet_app.core.runtime.session import Session


def test_a_run_waiting_for_an_optimisation_stops_when_cancelled(monkeypatch):
    monkeypatch.setenv("EFFNET_APP_ENGINE", "auto")
    session = Session(backend="onnxruntime")
    session._weights(session.spec("lite0"))  # imports done before the clock starts
    assert session._making.acquire()  # another run is optimising and holds it
    try:
        cancel = CancelToken()
        said = []
        threading.Timer(0.5, lambda: (said.append(time.monotonic()), cancel.cancel())).start()
        with pytest.raises(Cancelled):
            for _ in session.ready_classifier("lite0", "cpu", cancel):
                pass
        assert said and time.monotonic() - said[0] < 1.0
    finally:
        session._making.release()
    assert session._making.acquire(timeout=1)  # the waiting run left it free
    session._making.release()
