"""The mixed load of ``bench/load.py`` and ``bench/faults.py``, as locust users.

Run by those scripts as ``locust -f bench/locustfile.py --headless ...`` in a subprocess (locust
is gevent-based; the scripts that manage servers and databases stay out of gevent). What
they pass, in the environment:

- ``CAPEX_LOAD_CAST``: a JSON file, a list of demo volunteers, one per locust user:
  ``{username, id, wants, languages, fellow_id}``; ``fellow_id`` is another volunteer of the
  cast who is among this one's matches as a learner, so that requests reach a mentor who is
  also a client and gets accepted and completed.
- ``CAPEX_LOAD_PASSWORD``: the demo password.
- ``CAPEX_LOAD_JOURNAL``: a file to append one JSON line per request to: ``{t0, t1, name,
  path, user, status, error, retry_after, worker, exchange, state}``, times from ``time.time()``;
  ``status`` 0 with ``error`` (``reset``, ``refused``, ``closed``, ``timeout`` or the
  exception's text) when no HTTP answer came; ``exchange`` and ``state`` for an answered
  write. The scripts count statuses, transport errors and acknowledged writes from it.

Each user signs in once, then, with no think time, browses the directory (a filtered page,
sometimes the next one), asks for matches as learner and as mentor, requests a mentor from
its matches (the fellow when listed, else one of the first five, never one it has an open
exchange with; with an ``Idempotency-Key`` that a retry after no answer or a 5xx reuses),
or instead withdraws its oldest waiting request to someone else when it has three; as a
mentor it accepts the oldest request it received and completes its oldest accepted
exchange; and now and then it signs in again. Every answer other than 2xx is reported to
locust as a failure named ``HTTP <status>`` (``HTTP 503 Retry-After`` when the header came),
and every transport error as ``transport <kind>``; no request is retried by the client.
"""

from __future__ import annotations

import itertools
import json
import os
import random
import threading
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import geventhttpclient.client
from locust import FastHttpUser, constant, task

# geventhttpclient silently sends an idempotent request (a GET) again when its kept-alive
# connection turns out closed or reset; that would hide from the counts exactly what
# bench/faults.py looks for. Every request here is sent once.
geventhttpclient.client._may_retry_after_send_error = lambda method: False

API = "/api/v1"
CAST: list[dict[str, Any]] = json.loads(Path(os.environ["CAPEX_LOAD_CAST"]).read_text())
PASSWORD = os.environ.get("CAPEX_LOAD_PASSWORD", "capex-demo-2026")
# Open for the life of the locust process: one line per request, flushed at each line.
_JOURNAL = open(os.environ["CAPEX_LOAD_JOURNAL"], "a", buffering=1)  # noqa: SIM115
_NEXT_MEMBER = itertools.count()
# Spread the users' kept-alive connections evenly over this many server workers (0: leave
# them where the kernel put them). uvicorn's workers share one listening socket and an event
# loop accepts every pending connection at once, so connections made together mostly land
# on one worker; a balancing proxy would spread them.
SPREAD_WORKERS = int(os.environ.get("CAPEX_LOAD_SPREAD_WORKERS", "0"))
SPREAD_ATTEMPTS = 50
_CONNECTIONS_PER_WORKER: Counter[str] = Counter()
_JOURNAL_LOCK = threading.Lock()


def transport_kind(error: BaseException | str | None) -> str:
    """A transport error's kind: reset, refused, closed (no answer), timeout, or its text."""
    text = repr(error)
    lowered = text.lower()
    if "reset" in lowered or "errno 104" in lowered or "brokenpipe" in lowered:
        return "reset"
    if "refused" in lowered or "errno 111" in lowered:
        return "refused"
    if "timeout" in lowered or "timed out" in lowered:
        return "timeout"
    if any(
        word in lowered
        for word in ("closed", "remotedisconnected", "eof", "badstatusline", "incomplete")
    ):
        return "closed"
    return text[:120]


