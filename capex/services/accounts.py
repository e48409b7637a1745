"""Registration, sign-in with throttling, access tokens, roles and deactivation."""

from __future__ import annotations

import hashlib
import hmac
import math
import secrets
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import lru_cache

from pwdlib import PasswordHash
from sqlalchemy import delete, func, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from capex.config import Settings
from capex.db import session_scope
from capex.errors import (
    Busy,
    Conflict,
    Forbidden,
    Invalid,
    InvalidCredentials,
    NotFound,
    TooManyRequests,
    Unauthorized,
    field_error,
)
from capex.models import AccessToken, Exchange, LoginFailure, PasswordReset, Volunteer
from capex.models.base import utcnow
from capex.schemas.profiles import RegisterIn
from capex.services import notifications, profiles
from capex.services.exchanges import cancel_all_open
from capex.services.profiles import OwnProfile
from capex.vocabulary import OPEN_STATES, NotificationKind, Role


@lru_cache
def password_hasher() -> PasswordHash:
    """Argon2id with pwdlib's recommended parameters (m=64 MiB, t=3, p=4)."""
    return PasswordHash.recommended()


@lru_cache
def _hash_slots(slots: int) -> threading.BoundedSemaphore:
    return threading.BoundedSemaphore(slots)


# How many hashes a process computes at once (CAPEX_PASSWORD_HASH_SLOTS): each takes most of
# a small host's cores for half a second, so a crowd of sign-ins queues here rather than
# thrashing together, each one then as slow as all of them, and every other request with
# them. Argon2's C code releases the GIL: waiting requests and the event loop go on.
_slots = 1
# How long one waits for its turn (None: as long as it takes, for scripts).
_wait_seconds: float | None = None


def limit_concurrent_hashes(slots: int, wait_seconds: float | None = None) -> None:
    """Let at most ``slots`` password hashes run at once in this process, each waiting at
    most ``wait_seconds`` for its turn (the app's settings)."""
    global _slots, _wait_seconds
    _slots, _wait_seconds = slots, wait_seconds


@contextmanager
def _hash_slot() -> Iterator[None]:
    slots, wait = _hash_slots(_slots), _wait_seconds
    if not slots.acquire(timeout=wait):
        raise Busy("too many people are signing in at once", math.ceil(wait or 1))
    try:
        yield
    finally:
        slots.release()


@lru_cache
def _dummy_hash() -> str:
    # Verified against when the username is unknown, so that a wrong username takes as long
    # as a wrong password and does not reveal which accounts exist.
    return hash_password(secrets.token_urlsafe(16))


def hash_password(password: str) -> str:
    with _hash_slot():
        return password_hasher().hash(password)


def verify_password(password: str, password_hash: str) -> tuple[bool, str | None]:
    """Whether ``password`` matches ``password_hash``, and a stronger hash of it if one is due.

    Slow on purpose (Argon2): call it holding no database connection and no lock.
    """
    with _hash_slot():
        return password_hasher().verify_and_update(password, password_hash)


def hash_token(token: str, secret_key: str) -> str:
    """Tokens are stored as a keyed hash: a copy of the table alone signs nobody in."""
    return hmac.new(secret_key.encode(), token.encode(), hashlib.sha256).hexdigest()


def username_key(username: str) -> str:
    return username.strip().casefold()


def new_volunteer(
    username: str,
    email: str,
    password_hash: str,
    *,
    display_name: str | None = None,
    role: Role = Role.VOLUNTEER,
) -> Volunteer:
    """An active volunteer with an empty profile, not yet added to a session."""
    return Volunteer(
        username=username,
        username_key=username_key(username),
        email=email,
        password_hash=password_hash,
        display_name=display_name or username,
        bio="",
        mentor_capacity=2,
        role=role,
        is_active=True,
        languages=[],
        availability=[],
        offers=[],
        wants=[],
    )


