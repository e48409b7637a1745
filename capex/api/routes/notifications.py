"""My notification inbox."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body, Query

from capex.api.deps import CurrentUser, PageDep, SessionDep
from capex.schemas.common import (
    Problem,
    encode_cursor,
)
from capex.schemas.exchanges import MarkRead, NotificationPage, UnreadCount
from capex.services import notifications

router = APIRouter(prefix="/me/notifications", tags=["notifications"])


@router.get(
    "",
    response_model=NotificationPage,
    responses={401: {"model": Problem}, 422: {"model": Problem}},
)
def inbox(
    me: CurrentUser,
    session: SessionDep,
    page: PageDep,
    unread: Annotated[bool, Query(description="only unread ones")] = False,
) -> NotificationPage:
    """My notifications, newest first, with the unread count."""
    found = notifications.inbox(
        session,
        me.id,
        unread_only=unread,
        before_id=page.position("before", int),
        limit=page.limit,
    )
    return NotificationPage(
        items=found.items,
        next_cursor=encode_cursor({"before": found.items[-1].id}) if found.more else None,
        unread_count=found.unread_count,
    )


@router.post("/read", response_model=UnreadCount, responses={401: {"model": Problem}})
def mark_read(
    me: CurrentUser, session: SessionDep, data: Annotated[MarkRead | None, Body()] = None
) -> UnreadCount:
    """Mark the given notifications (or all of them) read."""
    ids = data.ids if data is not None else None
    return UnreadCount(unread_count=notifications.mark_read(session, me.id, ids))
