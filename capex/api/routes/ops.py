"""Liveness and readiness."""

from __future__ import annotations

from fastapi import APIRouter
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError
from starlette.responses import JSONResponse, Response

from capex.api.deps import SessionFactoryDep, SettingsDep
from capex.api.problems import problem

router = APIRouter(tags=["operations"])


@router.get("/healthz")
def healthz() -> dict[str, str]:
    """200 while the process serves."""
    return {"status": "ok"}


@router.get("/readyz", responses={503: {"description": "the database does not answer"}})
def readyz(sessions: SessionFactoryDep, settings: SettingsDep) -> Response:
    """200 when the database answers, 503 when it does not."""
    try:
        with sessions() as session:
            session.execute(text("SELECT 1"))
    except (SQLAlchemyError, OSError) as error:
        return problem(
            503,
            f"the database does not answer: {type(error).__name__}",
            headers={"Retry-After": str(settings.db_retry_after_seconds)},
        )
    return JSONResponse({"status": "ready"})
