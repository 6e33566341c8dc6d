"""The registry of personal data: every place the platform keeps something about a person.

Each :class:`Store` says what it holds, how a person's data is found there, and answers every
operation the privacy promises need:

- ``report``: the person's records there, for the access report (art. 15) and the portable
  export (art. 20);
- ``erase``: nothing of the store names the person afterwards (art. 17);
- ``restrict``: what restriction, objection or consent withdrawal changes there (art. 18, 21,
  7(3)); most stores are simply no longer processed, because every processing path asks the
  contact's flags first (``privacy.policy``);
- ``retention``: how long data stays, and the sweep that removes it when the time is up;
- ``delete_account``: what goes when an account is deleted permanently.

An operation is either a target (``"package.module:function"``, resolved when called, so that
no package reaches into another at import time) or :class:`Because`, which says in words why
the store needs nothing for it. Access reports, portable exports, erasure, restriction,
retention and account deletion all walk :data:`STORES`, so a store cannot be forgotten by one
of them; ``tests/privacy/test_registry.py`` fails when a table with a personal-looking column,
or a directory the app writes to, is in no store (or in :data:`NOT_PERSONAL` with a reason).

Operation signatures (``Person`` below):

- ``report(person) -> dict[int | None, list[dict]]``: records per contact id (``None`` for
  records not tied to one of the person's contacts, e.g. their data requests or mail held in
  the outbox); flat JSON-serialisable values, datetimes as ISO strings;
- ``erase(person) -> None``: runs in the erasure transaction, before the contact rows are
  deleted (stores run in ``order``); flush, do not commit;
- ``restrict(person, flag) -> None``: ``flag`` is ``restricted_at``, ``objected_at`` or
  ``consent_withdrawn_at``; flush, do not commit;
- ``retention`` sweep ``(now) -> int``: commits its own work, safe to run twice or late;
- ``delete_account(account_id) -> None``: runs before the account row is deleted (its rows
  then go by ``ON DELETE CASCADE``); files are removed at once.
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from flask import current_app

from core.logsafe import log_failure

log = logging.getLogger(__name__)

Records = dict[int | None, list[dict[str, Any]]]


@dataclass(frozen=True)
class Because:
    """An operation the store needs nothing for, and why (shown in the docs and tests)."""

    reason: str


Operation = str | Because


@dataclass(frozen=True)
class Retention:
    """How long the store keeps data (``period``, formatted with the settings) and its sweep."""

    period: str
    sweep: Operation


@dataclass(frozen=True)
class Store:
    """One place that holds personal data, with every operation the privacy promises need."""

    name: str
    title: str  # the access report's section title, addressed to the person
    holds: str  # what it holds, for operators and the docs
    found_by: str  # "contact id", "address hash", "address", "account", ...
    report: Operation
    erase: Operation
    restrict: Operation
    retention: Retention
    delete_account: Operation
    order: int = 100  # lower runs first, in reports and in erasure
    tables: tuple[str, ...] = ()
    #: Config keys naming the directories the store writes to (files).
    directories: tuple[str, ...] = ()
    #: The Redis keys (after the namespace) the store writes, e.g. ``tracking:*``.
    redis_keys: tuple[str, ...] = ()
    provided_by_person: bool = False  # portability: provided (True) or observed (False)
    #: Reported per contact (a section in each account's part of the report); False: the
    #: store reports about the person as a whole ("about you"), shown only when it holds some.
    per_contact: bool = True


@dataclass(frozen=True)
class Person:
    """Whose data an operation concerns: the address, and the contacts that hold it.

    ``account_id`` is the account erasing or restricting its own contact, or ``None`` when the
    person asked (then every account and every platform-wide store is concerned).
    """

    address: str
    contact_ids: tuple[int, ...] = ()
    account_ids: tuple[int, ...] = ()
    names: tuple[str, ...] = ()
    account_id: int | None = None

    @property
    def platform_wide(self) -> bool:
        return self.account_id is None

    @property
    def address_hash(self) -> str:
        from subscribers.suppression import address_hash

        return address_hash(self.address)

    def needles(self) -> list[str]:
        """What names the person in free text (files, mails), casefolded: the address and
        each full name of three letters or more."""
        found = [self.address.casefold()] if self.address else []
        found += [n.casefold() for n in self.names if len(n.strip()) >= 3]
        return [n for n in dict.fromkeys(found) if n]


def setting(name: str) -> int:
    """A retention setting (declared in core/settings.py) as a whole number."""
    return int(current_app.config[name])


_A = "privacy.personal_data"
_S = "subscribers.personal_data"
_C = "campaigns.personal_data"
_T = "tracking.personal_data"
_U = "accounts.personal_data"
_GATE = "privacy.engine_gate"
_CASCADE = Because("its rows go with the account (ON DELETE CASCADE on account_id)")
_FLAGS = Because(
    "kept and no longer processed: every processing path asks privacy.policy, which reads "
    "the contact's restriction, objection and withdrawal flags"
)
_WITH_CONTACT = "as long as the contact is kept: until the organisation removes it, the person "
_WITH_CONTACT += "asks for erasure, or the account is deleted"

#: Every store of personal data. Keep it in the order reports show it.
STORES: tuple[Store, ...] = (
    Store(
        name="contact",
        title="Your contact record",
        holds="address, name, attributes, source and the restriction/objection/withdrawal flags",
        found_by="address (case-insensitive), per account",
        report=f"{_S}:report_contacts",
        erase=f"{_S}:erase_contacts",
        restrict=f"{_S}:restrict_contacts",
        retention=Retention(
            _WITH_CONTACT + "; sign-ups never confirmed for {UNCONFIRMED_SIGNUP_DAYS} days go",
            "privacy.retention:purge_unconfirmed_signups",
        ),
        delete_account=_CASCADE,
        order=1000,  # last: the others still read the contact rows
        tables=("contacts",),
        provided_by_person=True,
    ),
    Store(
        name="lists",
        title="Lists and subscriptions",
        holds="which lists the contact is on, and the subscription's status",
        found_by="contact id",
        report=f"{_S}:report_subscriptions",
        erase=f"{_S}:erase_subscriptions",
        restrict=_FLAGS,
        retention=Retention(_WITH_CONTACT, Because("kept with the contact")),
        delete_account=_CASCADE,
        order=10,
        tables=("subscriptions", "signup_confirmations"),
        provided_by_person=True,
    ),
    Store(
        name="consent",
        title="Consent history",
        holds="each sign-up, confirmation, unsubscribe and change of lists, with its source "
        "(and a network prefix where the account records it)",
        found_by="contact id",
        report=f"{_S}:report_consent",
        erase=f"{_S}:erase_consent",
        restrict=_FLAGS,
        retention=Retention(_WITH_CONTACT, Because("proof of consent is kept with the contact")),
        delete_account=_CASCADE,
        order=15,
        tables=("consent_records",),
    ),
    Store(
        name="tracking_events",
        title="Opens and clicks recorded about you",
        holds="identified open and click events (kind, time, network prefix, device class)",
        found_by="contact id, through its messages",
        report=f"{_T}:report_events",
        erase=f"{_T}:erase_events",
        restrict=_FLAGS,
        retention=Retention(
            "the account's event retention (180 days unless it chose otherwise), then only "
            "anonymous totals (per day, quarter hour, domain, machine reason)",
            "tracking.services:apply_event_retention",
        ),
        delete_account=_CASCADE,
        order=20,
        tables=("tracking_events",),
    ),
    Store(
        name="unsubscribes",
        title="Unsubscribes through our emails",
        holds="one row per message whose unsubscribe link was used",
        found_by="contact id, through its messages",
        report=f"{_T}:report_unsubscribes",
        erase=Because("a row names only its message, which erasure unlinks from the person"),
        restrict=_FLAGS,
        retention=Retention(_WITH_CONTACT, Because("kept with the message, for the campaign")),
        delete_account=_CASCADE,
        order=25,
        tables=("message_unsubscribes",),
    ),
    Store(
        name="messages",
        title="Emails sent to you",
        holds="one row per email sent: campaign, status, time, SMTP error",
        found_by="contact id",
        report=f"{_C}:report_messages",
        erase=f"{_C}:erase_messages",
        restrict=_FLAGS,
        retention=Retention(_WITH_CONTACT, Because("kept for the campaign's counts")),
        delete_account=_CASCADE,
        order=30,
        tables=("messages",),
    ),
    Store(
        name="bounces",
        title="Bounces and complaints about emails to you",
        holds="bounce and complaint reports (kind, source, SMTP status code) per message",
        found_by="contact id, through its messages",
        report=f"{_C}:report_bounces",
        erase=f"{_C}:erase_bounces",
        restrict=_FLAGS,
        retention=Retention(_WITH_CONTACT, Because("kept with the message")),
        delete_account=_CASCADE,
        order=28,
        tables=("bounces",),
    ),
    Store(
        name="transactional_messages",
        title="Transactional emails sent to you (receipts, confirmations)",
        holds="one row per transactional email: the address and name, sender, status, times, "
        "the failure reason; its subject, bodies and personalisation data only until it is "
        "sent or failed",
        found_by="address (case-insensitive) or contact id, per account",
        report=f"{_C}:report_transactional",
        erase=f"{_C}:erase_transactional",
        restrict=Because(
            "a queued message is checked against the restriction and the objection again "
            "before it is sent (privacy.policy.transactional_refusal)"
        ),
        retention=Retention(
            "{TRANSACTIONAL_RETENTION_DAYS} days; the content only until it is sent or failed",
            f"{_C}:purge_transactional",
        ),
        delete_account=_CASCADE,
        order=32,
        tables=("transactional_messages",),
    ),
    Store(
        name="campaign_errors",
        per_contact=False,
        title="Sending errors that quoted your address",
        holds="a campaign's last transport error (kind and code; text that quotes an address "
        "is cleared on erasure)",
        found_by="address in the text",
        report=f"{_C}:report_campaign_errors",
        erase=f"{_C}:erase_campaign_errors",
        restrict=Because("an error text is not processed"),
        retention=Retention(
            "until the next error or the campaign's deletion", Because("overwritten")
        ),
        delete_account=_CASCADE,
        order=35,
        tables=("campaigns",),
    ),
    Store(
        name="suppressions",
        per_contact=False,
        title="Suppression entries (a keyed hash of your address)",
        holds="keyed hashes of addresses never to be mailed (unsubscribed, bounced, erased)",
        found_by="address hash",
        report=f"{_S}:report_suppressions",
        erase=Because(
            "kept as a keyed hash only, so an erased address is never mailed again; erasure "
            "adds one"
        ),
        restrict=Because("suppression is itself a restriction of processing"),
        retention=Retention(
            "for as long as the platform runs (a keyed hash, not the address)",
            Because("a suppression must outlive the contact"),
        ),
        delete_account=_CASCADE,
        order=40,
        tables=("suppressions",),
    ),
    Store(
        name="delivery_optimization_engine",
        title="Delivery Optimization Engine (keyed by a hash of your address)",
        holds="delivery outcomes and engagement hours per keyed hash of the address",
        found_by="engine hash of the address",
        report=f"{_GATE}:report_engine_data",
        erase=f"{_GATE}:erase_engine_data",
        restrict=f"{_GATE}:restrict_engine_data",
        retention=Retention(
            "the engine's window of days (see docs/readme/engine.md)",
            Because("the gate's engine-maintenance job drops contributions past the window"),
        ),
        delete_account=f"{_GATE}:forget_account",
        order=50,
        tables=(
            "engine_addresses",
            "engine_address_hours",
            "engine_contributions",
            # The addresses it suppresses, by the hash contacts keep (kept by the gate with
            # the rows above: an erasure's removal takes the address out of it too).
            "engine_suppressed_addresses",
        ),
    ),
    Store(
        name="data_requests",
        per_contact=False,
        title="Your data requests",
        holds="requests to this platform: kind, status, times; the address only until it is "
        "fulfilled or expires; a proposed correction; a client network prefix",
        found_by="address hash",
        report=f"{_A}:report_requests",
        erase=f"{_A}:erase_requests",
        restrict=Because("a request is the person's own; it is answered, not processed"),
        retention=Retention(
            "the address until the request is fulfilled or expires "
            "({DATA_REQUEST_MAX_AGE} seconds); the request {DATA_REQUEST_KEEP_DAYS} days",
            "privacy.retention:expire_requests",
        ),
        delete_account=Because(
            "a request belongs to the person, not the account; its links go by cascade"
        ),
        order=60,
        tables=("privacy_requests", "privacy_request_accounts", "privacy_confirmation_mail"),
    ),
    Store(
        name="downloads",
        per_contact=False,
        title="Prepared downloads of your data",
        holds="access reports and exports waiting to be fetched once",
        found_by="address hash, through the request",
        report=f"{_A}:report_downloads",
        erase=f"{_A}:erase_downloads",
        restrict=Because("a download is the person's own copy"),
        retention=Retention(
            "until fetched once, at most {DOWNLOAD_MAX_AGE} seconds",
            "privacy.retention:remove_downloads_and_spent_tokens",
        ),
        delete_account=Because("a download belongs to the person, not the account"),
        order=65,
        tables=("privacy_downloads", "privacy_spent_tokens"),
    ),
    Store(
        name="audit_log",
        per_contact=False,
        title="Record of what was done with your requests",
        holds="each step of a data request or account lifecycle, naming the address by its "
        "keyed hash only",
        found_by="address hash",
        report=f"{_A}:report_audit",
        erase=Because("accountability (art. 5(2)): it holds the keyed hash only"),
        restrict=Because("the audit log is not processed for anything else"),
        retention=Retention(
            "for as long as the platform runs (keyed hashes, no address)",
            Because("accountability records are kept"),
        ),
        delete_account=Because("kept for accountability; it names the account by id only"),
        order=70,
        tables=("privacy_audit_log",),
    ),
    Store(
        name="import_files",
        per_contact=False,
        title="Imported files and their error reports that named you",
        holds="uploaded CSV files (until imported or abandoned) and the error report of each "
        "import (rows that could not be imported, as uploaded)",
        found_by="address or name in the file",
        report=f"{_S}:report_import_files",
        erase=f"{_S}:erase_import_files",
        restrict=Because("a file is kept only to show the organisation what failed"),
        retention=Retention(
            "uploads until imported, or {IMPORT_UPLOAD_KEEP_HOURS} hours unmapped; error "
            "reports {IMPORT_FILE_KEEP_DAYS} days",
            f"{_S}:sweep_import_files",
        ),
        delete_account=f"{_S}:delete_account_import_files",
        order=80,
        tables=("import_jobs",),
        directories=("IMPORT_DIR",),
    ),
    Store(
        name="media",
        per_contact=False,
        title="Images uploaded to an account's media library (marketers)",
        holds="images an account uploaded for its emails (pixels only: location and camera "
        "data are removed on upload), their file names and who uploaded them",
        found_by="the uploading member's address",
        report="media.personal_data:report_uploads",
        erase=Because(
            "images are the organisation's content and are linked to no contact, so the "
            "request form finds none; an image showing a person is deleted by the account on "
            "its Media page"
        ),
        restrict=Because("images are not processing of a contact"),
        retention=Retention(
            "until the account deletes the image or the account is deleted: emails already "
            "sent keep loading it",
            Because("kept while emails that show it may still be opened"),
        ),
        delete_account="media.personal_data:delete_account_media",
        order=83,
        tables=("media_files",),
        directories=("MEDIA_DIR",),
    ),
    Store(
        name="outbox",
        per_contact=False,
        title="Emails kept in the platform's outbox",
        holds="every email the embedded default wrote to its Maildir outbox instead of sending "
        "it by SMTP: campaign mails, confirmation mails, notices to account owners",
        found_by="address or name in the message",
        report=f"{_A}:report_outbox",
        erase=f"{_A}:erase_outbox",
        restrict=Because("a mail already written is not processed further"),
        retention=Retention("{OUTBOX_KEEP_DAYS} days", f"{_A}:sweep_outbox"),
        delete_account=f"{_A}:delete_account_outbox",
        order=85,
        directories=("MAILDIR_PATH",),
    ),
    Store(
        name="tracking_buffer",
        per_contact=False,
        title="Opens and clicks waiting to be recorded",
        holds="hits not yet recorded (message id, time, network prefix, device class), in "
        "Redis, in memory, or spooled to a local file while Redis is away",
        found_by="message id",
        report=Because(
            "hits wait seconds; they carry a message id, not the address, and are reported "
            "as events once recorded"
        ),
        erase=Because(
            "after erasure the message names no one, so a hit still waiting is recorded anonymously"
        ),
        restrict=Because("the ingest asks privacy.policy for every hit"),
        retention=Retention(
            "seconds (until the next ingest)", Because("each ingest removes what it recorded")
        ),
        delete_account=Because("hits of a deleted account's messages are dropped at ingest"),
        order=90,
        directories=("TRACKING_SPOOL_DIR",),
        redis_keys=("tracking:*",),
    ),
    Store(
        name="caches_and_queues",
        per_contact=False,
        title="Queues and caches",
        holds="queued jobs (ids only), API rate counters (key id), login-throttle counters "
        "(keyed hash of an address, "
        "network prefix), send-rate counters (account, domain)",
        found_by="address hash (login throttle)",
        report=Because("jobs carry ids; counters expire within minutes"),
        erase=Because("nothing names the person; throttle counters expire by themselves"),
        restrict=Because("not processing of a contact"),
        retention=Retention(
            "minutes (the throttle windows)", Because("Redis expires the keys by themselves")
        ),
        delete_account=Because("jobs of a deleted account find nothing and end"),
        order=95,
        redis_keys=("login-throttle*", "throttle:*", "dramatiq:*", "api-rate*"),
    ),
    Store(
        name="marketer_users",
        per_contact=False,
        title="Your login to the platform (marketers)",
        holds="a marketer's address, name, password hash, last login and login sessions "
        "(network prefix, device class)",
        found_by="address",
        report=f"{_U}:report_users",
        erase=Because(
            "a marketer's login is erased by leaving or deleting the account; the request "
            "form erases contact data"
        ),
        restrict=Because("a login is not processed for marketing"),
        retention=Retention(
            "sessions until they end (idle {SESSION_IDLE_TIMEOUT} s, at most {SESSION_MAX_AGE} "
            "s); the user while a member of an account",
            "accounts.sessions:purge_ended",
        ),
        delete_account=Because(
            "accounts.services.delete_account_permanently deletes users left in no account; "
            "sessions and memberships go by cascade"
        ),
        order=98,
        tables=(
            "users",
            "user_sessions",
            "senders",
            "memberships",
            "totp_credentials",
            "recovery_codes",
            "login_challenges",
            "passkeys",
        ),
    ),
    Store(
        name="webhook_events",
        title="Events about you sent to the organisation's own systems (webhooks)",
        holds="events an account's webhook endpoints subscribed to (message sent, failed, "
        "bounced, opened or clicked; subscribed, unsubscribed): ids, the address, the time, "
        "and each delivery's outcome",
        found_by="contact id",
        report="webhooks.personal_data:report_events",
        erase="webhooks.personal_data:erase_events",
        restrict="webhooks.personal_data:restrict_events",
        retention=Retention(
            "{WEBHOOKS_EVENT_RETENTION_DAYS} days once every delivery ended",
            "webhooks.personal_data:apply_retention",
        ),
        delete_account=_CASCADE,
        order=42,
        tables=("webhook_events", "webhook_deliveries"),
    ),
    Store(
        name="api_idempotency",
        per_contact=False,
        title="Answers to your organisation's API requests",
        holds="the answer to a creating API request sent with an Idempotency-Key (it may quote "
        "a contact's address and name), kept so that a retry does not act twice",
        found_by="address, in the stored answer",
        report="api.personal_data:report_idempotent_answers",
        erase="api.personal_data:erase_idempotent_answers",
        restrict=Because("a stored answer is only replayed to the same request, never processed"),
        retention=Retention(
            "{API_IDEMPOTENCY_HOURS} hours", "api.personal_data:sweep_idempotent_answers"
        ),
        delete_account=_CASCADE,
        order=90,
        tables=("api_idempotency",),
    ),
    Store(
        name="security_log",
        per_contact=False,
        title="The security log of an account (marketers)",
        holds="logins, failed logins, second-factor and team changes of an account's members "
        "(their address, a network prefix); exports and data requests by id and count",
        found_by="member address",
        report=Because(
            "it records what members of an account did, never a contact's address or name; "
            "owners read it under Settings > Security log"
        ),
        erase=Because("it names contacts by id only, and an erased contact's id names no one"),
        restrict=Because("not processing of a contact"),
        retention=Retention("{SECURITY_LOG_RETENTION_DAYS} days", "accounts.audit:apply_retention"),
        delete_account=Because("its entries go with the account (ON DELETE CASCADE)"),
        order=99,
        tables=("security_events",),
    ),
)

#: Tables with a column that looks personal but holds none, and why.
NOT_PERSONAL: dict[str, str] = {
    "accounts": "the organisation's name and postal address (a business, the controller)",
    "mailing_lists": "a list's name and description, written by the organisation",
    "segments": "a segment's name and rules, written by the organisation",
    "campaign_templates": "templates written by the organisation (no recipient data)",
    "smtp_servers": "the organisation's own SMTP relays (names the relay, not a person)",
    "dkim_keys": "signing keys of the organisation's domains",
    "blocked_domains": "domains blocked platform-wide (no local part, no person)",
    "links": "a campaign's link targets (the same for every recipient)",
    "campaign_message_counts": "a campaign's messages counted by status (numbers only)",
    "ab_tests": "a campaign's A/B test settings and winner (no recipient data)",
    "ab_variants": "the subjects and sender names an organisation wrote for an A/B test",
    "engine_domain_days": "delivery outcomes per receiving domain (no local part)",
    "subscriber_settings": "the account's switch for recording consent IPs (no IP itself)",
    "roles": "an account's own role names and permissions, written by the organisation",
    "sso_providers": "the organisation's identity provider: issuer, client id and its email "
    "domain (no local part, no person)",
    "webhook_endpoints": "the organisation's own receiving URLs and the state of delivery",
    "webhook_secrets": "the signing secrets of the organisation's endpoints",
    "api_keys": "an account's API keys: a name the organisation chose, a prefix, the hash of "
    "the secret, scopes and the creating member's user id (no contact)",
    "breach_incident_log": "what platform operators did on an incident (steps, account ids, "
    "counts; no contact)",
    "tracking_quarter_stats": "roll-up: events per campaign, quarter hour and kind (counts)",
    "tracking_domain_stats": "roll-up: events per campaign and recipient domain (no local "
    "part; erasure takes the person's events out)",
    "tracking_reason_stats": "roll-up: machine events per campaign and reason (counts)",
}


def stores() -> list[Store]:
    """Every store, in report order."""
    return sorted(STORES, key=lambda s: (s.order, s.name))


def resolve(target: str) -> Callable[..., Any]:
    """The function a ``package.module:function`` target names (LookupError when absent)."""
    module_name, _, attribute = target.partition(":")
    function = getattr(importlib.import_module(module_name), attribute, None)
    if not callable(function):
        raise LookupError(f"personal-data operation {target} not found")
    return function


def person_for(address: str, contacts: list[Any], account_id: int | None = None) -> Person:
    """The :class:`Person` for ``address`` held by these contacts (``Contact`` rows)."""
    return Person(
        address=address.strip().lower() if address else "",
        contact_ids=tuple(c.id for c in contacts),
        account_ids=tuple(sorted({c.account_id for c in contacts})),
        names=tuple(dict.fromkeys(c.name for c in contacts if c.name)),
        account_id=account_id,
    )


def report(person: Person) -> list[tuple[Store, Records]]:
    """Every store's records about the person, in order (stores with ``Because`` report none)."""
    found: list[tuple[Store, Records]] = []
    for store in stores():
        if isinstance(store.report, Because):
            found.append((store, {}))
        else:
            found.append((store, resolve(store.report)(person)))
    return found


