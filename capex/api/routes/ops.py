"""Liveness and readiness."""

from __future__ import annotations

from fastapi import APIRouter, Request
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError
from starlette.responses import JSONResponse, Response

from capex.api.deps import MatchingDep, SessionFactoryDep, SettingsDep
from capex.api.problems import problem
from capex.serving import draining

router = APIRouter(tags=["operations"])


@router.get("/healthz")
def healthz() -> dict[str, str]:
    """200 while the process serves."""
    return {"status": "ok"}


@router.get(
    "/readyz",
    responses={
        503: {
            "description": "the server is shutting down, the database does not answer, or "
            "the matching index is not ready yet"
        }
    },
)
def readyz(
    request: Request, sessions: SessionFactoryDep, settings: SettingsDep, matching: MatchingDep
) -> Response:
    """200 when the server takes requests, the database answers and matches can be
    answered; 503 otherwise."""
    if draining(request.scope.get("state", {})):
        # A load balancer stops sending here; the next process on this port, or another
        # host, answers after the grace period at the latest.
        return problem(
            503,
            "the server is shutting down",
            headers={"Retry-After": str(settings.shutdown_grace_seconds)},
        )
    try:
        with sessions() as session:
            session.execute(text("SELECT 1"))
    except (SQLAlchemyError, OSError) as error:
        return problem(
            503,
            f"the database does not answer: {type(error).__name__}",
            headers={"Retry-After": str(settings.db_retry_after_seconds)},
        )
    try:
        matching_ready = matching.ready()
    except (SQLAlchemyError, OSError):
        matching_ready = False
    if not matching_ready:
        return problem(
            503,
            "the matching index is being built",
            headers={"Retry-After": str(settings.db_retry_after_seconds)},
        )
    return JSONResponse({"status": "ready"})
