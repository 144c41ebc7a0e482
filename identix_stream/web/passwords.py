"""Password policy, email normalisation and bcrypt (cost >= 12, off the event loop).

Policy: 8 to 72 bytes of UTF-8. bcrypt only reads 72 bytes, so longer passwords are refused
with a clear message instead of being silently truncated (and bcrypt 5 raises on them anyway).
"""

from __future__ import annotations

import asyncio

import bcrypt
from email_validator import EmailNotValidError, validate_email

from identix_stream.errors import InvalidInput

MIN_PASSWORD_CHARS = 8
MAX_PASSWORD_BYTES = 72
MAX_EMAIL_CHARS = 254
PASSWORD_POLICY = f"passwords need at least {MIN_PASSWORD_CHARS} characters and at most {MAX_PASSWORD_BYTES} bytes"

# A real hash to compare against when the email is unknown, so both answers take the same time.
_DUMMY_HASH = bcrypt.hashpw(b"identix-dummy-password", bcrypt.gensalt(12))


def normalise_email(value: object) -> str:
    """Syntax-checked, lower-cased address (so ``A@X.org`` and ``a@x.org`` are one account)."""
    if not isinstance(value, str) or not value.strip():
        raise InvalidInput("email is required", code="invalid_email")
    if len(value) > MAX_EMAIL_CHARS:
        raise InvalidInput(f"email is longer than {MAX_EMAIL_CHARS} characters", code="invalid_email")
    try:
        info = validate_email(value.strip(), check_deliverability=False)
    except EmailNotValidError as exc:
        raise InvalidInput(f"email {value!r} is not valid: {exc}", code="invalid_email") from None
    return info.normalized.lower()


def check_password_policy(value: object, field: str = "password") -> str:
    if not isinstance(value, str) or value == "":
        raise InvalidInput(f"{field} is required; {PASSWORD_POLICY}", code="invalid_password")
    if len(value) < MIN_PASSWORD_CHARS:
        raise InvalidInput(f"{field} is too short; {PASSWORD_POLICY}", code="weak_password")
    if len(value.encode("utf-8")) > MAX_PASSWORD_BYTES:
        raise InvalidInput(f"{field} is too long for bcrypt; {PASSWORD_POLICY}", code="password_too_long")
    return value


async def hash_password(password: str, rounds: int = 12) -> str:
    salt = bcrypt.gensalt(max(12, rounds))
    hashed = await asyncio.to_thread(bcrypt.hashpw, password.encode("utf-8"), salt)
    return hashed.decode("ascii")


async def verify_password(password: str, password_hash: str | None) -> bool:
    """Constant-shape check: with no hash (unknown email) it still spends one bcrypt round."""
    pw = password.encode("utf-8")
    if len(pw) > MAX_PASSWORD_BYTES:
        pw = pw[:MAX_PASSWORD_BYTES]  # cannot match a stored hash (policy); only keeps bcrypt happy
        password_hash = None
    target = password_hash.encode("ascii") if password_hash else _DUMMY_HASH
    ok = await asyncio.to_thread(bcrypt.checkpw, pw, target)
    return ok and password_hash is not None
