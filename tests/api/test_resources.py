"""The API's resources do what the pages do, through the same services: contacts (upsert,
rectify, erase), subscriptions (at once or by double opt-in, unsubscribe), and a campaign
composed, counted, sent and followed until the mail arrives."""

from __future__ import annotations

from flask import Flask
from sqlalchemy import select

from core import db as core_db
from subscribers.models import ConsentRecord, Contact
from tests.api.conftest import api, make_key
from tests.conftest import drain
from tests.factories import make_tenant
from tests.smtp_sink import SMTPSink
from tests.subscribers.helpers import confirm_link


def test_upsert_creates_then_rectifies_by_address(app: Flask) -> None:
    with app.app_context():
        tenant = make_tenant()
    client = api(app, make_key(app, tenant))
    first = client.put(
        "/api/v1/contacts",
        json={"email": " Olga@Example.RU ", "name": "Ольга", "attributes": {"city": "Москва"}},
    )
    assert first.status_code == 200
    created = first.get_json()
    assert created["created"] is True and created["email"] == "Olga@example.ru"
    again = client.put("/api/v1/contacts", json={"email": "Olga@EXAMPLE.ru", "name": "Olga"})
    updated = again.get_json()
    assert updated["created"] is False and updated["id"] == created["id"]
    assert updated["name"] == "Olga" and updated["attributes"] == {"city": "Москва"}
    duplicate = client.post("/api/v1/contacts", json={"email": "Olga@example.ru"})
    assert duplicate.status_code == 422
    assert duplicate.get_json()["errors"][0]["field"] == "email"
    bad = client.patch(f"/api/v1/contacts/{created['id']}", json={"attributes": {"": 1}})
    assert bad.status_code == 422
    assert client.get(f"/api/v1/contacts/{created['id']}").get_json()["name"] == "Olga"


def test_subscribe_at_once_unsubscribe_and_only_the_person_resubscribes(app: Flask) -> None:
    with app.app_context():
        tenant = make_tenant()
    client = api(app, make_key(app, tenant))
    list_id = client.post("/api/v1/lists", json={"name": "Weekly"}).get_json()["id"]
    made = client.post(
        f"/api/v1/lists/{list_id}/subscriptions",
        json={"email": "zoë@exämple.org", "name": "Zoë"},
    )
    assert made.status_code == 201
    contact = made.get_json()["contact"]
    assert [s["status"] for s in contact["lists"]] == ["subscribed"]
    assert client.get(f"/api/v1/lists/{list_id}").get_json()["subscribed"] == 1
    gone = client.delete(f"/api/v1/lists/{list_id}/subscriptions/{contact['id']}")
    assert gone.status_code == 204
    assert (
        client.delete(f"/api/v1/lists/{list_id}/subscriptions/{contact['id']}").status_code == 204
    )
    read = client.get(f"/api/v1/contacts/{contact['id']}").get_json()
    assert [s["status"] for s in read["lists"]] == ["unsubscribed"]
    refused = client.post(
        f"/api/v1/lists/{list_id}/subscriptions", json={"email": "zoë@exämple.org"}
    )
    assert refused.status_code == 422
    assert "only they can subscribe again" in refused.get_json()["detail"]
    with app.app_context():
        actions = core_db.session.scalars(
            select(ConsentRecord.action).order_by(ConsentRecord.id)
        ).all()
    assert actions == ["subscribed", "unsubscribed"]


def test_double_opt_in_sends_the_confirmation_and_reveals_nothing(
    app: Flask, smtp_sink: SMTPSink
) -> None:
    with app.app_context():
        tenant = make_tenant()
    client = api(app, make_key(app, tenant))
    list_id = client.post("/api/v1/lists", json={"name": "News"}).get_json()["id"]
    asked = client.post(
        f"/api/v1/lists/{list_id}/subscriptions",
        json={"email": "reader@example.org", "name": "R", "double_opt_in": True},
    )
    assert asked.status_code == 201
    assert asked.get_json() == {"status": "confirmation-sent", "contact": None}
    drain(app)
    link = confirm_link(smtp_sink, "reader@example.org")
    contacts = client.get("/api/v1/contacts?status=unconfirmed").get_json()["items"]
    assert [c["email"] for c in contacts] == ["reader@example.org"]
    assert app.test_client().post(link).status_code == 200
    contacts = client.get(f"/api/v1/contacts?status=subscribed&list_id={list_id}").get_json()
    assert [c["email"] for c in contacts["items"]] == ["reader@example.org"]


