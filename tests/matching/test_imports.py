"""capex.matching stays a pure engine: no web framework, no ORM, no models or services.

Its import statements are checked with the other layers by the import-linter contracts
(tests/test_layers.py); this checks what importing it actually loads."""

from __future__ import annotations

import subprocess
import sys

FORBIDDEN = ("fastapi", "starlette", "sqlalchemy", "capex.models", "capex.api", "capex.services")


def forbidden(module: str) -> bool:
    return any(module == name or module.startswith(name + ".") for name in FORBIDDEN)


def test_importing_the_engine_loads_no_forbidden_module() -> None:
    code = (
        "import sys, capex.matching, capex.matching.reference\n"
        "print('\\n'.join(sorted(sys.modules)))"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.split()
    assert [module for module in loaded if forbidden(module)] == []
