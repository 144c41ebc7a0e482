"""One contract for every UserRepository: the embedded SQLite store and MongoDB (through Motor,
against a real wire-protocol server: $MONGODB_URI or a SecantusDB started for the session)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from datetime import timedelta
from pathlib import Path

import pytest

from identix_stream.errors import Conflict, StoreUnavailable
from identix_stream.storage.base import TokenRecord, UserRepository, hash_token, new_token, utcnow
from identix_stream.storage.mongo import MongoUserRepository
from identix_stream.storage.sqlite import SqliteUserRepository
from tests.mongo_server import free_port, unique_db_name

HASH = "$2b$12$abcdefghijklmnopqrstuuF3u4T1o0n0J7lQy0bq7gq1Jd3Z8b9e6"

Factory = Callable[[], UserRepository]


@pytest.fixture(params=["sqlite", "mongodb"])
async def make_repo(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Factory]:
    """A factory of repositories over ONE database, so tests can reopen it (restart persistence)."""
    opened: list[UserRepository] = []
    if request.param == "sqlite":
        path = tmp_path / "users.sqlite3"

        def factory() -> UserRepository:
            repo = SqliteUserRepository(path)
            opened.append(repo)
            return repo
    else:
        uri = request.getfixturevalue("mongodb_uri")
        db_name = unique_db_name()

        def factory() -> UserRepository:
            repo = MongoUserRepository(uri, db_name, timeout_ms=3000)
            opened.append(repo)
            return repo

    yield factory
    for repo in opened:
        await repo.close()
    if request.param == "mongodb":
        cleanup = MongoUserRepository(uri, db_name, timeout_ms=3000)
        await cleanup._client.drop_database(db_name)
        await cleanup.close()


@pytest.fixture
async def repo(make_repo: Factory) -> UserRepository:
    store = make_repo()
    await store.open()
    return store


async def test_create_and_read_back(repo: UserRepository) -> None:
    user = await repo.create_user("ada@example.org", HASH)
    assert user.email == "ada@example.org" and user.password_hash == HASH and not user.email_verified
    assert user.created_at.tzinfo is not None
    assert abs((utcnow() - user.created_at).total_seconds()) < 60
    by_email = await repo.get_user_by_email("ada@example.org")
    by_id = await repo.get_user(user.id)
    assert by_email == user and by_id == user
    assert await repo.get_user_by_email("nobody@example.org") is None
    assert await repo.get_user("0123456789abcdef01234567") is None
    assert await repo.get_user("not an id") is None


async def test_duplicate_email_is_a_conflict(repo: UserRepository) -> None:
    await repo.create_user("dup@example.org", HASH)
    with pytest.raises(Conflict) as info:
        await repo.create_user("dup@example.org", HASH)
    assert info.value.status == 409 and info.value.code == "email_taken"


async def test_concurrent_duplicates_only_one_wins(repo: UserRepository) -> None:
    results = await asyncio.gather(
        *(repo.create_user("race@example.org", HASH) for _ in range(10)), return_exceptions=True
    )
    created = [r for r in results if not isinstance(r, BaseException)]
    conflicts = [r for r in results if isinstance(r, Conflict)]
    assert len(created) == 1 and len(conflicts) == 9


async def test_password_and_verification_updates(repo: UserRepository) -> None:
    user = await repo.create_user("upd@example.org", HASH)
    new_hash = HASH.replace("abc", "xyz")
    await repo.set_password(user.id, new_hash)
    await repo.set_email_verified(user.id)
    again = await repo.get_user(user.id)
    assert again is not None and again.password_hash == new_hash and again.email_verified


async def test_tokens_find_list_and_revoke(repo: UserRepository) -> None:
    alice = await repo.create_user("alice@example.org", HASH)
    bob = await repo.create_user("bob@example.org", HASH)
    raws = [new_token("ixs_") for _ in range(3)]
    for i, raw in enumerate(raws):
        await repo.add_token(TokenRecord.issue("api", raw, alice.id, None, name=f"t{i}"))
        await asyncio.sleep(0.002)  # distinct creation times for the ordering check
    session_raw = new_token()
    await repo.add_token(TokenRecord.issue("session", session_raw, alice.id, 3600))

    found = await repo.find_token("api", hash_token(raws[1]))
    assert found is not None and found.user_id == alice.id and found.name == "t1" and found.expires_at is None
    assert await repo.find_token("session", hash_token(raws[1])) is None  # kinds do not mix
    assert await repo.find_token("api", hash_token("never issued")) is None

    listed = await repo.list_tokens(alice.id, "api")
    assert [t.name for t in listed] == ["t0", "t1", "t2"]
    assert await repo.list_tokens(bob.id, "api") == []

    assert not await repo.delete_token(bob.id, "api", listed[0].id)  # not bob's token
    assert await repo.delete_token(alice.id, "api", listed[0].id)
    assert not await repo.delete_token(alice.id, "api", listed[0].id)
    assert await repo.find_token("api", hash_token(raws[0])) is None
    assert await repo.delete_tokens(alice.id, "api") == 2
    assert await repo.list_tokens(alice.id, "api") == []
    assert await repo.find_token("session", hash_token(session_raw)) is not None  # other kinds untouched


async def test_expired_tokens_are_invisible(repo: UserRepository) -> None:
    user = await repo.create_user("exp@example.org", HASH)
    raw = new_token()
    stale = TokenRecord.issue("reset", raw, user.id, 3600)
    stale = TokenRecord(**{**stale.__dict__, "expires_at": utcnow() - timedelta(seconds=1)})
    await repo.add_token(stale)
    assert await repo.find_token("reset", hash_token(raw)) is None
    assert await repo.list_tokens(user.id, "reset") == []
    assert await repo.consume_token("reset", hash_token(raw)) is None


async def test_consume_is_single_use_even_under_concurrency(repo: UserRepository) -> None:
    user = await repo.create_user("once@example.org", HASH)
    raw = new_token()
    await repo.add_token(TokenRecord.issue("verify", raw, user.id, 3600))
    assert await repo.consume_token("reset", hash_token(raw)) is None  # wrong kind consumes nothing
    results = await asyncio.gather(*(repo.consume_token("verify", hash_token(raw)) for _ in range(8)))
    winners = [r for r in results if r is not None]
    assert len(winners) == 1 and winners[0].user_id == user.id
    assert await repo.consume_token("verify", hash_token(raw)) is None


async def test_data_survives_a_clean_restart(make_repo: Factory) -> None:
    first = make_repo()
    await first.open()
    user = await first.create_user("keep@example.org", HASH)
    raw = new_token("ixs_")
    await first.add_token(TokenRecord.issue("api", raw, user.id, None, name="cli"))
    await first.close()

    second = make_repo()
    await second.open()
    assert await second.ping()
    again = await second.get_user_by_email("keep@example.org")
    assert again is not None and again.id == user.id and again.password_hash == HASH
    token = await second.find_token("api", hash_token(raw))
    assert token is not None and token.user_id == user.id
    with pytest.raises(Conflict):  # the unique email constraint survives too
        await second.create_user("keep@example.org", HASH)


async def test_mongodb_has_a_unique_index_on_email(mongodb_uri: str) -> None:
    db_name = unique_db_name()
    repo = MongoUserRepository(mongodb_uri, db_name, timeout_ms=3000)
    try:
        await repo.open()
        indexes = await repo.users.index_information()
        unique = [spec for spec in indexes.values() if spec.get("unique")]
        assert any(spec["key"] == [("email", 1)] for spec in unique), indexes
    finally:
        await repo._client.drop_database(db_name)
        await repo.close()


async def test_mongodb_unreachable_raises_store_unavailable() -> None:
    repo = MongoUserRepository(f"mongodb://127.0.0.1:{free_port()}/?directConnection=true", timeout_ms=300)
    try:
        assert not await repo.ping()
        with pytest.raises(StoreUnavailable) as info:
            await repo.open()
        assert info.value.status == 503
        with pytest.raises(StoreUnavailable):
            await repo.get_user_by_email("x@example.org")
    finally:
        await repo.close()


async def test_sqlite_unusable_path_raises_store_unavailable(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    repo = SqliteUserRepository(blocker / "users.sqlite3")
    with pytest.raises(StoreUnavailable):
        await repo.open()
    assert not await repo.ping()
