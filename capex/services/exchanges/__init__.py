"""Exchanges: one learner learning one skill from one mentor.

- ``lifecycle``: the transition table and the one function that carries a transition out
  (state, counters, audit event, notifications); who takes part; expiry.
- ``requests``: a learner's request, with its idempotency and the learner's request places.
- ``feedback``: the participants' ratings of each other.
- ``messages``: the thread between the learner and the mentor.
- ``reading``: what both front doors show: an exchange with both participants, its trail.
"""

# feedback comes before reading: reading imports profiles, which imports mentor_ratings from
# this package while it is still being imported.
from capex.services.exchanges.feedback import (
    MIN_RATINGS_SHOWN,
    feedback_on,
    leave_feedback,
    mentor_ratings,
)
from capex.services.exchanges.lifecycle import (
    EXPIRY,
    OPENING,
    TRANSITIONS,
    Transition,
    apply,
    cancel_all_open,
    effective_state,
    expire_stale,
    expiry_cutoff,
    move,
    participant,
    side_of,
    state_filter,
    visible,
)
from capex.services.exchanges.messages import MessagePage, MessageView, post_message, thread
from capex.services.exchanges.reading import (
    Asked,
    EventView,
    ExchangeList,
    ExchangeView,
    act,
    ask,
    list_exchanges,
    read,
    trail,
    view,
    views,
)
from capex.services.exchanges.requests import IDEMPOTENCY_TTL, Created, request

__all__ = [
    "EXPIRY",
    "IDEMPOTENCY_TTL",
    "MIN_RATINGS_SHOWN",
    "OPENING",
    "TRANSITIONS",
    "Asked",
    "Created",
    "EventView",
    "ExchangeList",
    "ExchangeView",
    "MessagePage",
    "MessageView",
    "Transition",
    "act",
    "apply",
    "ask",
    "cancel_all_open",
    "effective_state",
    "expire_stale",
    "expiry_cutoff",
    "feedback_on",
    "leave_feedback",
    "list_exchanges",
    "mentor_ratings",
    "move",
    "participant",
    "post_message",
    "read",
    "request",
    "side_of",
    "state_filter",
    "thread",
    "trail",
    "view",
    "views",
    "visible",
]
