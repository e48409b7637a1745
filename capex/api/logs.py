"""One structured log line per request."""

from __future__ import annotations

import json
import logging
import os
import time
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

access_logger = logging.getLogger("capex.access")
_WORKER = str(os.getpid()).encode()


class AccessLogMiddleware:
    """Log method, path, status and duration of every HTTP request as one JSON line."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_and_record(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                # Which worker process answered: for operators behind several workers.
                headers = list(message.get("headers", []))
                headers.append((b"x-capex-worker", _WORKER))
                message = {**message, "headers": headers}
            await send(message)

        try:
            await self.app(scope, receive, send_and_record)
        finally:
            record: dict[str, Any] = {
                "event": "request",
                "method": scope["method"],
                "path": scope["path"],
                "status": status,
                "duration_ms": round((time.perf_counter() - started) * 1000, 2),
                "client": scope["client"][0] if scope.get("client") else None,
            }
            access_logger.info(json.dumps(record))


def configure(level: str = "INFO") -> None:
    """Send capex's logs to stderr, one line each, unless logging is already set up."""
    root = logging.getLogger("capex")
    if not root.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(message)s"))
        root.addHandler(handler)
        root.propagate = False
    root.setLevel(level.upper())
