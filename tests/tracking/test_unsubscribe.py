"""Unsubscribing through a received message (issue 19): one person, one message, one
unsubscribe in the report however many POSTs, clicks or scanners; the page names who is asking
and what the person leaves; an undo for a few minutes, by a signed POST form."""

from __future__ import annotations

import re
import threading
from datetime import timedelta
from typing import Any

import pytest
import time_machine
from flask import Flask
from sqlalchemy import func, select

from accounts import services as accounts
from campaigns import services as campaigns
from campaigns.models import Message
from core import db as core_db
from core.db import utcnow
from subscribers import services as subscribers
from subscribers.models import ConsentRecord, MailingList, Subscription
from subscribers.suppression import suppression_reason
from tests.conftest import drain
from tests.factories import login, make_tenant
from tests.mail_parsing import MessageUrls, path_of, urls_of
from tests.smtp_sink import SMTPSink
from tracking.models import MessageUnsubscribe

PEOPLE = ["zoë.ñúñez@example.org", "李小龍@example.cn", "ольга@example.ru", "ada@example.net"]
SHOP = "Bäckerei Ñúñez & <Söhne>"
HOSTILE_LIST = 'Новости <script>alert("x")</script>'


def _words(html: str) -> str:
    return " ".join(html.split())


def _send(
    app: Flask, smtp_sink: SMTPSink, lists: int = 1
) -> tuple[Any, int, dict[str, MessageUrls]]:
    """A shop with a hostile name mails PEOPLE through one list (or ``lists`` lists)."""
    with app.app_context():
        tenant = make_tenant("owner@baeckerei.example", SHOP)
        list_ids = []
        for index in range(lists):
            name = HOSTILE_LIST if index == 0 else f"Angebote {index}"
            created = subscribers.create_list(tenant.account_id, name)
            for address in PEOPLE:
                subscribers.add_contact_to_list(tenant.account_id, created.id, address)
            list_ids.append(created.id)
        campaign = campaigns.save_campaign(
            tenant.account_id,
            campaign_id=None,
            name="Winter",
            subject="Winterbrot",
            from_name="Zoë from the bakery",
            from_email="zoe@baeckerei.example",
            html_body='<html><body><p>Frisch!</p><a href="https://baeckerei.example/">Shop</a>'
            "</body></html>",
            list_ids=list_ids,
        )
        campaigns.start(tenant.account_id, campaign.id)
        core_db.session.remove()
    drain(app)
    received = smtp_sink.wait_for(len(PEOPLE))
    smtp_sink.clear()
    return tenant, campaign.id, {r.recipients[0]: urls_of(r.message) for r in received}


def _report_figure(app: Flask, tenant: Any, campaign_id: int) -> tuple[int, str]:
    client = app.test_client()
    login(client, tenant.email)
    page = client.get(f"/campaigns/{campaign_id}/report").get_data(as_text=True)
    match = re.search(r'data-stat="unsubscribes">(\d+)<', page)
    assert match, page
    detail = client.get(f"/campaigns/{campaign_id}").get_data(as_text=True)
    assert f'data-stat="unsubscribes">{match.group(1)}<' in detail  # the campaign page agrees
    return int(match.group(1)), page


def _rows(app: Flask) -> list[MessageUnsubscribe]:
    with app.app_context():
        found = list(core_db.session.scalars(select(MessageUnsubscribe)))
        core_db.session.remove()
        return found


def _consent(app: Flask) -> list[tuple[str, str, str]]:
    with app.app_context():
        rows = core_db.session.execute(
            select(ConsentRecord.action, ConsentRecord.source, ConsentRecord.detail).order_by(
                ConsentRecord.id
            )
        ).all()
        core_db.session.remove()
        return [tuple(r) for r in rows if r[0] != "subscribed"]  # type: ignore[misc]


