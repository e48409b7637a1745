"""Notifications by email, against a real SMTP server (aiosmtpd on 127.0.0.1), not a mock.

A mail failure must never lose the state change: the exchange's transition commits with its
notification, and the outbox is sent afterwards in transactions of its own.
"""

from __future__ import annotations

import email
import email.policy
import shutil
import ssl
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from email.message import EmailMessage
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from fastapi.testclient import TestClient
from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from capex.api.app import create_app
from capex.config import Settings
from capex.models import Exchange, Notification
from capex.models.base import utcnow
from capex.services import maintenance
from capex.services.notifications import MAX_MAIL_ATTEMPTS, deliver_pending, notify
from capex.testing import discard_database, free_port, fresh_database
from tests.factories import auth_headers, make_volunteer
from tests.live import live_server, register

EXCHANGES = "/api/v1/exchanges"


class Mailbox:
    """An aiosmtpd handler that keeps what it accepts; it can refuse DATA or addresses."""

    def __init__(self) -> None:
        self.envelopes: list[Any] = []
        self.refuse_data: str | None = None
        self.refused_addresses: set[str] = set()

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options) -> str:
        if address in self.refused_addresses:
            return "550 5.1.1 no such mailbox"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope) -> str:
        if self.refuse_data is not None:
            return self.refuse_data
        self.envelopes.append(envelope)
        return "250 OK"

    @property
    def messages(self) -> list[EmailMessage]:
        return [
            email.message_from_bytes(envelope.original_content, policy=email.policy.default)
            for envelope in self.envelopes
        ]

    def received_by(self, address: str) -> list[EmailMessage]:
        return [message for message in self.messages if message["To"] == address]


@contextmanager
def smtp_server(port: int, mailbox: Mailbox, **options: Any) -> Iterator[Mailbox]:
    """A real SMTP server on 127.0.0.1:``port`` until the block ends."""
    controller = Controller(mailbox, hostname="127.0.0.1", port=port, **options)
    controller.start()
    try:
        yield mailbox
    finally:
        controller.stop()


@pytest.fixture
def smtp_port() -> int:
    return free_port()


@pytest.fixture
def mailbox(smtp_port: int) -> Iterator[Mailbox]:
    with smtp_server(smtp_port, Mailbox()) as running:
        yield running


@pytest.fixture
def mail_settings(settings: Settings, smtp_port: int) -> Settings:
    return settings.model_copy(update={"smtp_url": f"smtp://127.0.0.1:{smtp_port}"})


def _client(settings: Settings, session_factory: sessionmaker[Session]) -> TestClient:
    return TestClient(create_app(settings, session_factory), raise_server_exceptions=False)


@pytest.fixture
def mail_client(
    mail_settings: Settings, session_factory: sessionmaker[Session]
) -> Iterator[TestClient]:
    with _client(mail_settings, session_factory) as client:
        yield client


@pytest.fixture
def people(session: Session, settings: Settings) -> dict[str, Any]:
    mentor = make_volunteer(
        session, "mentor", offers=[{"skill": "lua", "level": 4}, {"skill": "sparql", "level": 4}]
    )
    learner = make_volunteer(session, "learner")
    return {
        "mentor": mentor,
        "learner": learner,
        "mentor_headers": auth_headers(session, settings, mentor),
        "learner_headers": auth_headers(session, settings, learner),
    }


def _request(client: TestClient, people: dict[str, Any], skill: str = "lua") -> int:
    response = client.post(
        EXCHANGES,
        json={"mentor_id": people["mentor"].id, "skill": skill, "message": "teach me"},
        headers=people["learner_headers"],
    )
    assert response.status_code == 201, response.text
    return int(response.json()["id"])


def _act(client: TestClient, headers: dict[str, str], exchange_id: int, action: str, **body):
    response = client.post(
        f"{EXCHANGES}/{exchange_id}/{action}", json=body or None, headers=headers
    )
    assert response.status_code in (200, 201), response.text
    return response.json()


def _outbox(session: Session) -> list[tuple[int, str, str, int]]:
    """(volunteer, kind, email status, attempts) of every notification, oldest first."""
    rows = session.execute(
        select(
            Notification.volunteer_id,
            Notification.kind,
            Notification.email_status,
            Notification.email_attempts,
        ).order_by(Notification.id)
    )
    return [tuple(row) for row in rows]


