"""Embedded user store: one SQLite file in the data directory (survives restarts), via aiosqlite."""

from __future__ import annotations

import logging
import sqlite3
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiosqlite

from identix_stream.errors import Conflict, StoreUnavailable
from identix_stream.storage.base import TokenRecord, User, utcnow

log = logging.getLogger(__name__)

SCHEMA = """
CREATE TABLE IF NOT EXISTS users (
    id TEXT PRIMARY KEY,
    email TEXT NOT NULL UNIQUE,
    password_hash TEXT NOT NULL,
    email_verified INTEGER NOT NULL DEFAULT 0,
    created_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS tokens (
    id TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    token_hash TEXT NOT NULL UNIQUE,
    user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    name TEXT NOT NULL DEFAULT '',
    created_at REAL NOT NULL,
    expires_at REAL
);
CREATE INDEX IF NOT EXISTS tokens_user_kind ON tokens(user_id, kind);
"""


def _ts(value: datetime | None) -> float | None:
    return None if value is None else value.timestamp()


def _dt(value: float | None) -> datetime | None:
    return None if value is None else datetime.fromtimestamp(value, UTC)


def _user(row: Any) -> User:
    return User(
        id=row["id"],
        email=row["email"],
        password_hash=row["password_hash"],
        email_verified=bool(row["email_verified"]),
        created_at=datetime.fromtimestamp(row["created_at"], UTC),
    )


def _token(row: Any) -> TokenRecord:
    return TokenRecord(
        id=row["id"],
        kind=row["kind"],
        token_hash=row["token_hash"],
        user_id=row["user_id"],
        name=row["name"],
        created_at=datetime.fromtimestamp(row["created_at"], UTC),
        expires_at=_dt(row["expires_at"]),
    )


class SqliteUserRepository:
    kind = "sqlite"

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._db: aiosqlite.Connection | None = None

    async def open(self) -> None:
        if self._db is not None:
            return
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            db = await aiosqlite.connect(self.path)
            db.row_factory = aiosqlite.Row
            await db.execute("PRAGMA journal_mode=WAL")
            await db.execute("PRAGMA foreign_keys=ON")
            await db.executescript(SCHEMA)
            await db.commit()
        except (OSError, sqlite3.Error) as exc:
            raise StoreUnavailable(f"cannot open the SQLite user store at {self.path}: {exc}") from exc
        self._db = db

    async def close(self) -> None:
        if self._db is not None:
            db, self._db = self._db, None
            await db.close()

    def _conn(self) -> aiosqlite.Connection:
        if self._db is None:
            raise StoreUnavailable("the SQLite user store is not open")
        return self._db

    async def _write(self, sql: str, params: tuple[Any, ...]) -> int:
        db = self._conn()
        try:
            cur = await db.execute(sql, params)
            await db.commit()
            return cur.rowcount
        except sqlite3.IntegrityError:
            await db.rollback()
            raise
        except sqlite3.Error as exc:
            raise StoreUnavailable(f"SQLite user store error: {exc}") from exc

    async def _one(self, sql: str, params: tuple[Any, ...]) -> Any:
        try:
            cur = await self._conn().execute(sql, params)
            return await cur.fetchone()
        except sqlite3.Error as exc:
            raise StoreUnavailable(f"SQLite user store error: {exc}") from exc

    async def ping(self) -> bool:
        try:
            await self.open()
            await self._one("SELECT 1", ())
            return True
        except StoreUnavailable:
            return False

    async def create_user(self, email: str, password_hash: str) -> User:
        user = User(uuid.uuid4().hex, email, password_hash, False, utcnow())
        try:
            await self._write(
                "INSERT INTO users (id, email, password_hash, email_verified, created_at) VALUES (?, ?, ?, 0, ?)",
                (user.id, user.email, user.password_hash, user.created_at.timestamp()),
            )
        except sqlite3.IntegrityError:
            raise Conflict(f"an account with the email {email} already exists", code="email_taken") from None
        return user

    async def get_user(self, user_id: str) -> User | None:
        row = await self._one("SELECT * FROM users WHERE id = ?", (user_id,))
        return None if row is None else _user(row)

    async def get_user_by_email(self, email: str) -> User | None:
        row = await self._one("SELECT * FROM users WHERE email = ?", (email,))
        return None if row is None else _user(row)

    async def set_password(self, user_id: str, password_hash: str) -> None:
        await self._write("UPDATE users SET password_hash = ? WHERE id = ?", (password_hash, user_id))

    async def set_email_verified(self, user_id: str) -> None:
        await self._write("UPDATE users SET email_verified = 1 WHERE id = ?", (user_id,))

    async def add_token(self, token: TokenRecord) -> None:
        # purge expired tokens here (lookups filter on expiry anyway; this keeps the table small)
        now = utcnow().timestamp()
        await self._write("DELETE FROM tokens WHERE expires_at IS NOT NULL AND expires_at <= ?", (now,))
        await self._write(
            "INSERT INTO tokens (id, kind, token_hash, user_id, name, created_at, expires_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?)",
            (
                token.id,
                token.kind,
                token.token_hash,
                token.user_id,
                token.name,
                token.created_at.timestamp(),
                _ts(token.expires_at),
            ),
        )

    async def find_token(self, kind: str, token_hash: str) -> TokenRecord | None:
        row = await self._one(
            "SELECT * FROM tokens WHERE kind = ? AND token_hash = ? AND (expires_at IS NULL OR expires_at > ?)",
            (kind, token_hash, utcnow().timestamp()),
        )
        return None if row is None else _token(row)

    async def consume_token(self, kind: str, token_hash: str) -> TokenRecord | None:
        # DELETE ... RETURNING is atomic: two concurrent uses of one reset link cannot both succeed.
        db = self._conn()
        try:
            cur = await db.execute(
                "DELETE FROM tokens WHERE kind = ? AND token_hash = ? RETURNING *", (kind, token_hash)
            )
            row = await cur.fetchone()
            await db.commit()
        except sqlite3.Error as exc:
            raise StoreUnavailable(f"SQLite user store error: {exc}") from exc
        if row is None:
            return None
        token = _token(row)
        return None if token.expired() else token

    async def list_tokens(self, user_id: str, kind: str) -> list[TokenRecord]:
        try:
            cur = await self._conn().execute(
                "SELECT * FROM tokens WHERE user_id = ? AND kind = ? AND (expires_at IS NULL OR expires_at > ?)"
                " ORDER BY created_at, id",
                (user_id, kind, utcnow().timestamp()),
            )
            rows = await cur.fetchall()
        except sqlite3.Error as exc:
            raise StoreUnavailable(f"SQLite user store error: {exc}") from exc
        return [_token(r) for r in rows]

    async def delete_token(self, user_id: str, kind: str, token_id: str) -> bool:
        n = await self._write(
            "DELETE FROM tokens WHERE user_id = ? AND kind = ? AND id = ?", (user_id, kind, token_id)
        )
        return n > 0

    async def delete_tokens(self, user_id: str, kind: str) -> int:
        return await self._write("DELETE FROM tokens WHERE user_id = ? AND kind = ?", (user_id, kind))
