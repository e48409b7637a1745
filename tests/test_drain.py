"""SIGTERM drains: every request that reached the server is answered, then the process exits.

Clients keep kept-alive HTTP/1.1 connections busy with reads and writes while the test sends
SIGTERM to ``capex serve``. A request may find the listener gone (a refused connection: a
client retries it elsewhere), but no request that was sent may go unanswered.
"""

from __future__ import annotations

import http.client
import itertools
import json
import os
import re
import signal
import socket
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from sqlalchemy import select

from capex.db import make_engine
from capex.models import Volunteer
from capex.serving import EXIT_MARGIN_SECONDS, stop_queueing
from capex.testing import answers, capex_serve, free_port, throwaway_database
from tests.live import PASSWORD, TEST_ENVIRONMENT

pytestmark = pytest.mark.slow

GRACE_SECONDS = 10
CLIENTS = 4
# A connection to a listener that no longer takes new ones may wait for the kernel's SYN
# retransmission (about 1 s, then 3 s) before it is refused.
CONNECT_TIMEOUT = 15.0
PROBLEM_JSON = "application/problem+json"
# Between an answer and the next request a connection is idle, as it is between the clicks
# of a person or the calls of a proxy: the moments a server is tempted to hang up.
THINK_SECONDS = 0.02


@dataclass(frozen=True)
class Answer:
    """One request and what came back on its connection."""

    client: str
    connection: int
    method: str
    path: str
    sent_at: float
    received_at: float
    status: int | None = None  # None: no HTTP answer
    closes: bool = False  # the answer said ``Connection: close``
    worker: str | None = None
    username: str | None = None
    content_type: str | None = None
    retry_after: str | None = None
    error: str | None = None


@dataclass
class Traffic:
    """Every request the clients sent, and the connections the server refused."""

    answers: list[Answer] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    connection_ids: Iterator[int] = field(default_factory=itertools.count)

    def add(self, answer: Answer) -> None:
        with self.lock:
            self.answers.append(answer)

    def count(self, client: str) -> int:
        with self.lock:
            return sum(1 for answer in self.answers if answer.client == client)


def _requests(client: str) -> Iterator[tuple[str, str, dict[str, object] | None]]:
    """What one client asks, over and over: a search, a registration (a write), liveness."""
    for number in itertools.count():
        yield "GET", "/api/v1/skills?q=py", None
        username = f"{client}-{number}-{uuid.uuid4().hex[:6]}"
        body = {"username": username, "email": f"{username}@example.org", "password": PASSWORD}
        yield "POST", "/api/v1/auth/register", body
        yield "GET", "/healthz", None


def _exchange(
    connection: http.client.HTTPConnection,
    client: str,
    number: int,
    method: str,
    path: str,
    body: dict[str, object] | None = None,
) -> Answer:
    """Send one request on ``connection`` and read its answer, if one comes."""
    sent_at = time.monotonic()
    username = str(body["username"]) if body else None
    try:
        payload = json.dumps(body).encode() if body else None
        headers = {"Content-Type": "application/json"} if body else {}
        connection.request(method, path, body=payload, headers=headers)
        response = connection.getresponse()
        response.read()
    except (OSError, http.client.HTTPException) as error:
        return Answer(
            client,
            number,
            method,
            path,
            sent_at,
            time.monotonic(),
            username=username,
            error=f"{type(error).__name__}: {error}",
        )
    return Answer(
        client,
        number,
        method,
        path,
        sent_at,
        time.monotonic(),
        status=response.status,
        closes="close" in (response.getheader("Connection") or "").lower(),
        worker=response.getheader("X-Capex-Worker"),
        username=username,
        content_type=response.getheader("Content-Type"),
        retry_after=response.getheader("Retry-After"),
    )