def test_replays_page_posts_and_scanners_count_one_unsubscribe_per_person(
    app: Flask, smtp_sink: SMTPSink
) -> None:
    tenant, campaign_id, mail = _send(app, smtp_sink)
    public = app.test_client(use_cookies=False)
    one_click = {"List-Unsubscribe": "One-Click"}
    # Zoë's mail client sends the RFC 8058 POST, then replays it twice.
    zoe = path_of(mail[PEOPLE[0]].unsubscribe_header)
    for _ in range(3):
        response = public.post(zoe, data=one_click)
        assert response.status_code == 200 and "Location" not in response.headers
    # 李小龍 opens the page, presses the button, reloads the answer; then his client one-clicks.
    li = path_of(mail[PEOPLE[1]].unsubscribe_body or "")
    assert public.get(li).status_code == 200
    assert "You are unsubscribed" in public.post(li).get_data(as_text=True)
    assert public.post(li).status_code == 200
    assert public.post(li, data=one_click).status_code == 200
    # A security gateway fetches Ольга's and Ada's links (HEAD and GET), then Ольга unsubscribes.
    for person in PEOPLE[2:]:
        for method in ("HEAD", "GET"):
            public.open(path_of(mail[person].unsubscribe_body or ""), method=method)
    assert len(_rows(app)) == 2
    olga = path_of(mail[PEOPLE[2]].unsubscribe_body or "")
    public.post(olga)
    public.post(olga, data=one_click)
    drain(app)

    figure, _ = _report_figure(app, tenant, campaign_id)
    assert figure == 3
    assert len(_rows(app)) == 3
    with app.app_context():
        statuses = core_db.session.execute(
            select(Subscription.status, func.count()).group_by(Subscription.status)
        ).all()
        core_db.session.remove()
    assert dict(statuses) == {"unsubscribed": 3, "subscribed": 1}
    # One consent record per person, not one per request.
    assert sorted(_consent(app)) == sorted(
        [
            ("unsubscribed", "unsubscribe", "one-click"),
            ("unsubscribed", "unsubscribe", "link"),
            ("unsubscribed", "unsubscribe", "link"),
        ]
    )
    # The CSV says the same.
    client = app.test_client()
    login(client, tenant.email)
    csv_text = client.get(f"/campaigns/{campaign_id}/report.csv").get_data(as_text=True)
    assert "summary,unsubscribes,3,," in csv_text


