"""Tenant isolation of contacts, lists, segments, imports and exports: another account's ids
answer 404 in the views and NotFoundError in the services, and nothing of theirs leaks."""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask

from core.errors import NotFoundError
from subscribers import exports, services
from tests.subscribers.helpers import logged_in, run_import, tenant_with_list


@pytest.fixture
def alice_and_bob(app: Flask) -> dict[str, Any]:
    alice, list_id = tenant_with_list(app, "alice@a.example")
    bob, bobs_list = tenant_with_list(app, "bob@b.example")
    client = logged_in(app, alice)
    import_id = run_import(app, client, list_id, "email\nsecret@customer.example\nbad\n")
    with app.app_context():
        segment = services.save_segment(
            alice.account_id,
            None,
            "Secret segment",
            "all",
            [{"field": "email", "op": "contains", "value": "secret"}],
        )
        from sqlalchemy import select

        from core import db as core_db
        from subscribers.models import Contact

        contact_id = core_db.session.scalar(select(Contact.id))
    return {
        "alice": alice,
        "bob": bob,
        "bobs_list": bobs_list,
        "list_id": list_id,
        "contact_id": contact_id,
        "segment_id": segment.id,
        "import_id": import_id,
    }


def test_urls_of_another_account_answer_404(app: Flask, alice_and_bob: dict[str, Any]) -> None:
    t = alice_and_bob
    client = logged_in(app, t["bob"])
    gets = [
        f"/lists/{t['list_id']}",
        f"/lists/{t['list_id']}/export.csv",
        f"/lists/{t['list_id']}/export.json",
        f"/contacts/{t['contact_id']}",
        f"/segments/{t['segment_id']}",
        f"/segments/{t['segment_id']}/edit",
        f"/segments/{t['segment_id']}/export.csv",
        f"/segments/{t['segment_id']}/export.json",
        f"/imports/{t['import_id']}",
        f"/imports/{t['import_id']}/status",
        f"/imports/{t['import_id']}/errors.csv",
    ]
    for path in gets:
        response = client.get(path)
        assert response.status_code == 404, path
        assert "secret" not in response.get_data(as_text=True), path
    posts = [
        f"/lists/{t['list_id']}/signup-form",
        f"/contacts/{t['contact_id']}",
        f"/segments/{t['segment_id']}/edit",
        f"/segments/{t['segment_id']}/delete",
        f"/imports/{t['import_id']}",
        f"/imports/{t['import_id']}/delete",
    ]
    for path in posts:
        assert client.post(path, data={"name": "x", "enable": "1"}).status_code == 404, path
    # Bob cannot import into Alice's list.
    import io

    response = client.post(
        "/imports",
        data={"file": (io.BytesIO(b"email\nx@b.example\n"), "x.csv"), "list_id": str(t["list_id"])},
        content_type="multipart/form-data",
    )
    assert response.status_code == 422
    for path in ["/contacts", "/segments", "/imports", "/lists"]:
        body = client.get(path).get_data(as_text=True)
        assert "secret" not in body.lower() and "Secret segment" not in body, path


def test_services_scope_by_account(app: Flask, alice_and_bob: dict[str, Any]) -> None:
    t = alice_and_bob
    bob = t["bob"].account_id
    with app.app_context():
        for call in (
            lambda: services.get_segment(bob, t["segment_id"]),
            lambda: services.get_import(bob, t["import_id"]),
            lambda: services.import_report_path(bob, t["import_id"]),
            lambda: services.delete_segment(bob, t["segment_id"]),
            lambda: services.delete_import(bob, t["import_id"]),
            lambda: services.update_contact(bob, t["contact_id"], "x", {}),
            lambda: services.set_signup_form(bob, t["list_id"], True),
            lambda: services.start_import(bob, t["import_id"], {"0": "email"}, False),
            lambda: exports.export_csv(bob, "list", t["list_id"]),
            lambda: exports.export_json(bob, "segment", t["segment_id"]),
            lambda: services.save_segment(bob, t["segment_id"], "x", "all", []),
        ):
            with pytest.raises(NotFoundError):
                call()
