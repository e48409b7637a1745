"""The in-app inbox, and email through an outbox that a mail failure cannot roll back."""

from __future__ import annotations

import logging
import smtplib
import ssl
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.message import EmailMessage
from urllib.parse import parse_qs, unquote, urlsplit

from sqlalchemy import Row, case, func, select, update
from sqlalchemy.orm import Session, sessionmaker

from capex.config import Settings
from capex.models import Notification, Volunteer
from capex.models.base import utcnow
from capex.vocabulary import NotificationKind

logger = logging.getLogger("capex.mail")

MAX_MAIL_ATTEMPTS = 5
CLAIM_LEASE = timedelta(minutes=10)


def notify(
    session: Session,
    settings: Settings,
    volunteer_id: int,
    kind: NotificationKind,
    text: str,
    exchange_id: int | None = None,
    *,
    now: datetime | None = None,
) -> None:
    """Put a notification in a volunteer's inbox (and in the mail outbox if mail is on),
    dated ``now`` (the clock's time) when given."""
    session.add(
        Notification(
            volunteer_id=volunteer_id,
            kind=kind,
            exchange_id=exchange_id,
            text=text,
            created_at=now or utcnow(),
            email_status="pending" if settings.smtp_url else "none",
            email_attempts=0,
        )
    )


@dataclass(frozen=True, slots=True)
class InboxItem:
    """One notification as its reader sees it."""

    id: int
    kind: NotificationKind
    text: str
    exchange_id: int | None
    created_at: datetime
    read: bool


@dataclass(frozen=True, slots=True)
class InboxPage:
    """One page of an inbox, newest first: whether older ones follow, and how many of the
    whole inbox are unread."""

    items: list[InboxItem]
    more: bool
    unread_count: int


def inbox(
    session: Session, volunteer_id: int, *, unread_only: bool, before_id: int | None, limit: int
) -> InboxPage:
    """A volunteer's notifications, newest first, with the unread count."""
    query = select(Notification).where(Notification.volunteer_id == volunteer_id)
    if unread_only:
        query = query.where(Notification.read_at.is_(None))
    if before_id is not None:
        query = query.where(Notification.id < before_id)
    rows = list(session.scalars(query.order_by(Notification.id.desc()).limit(limit + 1)))
    items = [
        InboxItem(
            id=row.id,
            kind=row.kind,
            text=row.text,
            exchange_id=row.exchange_id,
            created_at=row.created_at,
            read=row.read_at is not None,
        )
        for row in rows[:limit]
    ]
    return InboxPage(
        items, more=len(rows) > limit, unread_count=unread_count(session, volunteer_id)
    )


def unread_count(session: Session, volunteer_id: int) -> int:
    """How many of a volunteer's notifications are unread."""
    unread = session.scalar(
        select(func.count()).where(
            Notification.volunteer_id == volunteer_id, Notification.read_at.is_(None)
        )
    )
    return int(unread or 0)


def mark_read(session: Session, volunteer_id: int, ids: list[int] | None) -> int:
    """Mark some (or all) of a volunteer's notifications read; returns the unread count."""
    statement = update(Notification).where(
        Notification.volunteer_id == volunteer_id, Notification.read_at.is_(None)
    )
    if ids is not None:
        statement = statement.where(Notification.id.in_(ids))
    session.execute(statement.values(read_at=utcnow()))
    return unread_count(session, volunteer_id)


def _smtp(url: str) -> smtplib.SMTP:
    parts = urlsplit(url)
    options = parse_qs(parts.query)
    host, port = parts.hostname or "localhost", parts.port
    # smtplib's own default context checks no certificate: the password would go to anyone
    # in the middle.
    tls = ssl.create_default_context()
    client: smtplib.SMTP
    if parts.scheme == "smtps":
        client = smtplib.SMTP_SSL(host, port or 465, timeout=10, context=tls)
    else:
        client = smtplib.SMTP(host, port or 25, timeout=10)
    starttls = options.get("starttls", ["false"])[0].lower() in ("1", "true", "yes")
    try:
        if starttls and parts.scheme != "smtps":
            client.starttls(context=tls)
        if parts.username:
            client.login(unquote(parts.username), unquote(parts.password or ""))
    except BaseException:
        client.close()
        raise
    return client


