"""How long one costly request body blocks the event loop: without the body limits and with.

For each body: a fresh SQLite database, migrated; the app from ``create_app`` in this
process; the request sent through ``httpx.ASGITransport`` while a ticker task on the same
event loop wakes every 0.5 ms. The longest gap between two ticks is the time the loop could
answer nothing else (``/healthz`` included): parsing and validating hold the GIL, so work in
a worker thread counts too. Each body is sent ``--runs`` times; the table has the least (the
machine is shared: the least is the one least disturbed by other work).

- naive: the same app with ``BodyLimitMiddleware`` taken out (what FastAPI does alone).
- naive, 422 capped: the same, with the problem document listing only the first 50
  errors (the cap another change brings to ``capex/api/problems.py``), to show what is
  left to pydantic and FastAPI.
- ours: the app as it is (and ours, 422 capped: with that cap too).

The first row is a baseline: a 1 MiB body of one string to a path that does not exist, which
every variant reads and answers 404; what it shows is what moving 1 MiB through the
in-process client and server costs the loop, with nothing parsed. The 12 MB body of the
report is sent once per variant (the naive app takes half a minute over it).

    .venv/bin/python bench/body_limits.py [--runs 3] [--no-report-body]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from unittest import mock

import httpx
from fastapi import FastAPI

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from capex import migrate  # noqa: E402
from capex.api import problems  # noqa: E402
from capex.api.app import create_app  # noqa: E402
from capex.api.middleware import BodyLimitMiddleware  # noqa: E402
from capex.config import Settings  # noqa: E402
from capex.db import make_engine, make_session_factory  # noqa: E402
from capex.testing import registration, wide_object  # noqa: E402

MiB = 1024 * 1024
JSON = "application/json"
FORM = "application/x-www-form-urlencoded"


BODIES: list[tuple[str, str, str, Callable[[], bytes]]] = [
    (
        "baseline: one 1 MiB string, no route",
        "/nowhere",
        JSON,
        lambda: json.dumps({"text": "x" * (MiB - 64)}).encode(),
    ),
    ("object of 95k keys (1 MiB)", "/api/v1/auth/register", JSON, lambda: wide_object(MiB - 64)),
    (
        "array of 500k numbers (1 MiB)",
        "/api/v1/auth/register",
        JSON,
        lambda: registration("[" + "0," * ((MiB - 80) // 2) + "0]"),
    ),
    (
        "array of 350k strings (1 MiB)",
        "/api/v1/auth/register",
        JSON,
        lambda: registration("[" + '"",' * ((MiB - 80) // 3) + '""]'),
    ),
    ("nesting 500k deep (1 MiB)", "/api/v1/auth/register", JSON, lambda: b"[" * (MiB // 2)),
    (
        "form field of 350k %41 (1 MiB)",
        "/api/v1/auth/token",
        FORM,
        lambda: b"grant_type=password&password=x&username=" + b"%41" * ((MiB - 64) // 3),
    ),
    (
        "object of 1200 keys (largest accepted)",
        "/api/v1/auth/register",
        JSON,
        lambda: json.dumps({f"k{i}": "x" * 600 for i in range(1199)}).encode(),
    ),
]
REPORT_BODY = (
    "the report's 1M keys (12 MB)",
    "/api/v1/auth/register",
    JSON,
    lambda: wide_object(12 * MiB),
)


def _naive(app: FastAPI) -> FastAPI:
    app.user_middleware = [m for m in app.user_middleware if m.cls is not BodyLimitMiddleware]
    return app


@contextmanager
def _capped_422() -> Iterator[None]:
    full = problems.validation_errors
    with mock.patch.object(problems, "validation_errors", lambda errors: full(errors[:50])):
        yield


async def _blocked_ms(app: FastAPI, path: str, content_type: str, body: bytes) -> tuple[float, int]:
    gaps: list[float] = []
    running = True

    async def ticker() -> None:
        last = time.perf_counter()
        while running:
            await asyncio.sleep(0.0005)
            now = time.perf_counter()
            gaps.append(now - last)
            last = now

    task = asyncio.create_task(ticker())
    await asyncio.sleep(0.01)
    gaps.clear()
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://bench") as client:
        response = await client.post(path, content=body, headers={"content-type": content_type})
    await asyncio.sleep(0.002)
    running = False
    await task
    return max(gaps) * 1000, response.status_code


def run(runs: int, with_report_body: bool) -> None:
    directory = Path(tempfile.mkdtemp(prefix="capex-bench-body-"))
    url = f"sqlite:///{directory / 'bench.db'}"
    migrate.upgrade(url)
    settings = Settings(
        environment="test",
        database_url=url,
        secret_key="bench-secret-key-0123456789abcdef0123456789",
        log_level="WARNING",
        warm_matching_index=False,
        periodic_tasks=False,
    )
    factory = make_session_factory(make_engine(url))
    variants: list[tuple[str, Callable[[], FastAPI], bool]] = [
        ("naive", lambda: _naive(create_app(settings, factory)), False),
        ("naive, 422 capped", lambda: _naive(create_app(settings, factory)), True),
        ("ours", lambda: create_app(settings, factory), False),
        ("ours, 422 capped", lambda: create_app(settings, factory), True),
    ]
    bodies = BODIES + ([REPORT_BODY] if with_report_body else [])

    async def measure_all() -> list[list[str]]:
        rows = []
        for name, path, content_type, build in bodies:
            body = build()
            repeat = 1 if len(body) > MiB else runs
            row = [name]
            for _, make_app, capped in variants:
                app = make_app()
                with _capped_422() if capped else contextlib_null():
                    async with app.router.lifespan_context(app):
                        results = [
                            await _blocked_ms(app, path, content_type, body) for _ in range(repeat)
                        ]
                blocked = min(ms for ms, _ in results)
                row.append(f"{blocked:.1f} ({results[0][1]})")
            rows.append(row)
            print(" | ".join(row), file=sys.stderr, flush=True)
        return rows

    rows = asyncio.run(measure_all())
    print("| body | " + " | ".join(f"{name}: ms (status)" for name, _, _ in variants) + " |")
    print("|---|" + "---:|" * len(variants))
    for row in rows:
        print("| " + " | ".join(row) + " |")


@contextmanager
def contextlib_null() -> Iterator[None]:
    yield


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--no-report-body", action="store_true", help="skip the 12 MB body")
    arguments = parser.parse_args()
    run(arguments.runs, not arguments.no_report_body)


if __name__ == "__main__":
    main()
