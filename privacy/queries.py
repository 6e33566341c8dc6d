"""Reads of the privacy layer: access reports, portable exports, requests and the audit log."""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from flask import current_app
from sqlalchemy import func, select

from accounts.models import Account
from core import db
from core.db import iso, utcnow
from privacy import registry
from privacy.models import REQUEST_KINDS, AuditEntry, DataRequest, RequestAccount
from subscribers.models import Contact

PURPOSES = [
    "Sending the emails you subscribed to, on behalf of the organisation that holds your address "
    "(it is the controller; this platform processes the data for it).",
    "Measuring whether emails are opened and links clicked: counted anonymously, and per person "
    "only where the organisation enabled it and you did not restrict, object or withdraw consent.",
    "Keeping unsubscribes, bounces, complaints and erasures effective (kept as a keyed hash only).",
    "Delivery optimisation (automated processing): the Delivery Optimization Engine learns "
    "delivery outcomes and open/click hours keyed by a keyed hash of your address, to suppress "
    "addresses that bounce or complain and to pace sending. It makes no decision with legal or "
    "similarly significant effect on you. Objection, restriction or consent withdrawal keep you "
    "out of it.",
]

RIGHTS = [
    "Access: this report (GDPR art. 15).",
    "Rectification: ask for corrections through the data-request form (art. 16).",
    "Erasure: ask for everything to be erased (art. 17).",
    "Restriction: ask for your data to be kept but not used (art. 18); only you can lift it.",
    "Portability: a JSON and CSV export of what you provided and what your use "
    "generated (art. 20).",
    "Objection: object to marketing and profiling at any time; it is absolute (art. 21).",
    "Consent: withdraw it at any time, as easily as you gave it (art. 7(3)).",
]


def contacts_for_address(address: str) -> list[Contact]:
    """Every contact, in every account, holding the normalised ``address``."""
    return list(
        db.session.scalars(
            select(Contact)
            .where(func.lower(Contact.email) == address.strip().lower())
            .order_by(Contact.account_id, Contact.id)
        )
    )


def _retention(account: Account) -> list[str]:
    config = current_app.config
    return [
        f"Identified open and click events: {account.event_retention_days} days, then only "
        "anonymous totals are kept (counts per day, quarter hour, link, recipient domain and "
        "machine reason).",
        f"Sign-ups never confirmed: {config['UNCONFIRMED_SIGNUP_DAYS']} days.",
        "Your address and list memberships: as long as the organisation keeps you on its lists "
        "or until you ask for erasure; everything is deleted when the organisation's account is "
        f"deleted (on request, after a {config['ACCOUNT_DELETION_GRACE_DAYS']}-day grace period, "
        f"or after {config['ACCOUNT_INACTIVITY_DAYS']} days without activity).",
        "Unsubscribes and erasures: only a keyed hash of the address, so you are never "
        "mailed again.",
    ]


def _section(store: registry.Store, records: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "name": store.name,
        "title": store.title,
        "provided_by_person": store.provided_by_person,
        "retention": registry.retention_text(store),
        "records": records,
    }


def _report(
    address: str, contacts: list[Contact], account_id: int | None
) -> tuple[list[dict[str, Any]], list[Any]]:
    """Per contact (holding) and for the person as a whole: every registered store's records
    (``account_id``: an account's view of its own contact, which shows only its own)."""
    person = registry.person_for(address, contacts, account_id)
    found = registry.report(person)
    accounts = {
        a.id: a
        for a in db.session.scalars(
            select(Account).where(Account.id.in_({c.account_id for c in contacts}))
        )
    }
    holdings = []
    for contact in contacts:
        account = accounts[contact.account_id]
        own = {store.name: records.get(contact.id, []) for store, records in found}
        fields = (own.pop("contact", None) or [{}])[0]
        holdings.append(
            {
                "account": {"id": account.id, "name": account.name},
                "contact_id": contact.id,
                "contact": fields,
                "source": contact.source,
                "retention": _retention(account),
                "sections": [
                    _section(store, own[store.name])
                    for store, _records in found
                    if store.per_contact and store.name != "contact"
                ],
            }
        )
    about_you = [
        _section(store, records.get(None, [])) for store, records in found if records.get(None)
    ]
    return holdings, about_you


