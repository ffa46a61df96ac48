from __future__ import annotations

import threading

import pytest

from effnet_app.core.errors import AppError, WeightsError, sentence_of
from effnet_app.core.jobs import Cancelled, CancelToken, Progress, RateMeter, run_to_end


def test_cancel_token_across_threads():
    token = CancelToken()
    token.raise_if_cancelled()
    threading.Thread(target=token.cancel).start()
    assert token.wait(5)
    with pytest.raises(Cancelled):
        token.raise_if_cancelled()


def test_rate_meter_gives_rate_and_eta():
    now = [100.0]
    meter = RateMeter(total=10, unit="images", clock=lambda: now[0])
    now[0] = 102.0
    p = meter.progress(4, "working")
    assert p == Progress(4, 10, "working", "images", 2.0, 3.0)
    assert p.fraction == pytest.approx(0.4)
    assert Progress(3).fraction is None


def test_run_to_end_returns_result():
    def job():
        yield Progress(1, 2)
        yield Progress(2, 2)
        return "done"

    assert run_to_end(job()) == "done"


def test_error_sentences():
    err = WeightsError("Could not download B3. Check your connection and retry.", "HTTP 503")
    assert isinstance(err, AppError) and str(err) == err.sentence and err.detail == "HTTP 503"
    assert sentence_of(err) == err.sentence
    assert "ZeroDivisionError" in sentence_of(ZeroDivisionError("division by zero"))
