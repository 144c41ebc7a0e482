"""/health and the app's behaviour when the user store goes away and comes back."""

from __future__ import annotations

import asyncio
from pathlib import Path

from quart import Quart
from quart.typing import TestClientProtocol as Client

from identix_stream import __version__
from tests.mongo_server import TcpRelay, unique_db_name, upstream_address
from tests.web.accounts_helpers import account_app, login, register


async def health(client: Client) -> tuple[int, dict[str, object]]:
    r = await client.get("/health")
    return r.status_code, await r.get_json()


async def wait_health(client: Client, status: int, timeout_s: float = 30.0) -> dict[str, object]:
    deadline = asyncio.get_running_loop().time() + timeout_s
    code, body = await health(client)
    while code != status and asyncio.get_running_loop().time() < deadline:
        await asyncio.sleep(0.25)
        code, body = await health(client)
    assert code == status, body
    return body


async def test_health_ok_with_the_embedded_store(tmp_path: Path) -> None:
    app = account_app(tmp_path)
    async with app.test_app():
        code, body = await health(app.test_client())
    assert code == 200
    assert body == {
        "status": "ok",
        "version": __version__,
        "model_loaded": False,
        "models_required": False,
        "user_store": "sqlite",
        "db_ok": True,
    }


async def test_health_is_503_while_required_models_are_not_loaded(tmp_path: Path) -> None:
    app = account_app(tmp_path, IDENTIX_LOAD_MODELS="true", IDENTIX_MODEL_PATH=str(tmp_path / "missing.pt"))
    async with app.test_app():
        client = app.test_client()
        code, body = await health(client)  # at once, while the models load in the background
        assert code == 503
        assert body["status"] == "unavailable" and body["model_loaded"] is False and body["db_ok"] is True
        # the load fails (no model file) on the executor thread; the server stays up and says 503.
        # Waiting for it also keeps shutdown short (a load in progress is not interruptible).
        await asyncio.wait_for(app.extensions["analyzer_start"], timeout=240)
        code, body = await health(client)
        assert code == 503 and body["model_loaded"] is False and body["models_required"] is True
        r = await client.get("/check-auth")  # the rest of the app still answers
        assert r.status_code == 200 and (await r.get_json())["authenticated"] is False


async def _drop(app: Quart, db_name: str) -> None:
    await app.extensions["user_store"]._client.drop_database(db_name)


async def test_mongodb_outage_gives_503_and_recovers(tmp_path: Path, mongodb_uri: str) -> None:
    relay = TcpRelay(upstream_address(mongodb_uri))
    await relay.start()
    db_name = unique_db_name()
    app = account_app(tmp_path, MONGODB_URI=relay.uri, IDENTIX_MONGODB_DB=db_name, IDENTIX_DB_TIMEOUT_MS="500")
    try:
        async with app.test_app():
            client = app.test_client()
            body = await wait_health(client, 200)
            assert body["user_store"] == "mongodb" and body["db_ok"] is True
            assert (await register(client, "before@example.org")).status_code == 201

            await relay.stop()  # the database goes away
            body = await wait_health(client, 503)
            assert body["db_ok"] is False and body["status"] == "unavailable"
            r = await register(client, "during@example.org")
            assert r.status_code == 503 and (await r.get_json())["error"]["code"] == "store_unavailable"
            assert r.headers.get("Retry-After")
            r = await login(client, "before@example.org")
            assert r.status_code == 503

            await relay.start()  # ...and comes back: no restart needed
            await wait_health(client, 200)
            assert (await login(client, "before@example.org")).status_code == 200  # nothing was lost
            assert (await register(client, "after@example.org")).status_code == 201
            await _drop(app, db_name)
    finally:
        await relay.stop()


async def test_mongodb_down_at_start_then_up(tmp_path: Path, mongodb_uri: str) -> None:
    relay = TcpRelay(upstream_address(mongodb_uri))
    db_name = unique_db_name()
    app = account_app(tmp_path, MONGODB_URI=relay.uri, IDENTIX_MONGODB_DB=db_name, IDENTIX_DB_TIMEOUT_MS="500")
    try:
        async with app.test_app():  # starts although the database is unreachable
            client = app.test_client()
            code, body = await health(client)
            assert code == 503 and body["db_ok"] is False
            assert (await register(client, "early@example.org")).status_code == 503

            await relay.start()
            await wait_health(client, 200)
            assert (await register(client, "Late@example.org")).status_code == 201
            assert (await register(client, "late@EXAMPLE.org")).status_code == 409  # index created on recovery
            await _drop(app, db_name)
    finally:
        await relay.stop()
