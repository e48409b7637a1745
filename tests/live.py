"""Run ``capex serve`` as a real process, for tests that need several workers."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from tests.conftest import discard_database, fresh_database


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def live_server(
    database_url: str,
    *,
    workers: int = 2,
    log: Path,
    env: Mapping[str, str] | None = None,
) -> Iterator[str]:
    """Serve capex on a free port with ``workers`` processes; yields the base URL.

    ``env`` adds (or overrides) environment variables, e.g. ``CAPEX_SMTP_URL``.
    """
    port = free_port()
    environment = {
        **os.environ,
        "CAPEX_DATABASE_URL": database_url,
        "CAPEX_ENVIRONMENT": "test",
        "CAPEX_SECRET_KEY": "live-test-secret-key-0123456789abcdef",
        "CAPEX_LOG_LEVEL": "WARNING",
        **(env or {}),
    }
    command = [sys.executable, "-m", "capex.cli", "serve", "--port", str(port)]
    command += ["--workers", str(workers)]
    with log.open("wb") as output:
        process = subprocess.Popen(
            command, env=environment, stdout=output, stderr=subprocess.STDOUT
        )
        base = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 60
            while True:
                if process.poll() is not None:
                    raise RuntimeError(f"capex serve exited: {log.read_text()[-2000:]}")
                try:
                    if httpx.get(f"{base}/readyz", timeout=1).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                if time.monotonic() > deadline:
                    raise RuntimeError(f"capex serve did not start: {log.read_text()[-2000:]}")
                time.sleep(0.2)
            yield base
        finally:
            process.terminate()
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


PASSWORD = "a long enough password"


@dataclass(frozen=True)
class Deployment:
    """A served database: its URL, the server's address and log, a client for it."""

    url: str
    base: str
    log: Path
    client: httpx.Client


@contextmanager
def deployment(
    backend: str, tmp: Path, *, workers: int, timeout: float = 30
) -> Iterator[Deployment]:
    """A fresh ``backend`` database served by ``capex serve --workers N``, dropped after."""
    url = fresh_database(backend, tmp)
    log = tmp / "serve.log"
    try:
        with (
            live_server(url, workers=workers, log=log) as base,
            httpx.Client(base_url=base, timeout=timeout) as client,
        ):
            yield Deployment(url, base, log, client)
    finally:
        discard_database(url)


def register(client: httpx.Client, username: str, profile: dict[str, Any]) -> dict[str, str]:
    """Register ``username``, sign in and save ``profile``; the bearer header."""
    response = client.post(
        "/api/v1/auth/register",
        json={"username": username, "email": f"{username}@example.org", "password": PASSWORD},
    )
    assert response.status_code == 201, response.text
    token = client.post("/api/v1/auth/token", data={"username": username, "password": PASSWORD})
    headers = {"Authorization": f"Bearer {token.json()['access_token']}"}
    saved = client.put("/api/v1/me/profile", json=profile, headers=headers)
    assert saved.status_code == 200, saved.text
    return headers


def matched_usernames(base: str, headers: dict[str, str]) -> tuple[str, list[str]]:
    """The worker that answered ``GET /me/matches`` and the usernames it ranked, in order.

    A new connection each time, so that the kernel hands requests to either worker.
    """
    response = httpx.get(f"{base}/api/v1/me/matches", headers=headers, timeout=10)
    assert response.status_code == 200, response.text
    names = [item["volunteer"]["username"] for item in response.json()["items"]]
    return response.headers["x-capex-worker"], names
