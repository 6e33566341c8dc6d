"""The preference centre, reached from a received email: every change is a consent record."""

from __future__ import annotations

from flask import Flask
from sqlalchemy import select

from campaigns import services as campaign_services
from core import db as core_db
from subscribers import services, suppression
from subscribers.models import ConsentRecord, Subscription
from tests.conftest import drain
from tests.factories import make_campaign
from tests.mail_parsing import path_of
from tests.smtp_sink import SMTPSink
from tests.subscribers.helpers import tenant_with_list


def _preferences_path(smtp_sink: SMTPSink, address: str) -> str:
    import html
    import re

    received = smtp_sink.to(address)[-1].message
    part = received.get_body(preferencelist=("html",))
    assert part is not None
    hrefs = [html.unescape(h) for h in re.findall(r'href="([^"]+)"', part.get_content())]
    found = [h for h in hrefs if "/preferences/" in h]
    assert found, hrefs
    return path_of(found[0])


def _setup(app: Flask, smtp_sink: SMTPSink) -> tuple[int, int, int, int, str]:
    """Two lists (one public), a contact on the first, a campaign sent to it."""
    tenant, news = tenant_with_list(app, list_name="News")
    with app.app_context():
        offers = services.create_list(tenant.account_id, "Offers", "Deals every week")
        services.set_signup_form(tenant.account_id, offers.id, True)
        contact = services.add_contact_to_list(tenant.account_id, news, "pat@example.org", "Pat")
        campaign_id = make_campaign(tenant, news)
        campaign_services.start(tenant.account_id, campaign_id)
    drain(app)
    return (
        tenant.account_id,
        news,
        offers.id,
        contact.id,
        _preferences_path(smtp_sink, "pat@example.org"),
    )


def _statuses(app: Flask, contact_id: int) -> dict[int, str]:
    with app.app_context():
        rows = core_db.session.execute(
            select(Subscription.list_id, Subscription.status).where(
                Subscription.contact_id == contact_id
            )
        ).all()
    return {list_id: status for list_id, status in rows}


def _records(app: Flask, contact_id: int) -> list[tuple[str, str, int | None]]:
    with app.app_context():
        rows = core_db.session.execute(
            select(ConsentRecord.action, ConsentRecord.source, ConsentRecord.list_id)
            .where(ConsentRecord.contact_id == contact_id)
            .order_by(ConsentRecord.id)
        ).all()
    return [tuple(row) for row in rows]  # type: ignore[misc]


def test_preference_centre_from_the_email(app: Flask, smtp_sink: SMTPSink) -> None:
    _account, news, offers, contact_id, path = _setup(app, smtp_sink)
    client = app.test_client()
    page = client.get(path)
    body = page.get_data(as_text=True)
    assert page.status_code == 200
    assert "News" in body and "Offers" in body
    assert "pat@example.org" not in body  # the address is shown masked
    assert _records(app, contact_id) == [("subscribed", "manual", news)]

    # Switch lists: leave News, join Offers.
    client.post(path, data={"action": "save", "list_id": [str(offers)]})
    assert _statuses(app, contact_id) == {news: "unsubscribed", offers: "subscribed"}
    assert _records(app, contact_id)[1:] == [
        ("unsubscribed", "preference-centre", news),
        ("subscribed", "preference-centre", offers),
    ]
    # Come back to News.
    client.post(path, data={"action": "save", "list_id": [str(offers), str(news)]})
    assert _statuses(app, contact_id)[news] == "subscribed"
    assert _records(app, contact_id)[-1] == ("resubscribed", "preference-centre", news)
    # Saving the same choices records nothing new.
    before = len(_records(app, contact_id))
    response = client.post(path, data={"action": "save", "list_id": [str(offers), str(news)]})
    assert "Nothing changed" in response.get_data(as_text=True)
    assert len(_records(app, contact_id)) == before


def test_unsubscribe_from_everything_suppresses(app: Flask, smtp_sink: SMTPSink) -> None:
    account_id, news, offers, contact_id, path = _setup(app, smtp_sink)
    client = app.test_client()
    client.post(path, data={"action": "save", "list_id": [str(offers), str(news)]})
    response = client.post(path, data={"action": "everything"})
    assert "unsubscribed from everything" in response.get_data(as_text=True)
    assert set(_statuses(app, contact_id).values()) == {"unsubscribed"}
    assert _records(app, contact_id)[-1] == ("unsubscribed_all", "preference-centre", None)
    with app.app_context():
        assert suppression.suppression_reason(account_id, "pat@example.org") == "unsubscribed"


def test_get_changes_nothing_and_bad_tokens_answer_404(app: Flask, smtp_sink: SMTPSink) -> None:
    _account, news, _offers, contact_id, path = _setup(app, smtp_sink)
    client = app.test_client()
    client.get(path)
    client.get(path + "?action=everything")
    assert _statuses(app, contact_id) == {news: "subscribed"}
    assert client.get(path[:-3] + "xyz").status_code == 404
    assert client.post(path[:-3] + "xyz", data={"action": "everything"}).status_code == 404
    assert _statuses(app, contact_id) == {news: "subscribed"}


def test_one_click_unsubscribe_writes_a_consent_record(app: Flask, smtp_sink: SMTPSink) -> None:
    from tests.mail_parsing import urls_of

    _account, news, _offers, contact_id, _path = _setup(app, smtp_sink)
    message = smtp_sink.to("pat@example.org")[-1].message
    url = urls_of(message).unsubscribe_header
    app.test_client().post(path_of(url), data={"List-Unsubscribe": "One-Click"})
    assert _records(app, contact_id)[-1] == ("unsubscribed", "unsubscribe", news)


def test_ip_is_recorded_only_when_the_account_asks_and_truncated(
    app: Flask, smtp_sink: SMTPSink
) -> None:
    account_id, news, offers, contact_id, path = _setup(app, smtp_sink)
    client = app.test_client()
    env = {"REMOTE_ADDR": "203.0.113.77"}
    client.post(
        path, data={"action": "save", "list_id": [str(offers), str(news)]}, environ_base=env
    )
    assert all(r.ip_prefix is None for r in _consent_rows(app, contact_id))
    with app.app_context():
        services.update_settings(account_id, record_consent_ip=True)
    client.post(path, data={"action": "save", "list_id": [str(news)]}, environ_base=env)
    last = _consent_rows(app, contact_id)[-1]
    assert last.ip_prefix == "203.0.113.0/24"
    assert all((r.ip_prefix or "") != "203.0.113.77" for r in _consent_rows(app, contact_id))


def _consent_rows(app: Flask, contact_id: int) -> list[ConsentRecord]:
    with app.app_context():
        return list(
            core_db.session.scalars(
                select(ConsentRecord)
                .where(ConsentRecord.contact_id == contact_id)
                .order_by(ConsentRecord.id)
            )
        )
