"""The analyzer in the serving lifecycle: loads after the server listens, stops with it, and a
model that cannot be loaded leaves the server up with /health saying so."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import pytest

from tests.web.conftest import ServerThread, make_settings


def _wait_for_start_task(server: ServerThread, timeout_s: float = 120.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        task = server.app.extensions.get("analyzer_start")
        if task is not None and task.done():
            return
        time.sleep(0.2)
    raise AssertionError("the analyzer start task did not finish")


def test_missing_model_keeps_the_server_up(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, IDENTIX_MODEL_PATH=str(tmp_path / "no-such-model.pt"),
                             IDENTIX_LOAD_MODELS="true", IDENTIX_ALLOW_ANONYMOUS="true")
    server = ServerThread(settings)
    with pytest.raises(RuntimeError, match="analyzer failed to start"):
        server.start()
    try:
        _wait_for_start_task(server)
        r = httpx.get(f"{server.url}/health", timeout=10)
        body = r.json()
        assert body["model_loaded"] is False and r.status_code == 503
        analyzer = server.app.extensions["analyzer"]
        assert not analyzer.ready and not analyzer.batcher.running  # the executor was stopped again
    finally:
        server.stop()


@pytest.mark.data
@pytest.mark.slow
def test_models_load_after_listening_and_stop_with_the_server(tmp_path: Path, model_path: Path) -> None:
    settings = make_settings(tmp_path, IDENTIX_MODEL_PATH=str(model_path), IDENTIX_LOAD_MODELS="true")
    server = ServerThread(settings)
    server.start()  # returns once analyzer.ready
    analyzer = server.app.extensions["analyzer"]
    try:
        body = httpx.get(f"{server.url}/health", timeout=10).json()
        assert body["model_loaded"] is True
        assert analyzer.device == "cpu" and analyzer.precision in ("fp32", "ort-fp32", "ort-int8", "bf16")
        assert analyzer.batcher.running
        worker = analyzer.batcher._thread
    finally:
        server.stop()
    assert not analyzer.ready
    assert not analyzer.batcher.running
    assert worker is not None and not worker.is_alive()