def _state(session: Session, exchange_id: int) -> str:
    return str(session.scalar(select(Exchange.state).where(Exchange.id == exchange_id)))


def test_a_request_mails_the_mentor_once(
    mail_client, mail_settings, session, session_factory, people, mailbox
):
    mentor = people["mentor"]
    exchange_id = _request(mail_client, people)

    assert _outbox(session) == [(mentor.id, "exchange_requested", "pending", 0)]
    assert mailbox.envelopes == []  # nothing leaves inside the request

    assert deliver_pending(session_factory, mail_settings) == 1
    [envelope] = mailbox.envelopes
    assert envelope.rcpt_tos == [mentor.email]
    assert envelope.mail_from == "noreply@capex.invalid"
    [message] = mailbox.messages
    assert message["From"] == mail_settings.mail_from
    assert message["To"] == mentor.email
    assert message["Subject"] == "capex: exchange requested"
    text = session.scalar(select(Notification.text))
    assert text in message.get_content()
    assert f"#{exchange_id}" in message.get_content()
    assert _outbox(session) == [(mentor.id, "exchange_requested", "sent", 0)]

    assert deliver_pending(session_factory, mail_settings) == 0
    assert len(mailbox.envelopes) == 1


def test_every_kind_of_notification_mails_the_right_person(
    mail_client, mail_settings, session, session_factory, people, mailbox
):
    mentor, learner = people["mentor"], people["learner"]
    as_mentor, as_learner = people["mentor_headers"], people["learner_headers"]
    accepted = _request(mail_client, people, "lua")
    declined = _request(mail_client, people, "sparql")
    _act(mail_client, as_mentor, accepted, "accept")
    _act(mail_client, as_mentor, declined, "decline", reason="away until June")
    _act(mail_client, as_learner, accepted, "complete")
    _act(mail_client, as_learner, accepted, "feedback", rating=5, comment="great")
    cancelled = _request(mail_client, people, "sparql")
    _act(mail_client, as_mentor, cancelled, "cancel", reason="double booked")
    expired = _request(mail_client, people, "sparql")
    # Backdate the request, then let the periodic task expire it (it notifies both sides).
    session.execute(
        update(Exchange)
        .where(Exchange.id == expired)
        .values(created_at=utcnow() - timedelta(days=mail_settings.request_ttl_days + 1))
    )
    session.commit()
    assert maintenance.expire_requests(session_factory, mail_settings) == 1

    assert deliver_pending(session_factory, mail_settings) == 11

    def subjects(address: str) -> list[str]:
        return sorted(str(message["Subject"]) for message in mailbox.received_by(address))

    assert subjects(mentor.email) == [
        "capex: exchange completed",
        "capex: exchange expired",
        "capex: exchange requested",
        "capex: exchange requested",
        "capex: exchange requested",
        "capex: exchange requested",
        "capex: feedback received",
    ]
    assert subjects(learner.email) == [
        "capex: exchange accepted",
        "capex: exchange cancelled",
        "capex: exchange declined",
        "capex: exchange expired",
    ]
    bodies = {
        str(message["Subject"]): message.get_content()
        for message in mailbox.messages
        if message["Subject"] != "capex: exchange requested"
    }
    assert "away until June" in bodies["capex: exchange declined"]
    assert "double booked" in bodies["capex: exchange cancelled"]
    assert f"rated exchange #{accepted} 5 of 5" in bodies["capex: feedback received"]
    assert f"#{expired}" in bodies["capex: exchange expired"]
    assert {status for _, _, status, _ in _outbox(session)} == {"sent"}


def test_mail_server_down_keeps_the_transition_and_retries(
    mail_settings, session, session_factory, people, smtp_port
):
    # Nothing listens on smtp_port (no mailbox fixture): every connection is refused.
    mentor, learner = people["mentor"], people["learner"]
    with _client(mail_settings, session_factory) as client:
        exchange_id = _request(client, people)
        assert _act(client, people["mentor_headers"], exchange_id, "accept")["state"] == "accepted"
    assert _state(session, exchange_id) == "accepted"

    for attempt in range(1, MAX_MAIL_ATTEMPTS):
        assert deliver_pending(session_factory, mail_settings) == 0
        assert _outbox(session) == [
            (mentor.id, "exchange_requested", "pending", attempt),
            (learner.id, "exchange_accepted", "pending", attempt),
        ]
    assert _state(session, exchange_id) == "accepted"

    with smtp_server(smtp_port, Mailbox()) as mailbox:
        assert deliver_pending(session_factory, mail_settings) == 2
    assert [message["To"] for message in mailbox.messages] == [mentor.email, learner.email]
    assert [status for _, _, status, _ in _outbox(session)] == ["sent", "sent"]


