"""``identix-stream serve``: run the app under Hypercorn (HTTP/1.1, HTTP/2 cleartext, WebSockets)."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
from typing import Any

from identix_stream.config import Settings

log = logging.getLogger(__name__)


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("serve", help="run the web service (default http://127.0.0.1:8000)")
    parser.add_argument("--host", default=None, help="address to bind (default IDENTIX_HOST or 127.0.0.1)")
    parser.add_argument("--port", type=int, default=None, help="port to bind (default PORT or 8000)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from hypercorn.asyncio import serve
    from hypercorn.config import Config

    from identix_stream.web.app import create_app

    settings = Settings.from_env()
    changes: dict[str, Any] = {}
    if args.host:
        changes["host"] = args.host
    if args.port is not None:
        if not 1 <= args.port <= 65535:
            log.error("--port %d is out of range [1, 65535]", args.port)
            return 2
        changes["port"] = args.port
    settings = settings.replace(**changes)
    app = create_app(settings)
    config = Config()
    host = f"[{settings.host}]" if ":" in settings.host else settings.host
    config.bind = [f"{host}:{settings.port}"]
    config.accesslog = logging.getLogger("hypercorn.access")
    config.errorlog = logging.getLogger("hypercorn.error")
    config.graceful_timeout = 5.0
    log.info(
        "identix-stream on http://%s:%d (store: %s, data: %s, models: %s)",
        settings.host,
        settings.port,
        settings.user_store,
        settings.data_dir,
        settings.model_path if settings.load_models else "off",
    )

    async def _main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await serve(app, config, shutdown_trigger=stop.wait)

    asyncio.run(_main())
    return 0
