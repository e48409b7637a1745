"""The domain's words, each vocabulary one StrEnum, defined here once.

Models, check constraints, schemas, services and both front doors use these members; no
other module spells a state, an action, a role, a side or a notification kind as a string.
A member is a ``str``, so it compares equal to the text stored in the database and goes
into JSON as that text.
"""

from __future__ import annotations

from collections.abc import Iterable
from enum import StrEnum


class ExchangeState(StrEnum):
    """Where an exchange is in its lifecycle."""

    REQUESTED = "requested"
    ACCEPTED = "accepted"
    DECLINED = "declined"
    CANCELLED = "cancelled"
    EXPIRED = "expired"
    COMPLETED = "completed"

    @property
    def is_open(self) -> bool:
        """Still waiting or under way: it holds a request place or a mentor's slot."""
        return self in OPEN_STATES


# In this order in SQL (the partial index's text must stay what the migration wrote).
OPEN_STATES: tuple[ExchangeState, ...] = (ExchangeState.REQUESTED, ExchangeState.ACCEPTED)


class ExchangeAction(StrEnum):
    """What moves an exchange from one state to the next (the audit event's action)."""

    REQUEST = "request"
    ACCEPT = "accept"
    DECLINE = "decline"
    CANCEL = "cancel"
    COMPLETE = "complete"
    EXPIRE = "expire"


class Origin(StrEnum):
    """How an exchange came about: a learner's own request, or a coordinator's round."""

    REQUEST = "request"
    ROUND = "round"


class RoundMode(StrEnum):
    """How a coordinator's round pairs its learners: the greatest total score, or stable."""

    OPTIMAL = "optimal"
    STABLE = "stable"


class RoundStatus(StrEnum):
    """A round is a draft until its pairs are published as exchanges (once)."""

    DRAFT = "draft"
    PUBLISHED = "published"


class Role(StrEnum):
    """What an account may do."""

    VOLUNTEER = "volunteer"
    COORDINATOR = "coordinator"


class Side(StrEnum):
    """A participant's side of an exchange, or of a match."""

    LEARNER = "learner"
    MENTOR = "mentor"


class ProfileChangeKind(StrEnum):
    """What a suggested change to a profile adds: a weekly slot, a language or a skill."""

    AVAILABILITY = "availability"
    LANGUAGE = "language"
    SKILL = "skill"


class Party(StrEnum):
    """Who may take an action: one of the sides, or capex itself (expiry)."""

    LEARNER = "learner"
    MENTOR = "mentor"
    SYSTEM = "system"


class NotificationKind(StrEnum):
    """What a notification in a volunteer's inbox is about."""

    EXCHANGE_REQUESTED = "exchange_requested"
    EXCHANGE_ACCEPTED = "exchange_accepted"
    EXCHANGE_DECLINED = "exchange_declined"
    EXCHANGE_CANCELLED = "exchange_cancelled"
    EXCHANGE_EXPIRED = "exchange_expired"
    EXCHANGE_COMPLETED = "exchange_completed"
    FEEDBACK_RECEIVED = "feedback_received"
    MESSAGE_RECEIVED = "message_received"
    PASSWORD_RESET = "password_reset"
    MENTOR_REMINDER = "mentor_reminder"


class LimitScope(StrEnum):
    """What a write limit counts writes by: the signed-in account, or the client address."""

    ACCOUNT = "account"
    ADDRESS = "address"


def sql_in(column: str, members: Iterable[StrEnum]) -> str:
    """The SQL text "``column`` IN ('a', 'b', ...)", for check constraints and partial indexes."""
    listed = ", ".join(f"'{member.value}'" for member in members)
    return f"{column} IN ({listed})"
