"""Shared helpers for the subscribers tests (public interfaces only)."""

from __future__ import annotations

import csv
import io
import re
from typing import Any

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select, update

from accounts.models import User
from core import db as core_db
from subscribers import services
from tests.conftest import drain
from tests.factories import Tenant, login, make_tenant
from tests.smtp_sink import SMTPSink


def tenant_with_list(
    app: Flask, email: str = "owner@shop.example", list_name: str = "News"
) -> tuple[Tenant, int]:
    with app.app_context():
        tenant = make_tenant(email)
        mailing_list = services.create_list(tenant.account_id, list_name)
        return tenant, mailing_list.id


def logged_in(app: Flask, tenant: Tenant) -> FlaskClient:
    client = app.test_client()
    login(client, tenant.email)
    return client


def make_operator(app: Flask, tenant: Tenant) -> None:
    with app.app_context():
        core_db.session.execute(
            update(User).where(User.id == tenant.user_id).values(is_platform_admin=True)
        )
        core_db.session.commit()


def signup_key(app: Flask, tenant: Tenant, list_id: int) -> str:
    with app.app_context():
        key = services.set_signup_form(tenant.account_id, list_id, True).signup_key
        assert key
        return key


def confirm_link(sink: SMTPSink, address: str) -> str:
    """The path of the confirmation link in the last email to ``address``."""
    received = sink.to(address)
    assert received, f"no email to {address}"
    body = received[-1].message.get_body(preferencelist=("plain",))
    assert body is not None
    match = re.search(r"https?://[^/\s]+(/subscribe/confirm/\S+)", body.get_content())
    assert match, body.get_content()
    return match.group(1)


def upload_csv(client: FlaskClient, list_id: int, text: str, update_existing: bool = False) -> int:
    data: dict[str, Any] = {
        "file": (io.BytesIO(text.encode()), "contacts.csv"),
        "list_id": str(list_id),
    }
    if update_existing:
        data["update_existing"] = "y"
    response = client.post("/imports", data=data, content_type="multipart/form-data")
    assert response.status_code == 302, response.get_data(as_text=True)
    return int(response.headers["Location"].rstrip("/").rsplit("/", 1)[1])


def run_import(
    app: Flask,
    client: FlaskClient,
    list_id: int,
    text: str,
    mapping: dict[str, str] | None = None,
    update_existing: bool = False,
) -> int:
    """Upload, map (email is column 0 unless told) and run an import through the UI."""
    import_id = upload_csv(client, list_id, text)
    form = {f"column-{k}": v for k, v in (mapping or {}).items()}
    if update_existing:
        form["update_existing"] = "1"
    response = client.post(f"/imports/{import_id}", data=form)
    assert response.status_code == 302
    drain(app)
    return import_id


def report_rows(client: FlaskClient, import_id: int) -> list[dict[str, str]]:
    response = client.get(f"/imports/{import_id}/errors.csv")
    assert response.status_code == 200
    return list(csv.DictReader(io.StringIO(response.get_data(as_text=True))))


def contact_emails(app: Flask, account_id: int) -> set[str]:
    from subscribers.models import Contact

    with app.app_context():
        return set(
            core_db.session.scalars(select(Contact.email).where(Contact.account_id == account_id))
        )
