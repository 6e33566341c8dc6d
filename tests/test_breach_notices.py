"""Breach notices (issue 13, policy 003 s.11) through HTTP and the received email: an operator
records an incident, selects the affected accounts (their contacts counted as concerned),
sends each account's owners a notice, later attaches and sends a report; every step is logged
with who did it; owners find both under Settings > Breach notices; nobody else gets in."""

from __future__ import annotations

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from accounts import services as accounts
from accounts.models import SecurityEvent, User
from core import db as core_db
from tests.conftest import drain
from tests.factories import PASSWORD, Tenant, login, make_list_with_contacts, make_tenant
from tests.smtp_sink import SMTPSink

INCIDENT = {
    "title": "Unauthorised read of the contacts table",
    "what_happened": "A leaked database replica credential was used to read the contacts table.",
    "discovered_at": "2026-11-19T22:15",
    "data_categories": "Contact email addresses and names.",
    "consequences": "Phishing emails to your contacts are possible.",
    "measures": "The credential was revoked and the replica rebuilt.",
}
REPORT = "All replica credentials were rotated; access now requires a client certificate."


def _client(app: Flask, email: str) -> FlaskClient:
    client = app.test_client()
    login(client, email)
    return client


def _setup(app: Flask) -> tuple[Tenant, Tenant, Tenant, Tenant]:
    """An operator (owner of the platform's own account), two affected accounts (one with two
    owners and a member) and one account left out."""
    with app.app_context():
        operator = make_tenant("ops@envoy.example", "Envoy Ops")
        user = core_db.session.get(User, operator.user_id)
        assert user is not None
        user.is_platform_admin = True
        core_db.session.commit()
        cafe = make_tenant("olga@cafe.example", "Café Ольга")
        make_list_with_contacts(cafe, ["a@x.example", "b@x.example", "c@x.example"])
        accounts.add_member(cafe.account_id, "owner", "zoe@cafe.example", "Zoë", "owner")
        accounts.add_member(cafe.account_id, "owner", "member@cafe.example", "M", "member")
        shop = make_tenant("li@shop.example", "Shop 李")
        make_list_with_contacts(shop, ["d@y.example"])
        spared = make_tenant("spared@else.example", "Elsewhere")
        for address in ("zoe@cafe.example", "member@cafe.example"):
            found = core_db.session.scalar(select(User).where(User.email == address))
            assert found is not None
            found.password_hash = accounts._hasher.hash(PASSWORD)
        core_db.session.commit()
        core_db.session.remove()
    return operator, cafe, shop, spared


def _body(smtp_sink: SMTPSink, address: str, subject_start: str) -> str:
    for received in smtp_sink.to(address):
        if " ".join(str(received.message["Subject"]).split()).startswith(subject_start):
            part = received.message.get_body(preferencelist=("plain",))
            assert part is not None
            return str(part.get_content())
    raise AssertionError(f"no {subject_start!r} mail to {address}")


