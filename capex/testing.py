"""Live servers and throwaway databases for the tests, the benchmarks and scripts/schemathesis.

And the costly request bodies that the tests and bench/body_limits.py both send.

Standard library, psycopg and SQLAlchemy's URL only: it imports nothing of capex (the server
runs in its own process), and nothing that only the tests install.
"""

from __future__ import annotations

import http.client
import os
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import psycopg
from sqlalchemy.engine import make_url

# A PostgreSQL URL allowed to CREATE DATABASE; each throwaway database is made beside it.
POSTGRES_ADMIN_URL = os.environ.get(
    "CAPEX_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
BACKENDS = ("sqlite", "postgresql")


# -- databases -------------------------------------------------------------------------------


def admin_dsn(admin_url: str = POSTGRES_ADMIN_URL) -> str:
    """``admin_url`` as a libpq connection string, for psycopg."""
    return make_url(admin_url).set(drivername="postgresql").render_as_string(hide_password=False)


def fresh_database(
    backend: str,
    directory: Path,
    *,
    prefix: str = "capex_test",
    admin_url: str = POSTGRES_ADMIN_URL,
) -> str:
    """A new, empty database of ``backend`` ('sqlite' or 'postgresql'); its SQLAlchemy URL.

    A SQLite file goes in ``directory``; a PostgreSQL database is created beside ``admin_url``.
    """
    name = f"{prefix}_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    if backend == "sqlite":
        return f"sqlite:///{directory / f'{name}.db'}"
    if backend != "postgresql":
        raise ValueError(f"unknown backend {backend!r}: expected one of {BACKENDS}")
    with psycopg.connect(admin_dsn(admin_url), autocommit=True) as connection:
        connection.execute(f'CREATE DATABASE "{name}"')
    return make_url(admin_url).set(database=name).render_as_string(hide_password=False)


def discard_database(url: str, *, admin_url: str = POSTGRES_ADMIN_URL) -> None:
    """Drop what :func:`fresh_database` made: the PostgreSQL database, or the SQLite files."""
    database = make_url(url).database
    if url.startswith("postgresql"):
        with psycopg.connect(admin_dsn(admin_url), autocommit=True) as connection:
            connection.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
    elif url.startswith("sqlite") and database:
        for suffix in ("", "-wal", "-shm"):
            Path(f"{database}{suffix}").unlink(missing_ok=True)


@contextmanager
def throwaway_database(
    backend: str,
    directory: Path,
    *,
    prefix: str = "capex_test",
    admin_url: str = POSTGRES_ADMIN_URL,
    keep: bool = False,
) -> Iterator[str]:
    """:func:`fresh_database` for the ``with`` block; discarded after, unless ``keep``."""
    url = fresh_database(backend, directory, prefix=prefix, admin_url=admin_url)
    try:
        yield url
    finally:
        if not keep:
            discard_database(url, admin_url=admin_url)


# -- live servers ----------------------------------------------------------------------------


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on (at the time of asking)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def capex_serve(workers: int) -> Callable[[int], list[str]]:
    """The command ``capex serve --workers N`` on a given port."""

    def command(port: int) -> list[str]:
        serve = [sys.executable, "-m", "capex.cli", "serve"]
        return [*serve, "--port", str(port), "--workers", str(workers)]

    return command


@dataclass(frozen=True, slots=True)
class LiveServer:
    """A server process that answers: its base URL and its process id."""

    base: str
    pid: int


# The servers are local: never through a proxy that the environment names.
_DIRECT = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def answers(url: str, timeout: float = 1.0) -> bool:
    """Whether a GET of ``url`` answers 200 now."""
    try:
        with _DIRECT.open(url, timeout=timeout) as response:
            return int(response.status) == 200
    except (OSError, http.client.HTTPException):  # refused, reset, timed out, 503, ...
        return False


@contextmanager
def live_server(
    database_url: str,
    *,
    workers: int = 1,
    command: Callable[[int], Sequence[str]] | None = None,
    env: Mapping[str, str] | None = None,
    log: Path | None = None,
    ready_path: str = "/readyz",
    start_timeout: float = 60.0,
    cwd: Path | None = None,
) -> Iterator[LiveServer]:
    """Serve ``database_url`` on a free port until ``ready_path`` answers 200; stop it after.

    ``command`` gives the argument list for a port (by default ``capex serve --workers
    N``); ``env`` adds to (or overrides) this process's environment; the server's output goes
    to ``log``, or nowhere.
    """
    port = free_port()
    environment = {**os.environ, "CAPEX_DATABASE_URL": database_url, **(env or {})}
    arguments = [str(part) for part in (command or capex_serve(workers))(port)]
    base = f"http://127.0.0.1:{port}"

    def failure(what: str) -> RuntimeError:
        tail = log.read_text(errors="replace")[-2000:] if log else ""
        return RuntimeError(f"{' '.join(arguments)} {what}:\n{tail}")

    with log.open("wb") if log else open(os.devnull, "wb") as output:
        process = subprocess.Popen(
            arguments, env=environment, cwd=cwd, stdout=output, stderr=subprocess.STDOUT
        )
    try:
        deadline = time.monotonic() + start_timeout
        while not answers(f"{base}{ready_path}"):
            if process.poll() is not None:
                raise failure(f"exited with status {process.returncode}")
            if time.monotonic() > deadline:
                raise failure(f"did not answer {ready_path} within {start_timeout:.0f} s")
            time.sleep(0.2)
        yield LiveServer(base, process.pid)
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


# -- costly request bodies -------------------------------------------------------------------

# Just under the default byte limit of a request body (1 MiB).
UNDER_BODY_LIMIT = 1024 * 1024 - 64


def wide_object(size: int = UNDER_BODY_LIMIT) -> bytes:
    """A JSON object of about ``size`` bytes of tiny members (``"k0":0,...``)."""
    members, length, index = [], 2, 0
    while length < size:
        member = f'"k{index}":0'
        members.append(member)
        length += len(member) + 1
        index += 1
    return ("{" + ",".join(members) + "}").encode()


def registration(password: str) -> bytes:
    """A registration body whose ``password`` is the JSON text given (an array, say)."""
    return ('{"username":"abc","email":"a@example.org","password":' + password + "}").encode()
