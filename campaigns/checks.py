"""Pre-send checks: what a campaign's content will do in inboxes, each with why it matters.

Every check returns a :class:`Check` with a level: ``error`` blocks scheduling and sending
(:func:`campaigns.services.start` and ``schedule`` refuse, not only the page), ``warning`` is
shown and does not block, ``ok`` says the check passed. The checks read the campaign as it
will be sent: the rendered sample message (footer, links, the unsubscribe link as the
sending path writes them) and, for personalisation, the audience's own attributes (one
aggregate query over the audience, however large).

The thresholds and the reasons behind them:

- subject: phones show about 35 to 45 characters in the inbox list, desktop clients about
  60; what is cut off is not read (warning above :data:`SUBJECT_WARN`). No preheader field:
  the inbox shows the first text of the body after the subject, so that text is checked;
- images: without ``alt`` text, a reader whose client blocks images (many by default) and a
  screen reader see nothing; an email of images with little text is filtered as spam more
  often and says nothing until images load;
- size: Gmail clips an HTML part over about 102 KB behind "View entire message", and with it
  the footer: the unsubscribe link and the postal address the law requires (error), with a
  warning from :data:`SIZE_WARN`;
- links: a link that is not http(s) (``javascript:``, a relative path, ``file:``) or whose
  address goes nowhere (``#``, empty, no host) cannot be followed from an inbox (error);
  ``mailto:`` and ``tel:`` are fine;
- unsubscribe and postal address: every campaign must show a working unsubscribe link
  (RFC 8058 senders' rules, Gmail and Yahoo 2024) and the sender's postal address
  (CAN-SPAM). The footer adds both; the check finds them in the rendered message, so a body
  that swallows the footer (an unclosed ``<!--`` comment) is caught.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from html.parser import HTMLParser
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import Integer, Select, case, func, select

from accounts.models import Account
from campaigns import ab_tests
from campaigns.models import Campaign
from campaigns.personalisation import missing_fields
from campaigns.render import Recipient, RecipientError, TemplateError, render_message
from campaigns.sending.rendering import draft_view
from core import db
from core.errors import ValidationError
from core.recent import EDITING_SECONDS, remembered
from subscribers.audience import audience_contacts
from subscribers.models import Contact

SUBJECT_WARN = 60
FIRST_TEXT_SHOWN = 90
SIZE_WARN = 90 * 1024
GMAIL_CLIP = 102 * 1024
LITTLE_TEXT = 200  # characters of visible text below which an email with images is image-only


class Level(StrEnum):
    """``error`` blocks sending, ``warning`` does not, ``ok`` passed."""

    ERROR = "error"
    WARNING = "warning"
    OK = "ok"


@dataclass(frozen=True)
class Check:
    """One check's outcome: which check, its level, what was found, and why it matters."""

    code: str
    level: Level
    message: str
    why: str


class _Reader(HTMLParser):
    """Visible text, images and links of an HTML document (what a mail client shows)."""

    HIDDEN = frozenset({"style", "script", "title", "head"})

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.text: list[str] = []
        self.images: list[dict[str, str | None]] = []
        self.links: list[str] = []
        self._hidden = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in self.HIDDEN:
            self._hidden += 1
        elif tag == "img":
            self.images.append(dict(attrs))
        elif tag == "a":
            found = dict(attrs)
            if "href" in found:
                self.links.append((found["href"] or "").strip())

    def handle_endtag(self, tag: str) -> None:
        if tag in self.HIDDEN and self._hidden:
            self._hidden -= 1

    def handle_data(self, data: str) -> None:
        if not self._hidden:
            self.text.append(data)

    def visible_text(self) -> str:
        return " ".join(" ".join(self.text).split())


def _read(html: str) -> _Reader:
    reader = _Reader()
    reader.feed(html)
    # An unclosed comment or tag at the end stays unread: a mail client hides it too.
    return reader


def _ok(code: str, message: str, why: str) -> Check:
    return Check(code, Level.OK, message, why)


def _subject_checks(subjects: list[tuple[str, str]]) -> list[Check]:
    why = (
        "Phones show about 35 to 45 characters of a subject and desktop clients about 60: what is "
        "cut off is not read."
    )
    found = []
    for label, subject in subjects:
        if not subject.strip():
            found.append(Check("subject", Level.ERROR, f"{label} is empty.", why))
        elif len(subject) > SUBJECT_WARN:
            found.append(
                Check(
                    "subject",
                    Level.WARNING,
                    f"{label} has {len(subject)} characters: inboxes cut it after about "
                    f"{SUBJECT_WARN}.",
                    why,
                )
            )
    return found or [_ok("subject", "The subject fits in inbox lists.", why)]


def _first_text_check(text: str, body_text: str) -> Check:
    why = (
        "Inboxes show the first text of the email after the subject (the preheader): it is "
        "the second line people read before opening."
    )
    shown = text[:FIRST_TEXT_SHOWN]
    if not body_text:
        return Check(
            "first_text",
            Level.WARNING,
            "The email starts with no text: the inbox preview will be empty or show the footer.",
            why,
        )
    return _ok("first_text", f"Inboxes will show: “{shown}”", why)


