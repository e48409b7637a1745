"""capex.matching stays a pure engine: no web framework, no ORM, no models or services."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import capex.matching

FORBIDDEN = ("fastapi", "starlette", "sqlalchemy", "capex.models", "capex.api", "capex.services")
PACKAGE_DIR = Path(capex.matching.__file__).parent


def forbidden(module: str) -> bool:
    return any(module == name or module.startswith(name + ".") for name in FORBIDDEN)


def test_no_forbidden_import_statements() -> None:
    offenders = []
    for path in sorted(PACKAGE_DIR.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [node.module]
            else:
                continue
            offenders += [f"{path.name}: {name}" for name in names if forbidden(name)]
    assert offenders == []


def test_importing_the_engine_loads_no_forbidden_module() -> None:
    code = (
        "import sys, capex.matching, capex.matching.reference\n"
        "print('\\n'.join(sorted(sys.modules)))"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.split()
    assert [module for module in loaded if forbidden(module)] == []
