"""MongoDB user store through Motor (used when MONGODB_URI is set).

The unique index on the normalised email is what makes duplicate registrations impossible, so it
is (re)ensured before the first write after every (re)connection; if the database is down at
start the app stays up, answers 503, and creates the indexes once the database is back.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from bson import ObjectId
from bson.errors import InvalidId
from motor.motor_asyncio import AsyncIOMotorClient
from pymongo import ASCENDING
from pymongo.errors import DuplicateKeyError, OperationFailure, PyMongoError

from identix_stream.errors import Conflict, StoreUnavailable
from identix_stream.storage.base import TokenRecord, User, as_utc, utcnow

log = logging.getLogger(__name__)


def _user(doc: dict[str, Any]) -> User:
    return User(
        id=str(doc["_id"]),
        email=doc["email"],
        password_hash=doc["password_hash"],
        email_verified=bool(doc.get("email_verified", False)),
        created_at=as_utc(doc["created_at"]),
    )


def _token(doc: dict[str, Any]) -> TokenRecord:
    exp = doc.get("expires_at")
    return TokenRecord(
        id=doc["_id"],
        kind=doc["kind"],
        token_hash=doc["token_hash"],
        user_id=doc["user_id"],
        name=doc.get("name", ""),
        created_at=as_utc(doc["created_at"]),
        expires_at=None if exp is None else as_utc(exp),
    )


def _oid(user_id: str) -> ObjectId | None:
    try:
        return ObjectId(user_id)
    except (InvalidId, TypeError):
        return None


def _unexpired() -> dict[str, Any]:
    return {"$or": [{"expires_at": None}, {"expires_at": {"$gt": utcnow()}}]}


class MongoUserRepository:
    kind = "mongodb"

    def __init__(self, uri: str, db_name: str = "identix", *, timeout_ms: int = 2000) -> None:
        self._client: AsyncIOMotorClient[dict[str, Any]] = AsyncIOMotorClient(
            uri,
            tz_aware=True,
            serverSelectionTimeoutMS=timeout_ms,
            connectTimeoutMS=timeout_ms,
            socketTimeoutMS=max(timeout_ms * 2, 5000),
            appname="identix-stream",
        )
        self._db = self._client[db_name]
        self.users = self._db["users"]
        self.tokens = self._db["tokens"]
        self._indexed = False
        self._index_lock = asyncio.Lock()

    async def open(self) -> None:
        await self._ensure_indexes()

    async def _ensure_indexes(self) -> None:
        if self._indexed:
            return
        async with self._index_lock:
            if self._indexed:
                return
            try:
                await self.users.create_index([("email", ASCENDING)], unique=True, name="email_unique")
                await self.tokens.create_index([("token_hash", ASCENDING)], unique=True, name="token_hash_unique")
                await self.tokens.create_index([("user_id", ASCENDING), ("kind", ASCENDING)], name="user_kind")
                try:  # let the server purge expired tokens; lookups also filter on expiry
                    await self.tokens.create_index("expires_at", expireAfterSeconds=0, name="expires_ttl")
                except OperationFailure as exc:
                    log.warning("MongoDB refused the TTL index on tokens.expires_at: %s", exc)
            except PyMongoError as exc:
                raise StoreUnavailable(f"MongoDB is unreachable: {type(exc).__name__}") from exc
            self._indexed = True
            log.info("MongoDB user store ready (indexes ensured)")

    async def close(self) -> None:
        self._client.close()

    async def ping(self) -> bool:
        try:
            await self._db.command("ping")
        except PyMongoError:
            return False
        try:
            await self._ensure_indexes()
        except StoreUnavailable:
            return False
        return True

    async def _call(self, coro: Any) -> Any:
        try:
            return await coro
        except DuplicateKeyError:
            raise
        except PyMongoError as exc:
            raise StoreUnavailable(f"MongoDB is unreachable: {type(exc).__name__}") from exc

    async def create_user(self, email: str, password_hash: str) -> User:
        await self._ensure_indexes()
        doc = {"email": email, "password_hash": password_hash, "email_verified": False, "created_at": utcnow()}
        try:
            res = await self._call(self.users.insert_one(doc))
        except DuplicateKeyError:
            raise Conflict(f"an account with the email {email} already exists", code="email_taken") from None
        doc["_id"] = res.inserted_id
        return _user(doc)

    async def get_user(self, user_id: str) -> User | None:
        oid = _oid(user_id)
        if oid is None:
            return None
        doc = await self._call(self.users.find_one({"_id": oid}))
        return None if doc is None else _user(doc)

    async def get_user_by_email(self, email: str) -> User | None:
        doc = await self._call(self.users.find_one({"email": email}))
        return None if doc is None else _user(doc)

    async def set_password(self, user_id: str, password_hash: str) -> None:
        oid = _oid(user_id)
        if oid is not None:
            await self._call(self.users.update_one({"_id": oid}, {"$set": {"password_hash": password_hash}}))

    async def set_email_verified(self, user_id: str) -> None:
        oid = _oid(user_id)
        if oid is not None:
            await self._call(self.users.update_one({"_id": oid}, {"$set": {"email_verified": True}}))

    async def add_token(self, token: TokenRecord) -> None:
        await self._ensure_indexes()
        doc = {
            "_id": token.id,
            "kind": token.kind,
            "token_hash": token.token_hash,
            "user_id": token.user_id,
            "name": token.name,
            "created_at": token.created_at,
            "expires_at": token.expires_at,
        }
        await self._call(self.tokens.insert_one(doc))

    async def find_token(self, kind: str, token_hash: str) -> TokenRecord | None:
        doc = await self._call(self.tokens.find_one({"kind": kind, "token_hash": token_hash, **_unexpired()}))
        return None if doc is None else _token(doc)

    async def consume_token(self, kind: str, token_hash: str) -> TokenRecord | None:
        doc = await self._call(
            self.tokens.find_one_and_delete({"kind": kind, "token_hash": token_hash})
        )
        if doc is None:
            return None
        token = _token(doc)
        return None if token.expired() else token

    async def list_tokens(self, user_id: str, kind: str) -> list[TokenRecord]:
        cursor = self.tokens.find({"user_id": user_id, "kind": kind, **_unexpired()}).sort(
            [("created_at", ASCENDING), ("_id", ASCENDING)]
        )
        docs = await self._call(cursor.to_list(length=None))
        return [_token(d) for d in docs]

    async def delete_token(self, user_id: str, kind: str, token_id: str) -> bool:
        res = await self._call(self.tokens.delete_one({"_id": token_id, "user_id": user_id, "kind": kind}))
        return bool(res.deleted_count)

    async def delete_tokens(self, user_id: str, kind: str) -> int:
        res = await self._call(self.tokens.delete_many({"user_id": user_id, "kind": kind}))
        return int(res.deleted_count)