def _image_checks(reader: _Reader, text: str) -> list[Check]:
    images = [i for i in reader.images if not (i.get("width") == "1" and i.get("height") == "1")]
    why_alt = (
        "Many clients block images until asked: without alt text, those readers and screen "
        "readers get nothing in their place."
    )
    missing = [i for i in images if i.get("alt") is None]
    found = []
    if missing:
        found.append(
            Check(
                "alt",
                Level.WARNING,
                f"{len(missing)} of {len(images)} image{'s' if len(images) != 1 else ''} "
                "ha{} no alt text.".format("ve" if len(missing) != 1 else "s"),
                why_alt,
            )
        )
    else:
        found.append(_ok("alt", "Every image has alt text.", why_alt))
    why_text = (
        "An email that is mostly images says nothing while images are blocked, and spam "
        "filters trust it less."
    )
    if images and len(text) < LITTLE_TEXT:
        found.append(
            Check(
                "image_only",
                Level.WARNING,
                f"Mostly images: {len(images)} image{'s' if len(images) != 1 else ''} and "
                f"only {len(text)} characters of text.",
                why_text,
            )
        )
    else:
        found.append(_ok("image_only", "There is enough text beside the images.", why_text))
    return found


def _size_check(html: str) -> Check:
    size = len(html.encode("utf-8"))
    why = (
        "Gmail clips an email over about 102 KB behind “View entire message”, and the footer "
        "with the unsubscribe link and your postal address goes with it."
    )
    shown = f"{size / 1024:.0f} KB"
    if size > GMAIL_CLIP:
        return Check("size", Level.ERROR, f"The HTML is {shown}: Gmail will clip it.", why)
    if size > SIZE_WARN:
        return Check(
            "size", Level.WARNING, f"The HTML is {shown}, close to Gmail's 102 KB limit.", why
        )
    return _ok("size", f"The HTML is {shown} (Gmail clips above 102 KB).", why)


def link_problem(href: str) -> str:
    """Why ``href`` cannot be followed from an email ("" when it can)."""
    if "{{" in href or "{%" in href:
        return ""  # personalised: checked per message when rendered
    if not href or href.startswith("#"):
        return "goes nowhere"
    try:
        parts = urlsplit(href)
    except ValueError:
        return "is not a valid address"
    scheme = parts.scheme.lower()
    if scheme in ("mailto", "tel"):
        return "" if parts.path.strip() else "has no address"
    if scheme not in ("http", "https"):
        return f"is a {scheme}: link" if scheme else "is not a full http(s) address"
    host = parts.hostname or ""
    if not host or " " in href or "." not in host.strip("."):
        return "has no valid host"
    return ""


def _link_check(reader: _Reader) -> Check:
    why = (
        "A link that is not a full http(s) address, or whose address goes nowhere, cannot be "
        "followed from an inbox: the reader clicks and nothing happens."
    )
    broken = [(href, problem) for href in reader.links if (problem := link_problem(href))]
    if broken:
        shown = "; ".join(f"“{href[:80]}” {problem}" for href, problem in broken[:5])
        more = f" (and {len(broken) - 5} more)" if len(broken) > 5 else ""
        return Check("links", Level.ERROR, f"Broken links: {shown}{more}.", why)
    return _ok("links", f"All {len(reader.links)} links have a destination.", why)


def _footer_checks(
    account: Account, rendered_reader: _Reader, unsubscribe: str, text: str
) -> list[Check]:
    why_unsub = (
        "Gmail, Yahoo and the law (CAN-SPAM, GDPR) require a visible, working unsubscribe "
        "link in every campaign."
    )
    why_postal = "CAN-SPAM requires the sender's physical postal address in every campaign."
    found = []
    if unsubscribe and unsubscribe in rendered_reader.links:
        found.append(_ok("unsubscribe", "The unsubscribe link is in the footer.", why_unsub))
    else:
        found.append(
            Check(
                "unsubscribe",
                Level.ERROR,
                "The unsubscribe link is not visible: something in the body (an unclosed "
                "comment or tag?) hides the footer.",
                why_unsub,
            )
        )
    address = " ".join(account.postal_address.split())
    if not address:
        found.append(
            Check(
                "postal_address",
                Level.ERROR,
                "Your postal address is missing: add it in Settings > General.",
                why_postal,
            )
        )
    elif address not in text:
        found.append(
            Check(
                "postal_address",
                Level.ERROR,
                "The postal address is not visible: something in the body hides the footer.",
                why_postal,
            )
        )
    else:
        found.append(_ok("postal_address", "Your postal address is in the footer.", why_postal))
    return found


