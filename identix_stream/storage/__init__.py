"""User stores: MongoDB through Motor when MONGODB_URI is set, else embedded SQLite in the data dir."""

from __future__ import annotations

from identix_stream.config import Settings
from identix_stream.storage.base import TokenRecord, User, UserRepository

__all__ = ["TokenRecord", "User", "UserRepository", "open_user_store"]


def open_user_store(settings: Settings) -> UserRepository:
    """The repository for these settings (not yet opened: call ``await repo.open()``)."""
    if settings.mongodb_uri:
        from identix_stream.storage.mongo import MongoUserRepository

        return MongoUserRepository(settings.mongodb_uri, settings.mongodb_db, timeout_ms=settings.db_timeout_ms)
    from identix_stream.storage.sqlite import SqliteUserRepository

    return SqliteUserRepository(settings.data_dir / "users.sqlite3")
