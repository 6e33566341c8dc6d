"""The privacy layer: the only code that decides what a tracking hit may record.

Two steps, both here:

1. :func:`minimise` runs inside the request. It reduces the IP address to a prefix (or drops
   it) and the user agent to a coarse class. The raw values go no further.
2. :func:`decide` runs when a hit is stored. From the account's, the campaign's and the
   contact's state it answers: record an identified event, an anonymous count, or nothing.

The default is private: anything unknown leads to an anonymous count or to nothing.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from enum import StrEnum


class Decision(StrEnum):
    """What a hit may become."""

    IDENTIFIED = "identified"  # an event linked to the message (and so the contact)
    ANONYMOUS = "anonymous"  # an event with no link to any person
    DROP = "drop"  # nothing at all


@dataclass(frozen=True)
class ReducedRequest:
    """What survives of a request: never the raw IP address or user agent."""

    ip_prefix: str | None
    ua_class: str


def reduce_ip(raw_ip: str | None, mode: str = "truncate") -> str | None:
    """IPv4 to its /24, IPv6 to its /48, or nothing when ``mode`` is ``drop`` or it is invalid."""
    if not raw_ip or mode == "drop":
        return None
    try:
        address = ipaddress.ip_address(raw_ip.strip())
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        address = address.ipv4_mapped
    prefix = 24 if address.version == 4 else 48
    return str(ipaddress.ip_network(f"{address}/{prefix}", strict=False))


# Ordered: the first match wins. Substrings are matched on the lower-cased agent.
_UA_CLASSES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("gmail-proxy", ("googleimageproxy", "ggpht.com")),
    ("yahoo-proxy", ("yahoomailproxy",)),
    ("outlook-proxy", ("outlook-ios", "microsoft office/", "ms-office")),
    (
        "scanner",
        (
            "barracuda",
            "mimecast",
            "proofpoint",
            "symantec",
            "trendmicro",
            "forcepoint",
            "safelinks",
            "sophos",
            "fortiguard",
            "cisco",
            "zscaler",
        ),
    ),
    (
        "bot",
        ("bot", "crawler", "spider", "curl/", "wget/", "python-requests", "httpclient", "preview"),
    ),
    ("mail-client", ("thunderbird", "outlook", "mail/")),
    ("mobile", ("iphone", "android", "ipad", "mobile")),
    ("desktop", ("windows nt", "macintosh", "x11", "linux")),
)


def classify_user_agent(user_agent: str | None) -> str:
    """Reduce a user agent to a coarse class such as ``mobile``, ``gmail-proxy`` or ``scanner``."""
    if not user_agent:
        return "unknown"
    agent = user_agent[:512].lower()
    for name, needles in _UA_CLASSES:
        if any(needle in agent for needle in needles):
            return name
    return "other"


MACHINE_UA_CLASSES = frozenset({"gmail-proxy", "yahoo-proxy", "scanner", "bot"})


def minimise(
    raw_ip: str | None, user_agent: str | None, ip_mode: str = "truncate"
) -> ReducedRequest:
    """Reduce a request to what may be kept. Call it in the request; drop the raw values after."""
    return ReducedRequest(
        ip_prefix=reduce_ip(raw_ip, ip_mode), ua_class=classify_user_agent(user_agent)
    )


@dataclass(frozen=True)
class ContactState:
    """What the privacy layer needs to know about a contact."""

    exists: bool = True
    unsubscribed: bool = False
    restricted: bool = False
    objected: bool = False
    consent_withdrawn: bool = False  # privacy: consent withdrawal (GDPR art. 7(3))

    @property
    def excluded_from_processing(self) -> bool:
        """Restriction, objection, consent withdrawal or erasure: no tracking, sending, engine."""
        return not self.exists or self.restricted or self.objected or self.consent_withdrawn


@dataclass(frozen=True)
class TrackingContext:
    """The inputs of a decision, gathered by the store from the database."""

    kind: str  # open | click | unsubscribe
    individual_tracking: bool
    track_opens: bool
    track_clicks: bool
    identified_token: bool  # the token named a message (and so a contact)
    contact: ContactState | None


def decide(ctx: TrackingContext) -> Decision:
    """Decide what a hit records. Pure: the same inputs always give the same answer."""
    if ctx.kind == "open" and not ctx.track_opens:
        return Decision.DROP
    if ctx.kind == "click" and not ctx.track_clicks:
        return Decision.DROP
    if ctx.identified_token:
        if ctx.contact is None or ctx.contact.excluded_from_processing:
            # Restricted, objecting or erased: nothing is recorded, not even a count.
            return Decision.DROP
        if ctx.individual_tracking and not ctx.contact.unsubscribed:
            return Decision.IDENTIFIED
    return Decision.ANONYMOUS


def may_identify_in_urls(individual_tracking: bool) -> bool:
    """Whether beacon and click URLs may carry a message id at all."""
    return individual_tracking
