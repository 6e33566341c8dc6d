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
from core.db import utcnow
from privacy import subject_data
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


def _iso(value: datetime | None) -> str | None:
    return value.isoformat(timespec="seconds") if value else None


def _contact_fields(contact: Contact) -> dict[str, Any]:
    return {
        "email": contact.email,
        "name": contact.name,
        "attributes": dict(contact.attributes or {}),
        "source": contact.source,
        "added": _iso(contact.created_at),
        "updated": _iso(contact.updated_at),
        "processing_restricted_since": _iso(contact.restricted_at),
        # "person" (asked through the request form) or "account" (set by the organisation).
        "processing_restricted_by": contact.restricted_by,
        "objected_since": _iso(contact.objected_at),
        "consent_withdrawn_since": _iso(contact.consent_withdrawn_at),
    }


def _retention(account: Account) -> list[str]:
    config = current_app.config
    return [
        f"Identified open and click events: {account.event_retention_days} days, then only "
        "anonymous daily totals are kept.",
        f"Sign-ups never confirmed: {config['UNCONFIRMED_SIGNUP_DAYS']} days.",
        "Your address and list memberships: as long as the organisation keeps you on its lists "
        "or until you ask for erasure; everything is deleted when the organisation's account is "
        f"deleted (on request, after a {config['ACCOUNT_DELETION_GRACE_DAYS']}-day grace period, "
        f"or after {config['ACCOUNT_INACTIVITY_DAYS']} days without activity).",
        "Unsubscribes and erasures: only a keyed hash of the address, so you are never "
        "mailed again.",
    ]


def holdings(contacts: list[Contact]) -> list[dict[str, Any]]:
    """What each account holds about these contacts: fields, then every provider's records."""
    if not contacts:
        return []
    ids = [c.id for c in contacts]
    sections = [(p, p.export(ids)) for p in subject_data.providers()]
    accounts = {
        a.id: a
        for a in db.session.scalars(
            select(Account).where(Account.id.in_({c.account_id for c in contacts}))
        )
    }
    found = []
    for contact in contacts:
        account = accounts[contact.account_id]
        found.append(
            {
                "account": {"id": account.id, "name": account.name},
                "contact_id": contact.id,
                "contact": _contact_fields(contact),
                "source": contact.source,
                "retention": _retention(account),
                "sections": [
                    {
                        "name": provider.name,
                        "title": provider.title,
                        "provided_by_person": provider.provided_by_person,
                        "records": records.get(contact.id, []),
                    }
                    for provider, records in sections
                ],
            }
        )
    return found


def access_report(address: str, contacts: list[Contact]) -> dict[str, Any]:
    """The art. 15 report for ``address``: every account's data, purposes, recipients,
    retention, source, automated processing and rights, including complaint."""
    config = current_app.config
    return {
        "generated_at": _iso(utcnow()),
        "address": address,
        "holders": holdings(contacts),
        "purposes": PURPOSES,
        "recipients": [
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
            *config["SUBPROCESSORS"],
        ],
        "automated_processing": PURPOSES[3],
        "rights": RIGHTS,
        "complaint": "You may lodge a complaint with a supervisory authority: "
        + str(config["SUPERVISORY_AUTHORITY"]),
    }


def portable_export(address: str, contacts: list[Contact]) -> dict[str, Any]:
    """The art. 20 export: per account, what the person provided and what their use generated."""
    accounts = []
    for holding in holdings(contacts):
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
        "generated_at": _iso(utcnow()),
        "address": address,
        "accounts": accounts,
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