def recipients() -> list[dict[str, str]]:
    """Who receives the data: the organisations, this platform, the mail relay or provider
    actually configured (named by host, never with its credentials), and ``SUBPROCESSORS``."""
    from urllib.parse import urlsplit

    config = current_app.config
    found = [
        {
            "name": "The organisation(s) listed above",
            "purpose": "controller of its own contact record",
            "country": "",
        },
        {
            "name": "This platform's operator",
            "purpose": "processor, sending and measuring on the organisations' behalf",
            "country": "",
        },
    ]
    smtp_url = str(config.get("SMTP_URL") or "")
    if smtp_url:
        host = urlsplit(smtp_url).hostname or "the configured relay"
        found.append(
            {
                "name": f"Mail relay {host}",
                "purpose": "sub-processor: delivers the emails (sees the address and the message)",
                "country": "",
            }
        )
    else:
        found.append(
            {
                "name": "No outside mail relay: emails are written to this platform's own outbox",
                "purpose": "",
                "country": "",
            }
        )
    if _setting("SES_TOPIC_ARNS"):
        found.append(
            {
                "name": "Amazon Simple Email Service (Amazon Web Services)",
                "purpose": "sub-processor: delivers emails and reports bounces and complaints",
                "country": "",
            }
        )
    return found + list(config["SUBPROCESSORS"])


def _setting(name: str) -> Any:
    from campaigns.settings import setting

    try:
        return setting(name)
    except KeyError:
        return None


def _account_relays(contacts: list[Contact]) -> list[dict[str, str]]:
    """The organisations' own SMTP servers that sent to these contacts (by host only)."""
    from urllib.parse import urlsplit

    from campaigns.models import SmtpServer

    ids = {c.account_id for c in contacts}
    found = []
    for name, url, account_name in db.session.execute(
        select(SmtpServer.name, SmtpServer.url, Account.name)
        .join(Account, Account.id == SmtpServer.account_id)
        .where(SmtpServer.account_id.in_(ids), SmtpServer.enabled.is_(True))
        .order_by(SmtpServer.id)
    ):
        host = urlsplit(url).hostname or name
        found.append(
            {
                "name": f"Mail relay {host}",
                "purpose": f"chosen by {account_name} to deliver its emails",
                "country": "",
            }
        )
    return found


def access_report(
    address: str, contacts: list[Contact], account_id: int | None = None
) -> dict[str, Any]:
    """The art. 15 report for ``address``: every account's data, purposes, recipients,
    retention, source, automated processing and rights, including complaint."""
    config = current_app.config
    holders, about_you = _report(address, contacts, account_id)
    return {
        "generated_at": iso(utcnow()),
        "address": address,
        "holders": holders,
        "about_you": about_you,
        # Every place the platform looked in (the registry), so the report shows it is complete.
        "stores_searched": [store.title for store in registry.stores()],
        "purposes": PURPOSES,
        "recipients": recipients() + _account_relays(contacts),
        "automated_processing": PURPOSES[3],
        "rights": RIGHTS,
        "complaint": "You may lodge a complaint with a supervisory authority: "
        + str(config["SUPERVISORY_AUTHORITY"]),
    }


def portable_export(
    address: str, contacts: list[Contact], account_id: int | None = None
) -> dict[str, Any]:
    """The art. 20 export: per account, what the person provided and what their use generated."""
    holders, about_you = _report(address, contacts, account_id)
    accounts = []
    for holding in holders:
        provided = {"contact": holding["contact"]}
        generated: dict[str, Any] = {}
        for section in holding["sections"]:
            target = provided if section["provided_by_person"] else generated
            target[section["name"]] = section["records"]
        accounts.append(
            {"account": holding["account"]["name"], "provided": provided, "generated": generated}
        )
    return {
        "format": "envoy-portable-export/1",
        "generated_at": iso(utcnow()),
        "address": address,
        "accounts": accounts,
        "about_you": {section["name"]: section["records"] for section in about_you},
    }


