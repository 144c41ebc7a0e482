"""The ``UserRepository`` interface shared by the MongoDB and the embedded SQLite stores.

Secrets never reach a store in clear: passwords as bcrypt hashes, and every token (session,
API, password reset, email verification) as the SHA-256 of its random value. Tokens live in one
table/collection with a ``kind``; single-use tokens are *consumed* atomically.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal, Protocol

TokenKind = Literal["session", "api", "reset", "verify"]
TOKEN_KINDS: tuple[str, ...] = ("session", "api", "reset", "verify")


def utcnow() -> datetime:
    """Timezone-aware UTC now, truncated to milliseconds (BSON datetimes keep no more)."""
    now = datetime.now(UTC)
    return now.replace(microsecond=now.microsecond // 1000 * 1000)


def as_utc(value: datetime) -> datetime:
    """Stores may hand back naive datetimes (BSON, SQLite text): they are UTC."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def hash_token(raw: str) -> str:
    return hashlib.sha256(raw.encode("utf-8")).hexdigest()


def new_token(prefix: str = "") -> str:
    """A fresh random token (256 bits), optionally prefixed (e.g. ``ixs_`` for API tokens)."""
    return prefix + secrets.token_urlsafe(32)


@dataclass(frozen=True)
class User:
    id: str
    email: str
    password_hash: str
    email_verified: bool
    created_at: datetime


@dataclass(frozen=True)
class TokenRecord:
    id: str
    kind: str
    token_hash: str
    user_id: str
    created_at: datetime
    expires_at: datetime | None
    name: str = ""

    def expired(self, now: datetime | None = None) -> bool:
        return self.expires_at is not None and as_utc(self.expires_at) <= (now or utcnow())

    @staticmethod
    def issue(kind: TokenKind, raw: str, user_id: str, ttl_s: int | None, name: str = "") -> TokenRecord:
        now = utcnow()
        return TokenRecord(
            id=secrets.token_hex(8),
            kind=kind,
            token_hash=hash_token(raw),
            user_id=user_id,
            created_at=now,
            expires_at=None if ttl_s is None else now + timedelta(seconds=ttl_s),
            name=name,
        )


class UserRepository(Protocol):
    """What the web layer needs from a user store. Every method raises ``StoreUnavailable`` when
    the backing database cannot be reached, and nothing else for infrastructure failures."""

    kind: str  # "mongodb" | "sqlite"

    async def open(self) -> None:
        """Connect and create tables/indexes; raises StoreUnavailable (the app stays up and retries)."""

    async def close(self) -> None: ...

    async def ping(self) -> bool:
        """True when the store answers now (used by /health); never raises."""

    async def create_user(self, email: str, password_hash: str) -> User:
        """``email`` is already normalised; raises ``Conflict`` (409) when it is taken."""

    async def get_user(self, user_id: str) -> User | None: ...

    async def get_user_by_email(self, email: str) -> User | None: ...

    async def set_password(self, user_id: str, password_hash: str) -> None: ...

    async def set_email_verified(self, user_id: str) -> None: ...

    async def add_token(self, token: TokenRecord) -> None: ...

    async def find_token(self, kind: str, token_hash: str) -> TokenRecord | None:
        """The unexpired token with this hash, else None."""

    async def consume_token(self, kind: str, token_hash: str) -> TokenRecord | None:
        """Atomically delete and return the token (single use); None if absent or expired."""

    async def list_tokens(self, user_id: str, kind: str) -> list[TokenRecord]:
        """Unexpired tokens of one kind, oldest first."""

    async def delete_token(self, user_id: str, kind: str, token_id: str) -> bool:
        """Revoke one of the user's tokens; False when there is no such token."""

    async def delete_tokens(self, user_id: str, kind: str) -> int:
        """Revoke all of a user's tokens of one kind (e.g. sessions after a password reset)."""
