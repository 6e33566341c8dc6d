"""A/B tests end to end with frozen time: the test share split evenly between the variants, a
winner chosen from human events only (a scanner burst on the losing variant does not make it
win), the rest sent the winner, the report with the variants side by side."""

from __future__ import annotations

import re
from collections import Counter
from datetime import timedelta
from typing import Any

import pytest
import time_machine
from flask import Flask
from sqlalchemy import select

from accounts import services as accounts
from campaigns import ab_tests, services
from campaigns.models import ABTest, ABTestStatus, Message
from core import db as core_db
from core.db import utcnow
from core.errors import ValidationError
from core.scheduler import JOBS
from tests.conftest import drain
from tests.factories import login, make_campaign, make_list_with_contacts, make_tenant
from tests.mail_parsing import path_of, urls_of
from tests.smtp_sink import SMTPSink
from tests.tracking.helpers import BROWSER_UA

AUDIENCE = [f"person{i}@example.org" for i in range(19)] + ["zoë@bücher.example"]
SUBJECTS = ["Spring sale: 20 % off", "Ünïcode spring — a surprise inside"]


def _set_up(app: Flask, auto_send: bool = True, metric: str = "opens") -> tuple[Any, int]:
    with app.app_context():
        tenant = make_tenant()
        accounts.update_privacy_settings(tenant.account_id, True, "truncate", 180)
        list_id = make_list_with_contacts(tenant, AUDIENCE)
        campaign_id = make_campaign(tenant, list_id)
        ab_tests.save_ab_test(
            tenant.account_id,
            campaign_id,
            subjects=SUBJECTS,
            from_names=["", "Ana from Shop"],
            test_percent=50,
            metric=metric,
            wait_minutes=120,
            auto_send=auto_send,
        )
        core_db.session.remove()
    return tenant, campaign_id


def _send_test_share(app: Flask, smtp_sink: SMTPSink, tenant: Any, campaign_id: int) -> Any:
    """Start the campaign at the current (frozen) time; the test share's received messages."""
    with app.app_context():
        services.start(tenant.account_id, campaign_id)
        core_db.session.remove()
    drain(app)
    received = smtp_sink.wait_for(10)
    smtp_sink.clear()
    return list(received)


def _scanner_burst(app: Flask, message: Any) -> None:
    """A security gateway fetching every URL of one message with HEAD and GET."""
    urls = urls_of(message)
    honeypot = re.search(r'href="([^"]*/h/[^"]+)"', urls.html)
    assert honeypot and urls.beacon
    paths = [path_of(u) for u in urls.clicks] + [path_of(honeypot.group(1)), path_of(urls.beacon)]
    scanner = app.test_client(use_cookies=False)
    for path in paths:
        for method in ("HEAD", "GET"):
            scanner.open(
                path,
                method=method,
                headers={"User-Agent": BROWSER_UA},
                environ_base={"REMOTE_ADDR": "198.51.100.23"},
            )


def _person_opens(app: Flask, message: Any, address: str) -> None:
    urls = urls_of(message)
    assert urls.beacon
    app.test_client(use_cookies=False).get(
        path_of(urls.beacon),
        headers={"User-Agent": BROWSER_UA},
        environ_base={"REMOTE_ADDR": address},
    )


def test_ab_test_end_to_end_scanner_burst_does_not_win(app: Flask, smtp_sink: SMTPSink) -> None:
    tenant, campaign_id = _set_up(app)
    start = utcnow()
    with time_machine.travel(start, tick=True):
        test_share = _send_test_share(app, smtp_sink, tenant, campaign_id)
    subjects = Counter(str(r.message["Subject"]) for r in test_share)
    assert subjects == {SUBJECTS[0]: 5, SUBJECTS[1]: 5}  # half the audience, split evenly
    by_subject: dict[str, list[Any]] = {s: [] for s in SUBJECTS}
    for received in test_share:
        by_subject[str(received.message["Subject"])].append(received.message)
    assert all("Ana from Shop" in str(m["From"]) for m in by_subject[SUBJECTS[1]])
    assert not any("Ana" in str(m["From"]) for m in by_subject[SUBJECTS[0]])
    with app.app_context():
        held = core_db.session.scalars(
            select(Message).where(Message.ab_rest.is_(True), Message.status == "pending")
        ).all()
        assert len(held) == 10 and all(m.ab_variant is None for m in held)
        core_db.session.remove()

    with time_machine.travel(start + timedelta(minutes=10), tick=True):
        # Two people open variant A; a scanner fetches everything of every variant-B message.
        for index, message in enumerate(by_subject[SUBJECTS[0]][:2]):
            _person_opens(app, message, f"203.0.113.{10 + index}")
        for message in by_subject[SUBJECTS[1]]:
            _scanner_burst(app, message)
        drain(app)
        with app.app_context():
            assert ab_tests.decide_due() == 0  # not yet
            core_db.session.remove()

    with time_machine.travel(start + timedelta(minutes=121), tick=True):
        with app.app_context():
            assert ab_tests.decide_due() == 1
            assert ab_tests.decide_due() == 0  # idempotent: decided once
            test = core_db.session.scalar(select(ABTest))
            assert test is not None
            assert test.winner == 0 and test.status == ABTestStatus.DONE
            found = {r.letter: r for r in ab_tests.results(test)}
            core_db.session.remove()
        drain(app)
        rest = smtp_sink.wait_for(10)
    assert {str(r.message["Subject"]) for r in rest} == {SUBJECTS[0]}
    assert {r.recipients[0] for r in rest}.isdisjoint({r.recipients[0] for r in test_share})
    assert (found["A"].sent, found["A"].human_opens) == (5, 2)
    assert (found["B"].sent, found["B"].human_opens, found["B"].human_clicks) == (5, 0, 0)
    assert found["B"].machine_opens >= 5 and found["B"].machine_clicks >= 5

    client = app.test_client()
    login(client, tenant.email)
    page = client.get(f"/campaigns/{campaign_id}").get_data(as_text=True)
    table = page[page.index('id="ab-results"') :]
    assert SUBJECTS[0] in table and SUBJECTS[1] in table and "Winner" in table
    report = client.get(f"/campaigns/{campaign_id}/report").get_data(as_text=True)
    side_by_side = report[report.index('id="ab-report"') :]
    assert "(winner: A)" in side_by_side and SUBJECTS[1] in side_by_side
    with app.app_context():
        campaign = services.get_campaign(tenant.account_id, campaign_id)
        assert campaign.status == "sent"
        core_db.session.remove()


