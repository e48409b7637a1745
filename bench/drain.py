"""What clients get when `capex serve` receives SIGTERM under load (issue 13, item 4).

Clients keep kept-alive HTTP/1.1 connections busy (searches, liveness checks, and for one
client in four registrations, with a short pause between answers, over and over, reconnecting after
an answer that says ``Connection: close``) while the server receives SIGTERM; each stops
when a new connection is refused. Printed per database and number of workers: what
requests got after the signal (answered, or failed, after it), the registrations
acknowledged but missing from the database, and how long the server took to exit, with
what status.

    .venv/bin/python bench/drain.py --databases sqlite,postgresql --workers 1,2 --clients 16

``--source DIR`` serves the capex of another checkout (say the main branch before the drain)
with this one's client, for a comparison.
"""

from __future__ import annotations

import argparse
import http.client
import itertools
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from pathlib import Path

from sqlalchemy import create_engine, text

from capex.testing import answers, capex_serve, free_port, throwaway_database

PASSWORD = "a long enough password"
THINK_SECONDS = 0.02


def _requests(writer: bool) -> itertools.cycle[tuple[str, str, bool]]:
    """Searches and liveness checks; a writer registers an account after each pair."""
    reads = [("GET", "/api/v1/skills?q=py", False), ("GET", "/healthz", False)]
    return itertools.cycle([*reads, ("POST", "/api/v1/auth/register", True)] if writer else reads)


class Tally:
    """What requests got after the signal, counted; the acknowledged usernames."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.after_signal: Counter[str] = Counter()
        self.acknowledged: set[str] = set()
        self.signalled_at: float | None = None

    def count(self, outcome: str) -> None:
        """Count ``outcome`` if it came after the signal."""
        with self.lock:
            if self.signalled_at is not None and time.monotonic() >= self.signalled_at:
                self.after_signal[outcome] += 1


def _client(number: int, port: int, tally: Tally, stop: threading.Event) -> None:
    # One client in four writes: a registration costs a few hundred ms of Argon2.
    requests = _requests(writer=number % 4 == 0)
    while not stop.is_set():
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        try:
            connection.connect()
        except OSError:
            tally.count("new connection refused")
            return
        try:
            for method, path, writes in requests:
                username = f"b{number}-{uuid.uuid4().hex[:10]}"
                body = {
                    "username": username,
                    "email": f"{username}@example.org",
                    "password": PASSWORD,
                }
                try:
                    connection.request(
                        method,
                        path,
                        body=json.dumps(body).encode() if writes else None,
                        headers={"Content-Type": "application/json"} if writes else {},
                    )
                    response = connection.getresponse()
                    response.read()
                except (OSError, http.client.HTTPException) as error:
                    tally.count(f"no answer: {type(error).__name__}")
                    break
                closes = "close" in (response.getheader("Connection") or "").lower()
                if writes and response.status == 201:
                    with tally.lock:
                        tally.acknowledged.add(username)
                outcome = f"{response.status}" + (" + Connection: close" if closes else "")
                tally.count(outcome)
                if closes:
                    break
                time.sleep(THINK_SECONDS)
        finally:
            connection.close()


def run(backend: str, workers: int, clients: int, seconds: float, source: Path | None) -> None:
    with (
        tempfile.TemporaryDirectory() as directory,
        throwaway_database(backend, Path(directory), prefix="capex_bench_drain") as url,
    ):
        port = free_port()
        environment = {
            **os.environ,
            "CAPEX_DATABASE_URL": url,
            "CAPEX_ENVIRONMENT": "test",
            "CAPEX_SECRET_KEY": "bench-drain-secret-key-0123456789abcdef",
            "CAPEX_LOG_LEVEL": "WARNING",
        }
        if source is not None:
            environment["PYTHONPATH"] = str(source)
        log = Path(directory) / "serve.log"
        with log.open("wb") as output:
            server = subprocess.Popen(
                capex_serve(workers)(port),
                env=environment,
                stdout=output,
                stderr=subprocess.STDOUT,
                cwd=source,
            )
        try:
            while not answers(f"http://127.0.0.1:{port}/readyz"):
                if server.poll() is not None:
                    sys.exit(log.read_text())
                time.sleep(0.2)
            tally, stop = Tally(), threading.Event()
            threads = [
                threading.Thread(target=_client, args=(number, port, tally, stop))
                for number in range(clients)
            ]
            for thread in threads:
                thread.start()
            time.sleep(seconds)
            tally.signalled_at = time.monotonic()
            server.send_signal(signal.SIGTERM)
            try:
                status: int | str = server.wait(timeout=60)
            except subprocess.TimeoutExpired:
                status = "still running after 60 s"
            exited_after = time.monotonic() - tally.signalled_at
            stop.set()
            for thread in threads:
                thread.join()
        finally:
            if server.poll() is None:
                server.kill()
                server.wait()
        engine = create_engine(url)
        try:
            with engine.connect() as connection:
                stored = set(connection.scalars(text("SELECT username FROM volunteers")))
        finally:
            engine.dispose()
    missing = len(tally.acknowledged - stored)
    print(
        f"\n{backend}, {workers} worker(s), {clients} clients: exit status {status} "
        f"{exited_after:.1f} s after SIGTERM; acknowledged registrations missing: {missing} "
        f"of {len(tally.acknowledged)}"
    )
    print("| after SIGTERM, a request got | count |\n|---|---:|")
    for outcome, count in sorted(tally.after_signal.items()):
        print(f"| {outcome} | {count} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--databases", default="sqlite,postgresql")
    parser.add_argument("--workers", default="1,2")
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=3.0, help="load before the signal")
    parser.add_argument("--source", type=Path, help="serve the capex of this checkout")
    arguments = parser.parse_args()
    for backend in arguments.databases.split(","):
        for workers in (int(number) for number in arguments.workers.split(",")):
            run(backend, workers, arguments.clients, arguments.seconds, arguments.source)


if __name__ == "__main__":
    main()
