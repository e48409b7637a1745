"""``bench/load.py`` runs end to end at a tiny scale and finds every invariant held.

Only where the ``bench`` extra (locust) is installed; it makes (or reuses) a small template
database beside the tests' PostgreSQL.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

from capex.testing import POSTGRES_ADMIN_URL

# Looked up, not imported: importing locust monkey-patches this process with gevent.
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        importlib.util.find_spec("locust") is None, reason="needs the bench extra (locust)"
    ),
]

ROOT = Path(__file__).resolve().parent.parent


def test_load_bench_drives_every_endpoint_and_its_checks_hold(tmp_path):
    command = [sys.executable, str(ROOT / "bench" / "load.py")]
    command += ["--volunteers", "200", "--exchanges", "1000", "--clients", "2"]
    command += ["--duration", "5", "--workers", "1", "--stats-max-age", "2"]
    command += ["--postgres-admin-url", POSTGRES_ADMIN_URL, "--workdir", str(tmp_path)]
    result = subprocess.run(command, capture_output=True, text=True, timeout=300, cwd=ROOT)
    report = result.stdout + result.stderr
    assert result.returncode == 0, report[-5000:]
    assert "all held" in result.stdout
    for endpoint in ("POST /auth/token", "GET /volunteers", "GET /me/matches?as=learner"):
        assert f"| `{endpoint}" in result.stdout, report[-5000:]