def test_the_rest_waits_for_the_marketer_when_asked(app: Flask, smtp_sink: SMTPSink) -> None:
    tenant, campaign_id = _set_up(app, auto_send=False, metric="clicks")
    start = utcnow()
    with time_machine.travel(start, tick=True):
        _send_test_share(app, smtp_sink, tenant, campaign_id)
    with time_machine.travel(start + timedelta(hours=3), tick=True):
        with app.app_context():
            assert ab_tests.decide_due() == 1
            core_db.session.remove()
        drain(app)
        assert smtp_sink.messages == []  # held until confirmed
        client = app.test_client()
        login(client, tenant.email)
        page = client.get(f"/campaigns/{campaign_id}").get_data(as_text=True)
        assert 'id="ab-confirm"' in page
        token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page)
        answer = client.post(
            f"/campaigns/{campaign_id}/ab-test/confirm",
            data={"csrf_token": token.group(1) if token else "", "position": "1"},
        )
        assert answer.status_code == 302
        drain(app)
        rest = smtp_sink.wait_for(10)
    assert {str(r.message["Subject"]) for r in rest} == {SUBJECTS[1]}
    with app.app_context(), pytest.raises(ValidationError):
        ab_tests.confirm_winner(tenant.account_id, campaign_id)  # only once


def test_the_winner_job_is_registered_with_the_scheduler() -> None:
    assert any(job.target == "campaigns.ab_tests:decide_due" for job in JOBS)


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"subjects": ["Only one"]}, "subject_0"),
        ({"subjects": ["A", "B", "C", "D", "E"]}, "subject_0"),
        ({"test_percent": 5}, "test_percent"),
        ({"test_percent": 60}, "test_percent"),
        ({"wait_minutes": 0}, "wait_hours"),
        ({"metric": "bounces"}, "metric"),
        ({"subjects": ["Hi {{ contact.name ", "B"]}, "subject_0"),
        ({"subjects": ["A\r\nBcc: x@example.org", "B"]}, "subject_0"),
    ],
)
def test_bad_set_ups_are_refused_with_the_field(
    db: Any, changes: dict[str, Any], field: str
) -> None:
    tenant = make_tenant()
    accounts.update_privacy_settings(tenant.account_id, True, "truncate", 180)
    campaign_id = make_campaign(tenant, make_list_with_contacts(tenant, ["ana@example.org"]))
    arguments: dict[str, Any] = {
        "subjects": ["A", "B"],
        "test_percent": 20,
        "metric": "opens",
        "wait_minutes": 60,
        "auto_send": True,
        **changes,
    }
    with pytest.raises(ValidationError) as refused:
        ab_tests.save_ab_test(tenant.account_id, campaign_id, **arguments)
    assert refused.value.field == field
    assert ab_tests.get_ab_test(campaign_id) is None


def test_an_ab_test_needs_individual_tracking(db: Any) -> None:
    tenant = make_tenant()
    campaign_id = make_campaign(tenant, make_list_with_contacts(tenant, ["ana@example.org"]))
    with pytest.raises(ValidationError) as refused:
        ab_tests.save_ab_test(
            tenant.account_id,
            campaign_id,
            subjects=["A", "B"],
            test_percent=20,
            metric="opens",
            wait_minutes=60,
            auto_send=True,
        )
    assert "individual tracking" in refused.value.message


def test_a_cancelled_campaign_ends_its_test_without_sending_the_rest(
    app: Flask, smtp_sink: SMTPSink
) -> None:
    tenant, campaign_id = _set_up(app)
    start = utcnow()
    with time_machine.travel(start, tick=True):
        _send_test_share(app, smtp_sink, tenant, campaign_id)
        with app.app_context():
            services.cancel(tenant.account_id, campaign_id)
            core_db.session.remove()
    with time_machine.travel(start + timedelta(hours=3), tick=True):
        with app.app_context():
            assert ab_tests.decide_due() == 1
            test = core_db.session.scalar(select(ABTest))
            assert test is not None and test.status == ABTestStatus.DONE
            held = core_db.session.scalars(
                select(Message.ab_variant).where(Message.ab_rest.is_(True))
            ).all()
            assert len(held) == 10 and set(held) == {None}
            core_db.session.remove()
        drain(app)
    assert smtp_sink.messages == []
