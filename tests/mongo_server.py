"""A real MongoDB wire-protocol server for the tests, and a TCP relay to simulate outages.

``mongodb_uri`` (session fixture): $MONGODB_URI when set (e.g. .ci/run's SecantusDB or a real
mongod); else a SecantusDB started from ``.venv-secantus`` (test-only, never imported by the
product); else the test is skipped with the reason.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from pymongo import MongoClient
from pymongo.errors import PyMongoError

ROOT = Path(__file__).resolve().parents[1]
SECANTUSD = ROOT / ".venv-secantus" / "bin" / "secantusd-py"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for_ping(uri: str, timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    last: Exception | None = None
    while time.monotonic() < deadline:
        client: MongoClient[dict[str, object]] = MongoClient(uri, serverSelectionTimeoutMS=500)
        try:
            client.admin.command("ping")
            return
        except PyMongoError as exc:
            last = exc
            time.sleep(0.2)
        finally:
            client.close()
    raise RuntimeError(f"no MongoDB answered ping at {uri} within {timeout_s} s: {last!r}")


@contextlib.contextmanager
def secantus_server() -> Iterator[str]:
    port = free_port()
    proc = subprocess.Popen(
        [str(SECANTUSD), "--host", "127.0.0.1", "--port", str(port), "--storage-path", ":memory:", "--standalone"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    uri = f"mongodb://127.0.0.1:{port}/?directConnection=true"
    try:
        wait_for_ping(uri)
        yield uri
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()


@pytest.fixture(scope="session")
def mongodb_uri() -> Iterator[str]:
    env_uri = os.environ.get("MONGODB_URI", "").strip()
    if env_uri:
        wait_for_ping(env_uri, timeout_s=15.0)
        yield env_uri
        return
    if not SECANTUSD.is_file():
        pytest.skip(
            "MongoDB half skipped: MONGODB_URI is unset and there is no SecantusDB at "
            f"{SECANTUSD} (run `bash .ci/run`, or set MONGODB_URI to a mongod)"
        )
    with secantus_server() as uri:
        yield uri


def unique_db_name() -> str:
    return f"identix_test_{uuid.uuid4().hex[:12]}"


def upstream_address(uri: str) -> tuple[str, int]:
    netloc = urlsplit(uri).netloc.rsplit("@", 1)[-1].split(",")[0]
    host, _, port = netloc.rpartition(":")
    return (host or "127.0.0.1").strip("[]"), int(port or 27017)


class TcpRelay:
    """127.0.0.1:<port> -> upstream. ``stop()`` cuts every connection and stops listening (the
    database "goes down" for the app); ``start()`` brings it back on the same port."""

    def __init__(self, upstream: tuple[str, int]) -> None:
        self.upstream = upstream
        self.port = free_port()
        self._server: asyncio.base_events.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()

    @property
    def uri(self) -> str:
        return f"mongodb://127.0.0.1:{self.port}/?directConnection=true"

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        except (ConnectionError, asyncio.CancelledError):
            pass
        finally:
            writer.close()

    async def _handle(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        try:
            up_r, up_w = await asyncio.open_connection(*self.upstream)
        except OSError:
            client_w.close()
            return
        self._writers.update((client_w, up_w))
        await asyncio.gather(self._pipe(client_r, up_w), self._pipe(up_r, client_w))
        self._writers.difference_update((client_w, up_w))

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", self.port, reuse_address=True)

    async def stop(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.close()
        for writer in list(self._writers):
            writer.close()
        self._writers.clear()
        if server is not None:
            await server.wait_closed()
        await asyncio.sleep(0.05)