def test_mail_gives_up_after_max_attempts(
    mail_client, mail_settings, session, session_factory, people, smtp_port
):
    mentor = people["mentor"]
    _request(mail_client, people, "lua")
    for _ in range(MAX_MAIL_ATTEMPTS):
        assert deliver_pending(session_factory, mail_settings) == 0
    assert _outbox(session) == [(mentor.id, "exchange_requested", "failed", MAX_MAIL_ATTEMPTS)]

    # Back up: the failed one stays failed, a new one goes out.
    _request(mail_client, people, "sparql")
    with smtp_server(smtp_port, Mailbox()) as mailbox:
        assert deliver_pending(session_factory, mail_settings) == 1
    assert len(mailbox.envelopes) == 1
    assert [status for _, _, status, _ in _outbox(session)] == ["failed", "sent"]


def test_a_refused_message_stays_pending_until_accepted(
    mail_client, mail_settings, session, session_factory, people, mailbox
):
    mentor, learner = people["mentor"], people["learner"]
    mailbox.refuse_data = "451 4.3.0 try again later"
    exchange_id = _request(mail_client, people)
    assert _act(mail_client, people["mentor_headers"], exchange_id, "accept")["state"] == "accepted"

    assert deliver_pending(session_factory, mail_settings) == 0
    assert mailbox.envelopes == []
    assert _outbox(session) == [
        (mentor.id, "exchange_requested", "pending", 1),
        (learner.id, "exchange_accepted", "pending", 1),
    ]
    assert _state(session, exchange_id) == "accepted"

    mailbox.refuse_data = None
    assert deliver_pending(session_factory, mail_settings) == 2
    assert [status for _, _, status, _ in _outbox(session)] == ["sent", "sent"]


def test_a_refused_address_does_not_hold_back_the_others(
    mail_settings, session, session_factory, mailbox
):
    bouncing = make_volunteer(session, "bouncing")
    reachable = make_volunteer(session, "reachable")
    mailbox.refused_addresses.add(bouncing.email)
    notify(session, mail_settings, bouncing.id, "exchange_requested", "for bouncing")
    notify(session, mail_settings, reachable.id, "exchange_requested", "for reachable")
    session.commit()

    assert deliver_pending(session_factory, mail_settings) == 1
    assert [message["To"] for message in mailbox.messages] == [reachable.email]
    for _ in range(MAX_MAIL_ATTEMPTS - 1):
        assert deliver_pending(session_factory, mail_settings) == 0
    assert _outbox(session) == [
        (bouncing.id, "exchange_requested", "failed", MAX_MAIL_ATTEMPTS),
        (reachable.id, "exchange_requested", "sent", 0),
    ]


def test_without_smtp_url_nothing_is_queued(settings, session, session_factory, people, mailbox):
    no_mail = settings.model_copy(update={"smtp_url": None})
    with _client(no_mail, session_factory) as client:
        exchange_id = _request(client, people)
        _act(client, people["mentor_headers"], exchange_id, "accept")
    assert [status for _, _, status, _ in _outbox(session)] == ["none", "none"]
    assert deliver_pending(session_factory, no_mail) == 0
    assert mailbox.envelopes == []


class Logins:
    """An aiosmtpd authenticator that knows one user and records every attempt."""

    def __init__(self, user: str, password: str) -> None:
        self.user, self.password = user, password
        self.attempts: list[tuple[str, str]] = []

    def __call__(self, server, session, envelope, mechanism, auth_data) -> AuthResult:
        assert isinstance(auth_data, LoginPassword)
        login, password = auth_data.login.decode(), auth_data.password.decode()
        self.attempts.append((login, password))
        return AuthResult(success=(login, password) == (self.user, self.password), handled=False)


# Characters that must be percent-encoded in the URL and decoded before AUTH.
USER, PASSWORD = "relay@capex.test", "p@ss:w/rd %?#"


def _auth_url(port: int, password: str = PASSWORD, query: str = "") -> str:
    return f"smtp://{quote(USER, safe='')}:{quote(password, safe='')}@127.0.0.1:{port}{query}"


