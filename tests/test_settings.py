"""One source of settings (core/settings.py): every setting declared, typed and validated there,
read from the environment there only, refused at start when not allowed, and documented in the
generated docs/readme/settings.md."""

from __future__ import annotations

import ast
import io
import multiprocessing.context
import os
import re
import subprocess
import sys
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import time_machine
from flask import Flask

from campaigns import services as campaign_services
from core import scheduler
from core.app import create_app
from core.db import utcnow
from core.registry import DOMAIN_PACKAGES
from core.settings import DOC_PATH, NAMES, PROJECT_ROOT, Settings, SettingsError, load_config
from core.settings import markdown as settings_markdown
from tests.conftest import drain
from tests.factories import make_campaign, make_list_with_contacts, make_tenant
from tests.smtp_sink import SMTPSink
from tests.subscribers.helpers import (
    confirm_link,
    logged_in,
    run_import,
    signup_key,
    tenant_with_list,
    upload_csv,
)

#: Every package of the application (core and the domain packages, core/registry.py).
APP_PACKAGES = ("core", *DOMAIN_PACKAGES)
BOOLEANS = sorted(name for name, info in Settings.model_fields.items() if info.annotation is bool)


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> pytest.MonkeyPatch:
    """No declared setting in the environment but a data dir of this test."""
    for name in NAMES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("VAR_DIR", str(tmp_path / "var"))
    return monkeypatch


# --- booleans ---------------------------------------------------------------------------------


@pytest.mark.parametrize("name", BOOLEANS)
def test_false_is_false_for_every_boolean_setting(clean_env: pytest.MonkeyPatch, name: str) -> None:
    for word in ("false", "False", "FALSE", "0", "no", "Off", " off "):
        clean_env.setenv(name, word)
        assert load_config()[name] is False, word
        assert load_config({name: word})[name] is False, word
    for word in ("true", "TRUE", "1", "yes", "On"):
        clean_env.setenv(name, word)
        assert load_config()[name] is True, word


@pytest.mark.parametrize("word", ["maybe", "flase", "2", "tru", "enabled"])
def test_a_boolean_that_is_no_boolean_word_is_refused(
    clean_env: pytest.MonkeyPatch, word: str
) -> None:
    clean_env.setenv("INPROCESS_WORKER", word)
    with pytest.raises(SettingsError, match=r"INPROCESS_WORKER=.*must be true or false"):
        load_config()


def test_the_string_false_turns_sender_verification_off(
    app_factory: Any, smtp_sink: SMTPSink
) -> None:
    # The sending reader used to hand back the string, and "false" counted as true.
    app = app_factory(REQUIRE_VERIFIED_SENDER="false")
    assert app.config["REQUIRE_VERIFIED_SENDER"] is False
    with app.app_context():
        tenant = make_tenant()
        list_id = make_list_with_contacts(tenant, ["ada@example.org"])
        campaign_id = make_campaign(tenant, list_id)  # from an address nobody verified
        campaign_services.start(tenant.account_id, campaign_id)
    drain(app)
    assert smtp_sink.wait_for(1)[-1].recipients == ["ada@example.org"]


# --- the five settings that were ignored from the environment ---------------------------------


