"""The HTTP layer against a real ``capex serve``: body limits, forwarded headers."""

from __future__ import annotations

import socket
import threading
from urllib.parse import urlsplit

import httpx
import pytest

from capex.testing import discard_database, fresh_database, wide_object
from tests.live import live_server
from tests.test_http_layer import deep_nesting, long_array

pytestmark = pytest.mark.slow

TOKEN = "/api/v1/auth/token"
REGISTER = "/api/v1/auth/register"


def _read_response(sock: socket.socket) -> bytes:
    received = b""
    while chunk := sock.recv(65536):
        received += chunk
    return received


def test_health_answers_while_a_worst_case_body_is_handled(tmp_path):
    worst = wide_object()
    database = fresh_database("sqlite", tmp_path)
    try:
        with live_server(database, workers=1, log=tmp_path / "serve.log") as base:
            address = urlsplit(base)
            with socket.create_connection((address.hostname, address.port)) as big:
                head = (
                    f"POST {REGISTER} HTTP/1.1\r\nHost: {address.netloc}\r\n"
                    f"Content-Type: application/json\r\nContent-Length: {len(worst)}\r\n\r\n"
                )
                big.sendall(head.encode() + worst[:-1])
                # The worst body under the byte limit is in the server, all but one byte.
                assert httpx.get(f"{base}/healthz", timeout=30).status_code == 200
                big.sendall(worst[-1:])
                answer = _read_response(big)
            assert answer.startswith(b"HTTP/1.1 413 ")
            assert b"application/problem+json" in answer
            assert b"more than 1200 members" in answer

            # The same again with bodies one after another while health is asked. The
            # bodies start once health has answered once, so that the health requests
            # issued while they are sent are counted, however fast the server refuses them.
            outcomes: list[int] = []
            health: list[tuple[bool, int]] = []  # (asked while bodies were sent, status)
            started, done = threading.Event(), threading.Event()
            bodies = [worst, long_array(), deep_nesting()] * 4

            def send_worst_bodies() -> None:
                started.wait(30)
                with httpx.Client(base_url=base, timeout=60) as client:
                    for body in bodies:
                        response = client.post(
                            REGISTER, content=body, headers={"content-type": "application/json"}
                        )
                        outcomes.append(response.status_code)
                done.set()

            sender = threading.Thread(target=send_worst_bodies)
            sender.start()
            with httpx.Client(base_url=base, timeout=60) as client:
                while not done.is_set():
                    during = started.is_set()
                    health.append((during, client.get("/healthz").status_code))
                    started.set()
            sender.join()
            assert outcomes == [413] * len(bodies)
            assert any(during for during, _ in health), "no health request met the bodies"
            assert {status for _, status in health} == {200}
    finally:
        discard_database(database)


def _fail_sign_ins(client: httpx.Client, forwarded_for: list[str]) -> list[int]:
    return [
        client.post(
            TOKEN,
            data={"username": f"guess{index}", "password": "wrong password"},
            headers={"X-Forwarded-For": address},
        ).status_code
        for index, address in enumerate(forwarded_for)
    ]


def test_forwarded_for_from_loopback_does_not_dodge_the_address_throttle(live_database, tmp_path):
    with (
        live_server(live_database, workers=1, log=tmp_path / "serve.log") as base,
        httpx.Client(base_url=base, timeout=30) as client,
    ):
        statuses = _fail_sign_ins(client, [f"203.0.113.{n}" for n in range(21)])
    assert statuses[:20] == [401] * 20
    assert statuses[20] == 429


def test_forwarded_for_from_a_trusted_proxy_names_the_client(live_database, tmp_path):
    env = {"CAPEX_TRUSTED_PROXIES": "127.0.0.1"}
    with (
        live_server(live_database, workers=1, log=tmp_path / "serve.log", env=env) as base,
        httpx.Client(base_url=base, timeout=30) as client,
    ):
        one_address = _fail_sign_ins(client, ["203.0.113.7"] * 21)
        another = _fail_sign_ins(client, ["198.51.100.9"])
    assert one_address[:20] == [401] * 20
    assert one_address[20] == 429
    assert another == [401]
