"""Accounts: register, login, logout, check-auth, password reset, email verification, API tokens.

Every endpoint takes JSON (``application/json``) or an HTML form (urlencoded); JSON callers get
JSON answers, form posts get pages/redirects. Deliberate choices:
- Login never says whether the email exists: unknown email and wrong password give the same 401
  (and both spend one bcrypt check). The reset request always answers 202.
- Sessions are random tokens stored hashed server-side (revocable; rotated on every login;
  all revoked on a password reset). The cookie is HttpOnly, SameSite=Lax, Secure in production.
- Reset and verification tokens are random, stored hashed, expire, and are consumed atomically.
"""

from __future__ import annotations

import json
import logging
from typing import Any
from urllib.parse import urlsplit

from quart import Blueprint, Response, current_app, jsonify, redirect, render_template, request, url_for
from werkzeug.exceptions import UnsupportedMediaType

from identix_stream.errors import IdentixError, InvalidInput, NotFound, Unauthorized
from identix_stream.mail import MailMessage, mail_sender
from identix_stream.storage.base import TokenRecord, User, hash_token, new_token
from identix_stream.web import csrf
from identix_stream.web.auth_guard import account_required, current_user, set_current_user, settings, user_store
from identix_stream.web.passwords import (
    PASSWORD_POLICY,
    check_password_policy,
    hash_password,
    normalise_email,
    verify_password,
)
from identix_stream.web.ratelimit import SlidingWindow

log = logging.getLogger(__name__)
blueprint = Blueprint("accounts", __name__)

API_TOKEN_PREFIX = "ixs_"
MAX_TOKEN_NAME = 100
MAX_API_TOKENS = 50
GENERIC_LOGIN_FAILURE = "wrong email or password"


class Limits:
    """The app's attempt counters (one set per app)."""

    def __init__(self) -> None:
        cfg = settings()
        self.login_account = SlidingWindow(cfg.login_max_failures, cfg.login_window_s)
        self.login_ip = SlidingWindow(cfg.login_ip_max_failures, cfg.login_window_s)
        self.register_ip = SlidingWindow(cfg.register_max_per_ip, cfg.register_window_s)
        self.reset_account = SlidingWindow(cfg.reset_max_per_account, cfg.reset_window_s)
        self.reset_ip = SlidingWindow(cfg.reset_max_per_ip, cfg.reset_window_s)


def limits() -> Limits:
    found = current_app.extensions.get("account_limits")
    if found is None:
        found = current_app.extensions["account_limits"] = Limits()
    return found


def client_address() -> str:
    if settings().trust_proxy:
        forwarded = [p.strip() for p in request.headers.get("X-Forwarded-For", "").split(",") if p.strip()]
        if forwarded:
            return forwarded[-1]  # the address our own proxy saw (earlier entries are client-supplied)
    return request.remote_addr or "unknown"


# ---------------------------------------------------------------- request/response helpers


async def read_input() -> tuple[dict[str, Any], bool]:
    """The request's fields and whether they came from an HTML form. Bad bodies are 4xx JSON."""
    mimetype = request.mimetype
    if mimetype in ("application/x-www-form-urlencoded", "multipart/form-data"):
        form = await request.form
        return {k: form.get(k) for k in form}, True
    if mimetype == "application/json" or mimetype.endswith("+json"):
        raw = await request.get_data(as_text=False)
        if not raw:
            raise InvalidInput("the request body is empty; send a JSON object", code="invalid_json")
        try:
            data = json.loads(raw)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise InvalidInput(f"the request body is not valid JSON: {exc}", code="invalid_json") from None
        if not isinstance(data, dict):
            raise InvalidInput("the request body must be a JSON object", code="invalid_json")
        return data, False
    raise UnsupportedMediaType(
        f"send application/json or an HTML form, not {mimetype or 'a body without Content-Type'}"
    )


def field(data: dict[str, Any], name: str, *, max_len: int = 1000) -> str:
    value = data.get(name)
    if value is None or value == "":
        raise InvalidInput(f"missing field {name!r}", code="missing_field")
    if not isinstance(value, str):
        raise InvalidInput(f"field {name!r} must be a string", code="invalid_field")
    if len(value) > max_len:
        raise InvalidInput(f"field {name!r} is longer than {max_len} characters", code="invalid_field")
    return value


def user_json(user: User) -> dict[str, Any]:
    return {
        "id": user.id,
        "email": user.email,
        "email_verified": user.email_verified,
        "created_at": user.created_at.isoformat(),
    }


def token_json(token: TokenRecord) -> dict[str, Any]:
    return {
        "id": token.id,
        "name": token.name,
        "created_at": token.created_at.isoformat(),
        "expires_at": token.expires_at.isoformat() if token.expires_at else None,
    }


