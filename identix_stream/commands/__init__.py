"""One module per ``identix-stream`` subcommand; each exposes ``register(subparsers)``."""

from __future__ import annotations

import os
from typing import Any


def offline_settings() -> Any:
    """Settings for commands that run without the server (analyze, bench, eval-*): they need no
    secret key, so none is generated into the data directory."""
    from identix_stream.config import Settings

    env = dict(os.environ)
    env.setdefault("SECRET_KEY", "offline-cli-" + "x" * 32)
    return Settings.from_env(env)
