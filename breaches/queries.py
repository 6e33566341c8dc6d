"""Reads about incidents: the operator's lists and an account's received notices."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, select

from accounts.models import Account, User
from breaches.models import Incident, IncidentAccount, IncidentLogEntry
from core import db
from core.errors import NotFoundError
from subscribers.models import Contact


@dataclass(frozen=True)
class AffectedAccount:
    link: IncidentAccount
    name: str


@dataclass(frozen=True)
class IncidentDetail:
    """An incident with its affected accounts, the contacts concerned and its log."""

    incident: Incident
    accounts: list[AffectedAccount]
    contacts_concerned: int
    log: list[IncidentLogEntry]
    #: operator user id -> address, for the log's actors
    actors: dict[int, str]


@dataclass(frozen=True)
class Candidate:
    """An account an operator may select, with the contacts it holds."""

    id: int
    name: str
    contacts: int


def incidents() -> list[tuple[Incident, int, int]]:
    """Every incident, newest first, with its number of accounts and contacts concerned."""
    rows = db.session.execute(
        select(
            Incident,
            func.count(IncidentAccount.id),
            func.coalesce(func.sum(IncidentAccount.contacts_concerned), 0),
        )
        .outerjoin(IncidentAccount, IncidentAccount.incident_id == Incident.id)
        .group_by(Incident.id)
        .order_by(Incident.id.desc())
    ).all()
    return [(incident, int(accounts), int(contacts)) for incident, accounts, contacts in rows]


def incident_detail(incident_id: int) -> IncidentDetail:
    """One incident for its operator page (NotFoundError when unknown)."""
    incident = db.session.get(Incident, incident_id)
    if incident is None:
        raise NotFoundError("incident")
    rows = db.session.execute(
        select(IncidentAccount, Account.name)
        .join(Account, Account.id == IncidentAccount.account_id)
        .where(IncidentAccount.incident_id == incident_id)
        .order_by(Account.name, Account.id)
    ).all()
    accounts = [AffectedAccount(link, name) for link, name in rows]
    log = list(
        db.session.scalars(
            select(IncidentLogEntry)
            .where(IncidentLogEntry.incident_id == incident_id)
            .order_by(IncidentLogEntry.id)
        )
    )
    actor_ids = {e.actor_user_id for e in log if e.actor_user_id is not None}
    actors = (
        dict(db.session.execute(select(User.id, User.email).where(User.id.in_(actor_ids))).all())
        if actor_ids
        else {}
    )
    return IncidentDetail(
        incident=incident,
        accounts=accounts,
        contacts_concerned=sum(a.link.contacts_concerned for a in accounts),
        log=log,
        actors={int(k): str(v) for k, v in actors.items()},
    )


def candidate_accounts(incident_id: int) -> list[Candidate]:
    """Accounts not yet selected for the incident, by name, with their contact counts."""
    selected = select(IncidentAccount.account_id).where(IncidentAccount.incident_id == incident_id)
    counts = (
        select(Contact.account_id, func.count().label("n")).group_by(Contact.account_id).subquery()
    )
    rows = db.session.execute(
        select(Account.id, Account.name, func.coalesce(counts.c.n, 0))
        .outerjoin(counts, counts.c.account_id == Account.id)
        .where(Account.id.not_in(selected))
        .order_by(Account.name, Account.id)
    ).all()
    return [Candidate(int(i), str(n), int(c)) for i, n, c in rows]


@dataclass(frozen=True)
class ReceivedNotice:
    """A notice an account received, and the report if it was sent to it."""

    incident: Incident
    link: IncidentAccount


def notices_for_account(account_id: int) -> list[ReceivedNotice]:
    """The notices the account's owners were sent, newest first (the report only once it was
    sent to them)."""
    rows = db.session.execute(
        select(Incident, IncidentAccount)
        .join(IncidentAccount, IncidentAccount.incident_id == Incident.id)
        .where(
            IncidentAccount.account_id == account_id, IncidentAccount.notice_sent_at.is_not(None)
        )
        .order_by(IncidentAccount.notice_sent_at.desc(), Incident.id.desc())
    ).all()
    return [ReceivedNotice(incident, link) for incident, link in rows]