class Volunteer(FastHttpUser):
    """One demo volunteer, as learner and as mentor."""

    wait_time = constant(0)
    # One connection per user, kept alive, as a browser or an app would.
    concurrency = 1
    connection_timeout = 30.0
    network_timeout = 30.0

    def on_start(self) -> None:
        self.me = CAST[next(_NEXT_MEMBER) % len(CAST)]
        self.token: str | None = None
        # A request that got no answer, or a 5xx: retried with the same key.
        self.pending: tuple[int, str, str] | None = None
        self.spread()
        while self.token is None:
            self.sign_in()

    # -- plumbing ---------------------------------------------------------------------------

    def call(
        self,
        method: str,
        path: str,
        name: str,
        *,
        body: Any = None,
        form: dict[str, str] | None = None,
        headers: dict[str, str] | None = None,
    ) -> tuple[int, Any]:
        """One request; its outcome journaled and reported; the status (0: no answer) and the
        decoded JSON body of a 2xx (else None)."""
        all_headers = dict(headers or {})
        if self.token and form is None:
            all_headers["Authorization"] = f"Bearer {self.token}"
        data: str | None = None
        if form is not None:
            data = urlencode(form)
            all_headers["Content-Type"] = "application/x-www-form-urlencoded"
        elif body is not None:
            data = json.dumps(body)
            all_headers["Content-Type"] = "application/json"
        started = time.time()
        payload: Any = None
        with self.client.request(
            method, API + path, name=name, data=data, headers=all_headers, catch_response=True
        ) as response:
            status = int(response.status_code or 0)
            worker = response.headers.get("X-Capex-Worker") if status else None
            error = None
            retry_after = False
            if status == 0:
                error = transport_kind(response.error)
                response.failure(f"transport {error}")
            elif 200 <= status < 300:
                try:
                    payload = response.json() if response.text else None
                except ValueError:
                    payload = None
                response.success()
            else:
                retry_after = bool(response.headers.get("Retry-After"))
                response.failure(f"HTTP {status}" + (" Retry-After" if retry_after else ""))
        ended = time.time()
        record: dict[str, Any] = {
            "t0": started,
            "t1": ended,
            "name": name,
            "path": path,
            "user": self.me["username"],
            "status": status,
            "error": error,
            "retry_after": retry_after,
            "worker": worker,
        }
        if isinstance(payload, dict) and "state" in payload and "id" in payload:
            record["exchange"] = payload["id"]
            record["state"] = payload["state"]
        with _JOURNAL_LOCK:
            _JOURNAL.write(json.dumps(record) + "\n")
        return status, payload

    def spread(self) -> None:
        """Keep a connection to a worker holding fewer than its share of the users' ones."""
        if SPREAD_WORKERS < 2:
            return
        share = -(-self.environment.runner.target_user_count // SPREAD_WORKERS)
        worker = None
        for _ in range(SPREAD_ATTEMPTS):
            response = self.client.get("/healthz", name="GET /healthz (spreading connections)")
            worker = response.headers.get("X-Capex-Worker") if response.status_code else None
            if worker is not None and _CONNECTIONS_PER_WORKER[worker] < share:
                break
            # Full: drop this connection; the next request makes a new one.
            self.client.client.clientpool.close()
        if worker is not None:
            _CONNECTIONS_PER_WORKER[worker] += 1

    def sign_in(self) -> None:
        """A new token; the one held so far is kept when no new one comes."""
        form = {"username": self.me["username"], "password": PASSWORD}
        status, payload = self.call("POST", "/auth/token", "POST /auth/token", form=form)
        if status == 200 and isinstance(payload, dict) and payload.get("access_token"):
            self.token = payload["access_token"]
        elif self.token is None:
            time.sleep(0.5)

    # -- the tasks --------------------------------------------------------------------------

    @task(1)
    def sign_in_again(self) -> None:
        self.sign_in()

    @task(5)
    def browse_directory(self) -> None:
        filters: dict[str, str] = {"limit": "20"}
        if self.me["wants"]:
            filters["offers"] = random.choice(self.me["wants"])
        if self.me["languages"] and random.random() < 0.7:
            filters["language"] = random.choice(self.me["languages"])
        status, page = self.call(
            "GET", f"/volunteers?{urlencode(filters)}", "GET /volunteers?offers=&language="
        )
        if status == 200 and page.get("next_cursor") and random.random() < 0.5:
            filters["cursor"] = page["next_cursor"]
            self.call("GET", f"/volunteers?{urlencode(filters)}", "GET /volunteers (next page)")

    @task(3)
    def matches_as_learner(self) -> None:
        self.call("GET", "/me/matches?as=learner", "GET /me/matches?as=learner")

    @task(2)
    def matches_as_mentor(self) -> None:
        self.call("GET", "/me/matches?as=mentor", "GET /me/matches?as=mentor")

    @task(4)
    def request_a_mentor(self) -> None:
        if self.pending is None:
            status, found = self.call(
                "GET", "/me/matches?as=learner&limit=20", "GET /me/matches?as=learner"
            )
            if status != 200 or not found["items"]:
                return
            status, mine = self.call(
                "GET", "/exchanges?as=learner&limit=20", "GET /exchanges?as=learner"
            )
            if status != 200:
                return
            waiting = [e for e in mine["items"] if e["state"] == "requested"]
            others = [e for e in waiting if e["mentor"]["id"] != self.me["fellow_id"]]
            if len(waiting) >= 3 and others:
                # Withdraw the oldest waiting request to someone else (newest first).
                self.call(
                    "POST", f"/exchanges/{others[-1]['id']}/cancel", "POST /exchanges/{id}/cancel"
                )
                return
            busy = {
                (e["mentor"]["id"], e["skill"])
                for e in mine["items"]
                if e["state"] in ("requested", "accepted")
            }
            items = [m for m in found["items"] if (m["volunteer"]["id"], m["skill"]) not in busy]
            if not items:
                return
            fellow = [m for m in items if m["volunteer"]["id"] == self.me["fellow_id"]]
            chosen = fellow[0] if fellow and random.random() < 0.8 else random.choice(items[:5])
            self.pending = (chosen["volunteer"]["id"], chosen["skill"], str(uuid.uuid4()))
        mentor_id, skill, key = self.pending
        status, _ = self.call(
            "POST",
            "/exchanges",
            "POST /exchanges",
            body={"mentor_id": mentor_id, "skill": skill},
            headers={"Idempotency-Key": key},
        )
        if status and status < 500:
            self.pending = None  # answered: done, or refused for good (409, 422)

    @task(3)
    def accept_a_request(self) -> None:
        status, page = self.call(
            "GET",
            "/exchanges?as=mentor&state=requested&limit=20",
            "GET /exchanges?as=mentor&state=requested",
        )
        if status == 200 and page["items"]:
            oldest = page["items"][-1]
            self.call("POST", f"/exchanges/{oldest['id']}/accept", "POST /exchanges/{id}/accept")

    @task(2)
    def complete_an_exchange(self) -> None:
        status, page = self.call(
            "GET",
            "/exchanges?as=mentor&state=accepted&limit=20",
            "GET /exchanges?as=mentor&state=accepted",
        )
        if status == 200 and page["items"]:
            oldest = page["items"][-1]
            self.call(
                "POST", f"/exchanges/{oldest['id']}/complete", "POST /exchanges/{id}/complete"
            )