@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS:UserWarning")
def test_credentials_in_the_url_log_in(settings, session, session_factory, smtp_port):
    logins = Logins(USER, PASSWORD)
    right = settings.model_copy(update={"smtp_url": _auth_url(smtp_port)})
    wrong = settings.model_copy(update={"smtp_url": _auth_url(smtp_port, "wrong")})
    learner = make_volunteer(session, "learner")
    notify(session, right, learner.id, "exchange_accepted", "accepted")
    session.commit()
    with smtp_server(
        smtp_port, Mailbox(), authenticator=logins, auth_required=True, auth_require_tls=False
    ) as mailbox:
        assert deliver_pending(session_factory, wrong) == 0
        assert _outbox(session) == [(learner.id, "exchange_accepted", "pending", 1)]

        assert deliver_pending(session_factory, right) == 1
    # smtplib tries each mechanism the server offers before it gives up on a password.
    assert set(logins.attempts) == {(USER, "wrong"), (USER, PASSWORD)}
    assert logins.attempts[-1] == (USER, PASSWORD)
    assert [message["To"] for message in mailbox.messages] == [learner.email]


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1: (certificate, key)."""
    if shutil.which("openssl") is None:
        pytest.skip("needs the openssl command")
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    command = "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes"
    command += " -days 1 -subj /CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1"
    subprocess.run(
        [*command.split(), "-keyout", str(key), "-out", str(cert)],
        check=True,
        capture_output=True,
    )
    return cert, key


def test_starttls_checks_the_certificate_before_logging_in(
    settings, session, session_factory, smtp_port, certificate, monkeypatch
):
    cert, key = certificate
    server_tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_tls.load_cert_chain(cert, key)
    logins = Logins(USER, PASSWORD)
    learner = make_volunteer(session, "learner")
    tls_settings = settings.model_copy(
        update={"smtp_url": _auth_url(smtp_port, query="?starttls=true")}
    )
    notify(session, tls_settings, learner.id, "exchange_accepted", "accepted")
    session.commit()
    with smtp_server(
        smtp_port,
        Mailbox(),
        tls_context=server_tls,
        require_starttls=True,
        authenticator=logins,
        auth_required=True,
    ) as mailbox:
        # A certificate nobody vouches for: no password is sent, the mail waits.
        assert deliver_pending(session_factory, tls_settings) == 0
        assert logins.attempts == []
        assert _outbox(session) == [(learner.id, "exchange_accepted", "pending", 1)]

        monkeypatch.setenv("SSL_CERT_FILE", str(cert))  # now the client trusts it
        assert deliver_pending(session_factory, tls_settings) == 1
    assert logins.attempts == [(USER, PASSWORD)]
    assert [message["To"] for message in mailbox.messages] == [learner.email]


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_live_workers_mail_each_notification_once(tmp_path, backend):
    # Every server process runs the mail task; the claim must make each mail go out once.
    port = free_port()
    database = fresh_database(backend, tmp_path)
    env = {"CAPEX_SMTP_URL": f"smtp://127.0.0.1:{port}", "CAPEX_MAIL_INTERVAL_SECONDS": "0.2"}
    try:
        with (
            smtp_server(port, Mailbox()) as mailbox,
            live_server(database, workers=4, log=tmp_path / "serve.log", env=env) as base,
            httpx.Client(base_url=base, timeout=10) as client,
        ):
            learner = register(client, "learner", {})
            mentors = []
            for name in ("mentor1", "mentor2", "mentor3"):
                headers = register(client, name, {"offers": [{"skill": "lua", "level": 4}]})
                mentors.append(client.get("/api/v1/me", headers=headers).json()["id"])
            for mentor_id in mentors:
                response = client.post(
                    EXCHANGES, json={"mentor_id": mentor_id, "skill": "lua"}, headers=learner
                )
                assert response.status_code == 201, response.text

            deadline = time.monotonic() + 15
            while len(mailbox.envelopes) < 3 and time.monotonic() < deadline:
                time.sleep(0.1)
            time.sleep(1.5)  # several more rounds in every worker: none may send again
            assert sorted(message["To"] for message in mailbox.messages) == [
                "mentor1@example.org",
                "mentor2@example.org",
                "mentor3@example.org",
            ]
            assert {message["Subject"] for message in mailbox.messages} == {
                "capex: exchange requested"
            }
    finally:
        discard_database(database)
