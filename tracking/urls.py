"""Signed public URLs for the beacon, click redirects, the honeypot link and unsubscribe.

Tokens carry ids only. With individual tracking off, beacon, click and honeypot tokens carry
the campaign (and the link) and nothing that points to a person. A click token also carries its
destination, bound by the signature, so a redirect needs no database read and cannot be bent
elsewhere by any request parameter.

Verification uses the same serializers as :mod:`core.signing` (same keys, one salt per
purpose); they are built once per key list because the beacon and click are the hot path.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from flask import current_app
from itsdangerous import BadData

from core.signing import BadTokenError, Purpose, serializer, sign


@dataclass(frozen=True)
class OpenToken:
    campaign_id: int
    message_id: int | None


#: What a test message's click and unsubscribe tokens carry in place of a message: their
#: links work (the click lands, the unsubscribe page shows) and record nothing.
TEST_MARKER = "test"


@dataclass(frozen=True)
class ClickToken:
    campaign_id: int
    link_id: int
    url: str
    message_id: int | None
    test: bool = False  # from a test message: redirect, record nothing


@dataclass(frozen=True)
class UnsubscribeToken:
    """A message's unsubscribe token, or a test message's (``message_id`` None)."""

    campaign_id: int | None  # set for a test message only
    message_id: int | None

    @property
    def test(self) -> bool:
        return self.message_id is None


@dataclass(frozen=True)
class HoneypotToken:
    campaign_id: int
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


def honeypot_url(campaign_id: int, message_id: int | None) -> str:
    """The hidden link of one message (or of the campaign when anonymous).

    People never see it (see :func:`honeypot_html`); a link scanner that fetches every URL of
    a message does, which marks that source's hits around it as machine activity.
    """
    payload: list[Any] = [campaign_id] if message_id is None else [campaign_id, message_id]
    return f"{_base()}/h/{sign(Purpose.HONEYPOT, payload)}"


def honeypot_html(campaign_id: int, message_id: int | None) -> str:
    """The honeypot as an invisible, unfocusable anchor to put in a message's footer."""
    from html import escape

    url = escape(honeypot_url(campaign_id, message_id), quote=True)
    return (
        f'<a href="{url}" style="display:none;font-size:0;line-height:0;max-height:0"'
        ' aria-hidden="true" tabindex="-1"></a>'
    )


def unsubscribe_url(message_id: int) -> str:
    """The unsubscribe URL of one message (RFC 8058 one-click target and visible link)."""
    return f"{_base()}/u/{sign(Purpose.UNSUBSCRIBE, [message_id])}"


def test_click_url(campaign_id: int, url: str) -> str:
    """A test message's link: through the redirect, marked so that it records nothing."""
    return f"{_base()}/c/{sign(Purpose.CLICK, [campaign_id, 0, url, TEST_MARKER])}"


def test_unsubscribe_url(campaign_id: int) -> str:
    """A test message's unsubscribe link: shows what recipients see, changes nothing."""
    return f"{_base()}/u/{sign(Purpose.UNSUBSCRIBE, [TEST_MARKER, campaign_id])}"


def _ints(values: list[Any]) -> list[int]:
    if not all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in values):
        raise BadTokenError("payload ids must be positive integers")
    return values


class TokenReader:
    """Verifies tracking tokens with one cached serializer per purpose."""

    def __init__(self, keys: list[str]) -> None:
        self._serializers = {
            purpose: serializer(tuple(keys), purpose)
            for purpose in (Purpose.OPEN, Purpose.CLICK, Purpose.HONEYPOT, Purpose.UNSUBSCRIBE)
        }

    def _loads(self, purpose: Purpose, token: str) -> Any:
        if len(token) > 4096:
            raise BadTokenError("token too long")
        try:
            return self._serializers[purpose].loads(token)
        except BadData as exc:
            raise BadTokenError(str(exc)) from exc

    def open(self, token: str) -> OpenToken:
        """Verify a beacon token; raise BadTokenError on anything but a valid one."""
        payload = self._loads(Purpose.OPEN, token.removesuffix(".gif"))
        if not isinstance(payload, list) or len(payload) not in (1, 2):
            raise BadTokenError("malformed open token")
        ids = _ints(payload)
        return OpenToken(campaign_id=ids[0], message_id=ids[1] if len(ids) == 2 else None)

    def click(self, token: str) -> ClickToken:
        """Verify a click token; raise BadTokenError on anything but a valid one."""
        payload = self._loads(Purpose.CLICK, token)
        if (
            not isinstance(payload, list)
            or len(payload) not in (3, 4)
            or not isinstance(payload[2], str)
        ):
            raise BadTokenError("malformed click token")
        test = len(payload) == 4 and payload[3] == TEST_MARKER and payload[1] == 0
        ids = _ints([payload[0]] if test else [payload[0], payload[1], *payload[3:]])
        url = payload[2]
        if not url.lower().startswith(("http://", "https://")) or any(
            ch in url for ch in "\r\n\t\\"
        ):
            raise BadTokenError("click destination is not a plain http(s) URL")
        if test:
            return ClickToken(campaign_id=ids[0], link_id=0, url=url, message_id=None, test=True)
        return ClickToken(
            campaign_id=ids[0],
            link_id=ids[1],
            url=url,
            message_id=ids[2] if len(ids) == 3 else None,
        )

    def honeypot(self, token: str) -> HoneypotToken:
        """Verify a honeypot token."""
        payload = self._loads(Purpose.HONEYPOT, token)
        if not isinstance(payload, list) or len(payload) not in (1, 2):
            raise BadTokenError("malformed honeypot token")
        ids = _ints(payload)
        return HoneypotToken(campaign_id=ids[0], message_id=ids[1] if len(ids) == 2 else None)

    def unsubscribe(self, token: str) -> UnsubscribeToken:
        """Verify an unsubscribe token: a message's, or a test message's."""
        payload = self._loads(Purpose.UNSUBSCRIBE, token)
        if isinstance(payload, list) and len(payload) == 2 and payload[0] == TEST_MARKER:
            return UnsubscribeToken(campaign_id=_ints(payload[1:])[0], message_id=None)
        if not isinstance(payload, list) or len(payload) != 1:
            raise BadTokenError("malformed unsubscribe token")
        return UnsubscribeToken(campaign_id=None, message_id=_ints(payload)[0])


def reader() -> TokenReader:
    """The token reader of the current app (rebuilt when its key list changes)."""
    keys = tuple(current_app.config["SECRET_KEYS"])
    cached = current_app.extensions.get("tracking_token_reader")
    if cached is None or cached[0] != keys:
        cached = (keys, TokenReader(list(keys)))
        current_app.extensions["tracking_token_reader"] = cached
    found: TokenReader = cached[1]
    return found


def parse_open(token: str) -> OpenToken:
    """Verify a beacon token; raise BadTokenError on anything but a valid one."""
    return reader().open(token)


def parse_click(token: str) -> ClickToken:
    """Verify a click token; raise BadTokenError on anything but a valid one."""
    return reader().click(token)


def parse_honeypot(token: str) -> HoneypotToken:
    """Verify a honeypot token; raise BadTokenError on anything but a valid one."""
    return reader().honeypot(token)


def parse_unsubscribe(token: str) -> UnsubscribeToken:
    """Verify an unsubscribe token (a message's or a test message's); BadTokenError else."""
    return reader().unsubscribe(token)