def test_operator_records_notifies_and_reports_and_owners_read_it(
    app: Flask, smtp_sink: SMTPSink
) -> None:
    operator, cafe, shop, spared = _setup(app)
    ops = _client(app, operator.email)
    bad = ops.post("/admin/breaches", data={**INCIDENT, "measures": ""})
    assert bad.status_code == 422
    future = ops.post("/admin/breaches", data={**INCIDENT, "discovered_at": "2099-12-01T10:00"})
    assert "The discovery cannot lie in the future." in future.text
    created = ops.post("/admin/breaches", data=INCIDENT)
    assert created.status_code == 302
    page_url = created.headers["Location"]
    incident_id = int(page_url.rsplit("/", 1)[1])
    page = ops.get(page_url).text
    assert "No account selected yet" in page and "Café Ольга" in page

    none = ops.post(f"/admin/breaches/{incident_id}/accounts", data={})
    assert none.status_code == 422 and "Select at least one account." in none.text
    selected = ops.post(
        f"/admin/breaches/{incident_id}/accounts",
        data={"account_ids": [str(cafe.account_id), str(shop.account_id)]},
    )
    assert selected.status_code == 302
    page = ops.get(page_url).text
    assert "2 accounts,\n  4 contacts concerned" in page

    # Report before notices: refused.
    early = ops.post(f"/admin/breaches/{incident_id}/report", data={"report": REPORT})
    assert early.status_code == 422
    assert ops.post(f"/admin/breaches/{incident_id}/notify").status_code == 302
    drain(app)
    for owner in ("olga@cafe.example", "zoe@cafe.example"):
        body = _body(smtp_sink, owner, "Security incident notice")
        assert INCIDENT["what_happened"] in body and INCIDENT["measures"] in body
        assert "Contacts of Café Ольга concerned: 3" in body
        assert "19 Nov 2026, 22:15 UTC" in body
        assert "/settings/breach-notices" in body
    assert "Contacts of Shop 李 concerned: 1" in _body(
        smtp_sink, "li@shop.example", "Security incident notice"
    )
    assert smtp_sink.to("member@cafe.example") == [] or all(
        "incident" not in str(r.message["Subject"]) for r in smtp_sink.to("member@cafe.example")
    )
    assert smtp_sink.to("spared@else.example") == []
    # Sending again has nobody left to notify; a retried job sends nothing twice.
    again = ops.post(f"/admin/breaches/{incident_id}/notify")
    assert again.status_code == 302
    drain(app)
    assert len(smtp_sink.to("li@shop.example")) == 1

    owner = _client(app, "zoe@cafe.example")
    notices = owner.get("/settings/breach-notices")
    assert notices.status_code == 200
    assert INCIDENT["title"] in notices.text and "Not sent yet" in notices.text
    assert "Contacts of this account concerned:</strong> 3" in notices.text

    assert ops.post(f"/admin/breaches/{incident_id}/report", data={"report": ""}).status_code == 422
    assert (
        ops.post(f"/admin/breaches/{incident_id}/report", data={"report": REPORT}).status_code
        == 302
    )
    drain(app)
    report = _body(smtp_sink, "olga@cafe.example", "Report on the security incident")
    assert REPORT in report
    assert REPORT in _body(smtp_sink, "li@shop.example", "Report on the security incident")
    assert REPORT in owner.get("/settings/breach-notices").text
    # Closed: no more accounts, no second report.
    closed = ops.post(
        f"/admin/breaches/{incident_id}/accounts", data={"account_ids": [str(spared.account_id)]}
    )
    assert closed.status_code == 422
    assert "The report was sent" in closed.text

    # Who did what when, on the incident's page.
    log = ops.get(page_url).text.split('id="incident-log"')[1]
    for step in (
        "recorded",
        "accounts-selected",
        "notices-sent",
        "notice-delivered",
        "report-sent",
        "report-delivered",
    ):
        assert step in log
    assert "ops@envoy.example" in log and "platform (job)" in log
    # And in each account's security log.
    with app.app_context():
        events = list(
            core_db.session.scalars(
                select(SecurityEvent.details).where(
                    SecurityEvent.account_id == cafe.account_id,
                    SecurityEvent.kind == "breach-notice",
                )
            )
        )
        core_db.session.remove()
    assert [e["step"] for e in events] == ["notice", "report"]
    assert "incident #" in owner.get("/settings/security-log?kind=breach-notice").text

    # The account left out sees nothing.
    spared_owner = _client(app, "spared@else.example")
    assert "No breach notice" in spared_owner.get("/settings/breach-notices").text


def test_only_operators_reach_the_incident_pages_and_only_owners_the_notices(
    app: Flask, smtp_sink: SMTPSink
) -> None:
    operator, cafe, _shop, _spared = _setup(app)
    owner = _client(app, cafe.email)
    assert owner.get("/admin/breaches").status_code == 404
    assert owner.post("/admin/breaches", data=INCIDENT).status_code == 404
    assert owner.post("/admin/breaches/1/notify").status_code == 404
    member = _client(app, "member@cafe.example")
    assert member.get("/settings/breach-notices").status_code == 403
    assert app.test_client().get("/admin/breaches").status_code == 302  # to the login page
    ops = _client(app, operator.email)
    assert ops.get("/admin/breaches/999").status_code == 404