def export_as_json(data: dict[str, Any]) -> str:
    """The export as indented JSON."""
    return json.dumps(data, indent=2, ensure_ascii=False, sort_keys=False)


def export_as_csv(data: dict[str, Any]) -> str:
    """The export as one CSV table: account, category, section, record, field, value."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["account", "category", "section", "record", "field", "value"])
    for account in data["accounts"]:
        for category in ("provided", "generated"):
            for section, content in account[category].items():
                records = content if isinstance(content, list) else [content]
                for number, record in enumerate(records, start=1):
                    for field, value in record.items():
                        if isinstance(value, dict | list):
                            value = json.dumps(value, ensure_ascii=False)
                        writer.writerow(
                            [account["account"], category, section, number, field, value]
                        )
    for section, records in data.get("about_you", {}).items():
        for number, record in enumerate(records, start=1):
            for field, value in record.items():
                if isinstance(value, dict | list):
                    value = json.dumps(value, ensure_ascii=False)
                writer.writerow(["", "about you", section, number, field, value])
    return out.getvalue()


@dataclass(frozen=True)
class AccountRequestRow:
    request_account_id: int
    request_id: int
    kind: str
    kind_label: str
    status: str
    actor: str
    created_at: datetime
    fulfilled_at: datetime | None
    contact_id: int | None
    proposed: dict[str, Any] | None
    applied_at: datetime | None


def requests_for_account(account_id: int, limit: int = 200) -> list[AccountRequestRow]:
    """The data requests that concerned this account (it held the address), newest first."""
    rows = db.session.execute(
        select(RequestAccount, DataRequest)
        .join(DataRequest, DataRequest.id == RequestAccount.request_id)
        .where(RequestAccount.account_id == account_id)
        .order_by(DataRequest.id.desc())
        .limit(limit)
    ).all()
    return [
        AccountRequestRow(
            request_account_id=link.id,
            request_id=request.id,
            kind=request.kind,
            kind_label=REQUEST_KINDS.get(request.kind, request.kind),
            status=request.status,
            actor=request.actor,
            created_at=request.created_at,
            fulfilled_at=request.fulfilled_at,
            contact_id=link.contact_id,
            proposed=request.proposed if request.kind == "rectify" else None,
            applied_at=link.applied_at,
        )
        for link, request in rows
    ]


def audit_for_account(account_id: int, limit: int = 200) -> list[AuditEntry]:
    """The audit entries naming this account, newest first."""
    return list(
        db.session.scalars(
            select(AuditEntry)
            .where(AuditEntry.account_id == account_id)
            .order_by(AuditEntry.id.desc())
            .limit(limit)
        )
    )


def audit_log(limit: int = 500) -> list[AuditEntry]:
    """The whole audit log, newest first (platform operators)."""
    return list(db.session.scalars(select(AuditEntry).order_by(AuditEntry.id.desc()).limit(limit)))


def audit_for_request(request_id: int) -> list[AuditEntry]:
    """The steps of one request, oldest first."""
    return list(
        db.session.scalars(
            select(AuditEntry).where(AuditEntry.request_id == request_id).order_by(AuditEntry.id)
        )
    )


@dataclass(frozen=True)
class RequestTally:
    kind: str
    label: str
    received: int
    fulfilled: int
    expired: int


def request_tallies(since: datetime) -> list[RequestTally]:
    """Per kind of request, how many were received, fulfilled and expired since ``since``
    (from the audit log, so removed requests still count)."""
    rows = db.session.execute(
        select(AuditEntry.kind, AuditEntry.event, func.count(func.distinct(AuditEntry.request_id)))
        .where(AuditEntry.at >= since, AuditEntry.request_id.is_not(None))
        .group_by(AuditEntry.kind, AuditEntry.event)
    ).all()
    counts: dict[tuple[str, str], int] = {(k, e): int(n) for k, e, n in rows}
    return [
        RequestTally(
            kind=kind,
            label=label,
            received=counts.get((kind, "received"), 0),
            fulfilled=counts.get((kind, "fulfilled"), 0),
            expired=counts.get((kind, "expired"), 0),
        )
        for kind, label in REQUEST_KINDS.items()
    ]
