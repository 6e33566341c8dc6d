"""A tracking hit as it travels from the request to the store: reduced values and ids only."""

from __future__ import annotations

import itertools
import json
import os
import secrets
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime

from core.db import utcnow

KINDS = ("open", "click", "unsubscribe", "honeypot")
_EPOCH = datetime(1970, 1, 1)
_COMPACT = json.JSONEncoder(separators=(",", ":"))


class _UidSource:
    """Hit ids: a random prefix per process and a counter (unique, not secret: they only let
    the store keep a hit ingested twice once). One kernel random call per process, not per hit,
    which on the hot path cost as much as verifying the token."""

    def __init__(self) -> None:
        self.pid = -1
        self.prefix = ""
        self.counter: Iterator[int] = itertools.count()

    def next(self) -> str:
        pid = os.getpid()
        if pid != self.pid:  # first use, or a forked child: never share a parent's prefix
            self.pid, self.prefix, self.counter = pid, secrets.token_hex(8), itertools.count()
        return f"{self.prefix}{next(self.counter):08x}"


_uids = _UidSource()


def new_uid() -> str:
    """A unique id for a hit, so that storing the same hit twice stores it once."""
    return _uids.next()


def encode_hit(
    kind: str,
    campaign_id: int,
    message_id: int | None,
    link_id: int | None,
    ip_prefix: str | None,
    ua_class: str,
    method: str = "GET",
    timestamp: float | None = None,
    uid: str | None = None,
) -> bytes:
    """A hit as a compact buffer line (Redis list or spool file), read back by :meth:`Hit.decode`.

    The hot path calls this directly: a line costs less to make than a :class:`Hit`. The time
    is seconds since the epoch (now when not given), the id a new one when not given.
    """
    return _COMPACT.encode(
        [
            1,
            uid or new_uid(),
            kind,
            campaign_id,
            message_id,
            link_id,
            ip_prefix,
            ua_class,
            method,
            round(time.time() if timestamp is None else timestamp, 3),
        ]
    ).encode()


@dataclass(frozen=True)
class Hit:
    """A tracking hit after :func:`privacy.policy.minimise`: nothing raw is left in it."""

    kind: str  # open | click | unsubscribe | honeypot
    campaign_id: int
    message_id: int | None
    link_id: int | None
    ip_prefix: str | None
    ua_class: str
    occurred_at: datetime = field(default_factory=utcnow)
    method: str = "GET"
    uid: str = field(default_factory=new_uid)

    def encode(self) -> bytes:
        """This hit as a buffer line (see :func:`encode_hit`)."""
        at = self.occurred_at
        if at.tzinfo is not None:
            at = at.astimezone(UTC).replace(tzinfo=None)
        return encode_hit(
            self.kind,
            self.campaign_id,
            self.message_id,
            self.link_id,
            self.ip_prefix,
            self.ua_class,
            self.method,
            (at - _EPOCH).total_seconds(),
            self.uid,
        )

    @staticmethod
    def decode(line: bytes | str) -> Hit:
        """The hit of a line made by :meth:`encode`; ValueError when it is not one."""
        try:
            version, uid, kind, campaign, message, link, prefix, ua, method, stamp = json.loads(
                line
            )
        except (TypeError, ValueError) as exc:
            raise ValueError("not a hit line") from exc
        if version != 1 or kind not in KINDS or not isinstance(campaign, int):
            raise ValueError("not a hit line")
        return Hit(
            kind=str(kind),
            campaign_id=campaign,
            message_id=message if isinstance(message, int) else None,
            link_id=link if isinstance(link, int) else None,
            ip_prefix=str(prefix) if prefix else None,
            ua_class=str(ua),
            occurred_at=datetime.fromtimestamp(float(stamp), UTC).replace(tzinfo=None),
            method=str(method),
            uid=str(uid),
        )