def json_response(body: dict[str, Any], status: int = 200) -> Response:
    response = jsonify(body)
    response.status_code = status
    return response


async def page(template: str, status: int = 200, **context: Any) -> Response:
    html = await render_template(template, user=await _quiet_user(), **context)
    return Response(html, status=status, mimetype="text/html")


async def _quiet_user() -> User | None:
    try:
        return await current_user()
    except IdentixError:
        return None


def safe_next(target: str | None, default: str) -> str:
    """Only same-site relative redirects (no open redirect through ?next=)."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return default
    parts = urlsplit(target)
    return default if parts.scheme or parts.netloc else target


async def form_or_json_error(exc: IdentixError, template: str, **context: Any) -> Response:
    response = await page(template, status=exc.status, error=exc.message, **context)
    if exc.status == 429 and hasattr(exc, "retry_after"):
        response.headers["Retry-After"] = str(exc.retry_after)
    return response


def send_mail_later(message: MailMessage) -> None:
    """Mail goes out in the background: the answer never depends on (or reveals) delivery."""
    sender = mail_sender(settings())

    async def _send() -> None:
        try:
            await sender.send(message)
        except Exception:
            log.exception("could not send mail to %s", message.to)

    current_app.add_background_task(_send)


async def issue_verification(user: User) -> None:
    cfg = settings()
    raw = new_token()
    await user_store().add_token(TokenRecord.issue("verify", raw, user.id, cfg.verify_token_ttl_s))
    link = f"{cfg.base_url}/verify-email?token={raw}"
    send_mail_later(
        MailMessage(
            to=user.email,
            subject="Confirm your identix-stream email address",
            body=f"Confirm this address by opening:\n\n{link}\n\nThe link expires in "
            f"{cfg.verify_token_ttl_s // 3600} hours. If you did not register, ignore this message.\n",
        )
    )


# ---------------------------------------------------------------- sessions


async def start_session(response: Response, user: User) -> str:
    """Rotate: drop the previous session (if any) and set a fresh random session cookie."""
    cfg = settings()
    store = user_store()
    old = request.cookies.get(csrf.SESSION_COOKIE)
    if old:
        await store.consume_token("session", hash_token(old))
    raw = new_token()
    await store.add_token(TokenRecord.issue("session", raw, user.id, cfg.session_ttl_s))
    response.set_cookie(
        csrf.SESSION_COOKIE,
        raw,
        max_age=cfg.session_ttl_s,
        httponly=True,
        secure=cfg.production,
        samesite="Lax",
        path="/",
    )
    csrf.bind_session(raw)
    return raw


async def end_session(response: Response) -> None:
    raw = request.cookies.get(csrf.SESSION_COOKIE)
    if raw:
        await user_store().consume_token("session", hash_token(raw))
    response.delete_cookie(csrf.SESSION_COOKIE, path="/", httponly=True, secure=settings().production, samesite="Lax")
    csrf.bind_session("")
    set_current_user(None)


# ---------------------------------------------------------------- register


async def _register(data: dict[str, Any]) -> User:
    lim = limits()
    ip = client_address()
    lim.register_ip.check(ip, "registrations from this address")
    lim.register_ip.hit(ip)
    email = normalise_email(data.get("email"))
    password = check_password_policy(data.get("password"))
    pw_hash = await hash_password(password, settings().bcrypt_rounds)
    user = await user_store().create_user(email, pw_hash)
    log.info("registered user %s", user.id)
    await issue_verification(user)
    return user


@blueprint.get("/register")
async def register_page() -> Response:
    return await page("auth/register.html", policy=PASSWORD_POLICY)


@blueprint.post("/register")
async def register() -> Response:
    data, is_form = await read_input()
    try:
        user = await _register(data)
    except IdentixError as exc:
        if not is_form:
            raise
        return await form_or_json_error(exc, "auth/register.html", policy=PASSWORD_POLICY, email=data.get("email"))
    if is_form:
        return redirect(url_for("accounts.login_page", registered=1))  # type: ignore[return-value]
    return json_response({"user": user_json(user), "message": "account created; check your email to verify it"}, 201)


# ---------------------------------------------------------------- login / logout / check-auth


async def _authenticate(data: dict[str, Any]) -> User:
    lim = limits()
    ip = client_address()
    email_raw = field(data, "email", max_len=320)
    password = field(data, "password", max_len=1000)
    try:
        email = normalise_email(email_raw)
    except InvalidInput:
        email = email_raw.strip().lower()  # still rate-limited per "account" key, same answer
    lim.login_ip.check(ip, "failed sign-ins from this address")
    lim.login_account.check(email, "failed sign-ins for this account")
    user = await user_store().get_user_by_email(email)
    ok = await verify_password(password, user.password_hash if user else None)
    if not ok or user is None:
        lim.login_ip.hit(ip)
        lim.login_account.hit(email)
        raise Unauthorized(GENERIC_LOGIN_FAILURE, code="invalid_credentials")
    lim.login_account.reset(email)
    return user


@blueprint.get("/login")
async def login_page() -> Response:
    return await page(
        "auth/login.html",
        next=safe_next(request.args.get("next"), ""),
        registered=bool(request.args.get("registered")),
        reset=bool(request.args.get("reset")),
    )


@blueprint.post("/login")
async def login() -> Response:
    data, is_form = await read_input()
    try:
        user = await _authenticate(data)
    except IdentixError as exc:
        if not is_form:
            raise
        return await form_or_json_error(exc, "auth/login.html", email=data.get("email"), next=data.get("next"))
    if is_form:
        response: Response = redirect(safe_next(str(data.get("next") or ""), url_for("accounts.account_page")))  # type: ignore[assignment]
    else:
        response = json_response({"user": user_json(user)})
    await start_session(response, user)
    set_current_user(user)
    if not is_form:
        response.set_data(current_app.json.dumps({"user": user_json(user), "csrf_token": csrf.generate_csrf_token()}))
    return response


@blueprint.post("/logout")
async def logout() -> Response:
    _, is_form = await _optional_input()
    response: Response = redirect(url_for("accounts.login_page")) if is_form else json_response({"ok": True})  # type: ignore[assignment]
    await end_session(response)
    if not is_form:
        response.set_data(current_app.json.dumps({"ok": True, "csrf_token": csrf.generate_csrf_token()}))
    return response


async def _optional_input() -> tuple[dict[str, Any], bool]:
    """Like read_input, but an empty body is fine (logout, resend)."""
    if not await request.get_data(as_text=False):
        return {}, request.mimetype in ("application/x-www-form-urlencoded", "multipart/form-data")
    return await read_input()


@blueprint.get("/check-auth")
async def check_auth() -> Response:
    user = await current_user()
    via = "token" if request.headers.get("Authorization") else "session"
    return json_response(
        {"authenticated": user is not None, "user": user_json(user) if user else None, "via": via if user else None}
    )


# ---------------------------------------------------------------- password reset


@blueprint.get("/password-reset")
async def reset_request_page() -> Response:
    return await page("auth/reset_request.html")


@blueprint.post("/password-reset")
async def reset_request() -> Response:
    data, is_form = await read_input()
    cfg = settings()
    lim = limits()
    try:
        ip = client_address()
        email = normalise_email(data.get("email"))
        lim.reset_ip.check(ip, "password-reset requests from this address")
        lim.reset_account.check(email, "password-reset requests for this account")
        lim.reset_ip.hit(ip)
        lim.reset_account.hit(email)
        user = await user_store().get_user_by_email(email)
        if user is not None:
            raw = new_token()
            await user_store().add_token(TokenRecord.issue("reset", raw, user.id, cfg.reset_token_ttl_s))
            link = f"{cfg.base_url}/password-reset/confirm?token={raw}"
            send_mail_later(
                MailMessage(
                    to=user.email,
                    subject="Reset your identix-stream password",
                    body=f"Choose a new password here:\n\n{link}\n\nThe link works once and expires in "
                    f"{max(1, cfg.reset_token_ttl_s // 60)} minutes. If you did not ask for it, ignore this message.\n",
                )
            )
    except IdentixError as exc:
        if not is_form:
            raise
        return await form_or_json_error(exc, "auth/reset_request.html", email=data.get("email"))
    message = "if an account exists for that address, a reset link is on its way"
    if is_form:
        return await page("auth/reset_request.html", status=202, sent=True, message=message)
    return json_response({"message": message}, 202)


@blueprint.get("/password-reset/confirm")
async def reset_confirm_page() -> Response:
    return await page("auth/reset_confirm.html", token=request.args.get("token", ""), policy=PASSWORD_POLICY)


@blueprint.post("/password-reset/confirm")
async def reset_confirm() -> Response:
    data, is_form = await read_input()
    store = user_store()
    try:
        raw = field(data, "token", max_len=200)
        password = check_password_policy(data.get("password"))
        token = await store.consume_token("reset", hash_token(raw))
        user = None if token is None else await store.get_user(token.user_id)
        if user is None:
            raise InvalidInput("this reset link is invalid, already used or expired", code="invalid_token")
        await store.set_password(user.id, await hash_password(password, settings().bcrypt_rounds))
        await store.delete_tokens(user.id, "session")  # sign out everywhere
        await store.delete_tokens(user.id, "reset")
        if not user.email_verified:  # the reset mail proved the address
            await store.set_email_verified(user.id)
        log.info("password reset for user %s", user.id)
    except IdentixError as exc:
        if not is_form:
            raise
        return await form_or_json_error(exc, "auth/reset_confirm.html", token=data.get("token"), policy=PASSWORD_POLICY)
    if is_form:
        return redirect(url_for("accounts.login_page", reset=1))  # type: ignore[return-value]
    return json_response({"message": "password changed; sign in with the new password"})


# ---------------------------------------------------------------- email verification


@blueprint.get("/verify-email")
async def verify_page() -> Response:
    # GET only shows a button: link scanners that prefetch URLs must not consume the token.
    return await page("auth/verify.html", token=request.args.get("token", ""))


@blueprint.post("/verify-email")
async def verify_email() -> Response:
    data, is_form = await read_input()
    store = user_store()
    try:
        raw = field(data, "token", max_len=200)
        token = await store.consume_token("verify", hash_token(raw))
        user = None if token is None else await store.get_user(token.user_id)
        if user is None:
            raise InvalidInput("this verification link is invalid, already used or expired", code="invalid_token")
        await store.set_email_verified(user.id)
    except IdentixError as exc:
        if not is_form:
            raise
        return await form_or_json_error(exc, "auth/verify.html", token=data.get("token"))
    if is_form:
        return await page("auth/verify.html", verified=True, email=user.email)
    return json_response({"message": "email verified", "email": user.email})


@blueprint.post("/verify-email/resend")
@account_required
async def resend_verification() -> Response:
    _, is_form = await _optional_input()
    user = await _signed_in()
    if not user.email_verified:
        lim = limits()
        lim.reset_account.check("verify:" + user.email, "verification mails")
        lim.reset_account.hit("verify:" + user.email)
        await user_store().delete_tokens(user.id, "verify")
        await issue_verification(user)
    if is_form:
        return redirect(url_for("accounts.account_page", resent=1))  # type: ignore[return-value]
    return json_response({"message": "verification mail sent" if not user.email_verified else "already verified"}, 202)


# ---------------------------------------------------------------- API tokens


async def _create_token(user: User, data: dict[str, Any]) -> tuple[str, TokenRecord]:
    name = data.get("name") or "api token"
    if not isinstance(name, str) or len(name) > MAX_TOKEN_NAME:
        raise InvalidInput(f"field 'name' must be a string of at most {MAX_TOKEN_NAME} chars", code="invalid_field")
    store = user_store()
    if len(await store.list_tokens(user.id, "api")) >= MAX_API_TOKENS:
        raise InvalidInput(f"at most {MAX_API_TOKENS} API tokens per account; revoke one first", code="too_many_tokens")
    raw = new_token(API_TOKEN_PREFIX)
    record = TokenRecord.issue("api", raw, user.id, None, name=name.strip() or "api token")
    await store.add_token(record)
    return raw, record


async def _signed_in() -> User:
    user = await current_user()
    if user is None:
        raise Unauthorized("sign in first")
    return user


@blueprint.get("/api/tokens")
@account_required
async def list_tokens() -> Response:
    user = await _signed_in()
    tokens = await user_store().list_tokens(user.id, "api")
    return json_response({"tokens": [token_json(t) for t in tokens]})


@blueprint.post("/api/tokens")
@account_required
async def create_token() -> Response:
    user = await _signed_in()
    data, _ = await _optional_input()
    raw, record = await _create_token(user, data)
    return json_response({**token_json(record), "token": raw, "note": "shown once; store it now"}, 201)


@blueprint.delete("/api/tokens/<token_id>")
@account_required
async def revoke_token(token_id: str) -> Response:
    user = await _signed_in()
    if not await user_store().delete_token(user.id, "api", token_id[:64]):
        raise NotFound(f"no API token with id {token_id[:64]!r}", code="token_not_found")
    return Response(status=204)


# ---------------------------------------------------------------- account page (HTML)


@blueprint.get("/account")
@account_required
async def account_page() -> Response:
    user = await _signed_in()
    tokens = await user_store().list_tokens(user.id, "api")
    return await page("auth/account.html", tokens=tokens, resent=bool(request.args.get("resent")))


@blueprint.post("/account/tokens")
@account_required
async def account_create_token() -> Response:
    user = await _signed_in()
    data, _ = await read_input()
    try:
        raw, _record = await _create_token(user, data)
    except IdentixError as exc:
        tokens = await user_store().list_tokens(user.id, "api")
        return await form_or_json_error(exc, "auth/account.html", tokens=tokens)
    tokens = await user_store().list_tokens(user.id, "api")
    return await page("auth/account.html", status=201, tokens=tokens, new_token=raw)


@blueprint.post("/account/tokens/<token_id>/revoke")
@account_required
async def account_revoke_token(token_id: str) -> Response:
    user = await _signed_in()
    await user_store().delete_token(user.id, "api", token_id[:64])
    return redirect(url_for("accounts.account_page"))  # type: ignore[return-value]
