"""Content formats (issue 18): visual (MJML), rich text, markdown, raw HTML and plain text are
compiled by one function on save, and sent through the same personalisation and tracking
path. Checked on the compiled output and on messages received by the SMTP sink."""

from __future__ import annotations

import re
from typing import Any

import pytest
from flask import Flask

from campaigns import services, template_library
from campaigns.content import compile_content, sanitise_rich_text
from campaigns.models import ContentFormat
from core.errors import ValidationError
from subscribers import services as subscribers
from tests.campaigns.helpers import campaign_with
from tests.conftest import drain
from tests.mail_parsing import path_of, urls_of
from tests.smtp_sink import SMTPSink

OFFER = "https://shop.example/offer?x=1&y=2"

VISUAL = (
    "<mjml><mj-body><mj-section><mj-column>"
    "<mj-text>Hello {{ contact.first_name }} from {{ contact.attributes.city }}</mj-text>"
    f'<mj-button href="{OFFER.replace("&", "&amp;")}">See the offer</mj-button>'
    "</mj-column><mj-column><mj-text>Second column</mj-text></mj-column></mj-section>"
    "</mj-body></mjml>"
)
MARKDOWN = (
    "# Hello {{ contact.first_name }}\n\n"
    "News from **{{ contact.attributes.city }}**: [see the offer](" + OFFER + ").\n"
)
RICHTEXT = (
    '<p class="ql-align-center">Hello <strong>{{ contact.first_name }}</strong> from '
    '{{ contact.attributes.city }}</p><p><a href="' + OFFER.replace("&", "&amp;") + '">'
    "See the offer</a></p>"
)
PLAIN = "Hello {{ contact.first_name }} from {{ contact.attributes.city }}\n\nOffer: " + OFFER
HTML = (
    "<html><body><p>Hello {{ contact.first_name }} from {{ contact.attributes.city }}</p>"
    f'<a href="{OFFER.replace("&", "&amp;")}">See the offer</a></body></html>'
)
SOURCES = {
    ContentFormat.VISUAL: VISUAL,
    ContentFormat.MARKDOWN: MARKDOWN,
    ContentFormat.RICHTEXT: RICHTEXT,
    ContentFormat.PLAIN: PLAIN,
    ContentFormat.HTML: HTML,
}
VIEWPORT = '<meta name="viewport" content="width=device-width, initial-scale=1">'


def test_visual_compiles_to_responsive_mjml_output_with_inlined_styles_and_no_web_font() -> None:
    compiled = compile_content(ContentFormat.VISUAL, VISUAL)
    assert VIEWPORT in compiled.html
    assert "mj-column-per-50" in compiled.html  # two columns side by side on a wide screen...
    assert "@media only screen and (min-width:480px)" in compiled.html  # ...stacked on a phone
    assert re.search(r'<a href="[^"]*"[^>]* style="[^"]*background:#414141', compiled.html)
    assert "fonts.googleapis" not in compiled.html and "@import" not in compiled.html
    assert "{{ contact.first_name }}" in compiled.html  # left to the sending sandbox
    assert "See the offer" in compiled.text and "Second column" in compiled.text
    assert "|" not in compiled.text  # layout tables read as text, not as a grid


def test_visual_source_reads_no_file_and_bad_mjml_is_a_clear_error() -> None:
    include = "<mjml><mj-body><mj-include path='/etc/passwd' /></mj-body></mjml>"
    with pytest.raises(ValidationError) as exc:
        compile_content(ContentFormat.VISUAL, include)
    assert exc.value.field == "content_source"
    with pytest.raises(ValidationError, match="could not be compiled"):
        compile_content(ContentFormat.VISUAL, "<mjml><mj-body><mj-section>")


def test_markdown_is_themed_inlined_and_never_passes_raw_html() -> None:
    compiled = compile_content(ContentFormat.MARKDOWN, MARKDOWN + "\n<script>alert(1)</script>\n")
    assert VIEWPORT in compiled.html
    assert re.search(r'<h1 style="[^"]*font-size: 26px', compiled.html)
    assert re.search(r'<a href="https://shop.example/offer\?x=1&amp;y=2" style="', compiled.html)
    assert "@media only screen and (max-width: 620px)" in compiled.html  # full width on phones
    assert "<script>" not in compiled.html and "&lt;script&gt;" in compiled.html
    assert "# Hello {{ contact.first_name }}" in compiled.text


def test_rich_text_sanitiser_strips_scripts_handlers_and_javascript_urls() -> None:
    pasted = (
        '<p onclick="steal()" style="position:fixed">Hi <b onmouseover="x()">Zoë</b></p>'
        "<script>alert(1)</script><style>p{}</style><iframe src='https://evil.example'></iframe>"
        '<a href="javascript:alert(1)">bad</a><a href="https://ok.example/">ok</a>'
        '<img src="https://ok.example/i.png" onerror="x()" alt="Logo">'
        '<form action="https://evil.example"><input name="q"></form>'
    )
    clean = sanitise_rich_text(pasted)
    for gone in ("onclick", "onmouseover", "onerror", "script", "alert", "iframe", "evil",
                 "javascript", "position:fixed", "<style", "<form", "<input"):  # fmt: skip
        assert gone not in clean
    assert "<b>Zoë</b>" in clean and 'href="https://ok.example/"' in clean
    assert '<img src="https://ok.example/i.png" alt="Logo">' in clean
    compiled = compile_content(ContentFormat.RICHTEXT, pasted + RICHTEXT)
    assert "onclick" not in compiled.html and "<script" not in compiled.html
    assert re.search(r'<p class="ql-align-center" style="[^"]*text-align: center', compiled.html)


