"""The set-up checks that scripts/test runs (scripts/setup_check.py): every application module
imports, and every third-party module it imports comes from a declared runtime dependency.

They run in a fresh interpreter: in this one the modules are already imported."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CHECK = ROOT / "scripts" / "setup_check.py"


def _check(command: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(CHECK), command], cwd=cwd, capture_output=True, text=True, timeout=120
    )


def test_every_application_module_and_wsgi_import() -> None:
    result = _check("imports")
    assert result.returncode == 0, result.stderr
    count = int(result.stdout.split("imports: ")[1].split()[0])
    # Each package's modules, the Alembic revisions and wsgi.py.
    assert count > 80
    assert result.stdout.strip().endswith(f"{count} modules, 0 failed")


def test_every_third_party_import_is_a_declared_runtime_dependency() -> None:
    result = _check("declared")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().endswith("0 problem(s)")


def _project(tmp_path: Path, dependencies: list[str], module: str) -> Path:
    (tmp_path / "pyproject.toml").write_text(
        textwrap.dedent(
            f"""
            [project]
            name = "probe"
            dependencies = {dependencies!r}
            [tool.setuptools.packages.find]
            include = ["probe*"]
            [tool.envoy.runtime-not-imported]
            """
        )
    )
    (tmp_path / "probe").mkdir()
    (tmp_path / "probe" / "__init__.py").write_text("")
    (tmp_path / "probe" / "módulo.py").write_text(module)
    (tmp_path / "wsgi.py").write_text("import probe\n")
    return tmp_path


def test_an_undeclared_import_and_an_unused_declaration_are_reported(tmp_path: Path) -> None:
    # markupsafe is installed (Jinja needs it) but the probe does not declare it; itsdangerous
    # is declared and imported by nothing.
    module = "import flask\nfrom markupsafe import Markup\n"
    project = _project(tmp_path, ["flask>=3.0", "itsdangerous>=2.2"], module)
    result = _check("declared", cwd=project)
    assert result.returncode == 1
    assert "probe/módulo.py:2 imports markupsafe (installed here by markupsafe)" in result.stderr
    assert "itsdangerous is a declared dependency that no application module imports" in (
        result.stderr
    )
    assert "flask" not in result.stderr
    assert result.stdout.strip().endswith("2 problem(s)")


def test_a_module_that_cannot_be_imported_is_reported(tmp_path: Path) -> None:
    project = _project(tmp_path, ["flask>=3.0"], "import flask\nimport envoy_no_such_module\n")
    result = _check("imports", cwd=project)
    assert result.returncode == 1
    assert "cannot import probe.módulo" in result.stderr
    assert "No module named 'envoy_no_such_module'" in result.stderr
    assert result.stdout.strip() == "imports: 3 modules, 1 failed"
