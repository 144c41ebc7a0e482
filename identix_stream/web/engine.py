"""Wiring the Analyzer (models + executor) into the app's serving lifecycle (contract 3).

The models load in the background from ``before_serving`` (on the executor thread), so the
server answers at once and a slow start on a busy CPU cannot trip Hypercorn's startup timeout;
/health reports ``model_loaded`` (``analyzer.ready``) and analysis routes answer 503 until then.
A model that cannot be loaded does not stop the server either. ``after_serving`` stops it all.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from typing import Any

from quart import Quart

from identix_stream.errors import IdentixError

log = logging.getLogger(__name__)


def init_analyzer(app: Quart, settings: Any) -> None:
    """Register the analyzer at ``app.extensions["analyzer"]`` when ``settings.load_models``."""
    if not settings.load_models:
        return
    # idle OpenMP threads sleep instead of spinning: the CPU is shared with the event loop, the
    # decoder and other processes (spinning gave 10x slowdowns here). Read when torch loads.
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    from identix_stream.pipeline.analyzer import Analyzer  # torch loads only when models do

    analyzer = Analyzer.from_settings(settings)
    app.extensions["analyzer"] = analyzer

    async def _start() -> None:
        try:
            await analyzer.start()
        except IdentixError as exc:
            log.error("models not loaded (%s): analysis answers 503 until restarted", exc.message)
        except Exception:
            log.exception("models not loaded: analysis answers 503 until restarted")

    @app.before_serving
    async def _start_analyzer() -> None:
        app.extensions["analyzer_start"] = asyncio.create_task(_start(), name="analyzer-start")

    @app.after_serving
    async def _stop_analyzer() -> None:
        task = app.extensions.pop("analyzer_start", None)
        if task is not None and not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await analyzer.stop()