def _ask(
    traffic: Traffic,
    client: str,
    port: int,
    requests: Iterator[tuple[str, str, dict[str, object] | None]],
    done: threading.Event,
) -> None:
    """Send ``requests`` on one kept-alive connection after another until one is refused."""
    while not done.is_set():
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=CONNECT_TIMEOUT)
        try:
            connection.connect()
        except OSError as error:  # refused, or no answer to the SYN in time
            with traffic.lock:
                traffic.refused.append(f"{client}: {type(error).__name__}")
            return
        number = next(traffic.connection_ids)
        try:
            for method, path, body in requests:
                answer = _exchange(connection, client, number, method, path, body)
                traffic.add(answer)
                if answer.status is None or answer.closes or done.is_set():
                    break
                time.sleep(THINK_SECONDS)
        finally:
            connection.close()


def _draining_workers(log: Path) -> set[str]:
    """The worker processes that logged the start of their drain."""
    return set(re.findall(r"Draining \[(\d+)\]", log.read_text(errors="replace")))


@contextmanager
def _serving(
    database_url: str, workers: int, log: Path, *, grace_seconds: int = GRACE_SECONDS
) -> Iterator[tuple[int, subprocess.Popen[bytes]]]:
    """``capex serve --workers N`` on a free port, ready; killed after if still running."""
    port = free_port()
    environment = {
        **os.environ,
        **TEST_ENVIRONMENT,
        "CAPEX_DATABASE_URL": database_url,
        "CAPEX_SHUTDOWN_GRACE_SECONDS": str(grace_seconds),
        # Idle connections stay open while the machine is slow (a busy test run).
        "CAPEX_KEEP_ALIVE_SECONDS": "60",
        # The start of each worker's drain is logged at INFO.
        "CAPEX_LOG_LEVEL": "INFO",
    }
    with log.open("wb") as output:
        process = subprocess.Popen(
            capex_serve(workers)(port), env=environment, stdout=output, stderr=subprocess.STDOUT
        )
    try:
        deadline = time.monotonic() + 60
        while not answers(f"http://127.0.0.1:{port}/readyz"):
            assert process.poll() is None, log.read_text()
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.2)
        yield port, process
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def _registered(database_url: str) -> set[str]:
    engine = make_engine(database_url)
    try:
        with engine.connect() as connection:
            return set(connection.scalars(select(Volunteer.username)))
    finally:
        engine.dispose()


