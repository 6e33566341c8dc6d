"""The campaign list: pages, search by name and subject in any script and case, status filter,
links that keep the query, empty states; duplicating a campaign."""

from __future__ import annotations

import re
from html import unescape
from typing import Any

from flask import Flask
from sqlalchemy import select

from campaigns import services
from campaigns.models import Campaign, CampaignList, CampaignSegment
from core import db as core_db
from subscribers import services as subscribers
from tests.factories import Tenant, login, make_tenant


def _names(page: str) -> list[str]:
    return [unescape(n) for n in re.findall(r'<a href="/campaigns/\d+">([^<]*)</a>', page)]


def _campaign(tenant: Tenant, name: str, subject: str = "Hello", list_ids: Any = ()) -> int:
    return services.save_campaign(
        tenant.account_id,
        campaign_id=None,
        name=name,
        subject=subject,
        from_name="Shop",
        from_email="news@shop.example",
        html_body="<p>Hi</p>",
        list_ids=list(list_ids),
    ).id


def test_pages_of_25_newest_first_with_links_that_keep_the_query(app: Flask, client: Any) -> None:
    with app.app_context():
        tenant = make_tenant()
        for n in range(30):
            _campaign(tenant, f"Lettre {n:02d}")
        _campaign(make_tenant("owner@other.example", "Other"), "Lettre secrète d'un autre")
    login(client, tenant.email)

    first = client.get("/campaigns").get_data(as_text=True)
    assert _names(first) == [f"Lettre {n:02d}" for n in range(29, 4, -1)]
    assert "30 campaigns · page 1 of 2" in first
    assert 'href="/campaigns?page=2"' in first
    second = client.get("/campaigns?page=2").get_data(as_text=True)
    assert _names(second) == [f"Lettre {n:02d}" for n in range(4, -1, -1)]
    assert client.get("/campaigns?page=99").get_data(as_text=True).count("Lettre 00") == 1
    assert "autre" not in first + second  # another account's campaign is never listed

    searched = client.get("/campaigns?q=lettre&status=draft").get_data(as_text=True)
    assert len(_names(searched)) == 25
    next_link = re.search(r'href="(/campaigns\?[^"]*page=2[^"]*)"', searched)
    assert next_link is not None
    link = unescape(next_link.group(1))
    assert "q=lettre" in link and "status=draft" in link
    assert len(_names(client.get(link).get_data(as_text=True))) == 5


def test_search_by_name_or_subject_in_any_case_and_script(app: Flask, client: Any) -> None:
    with app.app_context():
        tenant = make_tenant()
        _campaign(tenant, "ÉTÉ CHEZ ZOË", subject="Soldes")
        _campaign(tenant, "Newsletter", subject="Привет, {{ contact.first_name }}!")
        _campaign(tenant, "100% off", subject="Only today")
        _campaign(tenant, "Plain", subject="Nothing special")
    login(client, tenant.email)

    def found(query: str) -> list[str]:
        return _names(client.get("/campaigns", query_string={"q": query}).get_data(as_text=True))

    assert found("été chez zoë") == ["ÉTÉ CHEZ ZOË"]
    assert found("ПРИВЕТ") == ["Newsletter"]  # in the subject
    assert found("100%") == ["100% off"]  # % is a character, not a wildcard
    assert found("o_f") == []  # _ too (as a wildcard it would match "off")
    assert found("  soldes ") == ["ÉTÉ CHEZ ZOË"]
    page = client.get("/campaigns?q=nothing+like+this").get_data(as_text=True)
    assert "No campaign matches" in page and "Clear" in page


def test_filter_by_status(app: Flask, client: Any) -> None:
    with app.app_context():
        tenant = make_tenant()
        draft = _campaign(tenant, "Brouillon")
        cancelled = _campaign(tenant, "Annulée")
        core_db.session.get(Campaign, cancelled).status = "cancelled"  # type: ignore[union-attr]
        core_db.session.commit()
    login(client, tenant.email)
    assert _names(client.get("/campaigns?status=cancelled").get_data(as_text=True)) == ["Annulée"]
    assert _names(client.get("/campaigns?status=draft").get_data(as_text=True)) == ["Brouillon"]
    empty = client.get("/campaigns?status=sent").get_data(as_text=True)
    assert "No campaign matches" in empty
    # An unknown status filters nothing.
    assert len(_names(client.get("/campaigns?status=<script>").get_data(as_text=True))) == 2
    assert draft


def test_no_campaigns_yet(app: Flask, client: Any) -> None:
    with app.app_context():
        tenant = make_tenant()
    login(client, tenant.email)
    page = client.get("/campaigns").get_data(as_text=True)
    assert "No campaigns yet" in page
    assert 'id="campaign-search"' not in page


def test_duplicate_makes_a_draft_copy_with_content_audience_and_settings(
    app: Flask, client: Any
) -> None:
    with app.app_context():
        tenant = make_tenant()
        first = subscribers.create_list(tenant.account_id, "Клиенты").id
        second = subscribers.create_list(tenant.account_id, "VIP").id
        segment = subscribers.save_segment(
            tenant.account_id,
            segment_id=None,
            name="Lyon",
            match="all",
            rules=[{"field": "attribute", "key": "city", "op": "equals", "value": "Lyon"}],
        )
        original = services.save_campaign(
            tenant.account_id,
            campaign_id=None,
            name="Rentrée 李",
            subject="{{ contact.first_name }}, c'est la rentrée",
            from_name="Zoë Ñúñez",
            from_email="zoe@shop.example",
            reply_to="aide@shop.example",
            html_body="<p>Bonjour {{ contact.first_name }}</p>",
            text_body="Bonjour",
            list_ids=[first, second],
            segment_ids=[segment.id],
            best_hour_window=(8, 11),
        )
        original.status = "sent"  # a sent campaign can be copied too
        original.track_clicks = False
        core_db.session.commit()
    login(client, tenant.email)
    assert 'id="duplicate"' in client.get(f"/campaigns/{original.id}").get_data(as_text=True)

    response = client.post(f"/campaigns/{original.id}/duplicate")
    assert response.status_code == 302
    assert re.search(r"/campaigns/(\d+)/edit$", response.headers["Location"])
    copy_id = int(response.headers["Location"].split("/")[-2])
    assert copy_id != original.id
    edit_page = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "Copy of Rentrée 李" in unescape(edit_page)
    with app.app_context():
        copy = core_db.session.get(Campaign, copy_id)
        assert copy is not None
        assert copy.status == "draft" and copy.started_at is None
        assert copy.name == "Copy of Rentrée 李"
        for column in ("subject", "from_name", "from_email", "reply_to", "html_body"):
            assert getattr(copy, column) == getattr(original, column)
        assert (copy.text_body, copy.best_hour_start, copy.best_hour_end) == ("Bonjour", 8, 11)
        assert copy.track_clicks is False
        lists = core_db.session.scalars(
            select(CampaignList.list_id).where(CampaignList.campaign_id == copy_id)
        ).all()
        assert sorted(lists) == sorted([first, second])
        segments = core_db.session.scalars(
            select(CampaignSegment.segment_id).where(CampaignSegment.campaign_id == copy_id)
        ).all()
        assert segments == [segment.id]
    # A GET never copies; another account's campaign cannot be copied.
    assert client.get(f"/campaigns/{original.id}/duplicate").status_code == 405
    with app.app_context():
        other = make_tenant("owner@other.example", "Other")
    login(client, other.email)
    assert client.post(f"/campaigns/{original.id}/duplicate").status_code == 404
