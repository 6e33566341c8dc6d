"""Checks that the set-up works, run by scripts/test (stdlib only: it runs in any venv).

    python scripts/setup_check.py imports      every application module imports here
    python scripts/setup_check.py declared     every third-party import is a declared dependency
    python scripts/setup_check.py floors       the installed version of each declared dependency
    python scripts/setup_check.py test-tools   the dev extras that tests run with (no type
                                               stubs, type checker or linter), one per line
    python scripts/setup_check.py login URL LOG
                                               the app at URL serves /login, and the demo login
                                               printed in LOG (scripts/start's output) reaches
                                               the dashboard, and LOG holds no INFO chatter

Run from the project root. The application packages are those pyproject.toml installs
([tool.setuptools.packages.find] include), plus wsgi.py.
"""

from __future__ import annotations

import ast
import http.cookiejar
import importlib
import os
import re
import sys
import tempfile
import time
import tomllib
import traceback
import urllib.error
import urllib.parse
import urllib.request
from html.parser import HTMLParser
from importlib import metadata
from pathlib import Path

ROOT = Path.cwd()


def _pyproject() -> dict:
    with open(ROOT / "pyproject.toml", "rb") as file:
        return tomllib.load(file)


def app_packages() -> list[str]:
    """The top-level packages pyproject.toml installs, in a stable order."""
    find = _pyproject()["tool"]["setuptools"]["packages"]["find"]
    return sorted({pattern.rstrip("*").rstrip(".") for pattern in find["include"]})


def app_modules() -> list[str]:
    """Every module of every application package (migrations/env.py runs only under Alembic)."""
    names: list[str] = []
    for package in app_packages():
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            name = ".".join(parts)
            if name != "migrations.env":
                names.append(name)
    return [*names, "wsgi"]


def check_imports() -> int:
    """Import every application module and wsgi.py; print each failure, return how many.

    The app is built by wsgi.py on a throwaway data dir, with no worker or scheduler thread.
    """
    os.environ["VAR_DIR"] = tempfile.mkdtemp(prefix="envoy-imports-")
    for name in ("DATABASE_URL", "REDIS_URL", "SMTP_URL", "MAILDIR_PATH"):
        os.environ.pop(name, None)
    os.environ.update(INPROCESS_WORKER="false", SCHEDULER_INPROCESS="false", LOG_LEVEL="WARNING")
    sys.path.insert(0, str(ROOT))
    modules = app_modules()
    failures = 0
    for name in modules:
        try:
            importlib.import_module(name)
        except Exception:
            failures += 1
            print(f"cannot import {name}:", file=sys.stderr)
            traceback.print_exc(limit=-2)
    print(f"imports: {len(modules)} modules, {failures} failed")
    return failures


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _requirement_name(requirement: str) -> str:
    match = re.match(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)", requirement)
    return _norm(match.group(1)) if match else ""