def register(session: Session, data: RegisterIn) -> Volunteer:
    """Create an active volunteer; 409 if the username or email is taken."""
    key = username_key(data.username)
    email = data.email.strip().lower()
    taken = session.execute(
        select(Volunteer.username_key, Volunteer.email).where(
            (Volunteer.username_key == key) | (Volunteer.email == email)
        )
    ).first()
    if taken is not None:
        what = "username" if taken.username_key == key else "email"
        raise Conflict(f"that {what} is already registered")
    volunteer = new_volunteer(
        data.username, email, hash_password(data.password), display_name=data.display_name
    )
    session.add(volunteer)
    try:
        # A concurrent registration of the same name loses here, on the unique index.
        with session.begin_nested():
            session.flush()
    except IntegrityError as error:
        raise Conflict("that username or email is already registered") from error
    return volunteer


@dataclass(frozen=True)
class IssuedToken:
    access_token: str
    expires_in: int


def _throttle(session: Session, settings: Settings, key: str, address: str) -> None:
    since = utcnow() - timedelta(seconds=settings.login_window_seconds)
    checks = (
        (LoginFailure.username_key == key, settings.login_max_failures_per_username, "account"),
        (
            LoginFailure.client_address == address,
            settings.login_max_failures_per_address,
            "address",
        ),
    )
    for condition, limit, what in checks:
        count, oldest = session.execute(
            select(func.count(), func.min(LoginFailure.failed_at)).where(
                condition, LoginFailure.failed_at > since
            )
        ).one()
        if count >= limit:
            retry = _seconds_until(oldest + timedelta(seconds=settings.login_window_seconds))
            raise TooManyRequests(
                f"too many failed sign-ins for this {what}; try again in {retry} seconds",
                retry,
            )


def _seconds_until(moment: datetime) -> int:
    return max(1, int((moment - utcnow()).total_seconds()) + 1)


def sign_in(
    sessions: sessionmaker[Session],
    settings: Settings,
    username: str,
    password: str,
    address: str,
) -> IssuedToken:
    """A token for the right password; 401 for a wrong one (counted first, see
    ``try_sign_in``), 429 while throttled, 403 for a deactivated account."""
    issued = try_sign_in(sessions, settings, username, password, address)
    if issued is None:
        raise InvalidCredentials("wrong username or password")
    return issued


@dataclass(frozen=True)
class _StoredPassword:
    """What a sign-in reads before hashing: whose password and its hash (None: nobody's)."""

    volunteer_id: int | None
    password_hash: str | None

    def verify(self, password: str) -> tuple[bool, str | None]:
        return verify_password(password, self.password_hash or _dummy_hash())


def _stored_password(
    session: Session, settings: Settings, key: str, address: str
) -> _StoredPassword:
    _throttle(session, settings, key, address)
    row = session.execute(
        select(Volunteer.id, Volunteer.password_hash).where(Volunteer.username_key == key)
    ).first()
    if row is None:
        return _StoredPassword(None, None)
    return _StoredPassword(row.id, row.password_hash)


# A password changed between reading its hash and issuing the token is checked again, at
# most this many times in all.
_SIGN_IN_ATTEMPTS = 3


def _finish_sign_in(
    session: Session,
    settings: Settings,
    key: str,
    address: str,
    stored: _StoredPassword,
    verified: tuple[bool, str | None],
) -> IssuedToken | _StoredPassword | None:
    """After the hash: count a failure (None), or issue a token; the newer stored password
    when it changed meanwhile, to be checked instead."""
    # Checked again in this write transaction, which also counts the failure: on SQLite,
    # where write transactions run one at a time, the limit is then exact.
    _throttle(session, settings, key, address)
    ok, new_hash = verified
    volunteer = None
    if stored.volunteer_id is not None and ok:
        # Locked while the token is issued: a password change (which signs every session
        # out) either committed before, and is seen here, or waits until after.
        volunteer = session.scalars(
            select(Volunteer).where(Volunteer.id == stored.volunteer_id).with_for_update()
        ).first()
        if volunteer is not None and volunteer.password_hash != stored.password_hash:
            return _StoredPassword(volunteer.id, volunteer.password_hash)
    if volunteer is None:
        session.add(LoginFailure(username_key=key[:64], client_address=address[:64]))
        session.flush()
        return None
    if not volunteer.is_active:
        # Said only to whoever knows the password, so it reveals nothing to a guesser. 403,
        # not 401: the credentials are right, and trying them again will not help.
        raise Forbidden("this account was deactivated and can no longer sign in")
    if new_hash:
        volunteer.password_hash = new_hash
    session.execute(delete(LoginFailure).where(LoginFailure.username_key == key))
    return issue_token(session, settings, volunteer)


