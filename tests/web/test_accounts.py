"""Accounts over HTTP (Quart test client, embedded SQLite store, no models), plus the MongoDB path."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from quart import Quart
from quart.typing import TestClientProtocol as Client

from identix_stream.storage.base import TokenRecord, hash_token, new_token, utcnow
from tests.mongo_server import unique_db_name
from tests.web.accounts_helpers import (
    PASSWORD,
    account_app,
    csrf_token,
    link_token,
    login,
    post_json,
    register,
    wait_for_mail,
)


@pytest.fixture
async def app(tmp_path: Path) -> AsyncIterator[Quart]:
    application = account_app(tmp_path)
    async with application.test_app():
        yield application


@pytest.fixture
def client(app: Quart) -> Client:
    return app.test_client()


def set_cookie_headers(response: Any) -> list[str]:
    return response.headers.getlist("Set-Cookie")


def cookie_attrs(response: Any, name: str) -> str:
    for header in set_cookie_headers(response):
        if header.startswith(name + "="):
            return header
    raise AssertionError(f"no {name} cookie in {set_cookie_headers(response)}")


async def test_register_login_check_logout(client: Client) -> None:
    r = await register(client, "Ada@Example.org")
    assert r.status_code == 201
    body = await r.get_json()
    assert body["user"]["email"] == "ada@example.org" and body["user"]["email_verified"] is False
    assert "password" not in str(body) and "$2b$" not in str(body)

    r = await client.get("/check-auth")
    assert (await r.get_json())["authenticated"] is False  # registering does not sign in

    r = await login(client, "ADA@example.org")
    assert r.status_code == 200
    body = await r.get_json()
    assert body["user"]["email"] == "ada@example.org"
    cookie = cookie_attrs(r, "identix_session")
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Secure" not in cookie

    r = await client.get("/check-auth")
    assert await r.get_json() == {"authenticated": True, "user": body["user"], "via": "session"}

    r = await client.post("/logout", headers={"X-CSRF-Token": body["csrf_token"]})
    assert r.status_code == 200
    r = await client.get("/check-auth")
    assert (await r.get_json())["authenticated"] is False


async def test_login_rotates_the_session_and_logout_revokes_it(client: Client, app: Quart) -> None:
    await register(client, "rot@example.org")
    first = await login(client, "rot@example.org")
    first_cookie = cookie_attrs(first, "identix_session").split(";")[0].split("=", 1)[1]
    second = await login(client, "rot@example.org")
    second_cookie = cookie_attrs(second, "identix_session").split(";")[0].split("=", 1)[1]
    assert first_cookie != second_cookie
    store = app.extensions["user_store"]
    assert await store.find_token("session", hash_token(first_cookie)) is None  # the old one is gone
    assert await store.find_token("session", hash_token(second_cookie)) is not None
    await client.post("/logout", headers={"X-CSRF-Token": (await second.get_json())["csrf_token"]})
    assert await store.find_token("session", hash_token(second_cookie)) is None


async def test_csrf_is_required_and_bound_to_the_session(client: Client) -> None:
    r = await client.post("/register", json={"email": "c@example.org", "password": PASSWORD})
    assert r.status_code == 403 and (await r.get_json())["error"]["code"] == "csrf_missing"
    await csrf_token(client)  # sets the nonce cookie
    r = await post_json(client, "/register", {"email": "c@example.org", "password": PASSWORD}, "0" * 64)
    assert r.status_code == 403 and (await r.get_json())["error"]["code"] == "csrf_invalid"

    assert (await register(client, "c@example.org")).status_code == 201
    before_login = await csrf_token(client)
    r = await login(client, "c@example.org")
    after_login = (await r.get_json())["csrf_token"]
    assert after_login != before_login
    r = await client.post("/logout", headers={"X-CSRF-Token": before_login})  # stale: pre-login token
    assert r.status_code == 403
    assert (await client.get("/check-auth")).status_code == 200
    r = await client.post("/logout", headers={"X-CSRF-Token": after_login})
    assert r.status_code == 200


async def test_html_forms_register_login_account_logout(client: Client) -> None:
    page = await (await client.get("/register")).get_data(as_text=True)
    meta = re.search(r'<meta name="csrf-token" content="([0-9a-f]+)">', page)
    field = re.search(r'name="csrf_token" value="([0-9a-f]+)"', page)
    assert meta and field and meta.group(1) == field.group(1)
    token = field.group(1)

    r = await client.post("/register", form={"email": "form@example.org", "password": PASSWORD, "csrf_token": token})
    assert r.status_code == 302 and r.headers["Location"].startswith("/login")
    r = await client.post("/register", form={"email": "form@example.org", "password": PASSWORD, "csrf_token": token})
    assert r.status_code == 409 and "already exists" in await r.get_data(as_text=True)
    bad = {"email": "form@example.org", "password": "wrong password", "csrf_token": token}
    r = await client.post("/login", form=bad)
    assert r.status_code == 401 and "wrong email or password" in await r.get_data(as_text=True)
    r = await client.post("/login", form={"email": "form@example.org", "password": PASSWORD, "csrf_token": token})
    assert r.status_code == 302 and r.headers["Location"] == "/account"

    account = await client.get("/account")
    html = await account.get_data(as_text=True)
    assert account.status_code == 200 and "form@example.org" in html
    token = re.search(r'name="csrf_token" value="([0-9a-f]+)"', html).group(1)  # type: ignore[union-attr]
    r = await client.post("/logout", form={"csrf_token": token})
    assert r.status_code == 302
    r = await client.get("/account", headers={"Accept": "text/html"})
    assert r.status_code == 302 and r.headers["Location"].startswith("/login?next=/account")
    r = await client.get("/api/tokens")
    assert r.status_code == 401 and (await r.get_json())["error"]["code"] == "unauthorized"


async def test_open_redirects_are_refused(client: Client) -> None:
    await register(client, "redir@example.org")
    token = await csrf_token(client)
    for target in ("https://evil.example/", "//evil.example/x", "/\\evil.example"):
        r = await client.post(
            "/login", form={"email": "redir@example.org", "password": PASSWORD, "csrf_token": token, "next": target}
        )
        assert r.headers["Location"] == "/account", target
        token = await csrf_token(client)


async def test_unknown_email_and_wrong_password_answer_the_same(client: Client) -> None:
    await register(client, "known@example.org")
    wrong = await login(client, "known@example.org", "not the password")
    unknown = await login(client, "unknown@example.org", "not the password")
    assert wrong.status_code == unknown.status_code == 401
    assert await wrong.get_json() == await unknown.get_json()
    assert (await wrong.get_json())["error"] == {"code": "invalid_credentials", "message": "wrong email or password"}


async def test_duplicate_email_in_any_case_is_409(client: Client) -> None:
    assert (await register(client, "Dup@Example.ORG")).status_code == 201
    for variant in ("dup@example.org", "DUP@EXAMPLE.ORG", "  dup@example.org "):
        r = await register(client, variant)
        assert r.status_code == 409, variant
        assert (await r.get_json())["error"]["code"] == "email_taken"


async def test_repeated_wrong_passwords_get_429_with_retry_after(tmp_path: Path) -> None:
    app = account_app(tmp_path, IDENTIX_LOGIN_MAX_FAILURES="3", IDENTIX_LOGIN_WINDOW_S="600")
    async with app.test_app():
        client = app.test_client()
        await register(client, "victim@example.org")
        await register(client, "other@example.org")
        codes = [(await login(client, "victim@example.org", "wrong password!")).status_code for _ in range(3)]
        assert codes == [401, 401, 401]
        r = await login(client, "victim@example.org", "wrong password!")
        assert r.status_code == 429
        assert 1 <= int(r.headers["Retry-After"]) <= 600
        assert (await r.get_json())["error"]["code"] == "rate_limited"
        r = await login(client, "VICTIM@example.org")  # even the right password waits (any letter case)
        assert r.status_code == 429
        assert (await login(client, "other@example.org")).status_code == 200  # per account


async def test_per_address_limits_on_login_and_register(tmp_path: Path) -> None:
    app = account_app(tmp_path, IDENTIX_LOGIN_IP_MAX_FAILURES="4", IDENTIX_REGISTER_MAX_PER_IP="2")
    async with app.test_app():
        client = app.test_client()
        assert (await register(client, "r1@example.org")).status_code == 201
        assert (await register(client, "r2@example.org")).status_code == 201
        r = await register(client, "r3@example.org")
        assert r.status_code == 429 and int(r.headers["Retry-After"]) >= 1
        for i in range(4):  # a different account each time: only the per-address counter trips
            assert (await login(client, f"spray{i}@example.org", "wrong password!")).status_code == 401
        r = await login(client, "spray9@example.org", "wrong password!")
        assert r.status_code == 429 and int(r.headers["Retry-After"]) >= 1


@pytest.mark.parametrize(
    ("body", "content_type", "status", "code"),
    [
        (b"{not json", "application/json", 400, "invalid_json"),
        (b"", "application/json", 400, "invalid_json"),
        (b"[1, 2]", "application/json", 400, "invalid_json"),
        (b"\xff\xfe", "application/json", 400, "invalid_json"),
        (b"email=a@b.org", "text/plain", 415, "unsupported_media_type"),
        (b'{"email": "a@example.org"}', "application/json", 400, "invalid_password"),
        (b'{"password": "long enough pw"}', "application/json", 400, "invalid_email"),
        (b'{"email": "not-an-email", "password": "long enough pw"}', "application/json", 400, "invalid_email"),
        (b'{"email": 5, "password": "long enough pw"}', "application/json", 400, "invalid_email"),
        (b'{"email": "a@example.org", "password": "short"}', "application/json", 400, "weak_password"),
        (b'{"email": "a@example.org", "password": ["x"]}', "application/json", 400, "invalid_password"),
    ],
)
async def test_bad_register_bodies_are_4xx_json(
    client: Client, body: bytes, content_type: str, status: int, code: str
) -> None:
    token = await csrf_token(client)
    r = await client.post("/register", data=body, headers={"Content-Type": content_type, "X-CSRF-Token": token})
    assert r.status_code == status
    assert (await r.get_json())["error"]["code"] == code


async def test_password_policy_is_stated_and_long_passwords_are_refused(client: Client) -> None:
    r = await register(client, "long@example.org", "é" * 37)  # 74 bytes of UTF-8, 37 characters
    error = (await r.get_json())["error"]
    assert r.status_code == 400 and error["code"] == "password_too_long"
    assert "at least 8 characters and at most 72 bytes" in error["message"]
    assert (await register(client, "long@example.org", "é" * 36)).status_code == 201  # 72 bytes is fine
    assert (await login(client, "long@example.org", "é" * 36)).status_code == 200


async def test_missing_login_fields_and_oversized_bodies(tmp_path: Path) -> None:
    app = account_app(tmp_path, IDENTIX_MAX_REQUEST_KB="1")
    async with app.test_app():
        client = app.test_client()
        token = await csrf_token(client)
        r = await post_json(client, "/login", {"email": "x@example.org"}, token)
        assert r.status_code == 400 and (await r.get_json())["error"] == {
            "code": "missing_field",
            "message": "missing field 'password'",
        }
        r = await post_json(client, "/login", {"email": "x@example.org", "password": "p" * 2000}, token)
        assert r.status_code == 413 and (await r.get_json())["error"]["code"] == "payload_too_large"
        r = await client.get("/no/such/page")
        assert r.status_code == 404 and (await r.get_json())["error"]["code"] == "not_found"
        r = await client.put("/login", json={}, headers={"X-CSRF-Token": token})
        assert r.status_code == 405 and (await r.get_json())["error"]["code"] == "method_not_allowed"


async def test_password_reset_is_single_use_and_expires(client: Client, app: Quart) -> None:
    outbox = app.config["IDENTIX_SETTINGS"].data_dir / "outbox"
    await register(client, "reset@example.org")
    session = await login(client, "reset@example.org")
    old_session = cookie_attrs(session, "identix_session").split(";")[0].split("=", 1)[1]
    token = (await session.get_json())["csrf_token"]

    known = await post_json(client, "/password-reset", {"email": "RESET@example.org"}, token)
    unknown = await post_json(client, "/password-reset", {"email": "ghost@example.org"}, token)
    assert known.status_code == unknown.status_code == 202
    assert await known.get_json() == await unknown.get_json()
    mail = await wait_for_mail(outbox, "reset@example.org", "Reset your identix-stream password")
    raw = link_token(mail, "/password-reset/confirm")
    assert not list(outbox.glob("*.eml")) or all("ghost@" not in p.read_text() for p in outbox.glob("*.eml"))
    store = app.extensions["user_store"]
    assert await store.find_token("reset", hash_token(raw)) is not None  # stored hashed, not in clear

    r = await post_json(client, "/password-reset/confirm", {"token": raw, "password": "short"}, token)
    assert r.status_code == 400 and (await r.get_json())["error"]["code"] == "weak_password"
    r = await post_json(client, "/password-reset/confirm", {"token": raw, "password": "a brand new secret"}, token)
    assert r.status_code == 200
    r = await post_json(client, "/password-reset/confirm", {"token": raw, "password": "another new secret"}, token)
    assert r.status_code == 400 and (await r.get_json())["error"]["code"] == "invalid_token"

    assert await store.find_token("session", hash_token(old_session)) is None  # signed out everywhere
    assert (await login(client, "reset@example.org")).status_code == 401
    r = await login(client, "reset@example.org", "a brand new secret")
    assert r.status_code == 200 and (await r.get_json())["user"]["email_verified"] is True

    user = await store.get_user_by_email("reset@example.org")
    stale = new_token()
    record = TokenRecord.issue("reset", stale, user.id, 3600)
    await store.add_token(TokenRecord(**{**record.__dict__, "expires_at": utcnow() - timedelta(seconds=1)}))
    token = (await r.get_json())["csrf_token"]
    r = await post_json(client, "/password-reset/confirm", {"token": stale, "password": "yet another secret"}, token)
    assert r.status_code == 400 and (await r.get_json())["error"]["code"] == "invalid_token"


async def test_email_verification_link_is_single_use(client: Client, app: Quart) -> None:
    outbox = app.config["IDENTIX_SETTINGS"].data_dir / "outbox"
    await register(client, "verify@example.org")
    mail = await wait_for_mail(outbox, "verify@example.org", "Confirm your identix-stream email")
    raw = link_token(mail, "/verify-email")
    page = await client.get(f"/verify-email?token={raw}")  # GET only shows the confirm button
    assert page.status_code == 200 and raw in await page.get_data(as_text=True)
    token = await csrf_token(client)
    r = await post_json(client, "/verify-email", {"token": raw}, token)
    assert r.status_code == 200 and (await r.get_json())["email"] == "verify@example.org"
    r = await post_json(client, "/verify-email", {"token": raw}, token)
    assert r.status_code == 400 and (await r.get_json())["error"]["code"] == "invalid_token"
    r = await login(client, "verify@example.org")
    assert (await r.get_json())["user"]["email_verified"] is True


async def test_api_tokens_create_list_revoke_and_bearer_auth(client: Client, app: Quart) -> None:
    await register(client, "tok@example.org")
    token = (await (await login(client, "tok@example.org")).get_json())["csrf_token"]
    r = await client.post("/api/tokens", json={"name": "laptop"})
    assert r.status_code == 403  # cookie-authenticated: needs CSRF
    r = await post_json(client, "/api/tokens", {"name": "laptop"}, token)
    assert r.status_code == 201
    created = await r.get_json()
    raw = created["token"]
    assert raw.startswith("ixs_") and created["name"] == "laptop"

    listing = await (await client.get("/api/tokens")).get_json()
    assert [t["name"] for t in listing["tokens"]] == ["laptop"] and "token" not in listing["tokens"][0]

    bearer = app.test_client()  # no cookies at all: a program with only the token
    auth = {"Authorization": f"Bearer {raw}"}
    r = await bearer.get("/check-auth", headers=auth)
    assert (await r.get_json())["user"]["email"] == "tok@example.org" and (await r.get_json())["via"] == "token"
    r = await bearer.post("/api/tokens", json={"name": "ci"}, headers=auth)  # Bearer: exempt from CSRF
    assert r.status_code == 201
    second_id = (await r.get_json())["id"]
    r = await bearer.delete(f"/api/tokens/{second_id}", headers=auth)
    assert r.status_code == 204
    r = await bearer.delete(f"/api/tokens/{second_id}", headers=auth)
    assert r.status_code == 404 and (await r.get_json())["error"]["code"] == "token_not_found"

    r = await client.delete(f"/api/tokens/{created['id']}", headers={"X-CSRF-Token": token})
    assert r.status_code == 204
    r = await bearer.get("/check-auth", headers=auth)
    assert r.status_code == 401 and (await r.get_json())["error"]["code"] == "invalid_token"
    r = await bearer.get("/api/tokens", headers={"Authorization": "Bearer ixs_made_up"})
    assert r.status_code == 401


async def test_production_cookies_are_secure(tmp_path: Path) -> None:
    app = account_app(tmp_path, IDENTIX_ENV="production")
    async with app.test_app():
        client = app.test_client()
        nonce = cookie_attrs(await client.get("/api/csrf"), "identix_csrf")
        assert "Secure" in nonce and "HttpOnly" in nonce and "SameSite=Lax" in nonce
        await register(client, "prod@example.org")
        r = await login(client, "prod@example.org")
        assert "Secure" in cookie_attrs(r, "identix_session")


async def test_mongodb_accounts_hash_and_case_insensitive_uniqueness(tmp_path: Path, mongodb_uri: str) -> None:
    db_name = unique_db_name()
    app = account_app(tmp_path, MONGODB_URI=mongodb_uri, IDENTIX_MONGODB_DB=db_name)
    async with app.test_app():
        client = app.test_client()
        store = app.extensions["user_store"]
        try:
            assert (await register(client, "Mongo.User@Example.org")).status_code == 201
            doc = await store.users.find_one({"email": "mongo.user@example.org"})
            assert doc is not None and doc["password_hash"].startswith("$2b$12$")
            assert PASSWORD not in str(doc)
            r = await register(client, "MONGO.USER@EXAMPLE.ORG")
            assert r.status_code == 409
            assert await store.users.count_documents({}) == 1
            assert (await login(client, "mongo.user@example.org")).status_code == 200
            assert (await (await client.get("/check-auth")).get_json())["authenticated"] is True
            health = await (await client.get("/health")).get_json()
            assert health["user_store"] == "mongodb" and health["db_ok"] is True
        finally:
            await store._client.drop_database(db_name)


def feature_app(tmp_path: Path, **env: str) -> Quart:
    """An app with one extra analysis-like route guarded by login_required, as feature blueprints are."""
    from quart import Blueprint

    from identix_stream.web.auth_guard import current_user, login_required

    bp = Blueprint("feature_probe", __name__)

    @bp.post("/api/probe")
    @login_required
    async def probe() -> dict[str, Any]:
        user = await current_user()
        return {"user": user.email if user else None}

    app = account_app(tmp_path, **env)
    app.register_blueprint(bp)
    return app


async def test_login_required_routes_and_csrf_on_them(tmp_path: Path) -> None:
    app = feature_app(tmp_path)
    async with app.test_app():
        client = app.test_client()
        r = await client.post("/api/probe", json={})
        assert r.status_code == 401 and (await r.get_json())["error"]["code"] == "unauthorized"
        await register(client, "feat@example.org")
        token = (await (await login(client, "feat@example.org")).get_json())["csrf_token"]
        r = await client.post("/api/probe", json={})  # a session cookie is ambient authority: CSRF needed
        assert r.status_code == 403
        r = await client.post("/api/probe", json={}, headers={"X-CSRF-Token": token})
        assert r.status_code == 200 and (await r.get_json()) == {"user": "feat@example.org"}


async def test_anonymous_mode_opens_feature_routes_but_not_account_routes(tmp_path: Path) -> None:
    app = feature_app(tmp_path, IDENTIX_ALLOW_ANONYMOUS="1")
    async with app.test_app():
        client = app.test_client()
        r = await client.post("/api/probe", json={})  # no cookies at all, e.g. curl in a demo
        assert r.status_code == 200 and (await r.get_json()) == {"user": None}
        r = await client.get("/api/tokens")
        assert r.status_code == 401  # accounts still need an account
        r = await client.post("/login", json={"email": "a@example.org", "password": PASSWORD})
        assert r.status_code == 403  # account forms keep CSRF even without a session (login CSRF)
