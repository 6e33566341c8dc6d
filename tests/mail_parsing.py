"""Reading what a received campaign message contains: its tracking and unsubscribe URLs."""

from __future__ import annotations

import html
import re
from dataclasses import dataclass
from email.message import EmailMessage
from urllib.parse import urlsplit


@dataclass
class MessageUrls:
    beacon: str | None
    clicks: list[str]
    unsubscribe_body: str | None
    unsubscribe_header: str
    html: str
    text: str


def path_of(url: str) -> str:
    parts = urlsplit(url)
    return parts.path + (f"?{parts.query}" if parts.query else "")


def urls_of(message: EmailMessage) -> MessageUrls:
    html_part = message.get_body(preferencelist=("html",))
    text_part = message.get_body(preferencelist=("plain",))
    assert html_part is not None and text_part is not None
    body = html_part.get_content()
    hrefs = [html.unescape(h) for h in re.findall(r'href="([^"]+)"', body)]
    srcs = [html.unescape(s) for s in re.findall(r'src="([^"]+)"', body)]
    header = str(message["List-Unsubscribe"])
    match = re.match(r"<([^>]+)>", header)
    assert match, header
    return MessageUrls(
        beacon=next((s for s in srcs if "/o/" in s), None),
        clicks=[h for h in hrefs if "/c/" in h],
        unsubscribe_body=next((h for h in hrefs if "/u/" in h), None),
        unsubscribe_header=match.group(1),
        html=body,
        text=text_part.get_content(),
    )
