"""The privacy layer is the engine's only way in, and that shows in the code.

Within the application packages import-linter keeps it so (the ``engine-door`` contract in
pyproject.toml, tests/test_import_contracts.py); the bench is not one of them."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
    return names


def test_the_bench_drives_the_engine_through_the_gate() -> None:
    imports = _imports(ROOT / "bench" / "engine_simulation.py")
    assert "privacy.engine_gate" in imports or "privacy" in imports
    assert not {name for name in imports if name.startswith(("engine.services", "engine.queries"))}