def try_sign_in(
    sessions: sessionmaker[Session],
    settings: Settings,
    username: str,
    password: str,
    address: str,
) -> IssuedToken | None:
    """A token for the right password; None for a wrong one, which is counted.

    429 while the username or the address is throttled, 403 for a deactivated account.
    Two short transactions of its own with the Argon2 hash between them, which holds no
    database connection and no lock: a read (the throttle, the stored hash), then a write
    (the failure counted and committed before the caller answers 401, or the token).
    """
    key = username_key(username)
    with session_scope(sessions) as session:
        stored = _stored_password(session, settings, key, address)
    for _ in range(_SIGN_IN_ATTEMPTS):
        verified = stored.verify(password)
        with session_scope(sessions, write=True) as session:
            outcome = _finish_sign_in(session, settings, key, address, stored, verified)
        if not isinstance(outcome, _StoredPassword):
            return outcome
        stored = outcome
    return None


def attempt_sign_in(
    session: Session, settings: Settings, username: str, password: str, address: str
) -> IssuedToken | None:
    """``try_sign_in`` in the caller's transaction (scripts and tests; a server holds no
    connection while it hashes and uses ``try_sign_in``)."""
    key = username_key(username)
    stored = _stored_password(session, settings, key, address)
    for _ in range(_SIGN_IN_ATTEMPTS):
        verified = stored.verify(password)
        outcome = _finish_sign_in(session, settings, key, address, stored, verified)
        if not isinstance(outcome, _StoredPassword):
            return outcome
        stored = outcome
    return None


def issue_token(session: Session, settings: Settings, volunteer: Volunteer) -> IssuedToken:
    token = secrets.token_urlsafe(32)
    ttl = timedelta(minutes=settings.token_ttl_minutes)
    now = utcnow()
    session.add(
        AccessToken(
            token_hash=hash_token(token, settings.secret_key),
            volunteer_id=volunteer.id,
            created_at=now,
            expires_at=now + ttl,
        )
    )
    volunteer.last_seen_at = now
    session.flush()
    return IssuedToken(access_token=token, expires_in=int(ttl.total_seconds()))


def volunteer_for_token(session: Session, settings: Settings, token: str) -> Volunteer:
    """The active volunteer a token belongs to; 401 for a bad, expired or revoked one."""
    volunteer = session.scalars(
        select(Volunteer)
        .join(AccessToken, AccessToken.volunteer_id == Volunteer.id)
        .where(
            AccessToken.token_hash == hash_token(token, settings.secret_key),
            AccessToken.expires_at > utcnow(),
            Volunteer.is_active.is_(True),
        )
    ).first()
    if volunteer is None:
        raise Unauthorized("the access token is missing, expired or revoked; sign in again")
    return volunteer


def revoke_token(session: Session, settings: Settings, token: str) -> None:
    session.execute(
        delete(AccessToken).where(AccessToken.token_hash == hash_token(token, settings.secret_key))
    )


def purge_expired(session: Session, settings: Settings) -> int:
    """Drop expired tokens and failures older than the throttling window."""
    now = utcnow()
    tokens = session.execute(delete(AccessToken).where(AccessToken.expires_at <= now))
    failures = session.execute(
        delete(LoginFailure).where(
            LoginFailure.failed_at <= now - timedelta(seconds=settings.login_window_seconds)
        )
    )
    return int(tokens.rowcount or 0) + int(failures.rowcount or 0)  # type: ignore[attr-defined]


