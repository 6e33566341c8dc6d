"""The privacy layer: the only code that decides whether a contact may be processed at all
(:func:`may_process`, and :func:`may_process_condition` for SQL) and what a tracking hit may
record.

The audience of a campaign, the engine gate, the tracking ingest, list and segment exports and
segment previews all ask :func:`may_process` / :func:`may_process_condition`; no other module
reads the restriction, objection or consent columns to decide (tests/privacy/test_policy_rule.py
holds every caller to the rule).

A hit goes through three steps, all here:

1. :func:`minimise` runs inside the request. It reduces the IP address to a prefix (IPv4 /24,
   IPv6 /48) or drops it, and the user agent to a coarse class. The raw values go no further:
   they are never buffered, stored or logged.
2. :func:`classify_machine` runs when a hit is ingested. On the reduced values only (agent
   class, prefix, method, honeypot, timing) it says whether a machine made the hit and why.
3. :func:`decide` runs when a hit is stored. From the account's, the campaign's and the
   contact's state it answers: record an identified event, an anonymous count, or nothing.
   :func:`engine_signal` says what of a stored hit may reach the Delivery Optimization Engine.

The default is private: anything unknown leads to an anonymous count or to nothing.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from functools import lru_cache
from typing import Any

from sqlalchemy import ColumnElement, and_, not_

from core.network import network_of


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


IP_MODES = ("truncate", "drop")
#: The account's choice could not be read (database down): like ``drop``, the private choice.
IP_MODE_UNKNOWN = "unknown"


def reduce_ip(raw_ip: str | None, mode: str = "truncate") -> str | None:
    """IPv4 to its /24, IPv6 to its /48 (:func:`core.network.network_of`); nothing when
    ``mode`` is not ``truncate`` or the address is invalid."""
    return network_of(raw_ip) if mode == "truncate" else None


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
            "paloalto",
            "checkpoint",
        ),
    ),
    (
        "bot",
        (
            "bot",
            "crawler",
            "spider",
            "curl/",
            "wget/",
            "python-requests",
            "python-urllib",
            "httpclient",
            "go-http-client",
            "okhttp",
            "headless",
            "preview",
        ),
    ),
    ("mail-client", ("thunderbird", "outlook", "mail/")),
    ("mobile", ("iphone", "android", "ipad", "mobile")),
    ("desktop", ("windows nt", "macintosh", "x11", "linux")),
)

#: Apple Mail Privacy Protection prefetches images with this exact agent, from Apple's network.
APPLE_MPP_AGENT = "mozilla/5.0"


def classify_user_agent(user_agent: str | None) -> str:
    """Reduce a user agent to a coarse class such as ``mobile``, ``gmail-proxy`` or ``scanner``."""
    if not user_agent:
        return "unknown"
    agent = user_agent[:512].lower()
    if agent.strip() == APPLE_MPP_AGENT:
        return "apple-mpp"
    for name, needles in _UA_CLASSES:
        for needle in needles:
            if needle in agent:
                return name
    return "other"


#: Agent classes that are machines whatever else is known.
MACHINE_UA_CLASSES = frozenset({"gmail-proxy", "yahoo-proxy", "apple-mpp", "scanner", "bot"})

#: Networks of mailbox image proxies and security link scanners, matched on the reduced prefix.
#: A prefix counts when it lies inside one of them. Extend with ``extra`` in
#: :func:`machine_network` (config ``TRACKING_MACHINE_NETWORKS``).
MACHINE_NETWORKS: tuple[tuple[str, str], ...] = (
    ("17.0.0.0/8", "apple"),  # Apple Mail Privacy Protection proxies
    ("66.102.0.0/20", "google"),  # Gmail image proxy
    ("66.249.80.0/20", "google"),
    ("64.233.160.0/19", "google"),
    ("72.14.192.0/18", "google"),
    ("74.125.0.0/16", "google"),
    ("40.92.0.0/15", "microsoft"),  # Exchange Online Protection / Safe Links
    ("40.107.0.0/16", "microsoft"),
    ("52.100.0.0/14", "microsoft"),
    ("104.47.0.0/17", "microsoft"),
    ("205.139.110.0/24", "mimecast"),
    ("207.211.30.0/24", "mimecast"),
    ("91.220.42.0/24", "mimecast"),
    ("146.101.78.0/24", "mimecast"),
    ("148.163.128.0/19", "proofpoint"),
    ("67.231.144.0/20", "proofpoint"),
    ("64.235.144.0/20", "barracuda"),
    ("209.222.80.0/21", "barracuda"),
)


@lru_cache(maxsize=64)
def _networks(extra: tuple[str, ...]) -> tuple[tuple[Any, str], ...]:
    listed = [*MACHINE_NETWORKS, *((net, "configured") for net in extra)]
    return tuple((ipaddress.ip_network(net, strict=False), name) for net, name in listed)


@lru_cache(maxsize=8192)
def machine_network(ip_prefix: str | None, extra: tuple[str, ...] = ()) -> str | None:
    """The name of the proxy or scanner network a reduced prefix lies in, or None."""
    if not ip_prefix:
        return None
    try:
        prefix = ipaddress.ip_network(ip_prefix, strict=False)
    except ValueError:
        return None
    for network, name in _networks(extra):
        if prefix.version == network.version and prefix.subnet_of(network):
            return str(name)
    return None


def minimise(
    raw_ip: str | None, user_agent: str | None, ip_mode: str = "truncate"
) -> ReducedRequest:
    """Reduce a request to what may be kept. Call it in the request; drop the raw values after."""
    return ReducedRequest(
        ip_prefix=reduce_ip(raw_ip, ip_mode), ua_class=classify_user_agent(user_agent)
    )


@dataclass(frozen=True)
class MachineEvidence:
    """What is known about a hit when it is ingested; reduced values only."""

    ua_class: str
    ip_prefix: str | None
    method: str = "GET"
    honeypot: bool = False
    seconds_since_delivery: float | None = None  # None when the message is not known
    burst: bool = False  # the same source fetched several links within seconds


#: Seconds after delivery within which a hit is a scanner's, not a person's.
DEFAULT_MACHINE_WINDOW_SECONDS = 10.0


def classify_machine(
    evidence: MachineEvidence,
    window_seconds: float = DEFAULT_MACHINE_WINDOW_SECONDS,
    extra_networks: tuple[str, ...] = (),
) -> str | None:
    """Why a machine made this hit (``head``, ``honeypot``, ``ua:<class>``, ``network:<name>``,
    ``early``, ``burst``), or None for a person. Works on reduced values only."""
    if evidence.honeypot:
        return "honeypot"
    if evidence.method == "HEAD":
        return "head"
    if evidence.ua_class in MACHINE_UA_CLASSES:
        return f"ua:{evidence.ua_class}"
    network = machine_network(evidence.ip_prefix, extra_networks)
    if network is not None:
        return f"network:{network}"
    if (
        evidence.seconds_since_delivery is not None
        and 0 <= evidence.seconds_since_delivery < window_seconds
    ):
        return "early"
    if evidence.burst:
        return "burst"
    return None


# --- may this contact be processed? ----------------------------------------------------------
#
# THE rule, once: each pair is a contact column and the ContactState flag it sets. A contact
# is processed (mailed, tracked, exported, fed to the engine) only while it exists and every
# one of these columns is unset. A new state is one new pair here; the SQL condition, the
# Python check and the tracking ingest's state all follow from it.
#
# Suppression (unsubscribes, erasures, bounces, operator blocks) is held as keyed hashes of
# addresses, not as contact columns: the sender checks it per message (campaigns) and the
# engine gate checks the 'erased' suppression itself.

EXCLUSIONS: tuple[tuple[str, str], ...] = (
    ("restricted_at", "restricted"),  # GDPR art. 18
    ("objected_at", "objected"),  # art. 21
    ("consent_withdrawn_at", "consent_withdrawn"),  # art. 7(3)
)

#: The contact columns the rule reads: a reader that loads only these columns (the hit ingest,
#: the engine gate) takes them from here, so a new state cannot be left out of its query.
CONTACT_STATE_COLUMNS = tuple(column for column, _flag in EXCLUSIONS)
#: What :func:`contact_state` reads: the rule's columns and the recipient's own tracking
#: choice (which limits what tracking records, not whether the contact may be processed).
CONTACT_READ_COLUMNS = (*CONTACT_STATE_COLUMNS, "tracking_refused_at")


def may_process(contact: Any | None) -> bool:
    """Whether this contact may be processed at all: mailed, tracked, exported for processing,
    counted in an audience or fed to the optimisation engine.

    ``contact``: a model or a row with :data:`CONTACT_STATE_COLUMNS`; None means erased (no
    contact), which may not. Guarantees the same answer as :func:`may_process_condition` in
    SQL for every contact.
    """
    if contact is None:
        return False
    return all(getattr(contact, column, None) is None for column in CONTACT_STATE_COLUMNS)


def may_process_condition(contacts: Any) -> ColumnElement[bool]:
    """:func:`may_process` as a SQL condition for a WHERE clause.

    ``contacts``: the ``Contact`` model, an alias of it, or a subquery's ``.c`` with the
    :data:`CONTACT_STATE_COLUMNS`. (An erased contact has no row, so it never matches.)
    """
    return and_(*(getattr(contacts, column).is_(None) for column in CONTACT_STATE_COLUMNS))


def excluded_condition(contacts: Any) -> ColumnElement[bool]:
    """The contacts :func:`may_process_condition` leaves out (to count or mark them)."""
    return not_(may_process_condition(contacts))


# --- may this address get a transactional message? -------------------------------------------
#
# A transactional message (a receipt, an order confirmation) is not marketing. An unsubscribe
# and a consent withdrawal are about marketing (the consent it was sent on): they do not stop
# it. A restriction (art. 18: no processing at all), an objection (art. 21: the person objected
# to being mailed; kept platform-wide as an "objected" suppression), an erasure (a tombstone
# hash), a hard bounce, a complaint and the operators' blocks do.

#: The contact columns that stop transactional mail too (a subset of :data:`EXCLUSIONS`:
#: consent withdrawal is about marketing).
TRANSACTIONAL_EXCLUSIONS: tuple[tuple[str, str], ...] = (
    ("restricted_at", "the address's processing is restricted"),
    ("objected_at", "the person objected to being mailed"),
)

#: Suppression reasons that concern marketing only (an unsubscribe).
MARKETING_ONLY_SUPPRESSIONS = frozenset({"unsubscribed"})

#: Why a suppression reason stops a transactional message, for the refusal's text.
_SUPPRESSION_TEXT = {
    "objected": "the person objected to being mailed",
    "erased": "the person's data was erased",
    "hard_bounce": "the address hard-bounced",
    "complaint": "the person complained about mail from this account",
    "blocked": "the address is blocked on this platform",
    "blocked_domain": "the address's domain is blocked on this platform",
    "manual": "the address is on the account's suppression list",
    "engine": "the address hard-bounced or complained on this platform",
}


def transactional_refusal(contact: Any | None, suppression_reasons: set[str]) -> str | None:
    """Why a transactional message may not go to an address, or None when it may.

    ``contact``: the account's contact with the address (a model or a row with the
    :data:`TRANSACTIONAL_EXCLUSIONS` columns), or None when the account has none (then only
    the suppressions speak: an erased person is one by their tombstone hash).
    ``suppression_reasons``: every reason the address is suppressed for the account or
    platform-wide (``"engine"`` for the optimisation engine's platform-wide suppression).
    Pure; the reason names neither the address nor the person.
    """
    if contact is not None:
        for column, reason in TRANSACTIONAL_EXCLUSIONS:
            if getattr(contact, column, None) is not None:
                return reason
    blocking = sorted(set(suppression_reasons) - MARKETING_ONLY_SUPPRESSIONS)
    if blocking:
        return _SUPPRESSION_TEXT.get(blocking[0], "the address is suppressed")
    return None


@dataclass(frozen=True)
class ContactState:
    """What the privacy layer needs to know about a contact.

    Every field defaults to the permissive value of a plain subscribed contact. The flags are
    those of :data:`EXCLUSIONS` (built by :func:`contact_state`).
    """

    exists: bool = True
    unsubscribed: bool = False
    restricted: bool = False
    objected: bool = False
    consent_withdrawn: bool = False
    refused_tracking: bool = False  # turned off tracking of their opens and clicks

    @property
    def excluded_from_processing(self) -> bool:
        """Erased, or any state of :data:`EXCLUSIONS`: no tracking, sending, engine."""
        return not self.exists or any(getattr(self, flag) for _column, flag in EXCLUSIONS)


def contact_state(contact: Any | None, subscription_status: str | None) -> ContactState:
    """The state of a contact (a model or a row with :data:`CONTACT_READ_COLUMNS`; None:
    erased) on the campaign's list. A timestamp a model does not define yet counts as unset.
    Guarantees ``excluded_from_processing == not may_process(contact)``.
    """
    if contact is None:
        return ContactState(exists=False)
    flags = {flag: getattr(contact, column, None) is not None for column, flag in EXCLUSIONS}
    return ContactState(
        unsubscribed=subscription_status == "unsubscribed",
        refused_tracking=getattr(contact, "tracking_refused_at", None) is not None,
        **flags,
    )


@dataclass(frozen=True)
class TrackingContext:
    """The inputs of a decision, gathered by the store from the database."""

    kind: str  # open | click | unsubscribe | honeypot
    individual_tracking: bool
    track_opens: bool
    track_clicks: bool
    identified_token: bool  # the token named a message (and so a contact)
    contact: ContactState | None


def decide(ctx: TrackingContext) -> Decision:
    """Decide what a hit records. Pure: the same inputs always give the same answer.

    - opens (clicks) of a campaign that does not track them: nothing (nor honeypot fetches,
      when clicks are not tracked);
    - a hit naming a contact who turned off tracking of their opens and clicks:
      :func:`recipient_tracking_choice`;
    - a hit naming a contact who is erased, restricted, objecting or withdrew consent: nothing,
      not even a count;
    - identified only when the account tracks individually and the contact is subscribed;
    - everything else: an anonymous count.
    """
    if ctx.kind == "open" and not ctx.track_opens:
        return Decision.DROP
    if ctx.kind in ("click", "honeypot") and not ctx.track_clicks:
        return Decision.DROP
    if ctx.identified_token:
        if ctx.contact is None or ctx.contact.excluded_from_processing:
            return Decision.DROP
        choice = recipient_tracking_choice(ctx)
        if choice is not None:
            return choice
        if ctx.individual_tracking and not ctx.contact.unsubscribed:
            return Decision.IDENTIFIED
    return Decision.ANONYMOUS


#: The hits a recipient's "do not track my opens and clicks" covers (the honeypot is a link).
RECIPIENT_TRACKED_KINDS = frozenset({"open", "click", "honeypot"})


def recipient_tracking_choice(ctx: TrackingContext) -> Decision | None:
    """What the recipient's own tracking choice (the preference centre) makes of a hit, or None
    when it does not apply.

    A hit naming a contact who turned tracking off records nothing when it is an open, a click
    or a honeypot fetch: not an identified event, and not an anonymous count either (the
    person said no; no account setting can override that). Their unsubscribe is still
    honoured elsewhere and counts only anonymously here. Hits of tokens that name no message
    (accounts without individual tracking) cannot be told apart and stay anonymous counts.
    """
    if not ctx.identified_token or ctx.contact is None or not ctx.contact.refused_tracking:
        return None
    return Decision.DROP if ctx.kind in RECIPIENT_TRACKED_KINDS else Decision.ANONYMOUS


#: The hits that may become a per-person webhook event.
WEBHOOK_NAMED_KINDS = frozenset({"open", "click"})


def may_name_in_webhook(decision: Decision, kind: str) -> bool:
    """Whether a hit may reach the account's webhooks as an event naming the person (an open
    or a click with the contact's id and address). Only what is recorded as identified: with
    individual tracking off, for a person who turned tracking off, or for a contact excluded
    from processing, the decision is never IDENTIFIED, so no per-person event is sent (the
    counts stay in the campaign report)."""
    return decision is Decision.IDENTIFIED and kind in WEBHOOK_NAMED_KINDS


def may_identify_in_urls(individual_tracking: bool) -> bool:
    """Whether beacon and click URLs may carry a message id at all."""
    return individual_tracking


@dataclass(frozen=True)
class EngineSignal:
    """All the Delivery Optimization Engine may receive of a hit: which message was opened or
    clicked, by a person, in which hour. The engine's gate turns the message into its own keyed
    hash of the address and the domain; nothing else of the contact goes along."""

    account_id: int
    message_id: int
    kind: str  # open | click
    hour: datetime  # the hit's time, truncated to the hour (UTC, naive)


@dataclass(frozen=True)
class EngineContext:
    """The inputs of :func:`engine_signal`, gathered by the ingest."""

    tracking: TrackingContext
    account_participates: bool  # Settings > Advanced
    is_machine: bool
    account_id: int
    message_id: int | None  # None when the token named no message
    occurred_at: datetime


def engine_signal(ctx: EngineContext) -> EngineSignal | None:
    """What of a stored hit may be forwarded to the optimisation engine, or None.

    Only a person's open or click, recorded as an identified event (so: individual tracking on,
    the contact subscribed and neither restricted, objecting, withdrawn nor erased), of an
    account that participates; and of it only the address hash and the hour.
    """
    if not ctx.account_participates or ctx.is_machine:
        return None
    if ctx.tracking.kind not in ("open", "click"):
        return None
    if decide(ctx.tracking) is not Decision.IDENTIFIED or ctx.message_id is None:
        return None
    hour = ctx.occurred_at.replace(minute=0, second=0, microsecond=0, tzinfo=None)
    return EngineSignal(
        account_id=ctx.account_id, message_id=ctx.message_id, kind=ctx.tracking.kind, hour=hour
    )