@pytest.mark.parametrize("workers", [1, 2])
def test_sigterm_answers_every_request_then_exits(live_database, tmp_path, workers):
    log = tmp_path / "serve.log"
    traffic = Traffic()
    done = threading.Event()
    with _serving(live_database, workers, log) as (port, server):
        clients = [f"c{number}" for number in range(CLIENTS)]
        threads = [
            threading.Thread(target=_ask, args=(traffic, name, port, _requests(name), done))
            for name in clients
        ]
        for thread in threads:
            thread.start()
        lookouts: list[tuple[http.client.HTTPConnection, int]] = []
        try:
            # Every connection is warm and busy before the signal.
            deadline = time.monotonic() + 60
            while min(traffic.count(name) for name in clients) < 4:
                assert time.monotonic() < deadline, "the clients did not get going"
                time.sleep(0.05)
            # Idle kept-alive connections, to each worker (most likely), that ask /readyz
            # again once their worker drains.
            for _ in range(2 * workers):
                lookout = http.client.HTTPConnection("127.0.0.1", port, timeout=CONNECT_TIMEOUT)
                number = next(traffic.connection_ids)
                traffic.add(_exchange(lookout, "lookout", number, "GET", "/readyz"))
                lookouts.append((lookout, number))
            signalled_at = time.monotonic()
            server.send_signal(signal.SIGTERM)
            with traffic.lock:
                watched = {
                    answer.worker for answer in traffic.answers if answer.client == "lookout"
                }
            # Once their workers drain (or the server is gone: the assertions below say
            # what the lookouts got then).
            while (
                not watched <= _draining_workers(log)
                and server.poll() is None
                and time.monotonic() < signalled_at + GRACE_SECONDS
            ):
                time.sleep(0.02)
            for lookout, number in lookouts:
                traffic.add(_exchange(lookout, "lookout", number, "GET", "/readyz"))
            # The process exits by itself, cleanly, within the grace period.
            status = server.wait(timeout=GRACE_SECONDS)
        finally:
            done.set()
            for lookout, _ in lookouts:
                lookout.close()
            for thread in threads:
                thread.join(timeout=CONNECT_TIMEOUT + 5)
    tail = log.read_text(errors="replace")[-3000:]
    assert status == 0, tail

    # Every request sent got a complete HTTP answer: none was reset or left without one.
    unanswered = [answer for answer in traffic.answers if answer.status is None]
    assert unanswered == [], tail
    # Nor was one cut short by the drain (cancelled: an unexpected error).
    assert [answer for answer in traffic.answers if answer.status == 500] == [], tail

    # The server hung up only after an answer that said so: the last answer on every
    # connection, and only the last, carries ``Connection: close``.
    by_connection: dict[int, list[Answer]] = {}
    for answer in sorted(traffic.answers, key=lambda answer: answer.sent_at):
        by_connection.setdefault(answer.connection, []).append(answer)
    for connection in by_connection.values():
        *kept, last = connection
        assert last.closes, connection
        assert not any(answer.closes for answer in kept), connection
    # The test did exercise the drain: every client was still talking when the signal came.
    for name in clients:
        assert any(
            answer.client == name and answer.received_at > signalled_at
            for answer in traffic.answers
        ), name

    # /readyz said 503 (problem+json, Retry-After) once the drain began, so that a load
    # balancer stops sending, and from then on that worker's answers all said ``close``.
    draining = [
        answer
        for answer in traffic.answers
        if answer.client == "lookout" and answer.sent_at > signalled_at
    ]
    assert len(draining) == 2 * workers
    for answer in draining:
        assert answer.status == 503, answer
        assert answer.content_type == PROBLEM_JSON
        assert answer.retry_after == str(GRACE_SECONDS)
        later = [
            other
            for other in traffic.answers
            if other.worker == answer.worker and other.sent_at > answer.received_at
        ]
        assert all(other.closes for other in later), later

    # Every write the server acknowledged is in the database.
    acknowledged = {
        answer.username
        for answer in traffic.answers
        if answer.method == "POST" and answer.status == 201
    }
    assert acknowledged
    assert acknowledged <= _registered(live_database)


def test_a_listener_that_stopped_queueing_refuses_new_clients_and_keeps_queued_ones():
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        address = listener.getsockname()
        queued = socket.create_connection(address)
        queued.sendall(b"GET / HTTP/1.1\r\n\r\n")

        stop_queueing([listener])

        # A new client gets no connection (its SYN is dropped) ...
        with pytest.raises(TimeoutError):
            socket.create_connection(address, timeout=0.5).close()
        # ... while the one the kernel had queued is still accepted, and answered.
        accepted, _ = listener.accept()
        with accepted:
            assert accepted.recv(100).startswith(b"GET / ")
            accepted.sendall(b"HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n")
        assert queued.recv(100).startswith(b"HTTP/1.1 204")
        queued.close()


def test_a_request_still_running_after_the_grace_period_is_cut(tmp_path):
    """The drain waits for running requests, but not past the grace period."""
    log = tmp_path / "serve.log"
    with (
        throwaway_database("sqlite", tmp_path) as url,
        _serving(url, 1, log, grace_seconds=2) as (port, server),
        socket.create_connection(("127.0.0.1", port)) as slow,
    ):
        # A request whose body never comes: it runs until the grace period is over.
        slow.sendall(
            b"POST /api/v1/auth/register HTTP/1.1\r\nHost: capex\r\n"
            b"Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{"
        )
        time.sleep(0.5)
        server.send_signal(signal.SIGTERM)
        assert server.wait(timeout=2 + EXIT_MARGIN_SECONDS) == 0
        # Cancelled: uvicorn answers 500 and hangs up.
        answer = slow.makefile("rb").read()
        assert answer.startswith(b"HTTP/1.1 500 "), answer
        assert b"\r\nconnection: close\r\n" in answer.lower()
    assert "Cancel 1 running task(s), timeout graceful shutdown exceeded" in log.read_text()
