"""Where a marketer or a contact reads a subject, a personalised one is shown rendered, never
as template code; the preview names the personalisation fields a contact has no value for."""

from __future__ import annotations

import re
from html import unescape
from typing import Any

from flask import Flask
from sqlalchemy import select, update

from campaigns import services
from campaigns.models import Campaign
from core import db as core_db
from subscribers import services as subscribers
from subscribers.models import Contact
from tests.conftest import drain
from tests.factories import Tenant, login, make_tenant
from tests.privacy.helpers import link_in, submit
from tests.smtp_sink import SMTPSink

SUBJECT = "{{ contact.first_name }}, ton offre d'été"


def visible(page: str) -> str:
    """The text a person sees: no scripts, tags or attribute values (titles hold the raw
    template on purpose)."""
    page = re.sub(r"<script.*?</script>", " ", page, flags=re.S)
    return unescape(re.sub(r"<[^>]+>", " ", page))


def _campaign(app: Flask, subject: str = SUBJECT) -> tuple[Tenant, int, int]:
    with app.app_context():
        tenant = make_tenant()
        list_id = subscribers.create_list(tenant.account_id, "Clients").id
        subscribers.add_contact_to_list(
            tenant.account_id, list_id, "zoe@example.org", name="Zoë Ñúñez"
        )
        campaign = services.save_campaign(
            tenant.account_id,
            campaign_id=None,
            name="Été",
            subject=subject,
            from_name="Shop",
            from_email="news@shop.example",
            html_body="<p>Bonjour {{ contact.first_name }}</p>",
            list_ids=[list_id],
        )
        return tenant, list_id, campaign.id


def test_a_personalised_subject_reads_rendered_in_every_list_and_header(
    app: Flask, client: Any, smtp_sink: SMTPSink
) -> None:
    tenant, _list_id, campaign_id = _campaign(app)
    login(client, tenant.email)
    with app.app_context():
        services.start(tenant.account_id, campaign_id)
    drain(app)
    assert str(smtp_sink.wait_for(1)[0].message["Subject"]) == "Zoë, ton offre d'été"

    for path in (
        "/dashboard",
        "/campaigns",
        f"/campaigns/{campaign_id}",
        f"/campaigns/{campaign_id}/report",
    ):
        page = client.get(path).get_data(as_text=True)
        text = visible(page)
        assert "[first_name], ton offre d'été" in text, path
        assert "personalised" in text, path
        assert "{{" not in text, path
        # The template itself is one hover away.
        assert 'title="Personalised for each recipient. Template: {{ contact.first_name }}' in (
            unescape(page)
        ), path


def test_a_subject_that_cannot_render_is_shown_raw_and_marked_never_raising(
    app: Flask, client: Any
) -> None:
    tenant, _list_id, campaign_id = _campaign(app, subject="Plain")
    login(client, tenant.email)
    for hostile in ("{{ ''.__class__.__mro__[1].__subclasses__() }}", "{% if %}<b>x</b>"):
        with app.app_context():  # stored as an older version might have let through
            core_db.session.execute(
                update(Campaign).where(Campaign.id == campaign_id).values(subject=hostile)
            )
            core_db.session.commit()
        for path in ("/campaigns", f"/campaigns/{campaign_id}"):
            response = client.get(path)
            assert response.status_code == 200
            page = response.get_data(as_text=True)
            assert "template" in visible(page)
            assert "<b>x</b>" not in page  # escaped, not markup
            assert "object" not in visible(page).replace(hostile, "")  # nothing leaked


def test_the_contacts_own_access_report_shows_the_subject_they_received(
    app: Flask, client: Any, smtp_sink: SMTPSink
) -> None:
    tenant, _list_id, campaign_id = _campaign(app)
    with app.app_context():
        services.start(tenant.account_id, campaign_id)
    drain(app)
    smtp_sink.wait_for(1)

    submit(client, "zoe@example.org", "access")
    page = client.post(link_in(smtp_sink, "zoe@example.org", "/privacy/confirm/")).get_data(
        as_text=True
    )
    assert "Zoë, ton offre d'été" in unescape(page)
    assert "{{" not in page

    login(client, tenant.email)
    with app.app_context():
        contact_id = core_db.session.scalar(select(Contact.id))
    page = client.get(f"/privacy/contacts/{contact_id}").get_data(as_text=True)
    assert "Zoë, ton offre d'été" in unescape(page)
    assert "{{" not in page


def test_the_preview_names_fields_the_contact_has_no_value_for(app: Flask, client: Any) -> None:
    tenant, list_id, campaign_id = _campaign(app)
    with app.app_context():
        services.save_campaign(
            tenant.account_id,
            campaign_id=campaign_id,
            name="Été",
            subject=SUBJECT,
            from_name="Shop",
            from_email="news@shop.example",
            html_body="<p>{{ contact.first_name or 'Bonjour' }} à {{ contact.attributes.city }}"
            "</p>{% if attributes.plan %}<p>{{ attributes.plan }}</p>{% endif %}",
            list_ids=[list_id],
        )
        full = subscribers.add_contact_to_list(
            tenant.account_id,
            list_id,
            "olga@example.ru",
            name="Ольга",
            attributes={"city": "Москва", "plan": "gold"},
        ).id
        bare = subscribers.add_contact_to_list(
            tenant.account_id, list_id, "nameless@example.org", attributes={"city": "  "}
        ).id
    login(client, tenant.email)

    page = client.get(f"/campaigns/{campaign_id}?contact_id={bare}").get_data(as_text=True)
    warning = re.search(
        r'<div class="flash flash-warning"[^>]*id="missing-fields">(.*?)</div>', page, re.S
    )
    assert warning is not None
    named = re.findall(r"<code>([^<]+)</code>", warning.group(1))
    assert named == ["contact.first_name", "contact.attributes.city", "contact.attributes.plan"]

    assert 'id="missing-fields"' not in client.get(
        f"/campaigns/{campaign_id}?contact_id={full}"
    ).get_data(as_text=True)
    # The sample contact has a name but no attributes.
    sample = client.get(f"/campaigns/{campaign_id}").get_data(as_text=True)
    assert "contact.attributes.city" in visible(sample)
    assert "contact.first_name</code>" not in sample
