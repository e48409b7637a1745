"""The domain's words: one StrEnum each, and the migrated database agrees with them."""

from __future__ import annotations

from enum import StrEnum

import pytest
from sqlalchemy import select, text, update
from sqlalchemy.exc import IntegrityError, StatementError
from sqlalchemy.orm import Session

from capex.models import Exchange, Skill, Volunteer
from capex.vocabulary import ExchangeState, Origin, Role
from tests.factories import make_volunteer

# Columns whose words the database holds to with a check constraint (written by the
# migrations, which keep their own copy of the text): (table, column, vocabulary).
CHECKED = [("volunteers", "role", Role), ("exchanges", "state", ExchangeState)]
CHECKED += [("exchanges", "origin", Origin)]


def an_exchange(session: Session) -> Exchange:
    learner = make_volunteer(session, "learner1")
    mentor = make_volunteer(session, "mentor1")
    skill = session.scalars(select(Skill).limit(1)).one()
    exchange = Exchange(learner_id=learner.id, mentor_id=mentor.id, skill_id=skill.id)
    session.add(exchange)
    session.flush()
    return exchange


def row_id(session: Session, table: str) -> int:
    if table == "volunteers":
        return make_volunteer(session, "worded").id
    return an_exchange(session).id


@pytest.mark.parametrize(("table", "column", "vocabulary"), CHECKED)
def test_the_database_stores_every_word_and_refuses_any_other(
    session: Session, table: str, column: str, vocabulary: type[StrEnum]
) -> None:
    identity = row_id(session, table)
    change = text(f"UPDATE {table} SET {column} = :word WHERE id = :id")
    for word in vocabulary:
        # Raw SQL: the database's own constraint is what is checked, not the ORM type.
        with session.begin_nested():
            session.execute(change, {"word": word.value, "id": identity})
    with pytest.raises(IntegrityError), session.begin_nested():
        session.execute(change, {"word": "unheard-of", "id": identity})


def test_rows_load_their_words_as_members(session: Session) -> None:
    exchange = an_exchange(session)
    session.expire_all()
    loaded = session.get_one(Exchange, exchange.id)
    assert loaded.state is ExchangeState.REQUESTED
    assert loaded.origin is Origin.REQUEST
    assert session.get_one(Volunteer, loaded.mentor_id).role is Role.VOLUNTEER


def test_an_unknown_word_is_refused_before_the_database(session: Session) -> None:
    exchange = an_exchange(session)
    with pytest.raises(StatementError, match="'finished' is not a valid ExchangeState"):
        session.execute(update(Exchange).where(Exchange.id == exchange.id).values(state="finished"))
