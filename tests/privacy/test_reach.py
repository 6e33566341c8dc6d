"""Reach, minors and IP minimisation (issue 13), through the public interfaces.

A contact can find the public data-request form from everything they see (the emails they get
and the public pages); the public forms tell minors not to submit data and account sign-up
requires confirming majority; data requests keep a client prefix only as long as the rate limit
needs it.
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import pytest
import time_machine
from flask import Flask
from sqlalchemy import func, select

from accounts import services as accounts
from accounts.models import Account, User
from core import db as core_db
from core.db import utcnow
from core.errors import ValidationError
from privacy import retention
from privacy.models import DataRequest
from tests.conftest import drain
from tests.mail_parsing import path_of
from tests.privacy.helpers import submit
from tests.smtp_sink import SMTPSink
from tests.subscribers.helpers import confirm_link, signup_key, tenant_with_list
from tests.tracking.helpers import send_campaign

FORM_PATH = "/privacy/request"
FORM_URL = f"http://localhost{FORM_PATH}"
MINORS = "Under the age of majority where you live?"


def _links_to_form(page: str) -> bool:
    return f'href="{FORM_PATH}"' in page or f'href="{FORM_URL}"' in page


def test_every_campaign_email_links_to_the_data_request_form(
    app: Flask, smtp_sink: SMTPSink
) -> None:
    sent = send_campaign(app, smtp_sink, ["ada@example.org", "bob@example.org"], individual=True)
    for urls in sent.urls.values():
        assert _links_to_form(urls.html)
        assert f"Your data: ask for a copy, a correction or its erasure: {FORM_URL}" in urls.text
        assert "/preferences/" in urls.text  # the text part names the preference centre too


def test_the_sign_up_confirmation_email_and_pages_link_to_the_form(
    app: Flask, smtp_sink: SMTPSink
) -> None:
    tenant, list_id = tenant_with_list(app)
    key = signup_key(app, tenant, list_id)
    client = app.test_client()
    form = client.get(f"/subscribe/{key}").get_data(as_text=True)
    assert _links_to_form(form) and MINORS in form
    inbox = client.post(f"/subscribe/{key}", data={"email": "reader@example.org", "name": "R"})
    assert "Check your inbox" in inbox.get_data(as_text=True)
    assert _links_to_form(inbox.get_data(as_text=True))
    drain(app)
    (received,) = smtp_sink.to("reader@example.org")
    body = received.message.get_body(preferencelist=("plain",))
    assert body is not None and FORM_URL in body.get_content()
    link = confirm_link(smtp_sink, "reader@example.org")
    assert _links_to_form(client.get(link).get_data(as_text=True))
    done = client.post(link).get_data(as_text=True)
    assert "You are subscribed" in done and _links_to_form(done)
    used = client.get(link)  # a link problem page still shows the way
    assert used.status_code == 410 and _links_to_form(used.get_data(as_text=True))


def test_the_preference_centre_and_unsubscribe_page_link_to_the_form(
    app: Flask, smtp_sink: SMTPSink
) -> None:
    sent = send_campaign(app, smtp_sink, ["ada@example.org"], individual=True)
    urls = sent.urls["ada@example.org"]
    match = re.search(r'href="([^"]*/preferences/[^"]+)"', urls.html)
    assert match
    public = app.test_client()
    assert _links_to_form(public.get(path_of(match.group(1))).get_data(as_text=True))
    assert urls.unsubscribe_body is not None
    page = public.get(path_of(urls.unsubscribe_body)).get_data(as_text=True)
    assert _links_to_form(page)


def test_the_data_request_form_tells_minors_not_to_submit_data(client: Any) -> None:
    page = client.get(FORM_PATH).get_data(as_text=True)
    assert MINORS in page and "parent or guardian" in page


def _counts(app: Flask) -> tuple[int, int]:
    with app.app_context():
        account_count = core_db.session.scalar(select(func.count()).select_from(Account)) or 0
        user_count = core_db.session.scalar(select(func.count()).select_from(User)) or 0
        return account_count, user_count


def test_account_sign_up_requires_confirming_majority_and_records_nothing_without(
    app: Flask, client: Any
) -> None:
    data = {
        "account_name": "Bodega",
        "name": "Zoë",
        "email": "zoe@bodega.example",
        "password": "a long enough password",
    }
    before = _counts(app)
    refused = client.post("/signup", data=data)
    assert refused.status_code == 422
    page = refused.get_data(as_text=True)
    assert re.search(
        r'class="field has-error">\s*<label class="check"><input[^>]*id="of_age"', page
    )
    assert "Envoy is not for minors" in page
    assert 'value="zoe@bodega.example"' in page  # what was typed is kept
    assert _counts(app) == before  # nothing recorded
    accepted = client.post("/signup", data={**data, "of_age": "y"})
    assert accepted.status_code == 302
    assert _counts(app) == (before[0] + 1, before[1] + 1)


def test_the_sign_up_service_itself_refuses_without_the_confirmation(app: Flask) -> None:
    with app.app_context(), pytest.raises(ValidationError) as refused:
        accounts.sign_up("Co", "N", "n@co.example", "a long enough password", of_age=False)
    assert refused.value.field == "of_age"
    assert _counts(app) == (0, 0)


def _prefixes(app: Flask) -> list[str | None]:
    with app.app_context():
        return list(core_db.session.scalars(select(DataRequest.client_prefix)))


def test_a_data_request_keeps_its_client_prefix_only_for_the_rate_limit_window(
    app: Flask, client: Any, smtp_sink: SMTPSink
) -> None:
    start = utcnow()
    window = int(app.config["DATA_REQUEST_LIMIT_WINDOW"])
    with time_machine.travel(start, tick=False):
        submit(client, "kim@example.org", "access")
    assert _prefixes(app) == ["127.0.0.0/24"]
    with time_machine.travel(start + timedelta(seconds=window - 60), tick=False), app.app_context():
        retention.expire_requests(utcnow())
    assert _prefixes(app) == ["127.0.0.0/24"]  # the limit still needs it
    with time_machine.travel(start + timedelta(seconds=window + 60), tick=False), app.app_context():
        retention.expire_requests(utcnow())
    assert _prefixes(app) == [None]  # the request stays (90 days), its prefix does not
