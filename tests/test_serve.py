"""`identix-stream serve` as a real process on a real socket: /health, accounts over HTTP with CSRF,
a clean restart that keeps the accounts, and a refused production start without SECRET_KEY."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from tests.mongo_server import free_port

PASSWORD = "correct horse battery"


def serve_env(data_dir: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("IDENTIX_") and k not in ("MONGODB_URI", "PORT")}
    env.update({"IDENTIX_DATA_DIR": str(data_dir), "IDENTIX_LOAD_MODELS": "false", **extra})
    return env


def creds(email: str) -> dict[str, str]:
    return {"email": email, "password": PASSWORD}


@contextmanager
def serving(data_dir: Path, port: int, timeout_s: float = 120.0) -> Iterator[str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "identix_stream.cli", "serve", "--port", str(port)],
        env=serve_env(data_dir),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + timeout_s
        while True:
            if proc.poll() is not None:
                output = proc.stdout.read() if proc.stdout else ""
                raise AssertionError(f"serve exited with {proc.returncode}: {output}")
            try:
                if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise AssertionError(f"/health not 200 within {timeout_s} s")
            time.sleep(0.3)
        yield url
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            code = proc.wait(120)  # interpreter teardown (torch) can take 20+ s on a busy CPU
        except subprocess.TimeoutExpired:
            proc.kill()
            raise
        assert code == 0, f"serve did not stop cleanly ({code})"


@pytest.mark.slow
def test_serve_health_accounts_and_restart(tmp_path: Path) -> None:
    port = free_port()
    with serving(tmp_path / "var", port) as url, httpx.Client(base_url=url, timeout=30) as client:
        health = client.get("/health").json()
        assert health["status"] == "ok" and health["user_store"] == "sqlite" and health["db_ok"] is True
        csrf = client.get("/api/csrf").json()["csrf_token"]
        r = client.post("/register", json=creds("Serve@Example.org"), headers={"X-CSRF-Token": csrf})
        assert r.status_code == 201, r.text
        r = client.post("/login", json=creds("serve@example.org"), headers={"X-CSRF-Token": csrf})
        assert r.status_code == 200, r.text
        csrf = r.json()["csrf_token"]
        assert client.get("/check-auth").json()["authenticated"] is True
        assert client.post("/logout", headers={"X-CSRF-Token": csrf}).status_code == 200
        assert client.get("/check-auth").json()["authenticated"] is False

    with serving(tmp_path / "var", port) as url, httpx.Client(base_url=url, timeout=30) as client:
        csrf = client.get("/api/csrf").json()["csrf_token"]
        r = client.post("/login", json=creds("serve@example.org"), headers={"X-CSRF-Token": csrf})
        assert r.status_code == 200, r.text  # the account survived the restart


def test_production_without_secret_key_refuses_to_start(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "identix_stream.cli", "serve", "--port", str(free_port())],
        env=serve_env(tmp_path / "var", IDENTIX_ENV="production"),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2
    assert "SECRET_KEY is required when IDENTIX_ENV=production" in proc.stderr
