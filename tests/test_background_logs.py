"""A background task that fails while the database is away writes one line, not a traceback
every few seconds; any other failure keeps its traceback."""

from __future__ import annotations

import logging

import pytest
from sqlalchemy import create_engine, exc, text

from capex.db import log_failure


def test_an_outage_is_one_line_and_a_bug_keeps_its_traceback(caplog):
    engine = create_engine(
        "postgresql+psycopg://postgres@127.0.0.1:1/nothing", connect_args={"connect_timeout": 2}
    )
    with pytest.raises(exc.OperationalError) as refused:
        engine.connect().execute(text("SELECT 1"))
    logger = logging.getLogger("capex.test")
    with caplog.at_level(logging.WARNING, logger="capex.test"):
        log_failure(logger, "refreshing the statistics snapshot failed", refused.value)
        log_failure(logger, "housekeeping failed", ValueError("a real bug"))
    outage, bug = caplog.records
    assert outage.levelno == logging.WARNING
    assert outage.exc_info is None
    assert outage.getMessage() == (
        "refreshing the statistics snapshot failed: the database is not answering "
        "(OperationalError)"
    )
    assert bug.levelno == logging.ERROR
    assert bug.exc_info is not None
