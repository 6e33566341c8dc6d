"""Signed public URLs for the beacon, click redirects and unsubscribe.

Tokens carry ids only. With individual tracking off, beacon and click tokens carry the campaign
(and the link) and nothing that points to a person. A click token also carries its destination,
bound by the signature, so a redirect needs no database read and cannot be bent elsewhere.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from flask import current_app

from core.signing import BadTokenError, Purpose, sign, unsign


@dataclass(frozen=True)
class OpenToken:
    campaign_id: int
    message_id: int | None


@dataclass(frozen=True)
class ClickToken:
    campaign_id: int
    link_id: int
    url: str
    message_id: int | None


def _base() -> str:
    return str(current_app.config["BASE_URL"])


def open_url(campaign_id: int, message_id: int | None) -> str:
    """The beacon image URL of one message (or of the campaign when anonymous)."""
    payload: list[Any] = [campaign_id] if message_id is None else [campaign_id, message_id]
    return f"{_base()}/o/{sign(Purpose.OPEN, payload)}.gif"


def click_url(campaign_id: int, link_id: int, url: str, message_id: int | None) -> str:
    """The tracked redirect URL for one link of one message (or of the campaign)."""
    payload: list[Any] = [campaign_id, link_id, url]
    if message_id is not None:
        payload.append(message_id)
    return f"{_base()}/c/{sign(Purpose.CLICK, payload)}"


def unsubscribe_url(message_id: int) -> str:
    """The unsubscribe URL of one message (RFC 8058 one-click target and visible link)."""
    return f"{_base()}/u/{sign(Purpose.UNSUBSCRIBE, [message_id])}"


def _ints(values: list[Any]) -> list[int]:
    if not all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in values):
        raise BadTokenError("payload ids must be positive integers")
    return values


def parse_open(token: str) -> OpenToken:
    """Verify a beacon token; raise BadTokenError on anything but a valid one."""
    token = token.removesuffix(".gif")
    payload = unsign(Purpose.OPEN, token)
    if not isinstance(payload, list) or len(payload) not in (1, 2):
        raise BadTokenError("malformed open token")
    ids = _ints(payload)
    return OpenToken(campaign_id=ids[0], message_id=ids[1] if len(ids) == 2 else None)


def parse_click(token: str) -> ClickToken:
    """Verify a click token; raise BadTokenError on anything but a valid one."""
    payload = unsign(Purpose.CLICK, token)
    if (
        not isinstance(payload, list)
        or len(payload) not in (3, 4)
        or not isinstance(payload[2], str)
    ):
        raise BadTokenError("malformed click token")
    ids = _ints([payload[0], payload[1], *payload[3:]])
    url = payload[2]
    if not url.lower().startswith(("http://", "https://")):
        raise BadTokenError("click destination is not http(s)")
    return ClickToken(
        campaign_id=ids[0], link_id=ids[1], url=url, message_id=ids[2] if len(ids) == 3 else None
    )


def parse_unsubscribe(token: str) -> int:
    """Verify an unsubscribe token and return its message id."""
    payload = unsign(Purpose.UNSUBSCRIBE, token)
    if not isinstance(payload, list) or len(payload) != 1:
        raise BadTokenError("malformed unsubscribe token")
    return _ints(payload)[0]
