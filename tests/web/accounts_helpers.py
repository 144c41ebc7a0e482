"""Small helpers for account tests: an app with the embedded store and no models, CSRF-aware calls."""

from __future__ import annotations

import asyncio
import email
import email.policy
import re
from pathlib import Path
from typing import Any

from quart import Quart
from quart.typing import TestClientProtocol as Client

from identix_stream.config import Settings
from identix_stream.web.app import create_app

PASSWORD = "correct horse battery"


def account_settings(tmp: Path, **env: str) -> Settings:
    environ = {
        "IDENTIX_ENV": "local",
        "SECRET_KEY": "test-secret-key-for-account-tests-0123456789",
        "IDENTIX_DATA_DIR": str(tmp / "var"),
        "IDENTIX_LOAD_MODELS": "false",
        **env,
    }
    return Settings.from_env(environ=environ)


def account_app(tmp: Path, **env: str) -> Quart:
    return create_app(account_settings(tmp, **env))


async def csrf_token(client: Client) -> str:
    response = await client.get("/api/csrf")
    assert response.status_code == 200
    return str((await response.get_json())["csrf_token"])


async def post_json(client: Client, path: str, body: Any, token: str | None) -> Any:
    headers = {"X-CSRF-Token": token} if token else {}
    return await client.post(path, json=body, headers=headers)


async def register(client: Client, email: str, password: str = PASSWORD) -> Any:
    return await post_json(client, "/register", {"email": email, "password": password}, await csrf_token(client))


async def login(client: Client, email: str, password: str = PASSWORD) -> Any:
    return await post_json(client, "/login", {"email": email, "password": password}, await csrf_token(client))


async def wait_for_mail(outbox: Path, to: str, subject_part: str, timeout_s: float = 10.0) -> str:
    """The body of the newest outbox message to ``to`` whose subject contains ``subject_part``."""
    deadline = asyncio.get_running_loop().time() + timeout_s
    while asyncio.get_running_loop().time() < deadline:
        for path in sorted(outbox.glob("*.eml"), reverse=True) if outbox.is_dir() else []:
            msg = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
            if msg["To"] == to and subject_part in str(msg["Subject"]):
                return str(msg.get_content())
        await asyncio.sleep(0.05)
    raise AssertionError(f"no mail to {to} about {subject_part!r} in {outbox}")


def link_token(mail: str, path: str) -> str:
    match = re.search(re.escape(path) + r"\?token=([A-Za-z0-9_\-]+)", mail)
    assert match, mail
    return match.group(1)