def test_concurrent_one_click_posts_for_one_message_count_once(
    app: Flask, smtp_sink: SMTPSink
) -> None:
    tenant, campaign_id, mail = _send(app, smtp_sink)
    path = path_of(mail[PEOPLE[0]].unsubscribe_header)
    start = threading.Barrier(8)
    answers: list[int] = []

    def post() -> None:
        client = app.test_client(use_cookies=False)
        start.wait()
        answers.append(client.post(path, data={"List-Unsubscribe": "One-Click"}).status_code)

    threads = [threading.Thread(target=post) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert answers == [200] * 8
    assert len(_rows(app)) == 1
    assert _report_figure(app, tenant, campaign_id)[0] == 1


def test_the_page_names_the_sender_the_list_and_the_ways_out(
    app: Flask, smtp_sink: SMTPSink
) -> None:
    _, _, mail = _send(app, smtp_sink)
    public = app.test_client(use_cookies=False)
    path = path_of(mail[PEOPLE[1]].unsubscribe_body or "")
    raw = public.get(path).get_data(as_text=True)
    page = _words(raw)
    assert "<script>alert" not in raw and "&lt;Söhne&gt;" in page  # escaped, never markup
    assert "Unsubscribe from Bäckerei Ñúñez &amp; &lt;Söhne&gt;?" in page
    assert "Zoë from the bakery &lt;zoe@baeckerei.example&gt;" in page
    assert "leave the list <strong>Новости &lt;script&gt;" in page
    assert PEOPLE[1] not in raw  # the page never shows the address
    preferences = re.search(r'href="([^"]+)" id="preferences"', raw)
    data_request = re.search(r'href="([^"]+)" id="data-request"', raw)
    assert preferences and data_request
    shown = public.get(path_of(preferences.group(1))).get_data(as_text=True)
    assert "Your email preferences" in shown and "Новости" in shown
    assert "Your data, your choice" in public.get(data_request.group(1)).get_data(as_text=True)
    # The GET changed nothing.
    assert _rows(app) == [] and _consent(app) == []


def _undo_form(page: str) -> tuple[str, str]:
    action = re.search(r'<form method="post" action="([^"]+/undo)">', page)
    token = re.search(r'name="undo" value="([^"]+)"', page)
    assert action and token, page
    return action.group(1), token.group(1)


def test_undo_within_fifteen_minutes_resubscribes_and_leaves_the_figure(
    app: Flask, smtp_sink: SMTPSink
) -> None:
    tenant, campaign_id, mail = _send(app, smtp_sink)
    public = app.test_client(use_cookies=False)
    path = path_of(mail[PEOPLE[2]].unsubscribe_body or "")
    done = public.post(path).get_data(as_text=True)
    assert "You can undo this for 15 minutes." in done
    action, token = _undo_form(done)
    assert token not in action  # the undo token travels in the form, never in a URL
    assert public.get(action).status_code == 405  # GET never changes state
    assert _report_figure(app, tenant, campaign_id)[0] == 1
    with time_machine.travel(utcnow() + timedelta(minutes=14), tick=False):
        undone = public.post(action, data={"undo": token}).get_data(as_text=True)
    assert "You are subscribed again" in undone
    figure, report = _report_figure(app, tenant, campaign_id)
    assert figure == 0 and 'data-stat="unsubscribes-undone">1<' in report
    with app.app_context():
        assert core_db.session.scalars(select(Subscription.status)).all() == ["subscribed"] * 4
        core_db.session.remove()
    assert _consent(app)[-1] == ("resubscribed", "unsubscribe", "undo")
    # Undoing twice changes nothing more; a forged token changes nothing at all.
    assert "You are subscribed again" in public.post(action, data={"undo": token}).get_data(
        as_text=True
    )
    assert "no longer be undone" in public.post(action, data={"undo": token + "x"}).get_data(
        as_text=True
    )
    assert len(_consent(app)) == 2
    # Leaving again counts again (once), and the old undo form cannot undo the new unsubscribe.
    again = public.post(path).get_data(as_text=True)
    public.post(path, data={"List-Unsubscribe": "One-Click"})
    assert _report_figure(app, tenant, campaign_id)[0] == 1
    assert "no longer be undone" in public.post(action, data={"undo": token}).get_data(as_text=True)
    assert _undo_form(again)[1] != token


def test_after_the_window_the_page_says_so_and_points_to_the_preference_centre(
    app: Flask, smtp_sink: SMTPSink
) -> None:
    tenant, campaign_id, mail = _send(app, smtp_sink)
    public = app.test_client(use_cookies=False)
    path = path_of(mail[PEOPLE[0]].unsubscribe_body or "")
    action, token = _undo_form(public.post(path).get_data(as_text=True))
    with time_machine.travel(utcnow() + timedelta(minutes=16), tick=False):
        late = public.post(action, data={"undo": token}).get_data(as_text=True)
    page = _words(late)
    assert "This can no longer be undone here" in page
    assert "for 15 minutes only" in page and 'id="preferences"' in page
    assert _report_figure(app, tenant, campaign_id)[0] == 1
    with app.app_context():
        assert core_db.session.scalars(select(Subscription.status)).all().count("unsubscribed") == 1
        core_db.session.remove()


def test_a_campaign_to_several_lists_undoes_every_list_and_the_suppression(
    app: Flask, smtp_sink: SMTPSink
) -> None:
    tenant, campaign_id, mail = _send(app, smtp_sink, lists=2)
    public = app.test_client(use_cookies=False)
    path = path_of(mail[PEOPLE[1]].unsubscribe_body or "")
    asked = _words(public.get(path).get_data(as_text=True))
    assert "leave every list of Bäckerei Ñúñez &amp; &lt;Söhne&gt; (Angebote 1, Новости" in asked
    done = public.post(path).get_data(as_text=True)
    with app.app_context():
        assert suppression_reason(tenant.account_id, PEOPLE[1]) == "unsubscribed"
        core_db.session.remove()
    action, token = _undo_form(done)
    assert "You are subscribed again" in public.post(action, data={"undo": token}).get_data(
        as_text=True
    )
    with app.app_context():
        assert suppression_reason(tenant.account_id, PEOPLE[1]) is None
        names = core_db.session.execute(
            select(MailingList.name, Subscription.status)
            .join(Subscription, Subscription.list_id == MailingList.id)
            .where(Subscription.status != "subscribed")
        ).all()
        core_db.session.remove()
    assert names == []
    assert _report_figure(app, tenant, campaign_id)[0] == 0


@pytest.mark.parametrize("individual", [True, False])
def test_the_figure_is_the_same_with_individual_tracking_on_or_off(
    app: Flask, smtp_sink: SMTPSink, individual: bool
) -> None:
    tenant, campaign_id, mail = _send(app, smtp_sink)
    with app.app_context():
        accounts.update_privacy_settings(tenant.account_id, individual, "truncate", 180)
        core_db.session.remove()
    public = app.test_client(use_cookies=False)
    for person in PEOPLE[:2]:
        for _ in range(2):
            public.post(
                path_of(mail[person].unsubscribe_header), data={"List-Unsubscribe": "One-Click"}
            )
    drain(app)
    assert _report_figure(app, tenant, campaign_id)[0] == 2


def test_a_persons_unsubscribes_are_in_their_access_report_and_go_with_erasure(
    app: Flask, smtp_sink: SMTPSink
) -> None:
    tenant, campaign_id, mail = _send(app, smtp_sink)
    public = app.test_client(use_cookies=False)
    public.post(path_of(mail[PEOPLE[0]].unsubscribe_body or ""))
    from privacy import services as privacy_services
    from subscribers.models import Contact

    with app.app_context():
        contact_id = core_db.session.scalar(select(Contact.id).where(Contact.email == PEOPLE[0]))
        assert contact_id is not None
        report = privacy_services.contact_report(tenant.account_id, contact_id)
        assert "Winter" in str(report) and "unsubscribed_at" in str(report)
        privacy_services.erase_contact(tenant.account_id, contact_id, tenant.user_id)
        core_db.session.remove()
    # The figure stays; the row no longer leads to anyone.
    assert _report_figure(app, tenant, campaign_id)[0] == 1
    with app.app_context():
        (row,) = core_db.session.scalars(select(MessageUnsubscribe)).all()
        message = core_db.session.get(Message, row.message_id)
        assert message is not None and message.contact_id is None
        core_db.session.remove()
    # The link now unsubscribes nobody, and says so.
    gone = public.get(path_of(mail[PEOPLE[0]].unsubscribe_body or ""))
    assert gone.status_code == 200 and "Nothing to unsubscribe" in gone.get_data(as_text=True)


def test_back_through_the_preference_centre_and_out_again_is_still_one_unsubscribe(
    app: Flask, smtp_sink: SMTPSink
) -> None:
    tenant, campaign_id, mail = _send(app, smtp_sink)
    public = app.test_client(use_cookies=False)
    urls = mail[PEOPLE[3]]
    path = path_of(urls.unsubscribe_body or "")
    public.post(path)
    preferences = re.search(
        r'href="([^"]+)" id="preferences"', public.get(path).get_data(as_text=True)
    )
    assert preferences
    with time_machine.travel(utcnow() + timedelta(hours=2), tick=False):
        with app.app_context():
            list_id = core_db.session.scalar(select(MailingList.id))
            core_db.session.remove()
        public.post(path_of(preferences.group(1)), data={"action": "save", "list_id": list_id})
        assert _report_figure(app, tenant, campaign_id)[0] == 1
        again = public.post(path).get_data(as_text=True)
        assert _report_figure(app, tenant, campaign_id)[0] == 1  # the same person and message
        action, token = _undo_form(again)  # the undo is this latest one's
        assert "subscribed again" in public.post(action, data={"undo": token}).get_data(
            as_text=True
        )
        assert _report_figure(app, tenant, campaign_id)[0] == 0
