"""The privacy layer is the engine's only way in, and that shows in the code."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
WRITERS = ("engine.services", "engine.models", "engine.tasks")


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
    return names


def test_only_the_gate_reaches_the_engines_writes() -> None:
    """Outside engine/, only privacy/engine_gate.py imports the engine's services, models or
    tasks; everything else (sender, tracking, settings, erasure) goes through the gate."""
    offenders = []
    for package in ("accounts", "campaigns", "core", "privacy", "subscribers", "tracking"):
        for path in (ROOT / package).rglob("*.py"):
            if path == ROOT / "privacy" / "engine_gate.py":
                continue
            found = {name for name in _imports(path) if name.startswith(WRITERS)}
            if found:
                offenders.append(f"{path.relative_to(ROOT)}: {sorted(found)}")
    assert offenders == []


def test_the_bench_drives_the_engine_through_the_gate() -> None:
    imports = _imports(ROOT / "bench" / "engine_simulation.py")
    assert "privacy.engine_gate" in imports or "privacy" in imports
    assert not {name for name in imports if name.startswith(("engine.services", "engine.queries"))}