def test_deleting_a_contact_erases_it_and_keeps_it_suppressed(app: Flask) -> None:
    with app.app_context():
        tenant = make_tenant()
    client = api(app, make_key(app, tenant))
    list_id = client.post("/api/v1/lists", json={"name": "News"}).get_json()["id"]
    contact = client.post(
        f"/api/v1/lists/{list_id}/subscriptions", json={"email": "li@example.cn"}
    ).get_json()["contact"]
    assert client.delete(f"/api/v1/contacts/{contact['id']}").status_code == 204
    assert client.get(f"/api/v1/contacts/{contact['id']}").status_code == 404
    with app.app_context():
        assert core_db.session.scalars(select(Contact)).all() == []
    again = client.post(f"/api/v1/lists/{list_id}/subscriptions", json={"email": "li@example.cn"})
    assert again.status_code == 422 and "suppression" in again.get_json()["detail"]


def test_a_campaign_composed_counted_sent_and_followed(app: Flask, smtp_sink: SMTPSink) -> None:
    with app.app_context():
        tenant = make_tenant()
    client = api(app, make_key(app, tenant))
    list_id = client.post("/api/v1/lists", json={"name": "News"}).get_json()["id"]
    for address in ("ana@example.org", "李@example.cn"):
        client.post(f"/api/v1/lists/{list_id}/subscriptions", json={"email": address})
    bad = client.post(
        "/api/v1/campaigns", json={"name": "Broken", "html_body": "{{ unclosed", "list_ids": []}
    )
    assert bad.status_code == 422
    made = client.post(
        "/api/v1/campaigns",
        json={
            "name": "Spring",
            "subject": "Hello {{ contact.name or 'there' }}",
            "from_name": "Shop",
            "from_email": "news@shop.example",
            "html_body": "<p>Spring is here</p>",
            "list_ids": [list_id],
        },
    )
    assert made.status_code == 201, made.get_data(as_text=True)
    campaign = made.get_json()
    assert campaign["status"] == "draft" and campaign["list_ids"] == [list_id]
    etag = client.get(f"/api/v1/campaigns/{campaign['id']}").headers["ETag"]
    renamed = client.patch(
        f"/api/v1/campaigns/{campaign['id']}", json={"name": "Spring!"}, headers={"If-Match": etag}
    )
    assert renamed.get_json()["name"] == "Spring!"
    audience = client.get(f"/api/v1/campaigns/{campaign['id']}/audience").get_json()
    assert audience == {"recipients": 2, "suppressed": 0, "problems": []}
    moved = client.post(
        f"/api/v1/campaigns/{campaign['id']}/send", json={"expected_recipients": 40}
    )
    assert moved.status_code == 409 and "now 2 recipients" in moved.get_json()["detail"]
    sent = client.post(f"/api/v1/campaigns/{campaign['id']}/send", json={"expected_recipients": 2})
    assert sent.status_code == 200 and sent.get_json()["status"] == "sending"
    assert client.post(f"/api/v1/campaigns/{campaign['id']}/send", json={}).status_code == 422
    drain(app)
    progress = client.get(f"/api/v1/campaigns/{campaign['id']}/progress").get_json()
    assert progress["sent"] == 2 and progress["status"] == "sent"
    assert len(smtp_sink.to("ana@example.org")) == 1
    listed = client.get("/api/v1/campaigns?status=sent").get_json()["items"]
    assert [c["name"] for c in listed] == ["Spring!"]
    cannot = client.post(f"/api/v1/campaigns/{campaign['id']}/pause")
    assert cannot.status_code == 422


def test_suppression_is_added_and_checked_without_revealing_other_accounts(app: Flask) -> None:
    with app.app_context():
        tenant = make_tenant()
        other = make_tenant("owner@other.example", "Other")
        from subscribers import services as subscribers

        subscribers.block_address("blocked@example.org")  # an operator's platform-wide block
    ours = api(app, make_key(app, tenant))
    theirs = api(app, make_key(app, other))
    added = ours.post("/api/v1/suppressions", json={"email": "Gone@Example.org"})
    assert added.get_json() == {"suppressed": True, "scope": "account", "reason": "manual"}
    assert ours.post("/api/v1/suppressions", json={"email": "Gone@example.org"}).status_code == 200
    # The other account learns nothing of ours; the platform's block shows without detail.
    assert theirs.post(
        "/api/v1/suppressions/check", json={"email": "Gone@example.org"}
    ).get_json() == {
        "suppressed": False,
        "scope": None,
        "reason": None,
    }
    blocked = theirs.post("/api/v1/suppressions/check", json={"email": "blocked@example.org"})
    assert blocked.get_json() == {"suppressed": True, "scope": "platform", "reason": None}
    refused = ours.post("/api/v1/contacts", json={"email": "Gone@example.org"})
    assert refused.status_code == 422