def check_declared() -> int:
    """Every third-party module the application imports comes from a distribution declared in
    [project] dependencies (a dev extra, or a dependency of a dependency, is not enough), and
    every declared distribution is imported or named in [tool.envoy.runtime-not-imported].
    Print each problem, return how many."""
    project = _pyproject()
    declared = {_requirement_name(r) for r in project["project"]["dependencies"]}
    not_imported = {_norm(name) for name in project["tool"]["envoy"]["runtime-not-imported"]}
    local = set(app_packages()) | {"wsgi"}
    providers = metadata.packages_distributions()
    files = [ROOT / "wsgi.py"] + [p for pkg in app_packages() for p in (ROOT / pkg).rglob("*.py")]
    problems: list[str] = []
    used: set[str] = set()
    seen: set[str] = set()
    for path in sorted(files):
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if isinstance(node, ast.Import):
                tops = [alias.name.split(".")[0] for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                tops = [node.module.split(".")[0]]
            else:
                continue
            for top in tops:
                if top in sys.stdlib_module_names or top in local:
                    continue
                dists = {_norm(d) for d in providers.get(top, [])}
                used |= dists & declared
                if top in seen:
                    continue
                seen.add(top)
                if not dists & declared:
                    where = f"{path.relative_to(ROOT)}:{node.lineno}"
                    origin = f" (installed here by {', '.join(sorted(dists))})" if dists else ""
                    problems.append(
                        f"{where} imports {top}{origin}: add its distribution to "
                        "[project] dependencies in pyproject.toml, with a lower bound"
                    )
    for name in sorted(declared - used - not_imported):
        problems.append(
            f"{name} is a declared dependency that no application module imports: remove it, "
            "or say why it is needed in [tool.envoy.runtime-not-imported]"
        )
    for problem in problems:
        print(problem, file=sys.stderr)
    print(f"declared dependencies: {len(seen)} third-party modules, {len(problems)} problem(s)")
    return len(problems)


def installed_versions() -> str:
    """The version installed here of each declared runtime dependency, on one line."""
    names = [_requirement_name(r) for r in _pyproject()["project"]["dependencies"]]
    return ", ".join(f"{name} {metadata.version(name)}" for name in names)


#: Dev extras that only lint or type-check: they never run the tests, and type stubs may ask
#: for newer runtime packages than the floors (types-redis wants cryptography>=35).
STATIC_TOOLS = {"mypy", "ruff"}


def test_tools() -> list[str]:
    """The dev extras the tests need, as requirement strings."""
    dev = _pyproject()["project"]["optional-dependencies"]["dev"]
    return [
        r
        for r in dev
        if not _requirement_name(r).startswith("types-")
        and _requirement_name(r) not in STATIC_TOOLS
    ]


class _FormFields(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.fields: dict[str, str] = {}

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        if tag == "input" and values.get("name"):
            self.fields[values["name"] or ""] = values.get("value") or ""


def check_login(base_url: str, log_path: str, wait_seconds: float = 300) -> int:
    """Wait for base_url/login to answer 200, then log in with the credentials the start
    output printed and follow the redirect to the dashboard; the start output has no INFO log
    lines (those of a quiet start are errors and warnings only). Return 0 when all held."""
    if not base_url.startswith("http://"):
        print(f"not a local http URL: {base_url}", file=sys.stderr)
        return 1
    cookies = http.cookiejar.CookieJar()
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(cookies))
    deadline = time.monotonic() + wait_seconds
    while True:
        try:
            with opener.open(base_url + "/login", timeout=10) as response:
                login_page = response.read().decode()
            break
        except (urllib.error.URLError, ConnectionError) as exc:
            if time.monotonic() > deadline:
                print(f"login page never answered: {exc}", file=sys.stderr)
                return 1
            time.sleep(0.3)
    printed = re.search(r"Log in as (\S+) with the password (\S+)", Path(log_path).read_text())
    if printed is None:
        print("the start output does not print the demo login", file=sys.stderr)
        return 1
    email, password = printed.groups()
    parser = _FormFields()
    parser.feed(login_page)
    if "csrf_token" not in parser.fields:
        print("the login form has no CSRF token", file=sys.stderr)
        return 1
    form = {**parser.fields, "email": email, "password": password}
    request = urllib.request.Request(  # noqa: S310 (an http:// URL, checked above)
        base_url + "/login", data=urllib.parse.urlencode(form).encode(), method="POST"
    )
    try:
        with opener.open(request, timeout=30) as response:
            landed, page = response.url, response.read().decode()
    except urllib.error.HTTPError as exc:
        print(f"logging in as the printed demo user answered {exc.code}", file=sys.stderr)
        return 1
    if urllib.parse.urlsplit(landed).path != "/dashboard" or "Log out" not in page:
        print(f"logging in landed on {landed}, not on the dashboard", file=sys.stderr)
        return 1
    chatter = [
        line
        for line in Path(log_path).read_text().splitlines()
        if re.match(r"\d{4}-\d\d-\d\d [\d:,]+ (INFO|DEBUG) ", line)
    ]
    if chatter:
        print("the start output should be a few lines, it also logs:", file=sys.stderr)
        print("\n".join(chatter), file=sys.stderr)
        return 1
    print(f"start path: {base_url}/login answers, the printed login reaches the dashboard")
    return 0


def main(argv: list[str]) -> int:
    if argv[:1] == ["imports"]:
        return 1 if check_imports() else 0
    if argv[:1] == ["declared"]:
        return 1 if check_declared() else 0
    if argv[:1] == ["test-tools"]:
        print("\n".join(test_tools()))
        return 0
    if argv[:1] == ["floors"]:
        print(installed_versions())
        return 0
    if argv[:1] == ["login"] and len(argv) == 3:
        return check_login(argv[1], argv[2])
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
