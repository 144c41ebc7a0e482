"""ASGI entry point for external servers (Procfile: ``hypercorn identix_stream.web.asgi:app``).
Settings come from the environment; a bad value stops the worker with the variable's name."""

from __future__ import annotations

from identix_stream.config import Settings
from identix_stream.web.app import create_app

app = create_app(Settings.from_env())