def _lock_active_coordinators(session: Session) -> set[int]:
    """The ids of the active coordinators, their rows locked until the transaction ends.

    Every change that could remove a coordinator (a demotion, a deactivation) takes this
    lock before it writes, so two of them cannot both count the other as the one who
    stays: on PostgreSQL the second waits here and then reads the roles the first
    committed (``FOR UPDATE`` rechecks its rows). SQLite has no row locks; there a write
    transaction holds the database's write lock from its start (``BEGIN IMMEDIATE``),
    which serialises them the same way.
    """
    query = (
        select(Volunteer.id)
        .where(Volunteer.role == Role.COORDINATOR, Volunteer.is_active.is_(True))
        .order_by(Volunteer.id)
        .with_for_update()
    )
    return set(session.scalars(query))


def deactivate(session: Session, settings: Settings, volunteer: Volunteer) -> None:
    """Cancel the volunteer's open exchanges (the other side is told), sign them out
    everywhere and take them out of search and matching; their history stays.

    The last active coordinator cannot leave (409): nobody could grant the role again.
    """
    # PostgreSQL: lock the open exchanges before the coordinators' rows, in the order a
    # transition takes them (the exchange, then its volunteers). The other way round, a
    # coordinator leaving while a mentor accepts their request deadlocks.
    session.execute(
        select(Exchange.id)
        .where(
            or_(Exchange.learner_id == volunteer.id, Exchange.mentor_id == volunteer.id),
            Exchange.state.in_(OPEN_STATES),
        )
        .order_by(Exchange.id)
        .with_for_update()
    )
    if _lock_active_coordinators(session) == {volunteer.id}:
        raise Conflict(
            "you are the last active coordinator; make someone else a coordinator "
            "before deactivating your account"
        )
    cancel_all_open(session, settings, volunteer, "the account was deactivated")
    volunteer.is_active = False
    volunteer.deactivated_at = volunteer.updated_at = utcnow()
    session.execute(delete(AccessToken).where(AccessToken.volunteer_id == volunteer.id))
    session.flush()


def volunteer_named(session: Session, username: str) -> Volunteer:
    """The volunteer (active or not) with this username, whatever its case; else 404."""
    volunteer = session.scalars(
        select(Volunteer).where(Volunteer.username_key == username_key(username))
    ).first()
    if volunteer is None:
        raise NotFound(f"no volunteer named {username!r}")
    return volunteer


def change_role(session: Session, volunteer_id: int, role: Role, *, by: Volunteer) -> OwnProfile:
    """A coordinator gives an active volunteer ``role`` (see ``set_role``); their profile."""
    volunteer = profiles.load_profile(session, volunteer_id)
    set_role(session, volunteer, role, by=by)
    return profiles.own_profile(session, volunteer)


def sign_up(session: Session, data: RegisterIn) -> OwnProfile:
    """Register (see ``register``); the new volunteer's own profile."""
    return profiles.own_profile(session, register(session, data))


def set_role(
    session: Session, volunteer: Volunteer, role: Role, *, by: Volunteer | None = None
) -> Volunteer:
    """Give ``volunteer`` the role ``role``, as the coordinator ``by`` (None: the command line).

    Taking the role away is refused with 409 when it would leave no active coordinator, and
    with 403 when ``by`` stopped being one while the request waited for the lock.
    """
    # Granting the role removes nobody and takes no lock: holding the coordinators' rows
    # while waiting for the new one's row could deadlock with a transition moving its
    # counters (a transition holds that row and then takes its mentor's, maybe one of them).
    if role != Role.COORDINATOR:
        coordinators = _lock_active_coordinators(session)
        if by is not None and by.id not in coordinators:
            raise Forbidden("only coordinators may do this")
        if coordinators == {volunteer.id}:
            raise Conflict(
                f"{volunteer.username} is the last active coordinator; make someone else "
                "a coordinator first"
            )
    volunteer.role = role
    session.flush()
    return volunteer