def test_plain_text_is_its_own_text_part_with_a_minimal_escaped_html_part() -> None:
    compiled = compile_content(ContentFormat.PLAIN, "Tom & Jerry <3\n\n" + PLAIN)
    assert compiled.text.startswith("Tom & Jerry <3")
    assert "<p>Tom &amp; Jerry &lt;3</p>" in compiled.html and VIEWPORT in compiled.html
    assert '<a href="https://shop.example/offer?x=1&amp;y=2">' in compiled.html


def test_raw_html_is_the_marketers_own_and_is_left_as_written() -> None:
    assert compile_content(ContentFormat.HTML, HTML).html == HTML
    with pytest.raises(ValidationError):
        compile_content("docx", "x")


@pytest.mark.parametrize("fmt", list(ContentFormat))
def test_personalisation_tracking_and_footer_work_alike_in_every_format(
    app: Flask, smtp_sink: SMTPSink, fmt: ContentFormat
) -> None:
    with app.app_context():
        setup = campaign_with([])
        subscribers.add_contact_to_list(
            setup.tenant.account_id,
            setup.list_id,
            "zoe@example.org",
            name="Zoë Ångström",
            attributes={"city": "Kraków"},
        )
        services.save_campaign(
            setup.tenant.account_id,
            campaign_id=setup.campaign_id,
            name="Formats",
            subject="For {{ contact.first_name }}",
            from_name="Shop",
            from_email="news@shop.example",
            html_body="",
            list_ids=[setup.list_id],
            content_format=fmt,
            content_source=SOURCES[fmt],
        )
        services.start(setup.tenant.account_id, setup.campaign_id)
    drain(app)
    received = smtp_sink.wait_for(1)[0]
    assert str(received.message["Subject"]) == "For Zoë"
    urls = urls_of(received.message)
    for part in (urls.html, urls.text):
        assert "Hello" in part and "Zoë" in part and "Kraków" in part
        assert "{{" not in part
    assert OFFER not in urls.html  # the link goes through the click redirect...
    assert len(urls.clicks) == 1
    landed = app.test_client(use_cookies=False).get(path_of(urls.clicks[0]))
    assert landed.status_code == 302 and landed.headers["Location"] == OFFER  # ...and lands
    assert urls.unsubscribe_body is not None and ">Unsubscribe</a>" in urls.html
    assert "1 Main St" in urls.html and "1 Main St" in urls.text
    if fmt is not ContentFormat.HTML:
        assert VIEWPORT in urls.html


def _campaign(fmt: ContentFormat) -> Any:
    setup = campaign_with(["ada@example.org"])
    campaign = services.save_campaign(
        setup.tenant.account_id,
        campaign_id=setup.campaign_id,
        name="Formats",
        subject="Hi",
        from_name="Shop",
        from_email="news@shop.example",
        html_body="",
        list_ids=[setup.list_id],
        content_format=fmt,
        content_source=SOURCES[fmt],
    )
    return setup, campaign


@pytest.mark.parametrize(
    "fmt", [ContentFormat.VISUAL, ContentFormat.MARKDOWN, ContentFormat.RICHTEXT]
)
def test_converting_down_to_html_keeps_the_email_exactly(app: Flask, db: Any, fmt: Any) -> None:
    setup, campaign = _campaign(fmt)
    before = campaign.html_body
    converted = services.convert_content(setup.tenant.account_id, campaign.id, ContentFormat.HTML)
    assert converted.content_format is ContentFormat.HTML
    assert converted.content_source == before and converted.html_body == before


@pytest.mark.parametrize(
    ("fmt", "to"),
    [
        (ContentFormat.HTML, ContentFormat.VISUAL),
        (ContentFormat.HTML, ContentFormat.MARKDOWN),
        (ContentFormat.MARKDOWN, ContentFormat.VISUAL),
        (ContentFormat.PLAIN, ContentFormat.HTML),
    ],
)
def test_converting_up_or_sideways_is_refused_and_changes_nothing(
    app: Flask, db: Any, fmt: Any, to: Any
) -> None:
    setup, campaign = _campaign(fmt)
    with pytest.raises(ValidationError, match="cannot be converted"):
        services.convert_content(setup.tenant.account_id, campaign.id, to)
    db.expire_all()
    assert campaign.content_format is fmt and campaign.content_source == SOURCES[fmt]


def test_templates_keep_their_format_into_new_and_duplicated_campaigns(app: Flask, db: Any) -> None:
    setup, _ = _campaign(ContentFormat.HTML)
    account_id = setup.tenant.account_id
    template = template_library.save_template(
        account_id,
        template_id=None,
        name="Weekly",
        subject="Week",
        html_body="",
        content_format=ContentFormat.MARKDOWN,
        content_source=MARKDOWN,
    )
    assert template.content_format is ContentFormat.MARKDOWN and VIEWPORT in template.html_body
    made = services.campaign_from_template(account_id, template.id, "From the template")
    assert made.content_format is ContentFormat.MARKDOWN and made.content_source == MARKDOWN
    assert made.html_body == template.html_body
    copy = services.duplicate_campaign(account_id, made.id)
    assert copy.content_format is ContentFormat.MARKDOWN and copy.content_source == MARKDOWN
    assert copy.html_body == made.html_body


def test_a_personalisation_error_names_the_source_field(app: Flask, db: Any) -> None:
    setup, campaign = _campaign(ContentFormat.MARKDOWN)
    with pytest.raises(ValidationError) as exc:
        services.save_campaign(
            setup.tenant.account_id,
            campaign_id=campaign.id,
            name="Formats",
            subject="Hi",
            from_name="Shop",
            from_email="news@shop.example",
            html_body="",
            content_format=ContentFormat.MARKDOWN,
            content_source="Hello {% if %}",
        )
    assert exc.value.field == "content_source"
