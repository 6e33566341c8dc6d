"""Seeing a campaign before it goes out: the preview as one contact (or a sample contact) would
get it, the personalisation fields that contact lacks, and a test send to a few addresses. Both
use the draft view of :mod:`campaigns.sending.rendering`: no tracking, and links that work and
record nothing."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import select

from campaigns.render import Recipient, RecipientError, TemplateError, render_message
from campaigns.senders import is_verified_sender
from campaigns.sending.rendering import draft_view
from campaigns.sending.servers import account_servers, server_connection
from campaigns.services import get_campaign
from campaigns.settings import setting
from core import db
from core.errors import NotFoundError, ValidationError
from core.mail import PermanentMailError
from privacy.policy import may_process
from subscribers.models import Contact
from subscribers.normalise import normalise_email


def _recipient_for_contact(account_id: int, contact_id: int | None) -> Recipient:
    if contact_id is None:
        return Recipient(0, "preview@example.org", "Sample Contact", {})
    contact = db.session.scalar(
        select(Contact).where(Contact.id == contact_id, Contact.account_id == account_id)
    )
    if not may_process(contact):  # erased, restricted, objecting, withdrawn: not rendered
        raise NotFoundError("contact")
    assert contact is not None
    return Recipient(0, contact.email, contact.name, dict(contact.attributes or {}))


@dataclass(frozen=True)
class Preview:
    """A rendered preview: the subject, the HTML part and the text part."""

    subject: str
    html: str
    text: str


def preview(account_id: int, campaign_id: int, contact_id: int | None) -> Preview:
    """The campaign as ``contact_id`` (or a sample contact) would get it, without tracking (its
    links are a test message's: they work and record nothing)."""
    campaign = get_campaign(account_id, campaign_id)
    view = draft_view(campaign, test=True)  # its links work like a test message's
    recipient = _recipient_for_contact(account_id, contact_id)
    try:
        rendered = render_message(view, recipient)
    except (TemplateError, RecipientError) as exc:
        raise ValidationError(str(exc)) from exc
    from email import message_from_bytes, policy
    from email.message import EmailMessage

    parsed = message_from_bytes(rendered.wire, policy=policy.default)
    assert isinstance(parsed, EmailMessage)
    html_part = parsed.get_body(preferencelist=("html",))
    text_part = parsed.get_body(preferencelist=("plain",))
    return Preview(
        subject=str(parsed["Subject"]),
        html=html_part.get_content() if html_part else "",
        text=text_part.get_content() if text_part else "",
    )


def content_preview(content_format: str, source: str) -> str:
    """A body being written, compiled exactly as saving compiles it
    (:func:`campaigns.content.compile_content`), its personalisation fields left as written;
    a body that does not compile gives the reason as a short page. Never raises."""
    from html import escape

    from campaigns.content import compile_content

    try:
        return compile_content(content_format, source).html
    except ValidationError as exc:
        return f"<p style='color:#c92a2a;font-family:sans-serif'>{escape(exc.message)}</p>"


_DARK_QUERY = re.compile(
    r"@media\s*(?:screen\s+and\s*)?\(\s*prefers-color-scheme\s*:\s*dark\s*\)", re.I
)
#: What clients without the email's own dark styles do (Gmail's and Outlook's apps): invert
#: the colours, and the images back so photos look as they are.
_INVERTED = (
    "<style>html{filter:invert(1) hue-rotate(180deg);background:#fff}"
    "img,picture,video,[style*='background-image']{filter:invert(1) hue-rotate(180deg)}</style>"
)


def dark_mode(html: str) -> tuple[str, str]:
    """The preview HTML as a dark-mode client would show it, and how it was made.

    A page cannot switch ``prefers-color-scheme`` for a frame (it follows the viewer's own
    system setting), so the dark preview is made on the server: when the email has its own
    ``@media (prefers-color-scheme: dark)`` rules, they are made unconditional (Apple Mail and
    Outlook.com apply them); when it has none, its colours are inverted, as the Gmail and
    Outlook apps do (images kept as they are)."""
    if _DARK_QUERY.search(html):
        return _DARK_QUERY.sub("@media all", html), "own"
    marker = re.search(r"</head\s*>", html, re.I) or re.search(r"<body[^>]*>", html, re.I)
    if marker is None:
        return _INVERTED + html, "inverted"
    at = marker.start() if marker.group(0).lower().startswith("</head") else marker.end()
    return html[:at] + _INVERTED + html[at:], "inverted"


def preview_missing_fields(account_id: int, campaign_id: int, contact_id: int | None) -> list[str]:
    """The personalisation fields the campaign uses that ``contact_id`` (or the sample
    contact) has no value for: in the real message they render as nothing. Never raises on a
    broken template (saving refuses those)."""
    from campaigns.personalisation import missing_fields

    campaign = get_campaign(account_id, campaign_id)
    recipient = _recipient_for_contact(account_id, contact_id)
    return missing_fields((campaign.subject, campaign.html_body, campaign.text_body), recipient)


#: How many addresses one test send may go to.
MAX_TEST_ADDRESSES = 10


def split_addresses(text: str) -> list[str]:
    """The addresses in what a person typed: separated by commas, semicolons or lines."""
    return [part.strip() for part in re.split(r"[,;\r\n]+", text) if part.strip()]


def send_test(
    account_id: int,
    campaign_id: int,
    addresses: str | Sequence[str],
    contact_id: int | None = None,
) -> int:
    """Send the campaign now to up to :data:`MAX_TEST_ADDRESSES` addresses (a list, or text
    separated by commas, semicolons or lines; an address repeated in another case once),
    personalised for ``contact_id`` (or a sample), from the campaign's sender (verified, when
    the platform requires it), with "[Test]" before the subject and an ``X-Envoy-Test: yes``
    header; it creates no Message row, so no report counts it. Its links work but record
    nothing: clicks go through the redirect marked as a test, the unsubscribe and preference
    links open pages that say it is a test and change nothing, and there is no beacon. Returns
    how many were sent."""
    campaign = get_campaign(account_id, campaign_id)
    if isinstance(addresses, str):
        addresses = split_addresses(addresses)
    cleaned: list[str] = []
    for address in addresses:
        if address.strip():
            try:
                normalised = normalise_email(address)
            except ValidationError as exc:
                raise ValidationError(
                    f"{address.strip()[:100]}: {exc.message}", field="addresses"
                ) from exc
            if normalised.casefold() not in {a.casefold() for a in cleaned}:
                cleaned.append(normalised)
    if not cleaned:
        raise ValidationError("Give at least one address.", field="addresses")
    if len(cleaned) > MAX_TEST_ADDRESSES:
        raise ValidationError(
            f"At most {MAX_TEST_ADDRESSES} addresses per test.", field="addresses"
        )
    if not campaign.from_email:
        raise ValidationError("Give a sender address first.", field="addresses")
    if setting("REQUIRE_VERIFIED_SENDER") and not is_verified_sender(
        account_id, campaign.from_email
    ):
        raise ValidationError(
            f"Verify the sender address {campaign.from_email} first (Sending settings): tests "
            "go from verified senders only.",
            field="addresses",
        )
    view = draft_view(campaign, test=True)
    base = _recipient_for_contact(account_id, contact_id)
    sent = 0
    servers = account_servers(account_id)
    with server_connection(servers[0]) as conn:
        for address in cleaned:
            recipient = Recipient(0, address, base.name, base.attributes)
            try:
                rendered = render_message(view, recipient, subject_prefix="[Test] ")
                conn.send(rendered.wire, rendered.envelope_from, [rendered.recipient])
            except (TemplateError, RecipientError) as exc:
                raise ValidationError(str(exc), field="addresses") from exc
            except PermanentMailError as exc:
                raise ValidationError(
                    f"The SMTP server did not take the test for {address}: {exc}",
                    field="addresses",
                ) from exc
            sent += 1
    return sent
