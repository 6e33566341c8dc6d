"""A campaign can go to segments as well as lists, chosen in the compose form."""

from __future__ import annotations

from flask import Flask

from subscribers import services as subscriber_services
from tests.conftest import drain
from tests.factories import id_from_location, login, make_list_with_contacts, make_tenant
from tests.smtp_sink import SMTPSink


def test_campaign_to_a_list_and_a_segment_reaches_each_match_once(
    app: Flask, smtp_sink: SMTPSink
) -> None:
    with app.app_context():
        tenant = make_tenant()
        other = make_tenant("owner@other.example")
        news = make_list_with_contacts(tenant, ["ann@vip.example", "bob@plain.example"], "News")
        make_list_with_contacts(tenant, ["cat@vip.example"], "Events")
        vip = subscriber_services.save_segment(
            tenant.account_id,
            None,
            "VIP",
            "all",
            [{"field": "email", "op": "ends_with", "value": "@vip.example"}],
        ).id
        foreign = subscriber_services.save_segment(
            other.account_id,
            None,
            "theirs",
            "all",
            [{"field": "email", "op": "contains", "value": "@"}],
        ).id
    client = app.test_client()
    login(client, tenant.email)
    form = {
        "name": "VIP news",
        "subject": "Hello",
        "from_name": "Shop",
        "from_email": "news@shop.example",
        "html_body": "<p>Hi</p>",
        "list_ids": [news],
    }
    refused = client.post("/campaigns/new", data={**form, "segment_ids": [foreign]})
    assert refused.status_code != 302  # another account's segment is not a choice
    saved = client.post("/campaigns/new", data={**form, "segment_ids": [vip]})
    campaign_id = id_from_location(saved.headers["Location"], "/campaigns")
    confirm = client.get(f"/campaigns/{campaign_id}/send").get_data(as_text=True)
    assert "Send now to 3 recipients" in confirm  # the count follows segments too
    assert client.post(f"/campaigns/{campaign_id}/send", data={"expected": 3}).status_code == 302
    drain(app)
    received = sorted(r.recipients[0] for r in smtp_sink.wait_for(3))
    # ann is on the list and in the segment: one message; cat comes through the segment only.
    assert received == ["ann@vip.example", "bob@plain.example", "cat@vip.example"]