# Password resets: a one-time link, mailed through the outbox, valid for an hour.
RESET_TTL = timedelta(hours=1)
MAX_RESETS_PER_HOUR = 3


def request_password_reset(
    session: Session,
    settings: Settings,
    email: str,
    compose: Callable[[Volunteer, str], str],
    *,
    now: datetime | None = None,
) -> bool:
    """Mail the active volunteer with ``email`` a link to choose a new password.

    ``compose(volunteer, token)`` writes the mail's text around the token (the front door
    knows the link and the reader's language). The caller says the same thing whether or
    not an account matched, so that the form tells nobody which addresses are registered;
    the answer (whether a mail was queued) is for tests and logs. At most
    ``MAX_RESETS_PER_HOUR`` links an hour go to one account.
    """
    now = now or utcnow()
    volunteer = session.scalars(
        select(Volunteer).where(Volunteer.email == email.strip().lower(), Volunteer.is_active)
    ).first()
    if volunteer is None:
        return False
    recent = session.scalar(
        select(func.count()).where(
            PasswordReset.volunteer_id == volunteer.id,
            PasswordReset.created_at > now - timedelta(hours=1),
        )
    )
    if (recent or 0) >= MAX_RESETS_PER_HOUR:
        return False
    token = secrets.token_urlsafe(32)
    session.add(
        PasswordReset(
            token_hash=hash_token(token, settings.secret_key),
            volunteer_id=volunteer.id,
            created_at=now,
            expires_at=now + RESET_TTL,
        )
    )
    notifications.notify(
        session, settings, volunteer.id, NotificationKind.PASSWORD_RESET, compose(volunteer, token)
    )
    session.flush()
    return True


def reset_password(
    session: Session, settings: Settings, token: str, password: str, *, now: datetime | None = None
) -> Volunteer:
    """Set a new password with a reset link's token; the link then works no more.

    Every session of the account is signed out, and its other links are spent too.
    """
    now = now or utcnow()
    reset = session.scalars(
        select(PasswordReset)
        .where(
            PasswordReset.token_hash == hash_token(token, settings.secret_key),
            PasswordReset.used_at.is_(None),
            PasswordReset.expires_at > now,
        )
        .with_for_update()
    ).first()
    volunteer = session.get(Volunteer, reset.volunteer_id) if reset is not None else None
    if reset is None or volunteer is None or not volunteer.is_active:
        raise NotFound("this link is not valid any more; ask for a new one")
    # Spent at once, conditionally: of two uses racing, one sets a password.
    spent = session.execute(
        update(PasswordReset)
        .where(PasswordReset.volunteer_id == volunteer.id, PasswordReset.used_at.is_(None))
        .values(used_at=now)
    )
    if not spent.rowcount:  # type: ignore[attr-defined]
        raise NotFound("this link is not valid any more; ask for a new one")
    volunteer.password_hash = hash_password(password)
    session.execute(delete(AccessToken).where(AccessToken.volunteer_id == volunteer.id))
    session.execute(delete(LoginFailure).where(LoginFailure.username_key == volunteer.username_key))
    session.flush()
    return volunteer


def password_matches(volunteer: Volunteer, password: str) -> bool:
    """Whether ``password`` is the volunteer's (Argon2: slow on purpose)."""
    with _hash_slot():
        return bool(password_hasher().verify(password, volunteer.password_hash))


def change_password(
    session: Session, settings: Settings, volunteer: Volunteer, current: str, new: str, keep: str
) -> None:
    """Change a password, given the current one; other sessions are signed out.

    ``keep`` is the token of the session that asks, which stays signed in.
    """
    if not password_matches(volunteer, current):
        message = "the current password is not right"
        raise Invalid(message, [field_error(["body", "current_password"], message)])
    volunteer.password_hash = hash_password(new)
    session.execute(
        delete(AccessToken).where(
            AccessToken.volunteer_id == volunteer.id,
            AccessToken.token_hash != hash_token(keep, settings.secret_key),
        )
    )
    session.flush()