def test_templates_segments_and_a_report_keep_the_pages_rules(app: Flask) -> None:
    with app.app_context():
        tenant = make_tenant()
        from subscribers import services as subscribers

        list_id = subscribers.create_list(tenant.account_id, "News").id
        for address in ("ana@example.org", "bo@example.org"):
            subscribers.add_contact_to_list(tenant.account_id, list_id, address)
        segment = subscribers.save_segment(
            tenant.account_id,
            None,
            "Ana",
            "all",
            [{"field": "email", "op": "contains", "value": "ana"}],
        )
    client = api(app, make_key(app, tenant))
    assert client.get(f"/api/v1/segments/{segment.id}/count").get_json() == {
        "contacts": 1,
        "kept_out": 0,
    }
    broken = client.post("/api/v1/templates", json={"name": "T", "html_body": "{% if %}"})
    assert broken.status_code == 422
    made = client.post("/api/v1/templates", json={"name": "Welcome", "html_body": "<p>Hi</p>"})
    template = made.get_json()
    etag = client.get(f"/api/v1/templates/{template['id']}").headers["ETag"]
    replaced = client.put(
        f"/api/v1/templates/{template['id']}",
        json={"name": "Welcome v2", "html_body": "<p>Hello</p>"},
        headers={"If-Match": etag},
    )
    assert replaced.get_json()["name"] == "Welcome v2"
    stale = client.delete(f"/api/v1/templates/{template['id']}", headers={"If-Match": etag})
    assert stale.status_code == 412
    campaign = client.post(
        "/api/v1/campaigns",
        json={
            "name": "C",
            "subject": "S",
            "from_email": "news@shop.example",
            "html_body": "<p>x</p>",
            "list_ids": [list_id],
        },
    ).get_json()
    client.post(f"/api/v1/campaigns/{campaign['id']}/send", json={})
    drain(app)
    report = client.get(f"/api/v1/campaigns/{campaign['id']}/report").get_json()
    assert report["sent"] == 2 and report["identified"] is False
    # Individual tracking is off by default: no unique or per-domain engagement, as the page.
    assert report["unique_opens"] is None and report["unique_clicks"] is None
    assert all(domain["opens"] is None for domain in report["domains"])


def test_an_import_is_uploaded_started_followed_and_its_errors_downloaded(app: Flask) -> None:
    with app.app_context():
        tenant = make_tenant()
    client = api(app, make_key(app, tenant))
    list_id = client.post("/api/v1/lists", json={"name": "Imported"}).get_json()["id"]
    csv_body = "Name;E-mail\nZoë;zoe@example.org\nBad;not-an-address\n李;li@example.cn\n"
    uploaded = client.post(
        f"/api/v1/imports?list_id={list_id}&filename=people.csv",
        data=csv_body.encode("utf-8"),
        content_type="text/csv",
    )
    assert uploaded.status_code == 201, uploaded.get_data(as_text=True)
    job = uploaded.get_json()
    assert job["columns"] == ["Name", "E-mail"] and job["status"] == "uploaded"
    refused = client.post(f"/api/v1/imports/{job['id']}/start", json={"mapping": {"0": "name"}})
    assert refused.status_code == 422
    started = client.post(
        f"/api/v1/imports/{job['id']}/start", json={"mapping": {"0": "name", "1": "email"}}
    )
    assert started.get_json()["status"] == "queued"
    drain(app)
    done = client.get(f"/api/v1/imports/{job['id']}").get_json()
    assert (done["status"], done["created"], done["errors"]) == ("done", 2, 1)
    errors = client.get(f"/api/v1/imports/{job['id']}/errors")
    assert errors.status_code == 200 and errors.mimetype == "text/csv"
    assert "not-an-address" in errors.get_data(as_text=True)
    empty = client.post(f"/api/v1/imports?list_id={list_id}", data=b"", content_type="text/csv")
    assert empty.status_code == 422


def test_the_accounts_data_requests_are_listed_and_a_correction_applied(app: Flask) -> None:
    with app.app_context():
        tenant = make_tenant()
        from privacy import services as privacy
        from subscribers import services as subscribers

        list_id = subscribers.create_list(tenant.account_id, "News").id
        contact = subscribers.add_contact_to_list(tenant.account_id, list_id, "ana@example.org")
        privacy.restrict_contact(tenant.account_id, contact.id, tenant.user_id)
    client = api(app, make_key(app, tenant))
    listed = client.get("/api/v1/data-requests").get_json()["items"]
    assert [(r["kind"], r["contact_id"]) for r in listed] == [("restrict", contact.id)]
    one = client.get(f"/api/v1/data-requests/{listed[0]['id']}").get_json()
    assert one == listed[0]
    not_a_correction = client.post(f"/api/v1/data-requests/{listed[0]['id']}/apply")
    assert not_a_correction.status_code in (404, 422)