def erase(person: Person) -> None:
    """Erase the person in every store, in order (the contact rows last). No commit."""
    for store in stores():
        if not isinstance(store.erase, Because):
            resolve(store.erase)(person)


def restrict(person: Person, flag: str) -> None:
    """Apply a restriction, objection or withdrawal (``flag``) in every store. No commit."""
    for store in stores():
        if not isinstance(store.restrict, Because):
            resolve(store.restrict)(person, flag)


def delete_account(account_id: int) -> None:
    """Remove what every store keeps of the account outside its cascading rows (files, the
    engine's contributions). Runs before the account row is deleted. No commit."""
    for store in stores():
        if not isinstance(store.delete_account, Because):
            resolve(store.delete_account)(account_id)


def retention_settings() -> dict[str, Any]:
    """The settings the retention periods quote, for formatting them."""
    values: dict[str, Any] = dict(current_app.config)
    return values


def retention_text(store: Store) -> str:
    """The store's retention period in words, with the configured values."""
    return store.retention.period.format_map(retention_settings())


def apply_retention(now: datetime) -> dict[str, Any]:
    """The scheduler's job: run every store's retention sweep once; return each one's count
    (or the exception's class name; a failing sweep does not stop the others). Each sweep
    commits its own work and is safe to run twice, late or concurrently."""
    from core import db

    results: dict[str, Any] = {}
    for store in stores():
        sweep = store.retention.sweep
        if isinstance(sweep, Because):
            continue
        try:
            results[store.name] = resolve(sweep)(now)
        except Exception as exc:
            db.session.rollback()
            log_failure(log, exc, "retention sweep of %s failed", store.name)
            results[store.name] = type(exc).__name__
    return results
