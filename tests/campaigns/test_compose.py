"""Composing: personalisation in a sandbox, header injection, text part, preview, templates."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import unquote

import pytest

from campaigns import previews, services, template_library
from campaigns.models import Campaign
from core.errors import ValidationError
from subscribers import services as subscribers
from tests.campaigns.helpers import campaign_with, html_of, parse, text_of
from tests.conftest import drain
from tests.factories import login
from tests.smtp_sink import SMTPSink


def test_personalisation_uses_contact_fields_and_attributes(
    app: Any, db: Any, smtp_sink: SMTPSink
) -> None:
    setup = campaign_with(
        [],
        html="<html><body><p>Hi {{ contact.first_name }} from {{ contact.attributes.city }}"
        " &lt;{{ contact.email }}&gt;</p></body></html>",
        subject="For {{ contact.name }}",
    )
    contact = subscribers.add_contact_to_list(
        setup.tenant.account_id, setup.list_id, "ada@example.org", "Ada <b>Lovelace</b>"
    )
    contact.attributes = {"city": "London"}
    db.commit()
    services.start(setup.tenant.account_id, setup.campaign_id)
    drain(app)
    received = smtp_sink.wait_for(1)[0]
    assert received.message["Subject"] == "For Ada <b>Lovelace</b>"
    html = html_of(received.data)
    # Autoescaped in HTML: contact data cannot inject markup.
    assert "Hi Ada from London &lt;ada@example.org&gt;" in html
    assert "<b>" not in html.split("Hi ")[0][-50:]
    assert "Ada from London" in text_of(received.data)


@pytest.mark.parametrize(
    "body",
    [
        "{{ config }}{{ config.SECRET_KEY }}",
        "{{ self.__init__.__globals__ }}",
        "{{ ''.__class__.__mro__[1].__subclasses__() }}",
        "{{ contact.__class__.__init__.__globals__['os'] }}",
        "{{ cycler.__init__.__globals__.os }}",
        "{{ lipsum.__globals__ }}",
        "{{ contact.email.__class__.__base__ }}",
        "{% for c in [].__class__.__base__.__subclasses__() %}{{ c }}{% endfor %}",
        "{{ request }}{{ session }}{{ g }}{{ url_for }}",
    ],
)
def test_sandbox_escapes_are_refused_or_render_nothing(app: Any, db: Any, body: str) -> None:
    setup = campaign_with([])
    try:
        services.save_campaign(
            setup.tenant.account_id,
            campaign_id=setup.campaign_id,
            name="x",
            subject="s",
            from_name="",
            from_email="news@shop.example",
            html_body=f"<html><body>{body}</body></html>",
            list_ids=[setup.list_id],
        )
    except ValidationError as exc:
        assert "Personalisation error" in exc.message
        assert "unsafe" not in exc.message and "object" not in exc.message  # no internals
        return
    shown = previews.preview(setup.tenant.account_id, setup.campaign_id, None)
    secret = app.config["SECRET_KEY"]
    assert secret not in shown.html
    for leak in ("<class", "function", "module", "os.py", "Config", "environ"):
        assert leak not in shown.html, shown.html


def test_broken_template_is_refused_with_its_line(app: Any, db: Any) -> None:
    setup = campaign_with([])
    with pytest.raises(ValidationError, match="line 2"):
        services.save_campaign(
            setup.tenant.account_id,
            campaign_id=setup.campaign_id,
            name="x",
            subject="s",
            from_name="",
            from_email="news@shop.example",
            html_body="<p>ok</p>\n{{ contact.name",
            list_ids=[setup.list_id],
        )


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("subject", "Hi\r\nBcc: victim@example.org"),
        ("from_name", "Shop\nBcc: victim@example.org"),
        ("reply_to", "a@example.org\r\nBcc: victim@example.org"),
    ],
)
def test_header_injection_is_refused(app: Any, db: Any, field: str, value: str) -> None:
    setup = campaign_with([])
    values = {
        "subject": "s",
        "from_name": "Shop",
        "reply_to": "",
        field: value,
    }
    with pytest.raises(ValidationError) as caught:
        services.save_campaign(
            setup.tenant.account_id,
            campaign_id=setup.campaign_id,
            name="x",
            from_email="news@shop.example",
            html_body="<p>x</p>",
            list_ids=[setup.list_id],
            **values,
        )
    assert caught.value.field == field


def test_contact_data_cannot_inject_headers(app: Any, db: Any, smtp_sink: SMTPSink) -> None:
    setup = campaign_with([], subject="Hello {{ contact.name }}")
    subscribers.add_contact_to_list(
        setup.tenant.account_id, setup.list_id, "eve@example.org", "Eve"
    )
    contact = subscribers.add_contact_to_list(
        setup.tenant.account_id, setup.list_id, "mallory@example.org", "M"
    )
    contact.name = "Mallory\r\nBcc: victim@example.org"
    db.commit()
    services.start(setup.tenant.account_id, setup.campaign_id)
    drain(app)
    received = smtp_sink.wait_for(2)
    for item in received:
        assert item.recipients != ["victim@example.org"]
        assert parse(item.data)["Bcc"] is None
    assert any("Bcc: victim" in str(r.message["Subject"]) for r in received)  # inside the subject


def test_text_part_is_generated_from_html_and_keeps_personalisation(
    app: Any, db: Any, smtp_sink: SMTPSink
) -> None:
    setup = campaign_with(
        [],
        html="<html><body><h1>Big_news for {{ contact.first_name }}</h1><p>Read"
        ' <a href="https://shop.example/news">the news</a>.</p></body></html>',
    )
    subscribers.add_contact_to_list(
        setup.tenant.account_id, setup.list_id, "ada@example.org", "Ada L"
    )
    services.start(setup.tenant.account_id, setup.campaign_id)
    drain(app)
    text = text_of(smtp_sink.wait_for(1)[0].data)
    assert "for Ada" in text
    assert "Unsubscribe: http://localhost/u/" in text
    assert "1 Main St" in text


def test_link_destinations_with_braces_are_literal_in_both_parts(
    app: Any, client: Any, db: Any, smtp_sink: SMTPSink
) -> None:
    # "{#" would open a Jinja comment in the generated text part; a destination is never code.
    destinations = ["https://shop.example/app/{#section}", "https://shop.example/b?q={x}#{#}"]
    html = (
        "<html><body><p>Hi {{ contact.first_name }}</p>"
        + "".join(f'<a href="{url}">link {i}</a> ' for i, url in enumerate(destinations))
        + "</body></html>"
    )
    setup = campaign_with(["ada@example.org"], html=html)
    services.start(setup.tenant.account_id, setup.campaign_id)
    drain(app)
    received = smtp_sink.wait_for(1)[0]
    text = text_of(received.data)
    for url in destinations:
        assert f"({url})" in text
    tracked = re.findall(r'href="http://localhost(/c/[^"]+)"', html_of(received.data))
    # Braces are not URI characters: the redirect sends them percent-encoded, as browsers do.
    locations = [client.get(path).headers["Location"] for path in tracked]
    assert [unquote(location) for location in locations] == destinations


def test_preview_page_is_sandboxed(app: Any, client: Any, db: Any) -> None:
    setup = campaign_with([])
    contact = subscribers.add_contact_to_list(
        setup.tenant.account_id, setup.list_id, "ada@example.org", "Ada Lovelace"
    )
    login(client, setup.tenant.email)
    page = client.get(f"/campaigns/{setup.campaign_id}?contact_id={contact.id}")
    assert page.status_code == 200
    assert 'sandbox=""' in page.get_data(as_text=True)
    shown = client.get(f"/campaigns/{setup.campaign_id}/preview?contact_id={contact.id}")
    assert "Hi Ada" in shown.get_data(as_text=True)
    csp = shown.headers["Content-Security-Policy"]
    assert "sandbox" in csp and "default-src 'none'" in csp and "script" not in csp


def test_preview_of_another_accounts_contact_is_refused(app: Any, client: Any, db: Any) -> None:
    setup = campaign_with([])
    other = campaign_with(["secret@other.example"], email="other@other.example")
    from sqlalchemy import select

    from subscribers.models import Contact

    foreign = db.scalar(select(Contact.id).where(Contact.email == "secret@other.example"))
    login(client, setup.tenant.email)
    shown = client.get(f"/campaigns/{setup.campaign_id}/preview?contact_id={foreign}")
    assert "secret@other.example" not in shown.get_data(as_text=True)
    assert client.get(f"/campaigns/{other.campaign_id}/preview").status_code == 404


def test_test_send_goes_to_chosen_addresses_only(
    app: Any, client: Any, db: Any, smtp_sink: SMTPSink
) -> None:
    setup = campaign_with(["ada@example.org"])
    login(client, setup.tenant.email)
    response = client.post(
        f"/campaigns/{setup.campaign_id}/test",
        data={"addresses": "me@shop.example, boss@shop.example", "contact_id": 0},
    )
    assert response.status_code == 302
    received = smtp_sink.wait_for(2)
    assert sorted(r.recipients[0] for r in received) == ["boss@shop.example", "me@shop.example"]
    assert str(received[0].message["Subject"]).startswith("[Test] Hello Sample")
    bad = client.post(f"/campaigns/{setup.campaign_id}/test", data={"addresses": "not-an-address"})
    assert bad.status_code == 400
    assert "not-an-address" in bad.get_data(as_text=True)


def test_templates_are_reusable_per_account(app: Any, client: Any, db: Any) -> None:
    setup = campaign_with([])
    login(client, setup.tenant.email)
    response = client.post(
        "/templates/new",
        data={
            "name": "Monthly",
            "subject": "News for {{ contact.first_name }}",
            "html_body": "<p>Hello {{ contact.name }}</p>",
        },
    )
    assert response.status_code == 302
    template = template_library.get_template(
        setup.tenant.account_id,
        next(
            t.id for t in __import__("campaigns.queries").queries.templates(setup.tenant.account_id)
        ),
    )
    response = client.post(
        "/campaigns/from-template", data={"template_id": template.id, "name": "March"}
    )
    assert response.status_code == 302
    draft = services.get_campaign(
        setup.tenant.account_id, int(response.headers["Location"].split("/")[-2])
    )
    assert draft.subject == "News for {{ contact.first_name }}"
    assert draft.html_body == "<p>Hello {{ contact.name }}</p>"
    bad = client.post("/templates/new", data={"name": "Bad", "html_body": "{% if %}"})
    assert bad.status_code == 200 and "Personalisation error" in bad.get_data(as_text=True)


@pytest.mark.parametrize(
    "line,encoding",
    [
        ("<p>" + "x" * 983 + "</p>", "7bit"),  # 990 octets: the longest line sent as it is
        ("<p>" + "x" * 984 + "</p>", "quoted-printable"),  # 991 octets
        ("<p>" + "y" * 5000 + "</p>", "quoted-printable"),
        ("<p>Grüße aus Köln ☕</p>", "quoted-printable"),
        ("<p>plain ascii</p>", "7bit"),
    ],
    ids=["990", "991", "5000", "non-ascii", "short"],
)
def test_the_body_arrives_intact_whatever_its_lines_and_characters(
    app: Any, db: Any, smtp_sink: SMTPSink, line: str, encoding: str
) -> None:
    # CRLF and LF line ends mixed in the source; every line arrives as written.
    html = f"<html><body>\r\n<h1>To {{{{ contact.email }}}}</h1>\n{line}\r\n</body></html>"
    setup = campaign_with(["ada@example.org"], html=html)
    services.start(setup.tenant.account_id, setup.campaign_id)
    drain(app)
    received = smtp_sink.wait_for(1)[0]
    part = parse(received.data).get_body(preferencelist=("html",))
    assert part is not None and part["Content-Transfer-Encoding"] == encoding
    assert line in html_of(received.data).splitlines()
    assert "<h1>To ada@example.org</h1>" in html_of(received.data).splitlines()
    # SMTP's limit (RFC 5321 4.5.3.1.6): no line over 998 octets plus CRLF on the wire.
    assert max(map(len, received.data.split(b"\r\n"))) <= 998
    assert b"\n" not in received.data.replace(b"\r\n", b"")


def test_links_are_the_same_for_everyone_without_ids_even_when_left_untracked(
    app: Any, db: Any, smtp_sink: SMTPSink
) -> None:
    html = (
        '<html><body><p>To {{ contact.email }}</p><a href="https://shop.example/a">A</a>'
        '<a href="https://shop.example/b?q={x}&amp;r=2">B</a></body></html>'
    )
    setup = campaign_with(["ada@example.org", "bob@example.org"], html=html)
    campaign = db.get(Campaign, setup.campaign_id)
    campaign.track_clicks = False
    db.commit()
    services.start(setup.tenant.account_id, setup.campaign_id)
    drain(app)
    bodies = [html_of(received.data) for received in smtp_sink.wait_for(2)]
    for body, address in zip(bodies, ("ada@example.org", "bob@example.org"), strict=True):
        assert f"<p>To {address}</p>" in body
        assert '<a href="https://shop.example/a">A</a>' in body
        assert '<a href="https://shop.example/b?q={x}&amp;r=2">B</a>' in body