def missing_field_counts(campaign: Campaign, fields: list[str]) -> dict[str, int]:
    """How many of the campaign's recipients have no value for each personalisation field
    (``contact.name``, ``contact.first_name``, ``contact.attributes.<key>``): one aggregate
    query over the audience. Other names are missing for everyone (counted as the audience)."""
    # services imports this module
    from campaigns.services import campaign_audience, campaign_list_ids, campaign_segment_ids

    conditions: dict[str, Any] = {}
    for name in fields:
        if name in ("contact.name", "contact.first_name"):
            conditions[name] = func.coalesce(func.trim(Contact.name), "") == ""
        elif name.startswith("contact.attributes."):
            key = name.removeprefix("contact.attributes.")
            value = Contact.attributes[key].as_string()
            conditions[name] = func.coalesce(func.trim(value), "") == ""
        else:  # no such field: nobody has it
            conditions[name] = None
    columns = [func.count().label("total")] + [
        func.sum(case((condition, 1), else_=0)).cast(Integer)
        for condition in conditions.values()
        if condition is not None
    ]
    list_ids = campaign_list_ids(campaign.id)
    segment_ids = campaign_segment_ids(campaign.id)
    query: Select[*tuple[Any, ...]]
    if len(set(list_ids)) == 1 and not segment_ids:
        # One list: its members in one pass (each appears once; see audience_contacts).
        query = audience_contacts(campaign.account_id, list_ids, (), *columns)
    else:
        audience = campaign_audience(campaign).subquery()
        query = select(*columns).select_from(Contact).where(Contact.id.in_(select(audience.c.id)))

    def count() -> tuple[Any, ...]:
        with db.postgres_settings(db.LARGE_AGGREGATE_SETTINGS):
            return tuple(db.session.execute(query).one())

    # A warning's figure: the page is reloaded while editing, so a minute-old count will do.
    same = (campaign.account_id, tuple(list_ids), tuple(sorted(segment_ids)), tuple(conditions))
    row = remembered("missing_fields", same, count, EDITING_SECONDS)
    total, counts = int(row[0] or 0), iter(row[1:])
    return {
        name: (int(next(counts) or 0) if condition is not None else total)
        for name, condition in conditions.items()
    }


def _personalisation_check(campaign: Campaign, subjects: list[str]) -> Check:
    why = (
        "A field a recipient has no value for renders as nothing (or as the template's "
        "default): “Hello ,” reads as a mistake."
    )
    empty = Recipient(0, "", "", {})
    fields = [
        name
        for name in missing_fields([*subjects, campaign.html_body, campaign.text_body], empty)
        if name.startswith("contact.") and name != "contact.email"
    ]
    if not fields:
        return _ok("personalisation", "No personalisation fields are used.", why)
    counts = {k: v for k, v in missing_field_counts(campaign, fields).items() if v}
    if not counts:
        return _ok("personalisation", "Every recipient has every field used.", why)
    shown = ", ".join(
        f"{name} ({count:,} recipient{'s' if count != 1 else ''})" for name, count in counts.items()
    )
    return Check("personalisation", Level.WARNING, f"Some recipients lack {shown}.", why)


def run_checks(campaign: Campaign, account: Account) -> list[Check]:
    """Every pre-send check of ``campaign``, errors first. Never raises for a broken template:
    that is reported as an error (saving refuses one anyway)."""
    subjects = [("The subject", campaign.subject)]
    test = ab_tests.get_ab_test(campaign.id)
    if test is not None:
        subjects += [
            (f"Variant {ab_tests.LETTERS[v.position]}'s subject", v.subject)
            for v in ab_tests.variants(test.id)
        ]
    found = _subject_checks(subjects)
    body = _read(campaign.html_body)
    text = body.visible_text()
    found += _image_checks(body, text)
    found.append(_link_check(body))
    try:
        view = draft_view(campaign, test=True)
        rendered = render_message(view, Recipient(0, "sample@example.org", "Sample Person", {}))
    except (ValidationError, TemplateError, RecipientError) as exc:
        found.append(
            Check(
                "render",
                Level.WARNING,
                f"The message does not render for a sample contact: {exc}",
                "Messages that do not render fail (or pause the campaign when no contact's "
                "would); the size, unsubscribe and postal address checks need a rendering.",
            )
        )
    else:
        from email import message_from_bytes, policy
        from email.message import EmailMessage

        parsed = message_from_bytes(rendered.wire, policy=policy.default)
        assert isinstance(parsed, EmailMessage)
        html_part = parsed.get_body(preferencelist=("html",))
        html = str(html_part.get_content()) if html_part is not None else ""
        reader = _read(html)
        found.append(_first_text_check(reader.visible_text(), text))
        found.append(_size_check(html))
        unsubscribe = view.url_for_slot("unsubscribe", 0)
        found += _footer_checks(account, reader, unsubscribe, reader.visible_text())
    found.append(_personalisation_check(campaign, [s for _, s in subjects]))
    order = {Level.ERROR: 0, Level.WARNING: 1, Level.OK: 2}
    return sorted(found, key=lambda check: order[check.level])


def errors(checks: list[Check]) -> list[Check]:
    """The checks that block sending."""
    return [check for check in checks if check.level == Level.ERROR]