def test_import_dir_and_max_bytes_are_read_from_the_environment(
    app_factory: Any, clean_env: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    folder = tmp_path / "uploads-from-env"
    clean_env.setenv("IMPORT_DIR", str(folder))
    clean_env.setenv("IMPORT_MAX_BYTES", "1000")
    app = app_factory()
    tenant, list_id = tenant_with_list(app)
    client = logged_in(app, tenant)
    page = client.get("/imports").get_data(as_text=True)
    assert 'data-max-bytes="1000"' in page and "Up to 1.0 kB." in page
    upload_csv(client, list_id, "email\nada@example.org\n")
    assert [p.name for p in folder.iterdir()], "the upload is kept in IMPORT_DIR"
    rows = "".join(f"person{i}@example.org\n" for i in range(200)).encode()
    refused = client.post(
        "/imports",
        data={"file": (io.BytesIO(b"email\n" + rows), "big.csv"), "list_id": str(list_id)},
        content_type="multipart/form-data",
    )
    assert refused.status_code in (413, 422)
    assert "The file is larger than 1.0 kB; split it." in refused.get_data(as_text=True)


def _helpers_started(
    app: Flask, monkeypatch: pytest.MonkeyPatch, csv_text: str
) -> tuple[list[int], dict[str, Any]]:
    started: list[int] = []
    original = multiprocessing.context.SpawnProcess.start

    def counting_start(process: Any) -> None:
        started.append(1)
        original(process)

    monkeypatch.setattr(multiprocessing.context.SpawnProcess, "start", counting_start)
    tenant, list_id = tenant_with_list(app)
    client = logged_in(app, tenant)
    import_id = run_import(app, client, list_id, csv_text, {"0": "email", "1": "name"})
    status: dict[str, Any] = client.get(f"/imports/{import_id}/status").get_json()
    return started, status


def test_import_helpers_and_their_threshold_are_read_from_the_environment(
    app_factory: Any, clean_env: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    clean_env.setenv("IMPORT_DIR", str(tmp_path / "imports"))
    clean_env.setenv("IMPORT_HELPER_MIN_BYTES", "1")
    clean_env.setenv("IMPORT_HELPERS", "2")
    app = app_factory()
    lines = ["email,name"] + [f"user{i}@example.org,User {i}" for i in range(50)]
    started, status = _helpers_started(app, clean_env, "\n".join(lines) + "\n")
    assert (status["status"], status["created"]) == ("done", 50)
    # The default threshold (4 MiB) would have checked this small file inline, with none.
    assert len(started) == 2


def test_signup_confirm_max_age_is_read_from_the_environment(
    app_factory: Any, clean_env: pytest.MonkeyPatch, smtp_sink: SMTPSink
) -> None:
    clean_env.setenv("SIGNUP_CONFIRM_MAX_AGE", "60")
    app = app_factory()
    tenant, list_id = tenant_with_list(app)
    key = signup_key(app, tenant, list_id)
    client = app.test_client()
    # Two minutes old: well within the 48-hour default, past the 60 s configured.
    with time_machine.travel(utcnow() - timedelta(minutes=2), tick=False):
        client.post(f"/subscribe/{key}", data={"email": "late@example.org"})
        drain(app)
    response = client.post(confirm_link(smtp_sink, "late@example.org"))
    assert response.status_code == 410 and "expired" in response.get_data(as_text=True)


def test_the_upload_keep_hours_are_read_from_the_environment(
    app_factory: Any, clean_env: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # A sixth import setting that was documented and read only from the app config.
    clean_env.setenv("IMPORT_DIR", str(tmp_path / "imports"))
    clean_env.setenv("IMPORT_UPLOAD_KEEP_HOURS", "2")
    app = app_factory()
    tenant, list_id = tenant_with_list(app)
    start = datetime(2026, 12, 1, 9, 0)
    with time_machine.travel(start, tick=False):
        import_id = upload_csv(logged_in(app, tenant), list_id, "email\nada@example.org\n")
    with time_machine.travel(start + timedelta(hours=2, minutes=1), tick=False):
        swept = scheduler.run_jobs(app, only=["personal-data-retention"])
        assert swept["personal-data-retention"]["import_files"] == 1
    page = logged_in(app, tenant).get(f"/imports/{import_id}").get_data(as_text=True)
    assert "The columns were not mapped within 2 hours, so the file was deleted." in page


# --- invalid values are refused at start ------------------------------------------------------


def test_the_factory_refuses_invalid_values_naming_each_and_what_it_allows(
    clean_env: pytest.MonkeyPatch,
) -> None:
    clean_env.setenv("SEND_MARK_DURABILITY", "fast")
    clean_env.setenv("SMTP_URL", "http://mailer:hunter2@smtp.example")
    with pytest.raises(SettingsError) as raised:
        create_app({"TESTING": True, "SEND_BATCH_SIZE": 0, "DATABASE_URL": "mysql://x/y"})
    message = str(raised.value)
    assert "SEND_MARK_DURABILITY='fast'" in message and "'server' or 'disk'" in message
    assert "SEND_BATCH_SIZE=0" in message and "greater than or equal to 1" in message
    assert "SMTP_URL=" in message and "smtp:// or smtps://" in message
    assert "DATABASE_URL=" in message and "sqlite://" in message
    assert "hunter2" not in message and "mysql" not in message  # URLs may hold passwords


@pytest.mark.parametrize(
    ("name", "value", "allowed"),
    [
        ("TRUSTED_PROXY_HOPS", "eleven", "integer, 0 to 10"),
        ("IMPORT_MAX_BYTES", "-5", "integer ≥ 1"),
        ("LOG_LEVEL", "loud", "DEBUG, INFO, WARNING, ERROR or CRITICAL"),
        ("BASE_URL", "mail.example.com", "http:// or https://"),
        ("LOGIN_LIMITS_PER_ADDRESS", "often", "rate limits"),
        ("TRACKING_MACHINE_NETWORKS", "10.0.0.0/8,not-a-net", "CIDR"),
        ("ENGINE_DEFERRAL_THRESHOLD", "5", "number > 0, ≤ 1"),
    ],
)
def test_the_factory_refuses_an_invalid_value(
    clean_env: pytest.MonkeyPatch, name: str, value: str, allowed: str
) -> None:
    clean_env.setenv(name, value)
    with pytest.raises(SettingsError, match=re.escape(name)) as raised:
        create_app({"TESTING": True})
    assert allowed in str(raised.value)


def _start(entry: str, tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if k not in NAMES}
    clean.update(PYTHONPATH=str(PROJECT_ROOT), VAR_DIR=str(tmp_path / "var"), **env)
    return subprocess.run(
        [sys.executable, "-c", entry],
        cwd=PROJECT_ROOT,
        env=clean,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.mark.parametrize(
    "entry",
    ["import wsgi", "import core.worker", "from flask.cli import main; main()"],
    ids=["wsgi", "dramatiq-worker", "flask-cli"],
)
def test_an_entry_point_stops_with_the_message_not_a_traceback(tmp_path: Path, entry: str) -> None:
    if "flask" in entry:
        entry = "import sys; sys.argv = ['flask', '--app', 'wsgi', 'migrate']; " + entry
    done = _start(
        entry,
        tmp_path,
        SCHEDULER_INTERVAL_SECONDS="5 minutes",
        SCHEDULER_INPROCESS="sometimes",
        BOUNCE_IMAP_URL="https://reader:hunter2@mail.example/INBOX",
    )
    assert done.returncode == 1, done.stderr
    assert "Traceback" not in done.stderr
    assert "Envoy cannot start. Invalid settings" in done.stderr
    assert "SCHEDULER_INTERVAL_SECONDS='5 minutes'" in done.stderr and "integer" in done.stderr
    assert "SCHEDULER_INPROCESS='sometimes': must be true or false" in done.stderr
    assert "BOUNCE_IMAP_URL=a value not shown" in done.stderr and "hunter2" not in done.stderr


# --- one reader -------------------------------------------------------------------------------


def _app_sources() -> list[Path]:
    files = [PROJECT_ROOT / "wsgi.py"]
    for package in (*APP_PACKAGES, "migrations"):
        files += sorted((PROJECT_ROOT / package).rglob("*.py"))
    return files


def test_nothing_but_core_settings_reads_the_environment() -> None:
    readers = []
    for path in _app_sources():
        if path == PROJECT_ROOT / "core" / "settings.py":
            continue
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            attribute = (
                isinstance(node, ast.Attribute)
                and node.attr in {"environ", "environb", "getenv", "getenvb"}
                and isinstance(node.value, ast.Name)
                and node.value.id == "os"
            )
            imported = isinstance(node, ast.ImportFrom) and any(
                alias.name in {"environ", "getenv"} for alias in node.names
            )
            if attribute or imported:
                readers.append(f"{path.relative_to(PROJECT_ROOT)}:{node.lineno}")  # type: ignore[attr-defined]
    assert readers == [], "settings are read in core/settings.py only"


#: Config keys the code reads that are not settings of ours, and why.
NOT_SETTINGS = {
    "SECRET_KEY": "Flask's signing key, the last of SECRET_KEYS (core/settings.load_config)",
    "TESTING": "Flask's test mode, set by the test fixtures",
    "SNS_HTTP_GET": "a test hook: the function fetching SNS certificates (campaigns/bounces.py)",
}
_READ = re.compile(
    r"""(?:config\s*\[\s*|config\.get\(\s*|setting\(\s*(?:\w+,\s*)?)["']([A-Z][A-Z0-9_]+)["']"""
)


def test_every_setting_the_code_reads_is_declared() -> None:
    read = {name for path in _app_sources() for name in _READ.findall(path.read_text())}
    assert {"SEND_CLAIM_TIMEOUT", "IMPORT_HELPERS", "TRACKING_BATCH_SIZE"} <= read  # the scan works
    assert sorted(read - NAMES - set(NOT_SETTINGS)) == []


def test_every_declared_setting_is_read_somewhere() -> None:
    declaration = PROJECT_ROOT / "core" / "settings.py"
    sources = "\n".join(path.read_text() for path in _app_sources() if path != declaration)
    unread = [name for name in sorted(NAMES) if not re.search(rf"\b{name}\b", sources)]
    assert unread == []


# --- the generated table ----------------------------------------------------------------------


def test_the_committed_settings_table_is_the_generated_one() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "core.settings", "--markdown"],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "PYTHONPATH": str(PROJECT_ROOT)},
    )
    assert done.stdout == settings_markdown()
    assert DOC_PATH.read_text() == done.stdout, (
        "docs/readme/settings.md is stale: run "
        "`python -m core.settings --markdown > docs/readme/settings.md`"
    )
    for name, info in Settings.model_fields.items():
        assert info.description, name
        assert f"| `{name}` |" in done.stdout
