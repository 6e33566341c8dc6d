"""Turning a campaign into one message per recipient.

The body is parsed once per campaign (:func:`compile_campaign`): links are found and stored as
:class:`~campaigns.models.Link` rows, and the HTML is cut into literal pieces and link slots.
Per recipient only signed URLs are put into the slots, which keeps rendering cheap.
"""

from __future__ import annotations

from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formataddr
from html import escape
from html.parser import HTMLParser

import html2text

from core.mail import build_message
from subscribers.services import preference_url_for_message
from tracking import urls


class _LinkFinder(HTMLParser):
    """Finds the character span of every ``href`` value of an ``<a>`` tag."""

    def __init__(self, source: str) -> None:
        super().__init__(convert_charrefs=True)
        self.source = source
        # HTMLParser counts lines by "\n" only; so must we.
        self.line_offsets = [0] + [i + 1 for i, ch in enumerate(source) if ch == "\n"]
        self.spans: list[tuple[int, int, str]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag != "a":
            return
        href = dict(attrs).get("href")
        if not href or not href.strip().lower().startswith(("http://", "https://")):
            return
        line, col = self.getpos()
        start = self.line_offsets[line - 1] + col
        tag_text = self.get_starttag_text() or ""
        raw_start = self._find_href_value(tag_text)
        if raw_start is None:
            return
        value_start, value_end = raw_start
        self.spans.append((start + value_start, start + value_end, href.strip()))

    @staticmethod
    def _find_href_value(tag_text: str) -> tuple[int, int] | None:
        lower = tag_text.lower()
        index = 0
        while True:
            index = lower.find("href", index)
            if index < 0:
                return None
            rest = index + 4
            while rest < len(tag_text) and tag_text[rest].isspace():
                rest += 1
            if (
                rest < len(tag_text)
                and tag_text[rest] == "="
                and (index == 0 or not lower[index - 1].isalnum())
            ):
                rest += 1
                while rest < len(tag_text) and tag_text[rest].isspace():
                    rest += 1
                quote = tag_text[rest] if rest < len(tag_text) else ""
                if quote in ("'", '"'):
                    end = tag_text.find(quote, rest + 1)
                    return (rest + 1, end) if end > 0 else None
                end = rest
                while end < len(tag_text) and not tag_text[end].isspace() and tag_text[end] != ">":
                    end += 1
                return rest, end
            index += 4


@dataclass(frozen=True)
class CompiledBody:
    """HTML cut into literal pieces around link slots; ``links[i]`` fills slot ``i``."""

    pieces: list[str]
    links: list[str]
    text: str


def find_links(html: str) -> list[str]:
    """The http(s) destinations of the body's links, in order of appearance."""
    finder = _LinkFinder(html)
    finder.feed(html)
    finder.close()
    return [url for _, _, url in finder.spans]


def compile_body(html: str) -> CompiledBody:
    """Parse the body once: literal pieces, the link slots and the plain-text alternative."""
    finder = _LinkFinder(html)
    finder.feed(html)
    finder.close()
    pieces: list[str] = []
    cursor = 0
    for start, end, _url in finder.spans:
        pieces.append(html[cursor:start])
        cursor = end
    pieces.append(html[cursor:])
    converter = html2text.HTML2Text()
    converter.body_width = 78
    return CompiledBody(
        pieces=pieces, links=[url for _, _, url in finder.spans], text=converter.handle(html)
    )


@dataclass(frozen=True)
class Recipient:
    message_id: int
    email: str
    name: str


@dataclass(frozen=True)
class CampaignView:
    """What rendering needs of a campaign, read once per batch."""

    campaign_id: int
    subject: str
    from_name: str
    from_email: str
    postal_address: str
    account_name: str
    identify_in_urls: bool
    track_opens: bool
    track_clicks: bool
    link_ids: list[int]
    body: CompiledBody


def render_message(view: CampaignView, recipient: Recipient) -> EmailMessage:
    """One recipient's message: tracked links, beacon, footer and unsubscribe headers."""
    tracked_message = recipient.message_id if view.identify_in_urls else None
    html_parts: list[str] = []
    for index, piece in enumerate(view.body.pieces):
        html_parts.append(piece)
        if index < len(view.body.links):
            url = view.body.links[index]
            if view.track_clicks:
                url = urls.click_url(view.campaign_id, view.link_ids[index], url, tracked_message)
            html_parts.append(escape(url, quote=True))
    unsubscribe = urls.unsubscribe_url(recipient.message_id)
    address_html = escape(view.postal_address).replace("\n", "<br>")
    footer = (
        '<div style="margin-top:32px;font-size:12px;color:#666">'
        f"<p>{escape(view.account_name)}<br>{address_html}</p>"
        f'<p><a href="{escape(unsubscribe, quote=True)}">Unsubscribe</a> from these emails.</p>'
        f'<p><a href="{escape(preference_url_for_message(recipient.message_id), quote=True)}">Manage your preferences</a></p>'  # noqa: E501
    )
    if view.track_opens:
        beacon = urls.open_url(view.campaign_id, tracked_message)
        footer += (
            f'<img src="{escape(beacon, quote=True)}" width="1" height="1" alt=""'
            ' style="display:block">'
        )
    footer += "</div>"
    html = "".join(html_parts)
    close = html.lower().rfind("</body>")
    html = html[:close] + footer + html[close:] if close >= 0 else html + footer
    text = (
        f"{view.body.text.rstrip()}\n\n--\n{view.account_name}\n{view.postal_address}\n\n"
        f"Unsubscribe: {unsubscribe}\n"
    )
    message = build_message(
        to=formataddr((recipient.name, recipient.email)) if recipient.name else recipient.email,
        subject=view.subject,
        text=text,
        html=html,
        sender=formataddr((view.from_name, view.from_email)) if view.from_name else view.from_email,
        headers={
            "List-Unsubscribe": f"<{unsubscribe}>",
            "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
        },
    )
    return message
