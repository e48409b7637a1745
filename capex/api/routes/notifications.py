"""My notification inbox."""

from __future__ import annotations

from typing import Annotated, Any

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
) -> dict[str, Any]:
    """My notifications, newest first, with the unread count."""
    before = page.position("before", int)
    rows, more, unread_count = notifications.inbox(
        session, me.id, unread_only=unread, before_id=before, limit=page.limit
    )
    return {
        "items": [
            {
                "id": row.id,
                "kind": row.kind,
                "text": row.text,
                "exchange_id": row.exchange_id,
                "created_at": row.created_at,
                "read": row.read_at is not None,
            }
            for row in rows
        ],
        "next_cursor": encode_cursor({"before": rows[-1].id}) if more else None,
        "unread_count": unread_count,
    }


@router.post("/read", response_model=UnreadCount, responses={401: {"model": Problem}})
def mark_read(
    me: CurrentUser, session: SessionDep, data: Annotated[MarkRead | None, Body()] = None
) -> dict[str, int]:
    """Mark the given notifications (or all of them) read."""
    ids = data.ids if data is not None else None
    return {"unread_count": notifications.mark_read(session, me.id, ids)}