def deliver_pending(session_factory: sessionmaker[Session], settings: Settings) -> int:
    """Send the outbox by email; returns how many were sent.

    Runs after the state changes committed, in its own transactions: a mail server that is
    down leaves the notifications pending (retried later, up to MAX_MAIL_ATTEMPTS times) and
    never undoes an exchange's transition.
    """
    if not settings.smtp_url:
        return 0
    pending = _claim(session_factory)
    if not pending:
        return 0
    sent: list[int] = []
    try:
        with _smtp(settings.smtp_url) as client:
            for row in pending:
                message = EmailMessage()
                message["From"] = settings.mail_from
                message["To"] = row.email
                message["Subject"] = f"capex: {row.kind.replace('_', ' ')}"
                message.set_content(f"{row.text}\n\nSee your inbox on capex.\n")
                try:
                    client.send_message(message)
                except (smtplib.SMTPRecipientsRefused, smtplib.SMTPResponseException) as error:
                    # The server refused this one message (an address, its content) and
                    # stays usable: the rest of the batch must not share its retries.
                    logger.warning(
                        '{"event": "mail_refused", "notification": %d, "error": "%s"}',
                        row.id,
                        type(error).__name__,
                    )
                    continue
                sent.append(row.id)
    except (OSError, smtplib.SMTPException) as error:
        logger.warning('{"event": "mail_failed", "error": "%s"}', type(error).__name__)
    delivered = set(sent)
    unsent = [row.id for row in pending if row.id not in delivered]
    with session_factory() as session, session.begin():
        if sent:
            session.execute(
                update(Notification).where(Notification.id.in_(sent)).values(email_status="sent")
            )
        if unsent:
            # Back in the queue with one more attempt, or given up on after the last.
            session.execute(
                update(Notification)
                .where(Notification.id.in_(unsent))
                .values(
                    email_attempts=Notification.email_attempts + 1,
                    email_status=case(
                        (Notification.email_attempts + 1 >= MAX_MAIL_ATTEMPTS, "failed"),
                        else_="pending",
                    ),
                )
            )
    return len(sent)


def _claim(
    session_factory: sessionmaker[Session], limit: int = 200
) -> list[Row[int, NotificationKind, str, str]]:
    """Take up to ``limit`` pending notifications for this process to mail.

    Every server process runs the mail task; the claim (pending -> sending, in one UPDATE,
    skipping rows another process has locked on PostgreSQL) makes each mail go out once. A
    claim older than ``CLAIM_LEASE`` was left by a process that died: it is pending again.
    """
    with session_factory() as session, session.begin():
        now = utcnow()
        session.execute(
            update(Notification)
            .where(
                Notification.email_status == "sending",
                Notification.email_claimed_at < now - CLAIM_LEASE,
            )
            .values(email_status="pending")
        )
        candidates = (
            select(Notification.id)
            .where(Notification.email_status == "pending")
            .order_by(Notification.id)
            .limit(limit)
        )
        if session.get_bind().dialect.name == "postgresql":
            candidates = candidates.with_for_update(skip_locked=True)
        claimed = session.scalars(
            update(Notification)
            .where(
                Notification.id.in_(candidates.scalar_subquery()),
                Notification.email_status == "pending",
            )
            .values(email_status="sending", email_claimed_at=now)
            .returning(Notification.id)
        ).all()
        if not claimed:
            return []
        return list(
            session.execute(
                select(Notification.id, Notification.kind, Notification.text, Volunteer.email)
                .join(Volunteer, Volunteer.id == Notification.volunteer_id)
                .where(Notification.id.in_(claimed))
                .order_by(Notification.id)
            ).all()
        )
