"""The template gallery: six responsive MJML layouts with up-to-date thumbnails, "new campaign
from the gallery" sent for real to the SMTP sink, and "save as template" over HTTP."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from flask import Flask

from campaigns import gallery, senders, services
from campaigns.models import Campaign, ContentFormat, Template
from core import db
from subscribers import services as subscriber_services
from tests.campaigns.helpers import html_of, parse, text_of
from tests.conftest import drain
from tests.factories import id_from_location, login, make_tenant

SLUGS = ["newsletter", "announcement", "promotion", "event", "plain-letter", "receipt"]


def test_the_gallery_has_the_six_layouts_with_thumbnails_made_from_their_source() -> None:
    assert [t.slug for t in gallery.GALLERY] == SLUGS
    recorded = json.loads(gallery.THUMB_SOURCES.read_text())
    for starter in gallery.GALLERY:
        thumb = gallery.THUMBS_DIR / f"{starter.slug}.png"
        assert thumb.read_bytes().startswith(b"\x89PNG"), starter.slug
        assert recorded.get(starter.slug) == gallery.source_hash(starter.slug), (
            f"{starter.slug}.mjml changed: run scripts/gallery-thumbnails"
        )


@pytest.fixture
def owner(app_factory: Any, smtp_sink: Any) -> Any:
    app: Flask = app_factory(BASE_URL="https://envoy.example")
    app.extensions["test_sink"] = smtp_sink
    with app.app_context():
        tenant = make_tenant("owner@shop.example", "Café Zoë")
        senders.add_sender(tenant.account_id, "news@shop.example", "Café", verified=True)
        news = subscriber_services.create_list(tenant.account_id, "News")
        subscriber_services.add_contact_to_list(
            tenant.account_id, news.id, "zoe@example.org", "Zoë Ångström"
        )
    client = app.test_client()
    login(client, "owner@shop.example")
    return app, client, tenant, news.id


def test_the_gallery_page_shows_each_layout_and_its_thumbnail_loads(owner: Any) -> None:
    _app, client, _tenant, _list_id = owner
    page = client.get("/templates/gallery").get_data(as_text=True)
    for starter in gallery.GALLERY:
        assert starter.name in page
        src = f"/campaigns-static/gallery/thumbs/{starter.slug}.png"
        assert src in page
        assert client.get(src).status_code == 200
    assert "No templates of your own yet" in page


@pytest.mark.parametrize("slug", SLUGS)
def test_a_campaign_from_each_layout_is_sent_responsive(owner: Any, slug: str) -> None:
    app, client, tenant, list_id = owner
    response = client.post(f"/campaigns/from-gallery/{slug}")
    assert response.status_code == 302
    campaign_id = id_from_location(response.headers["Location"], "/campaigns")
    assert response.headers["Location"].endswith(f"/campaigns/{campaign_id}/edit")
    with app.app_context():
        campaign = db.session.get(Campaign, campaign_id)
        assert campaign is not None and campaign.name == gallery.starter(slug).name
        # A visual body: the layout's MJML is the source the visual editor opens.
        assert campaign.content_format == ContentFormat.VISUAL
        assert campaign.content_source.startswith("<mjml")
        assert "https://envoy.example/campaigns-static/gallery/" in campaign.content_source or (
            "<mj-image" not in campaign.content_source
        )
        services.save_campaign(
            tenant.account_id,
            campaign_id=campaign_id,
            name=campaign.name,
            subject=campaign.subject,
            from_name="Café Zoë",
            from_email="news@shop.example",
            html_body="",
            content_format=campaign.content_format,
            content_source=campaign.content_source,
            list_ids=[list_id],
        )
        services.start(tenant.account_id, campaign_id)
        drain(app)
    [received] = app.extensions["test_sink"].wait_for(1)
    html = html_of(received.data)
    assert '<meta name="viewport" content="width=device-width, initial-scale=1">' in html
    assert "@media only screen and (min-width:480px)" in html  # MJML's responsive columns
    assert "Zoë" in html and "{{" not in html  # personalised, no Jinja left
    assert "Unsubscribe" in html and "https://envoy.example/u/" in html
    # Images come from the platform itself, never from a third party.
    images = re.findall(r'<img[^>]+src="([^"]+)"', html)
    assert all(src.startswith("https://envoy.example/") for src in images), images
    layout_images = [t for t in re.findall(r"<img[^>]+>", html) if "/campaigns-static/" in t]
    assert all('alt=""' not in tag for tag in layout_images)  # every picture says what it shows
    links = re.findall(r'href="(https?://[^"]+)"', html)
    assert any("/c/" in link for link in links)  # tracked links
    assert not [link for link in links if "example.com" in link]  # none left untracked
    assert "Zoë" in text_of(received.data)
    assert parse(received.data)["Subject"] == gallery.starter(slug).subject


def test_an_unknown_layout_is_not_found(owner: Any) -> None:
    _app, client, _tenant, _list_id = owner
    assert client.post("/campaigns/from-gallery/nope").status_code == 404


def test_save_as_template_then_start_a_campaign_from_it(owner: Any) -> None:
    app, client, _tenant, _list_id = owner
    created = client.post("/campaigns/from-gallery/event")
    campaign_id = id_from_location(created.headers["Location"], "/campaigns")
    detail = client.get(f"/campaigns/{campaign_id}").get_data(as_text=True)
    assert "Save as template" in detail
    saved = client.post(f"/campaigns/{campaign_id}/save-as-template", follow_redirects=True)
    assert saved.status_code == 200
    assert "Saved as the template “Event invitation”." in saved.get_data(as_text=True)
    with app.app_context():
        [template] = db.session.query(Template).all()
        campaign = db.session.get(Campaign, campaign_id)
        assert campaign is not None
        assert (template.subject, template.html_body) == (campaign.subject, campaign.html_body)
        assert template.content_format == ContentFormat.VISUAL
        assert template.content_source == campaign.content_source
        template_id = template.id
    named = client.post(
        f"/campaigns/{campaign_id}/save-as-template", data={"name": "Spring évènement"}
    )
    assert named.status_code == 302
    gallery_page = client.get("/templates/gallery").get_data(as_text=True)
    assert "Event invitation" in gallery_page and "Spring évènement" in gallery_page
    again = client.post("/campaigns/from-template", data={"template_id": template_id})
    new_id = id_from_location(again.headers["Location"], "/campaigns")
    with app.app_context():
        copy = db.session.get(Campaign, new_id)
        assert copy is not None and copy.html_body == campaign.html_body
        assert (copy.content_format, copy.content_source) == (
            ContentFormat.VISUAL,
            campaign.content_source,
        )
    # Another account can neither save this campaign as its template nor see it.
    with app.app_context():
        make_tenant("intruder@other.example", "Other")
    other = app.test_client()
    login(other, "intruder@other.example")
    assert other.post(f"/campaigns/{campaign_id}/save-as-template").status_code == 404
    with app.app_context():
        assert db.session.query(Template).count() == 2
