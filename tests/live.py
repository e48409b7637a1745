"""Run ``capex serve`` as a real process, for tests that need several workers."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

import httpx


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
