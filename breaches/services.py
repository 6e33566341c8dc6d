"""Every write about breach notices (privacy policy 003, s.11).

An operator records an incident, selects the accounts it affects (each with the number of
contacts it held, the contacts concerned), sends each account's owners a notice and later
attaches a report of the actions taken and sends it to the same owners. Each step is written
to ``breach_incident_log`` (who, what, when) and each delivered notice or report to the
account's security log. Mail goes out from jobs (``breaches.tasks``), one per account, after
the step commits; a job re-run sends nothing twice to an account already marked.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, select, update

from accounts.audit import record_security_event
from accounts.models import Account, SecurityEventKind, User
from breaches.models import (
    Incident,
    IncidentAccount,
    IncidentLogEntry,
    IncidentStatus,
    IncidentStep,
)
from core import db, queue
from core.db import utcnow
from core.errors import NotFoundError, PermissionDeniedError, ValidationError
from core.mail import send_system_mail
from core.urls import external_url
from subscribers.models import Contact


def _operator(user_id: int) -> None:
    user = db.session.get(User, user_id)
    if user is None or not user.is_platform_admin:
        raise PermissionDeniedError("Only platform operators handle incidents.")


def _log(
    incident_id: int,
    step: IncidentStep,
    actor_user_id: int | None,
    account_id: int | None = None,
    detail: str = "",
) -> None:
    db.session.add(
        IncidentLogEntry(
            incident_id=incident_id,
            step=step.value,
            actor_user_id=actor_user_id,
            account_id=account_id,
            detail=detail,
            at=utcnow(),
        )
    )


def _incident(incident_id: int) -> Incident:
    incident = db.session.get(Incident, incident_id)
    if incident is None:
        raise NotFoundError("incident")
    return incident


def record_incident(
    operator_id: int,
    *,
    title: str,
    what_happened: str,
    discovered_at: datetime,
    data_categories: str,
    consequences: str,
    measures: str,
) -> Incident:
    """Record an incident (times in UTC). Every field is required and ``discovered_at`` may
    not lie in the future (ValidationError naming the field). Audited. Commits."""
    fields = {
        "title": title.strip(),
        "what_happened": what_happened.strip(),
        "data_categories": data_categories.strip(),
        "consequences": consequences.strip(),
        "measures": measures.strip(),
    }
    _operator(operator_id)
    for name, value in fields.items():
        if not value:
            raise ValidationError("This is needed in the notice.", field=name)
    if discovered_at > utcnow():
        raise ValidationError("The discovery cannot lie in the future.", field="discovered_at")
    incident = Incident(
        **fields,
        discovered_at=discovered_at,
        created_by_user_id=operator_id,
        status=IncidentStatus.RECORDED.value,
    )
    db.session.add(incident)
    db.session.flush()
    _log(incident.id, IncidentStep.RECORDED, operator_id)
    db.session.commit()
    return incident


def select_accounts(operator_id: int, incident_id: int, account_ids: list[int]) -> int:
    """Add accounts to those the incident affects, each with the number of contacts it holds
    now (the contacts concerned). Accounts already selected or unknown are skipped; returns
    how many were added. Refused once the report was sent. Audited. Commits."""
    _operator(operator_id)
    incident = _incident(incident_id)
    if incident.status == IncidentStatus.REPORTED:
        raise ValidationError("The report was sent: the incident is closed.")
    wanted = set(account_ids)
    if not wanted:
        raise ValidationError("Select at least one account.", field="account_ids")
    already = set(
        db.session.scalars(
            select(IncidentAccount.account_id).where(IncidentAccount.incident_id == incident_id)
        )
    )
    known = set(db.session.scalars(select(Account.id).where(Account.id.in_(wanted))))
    added = sorted(known - already)
    counts = dict(
        db.session.execute(
            select(Contact.account_id, func.count())
            .where(Contact.account_id.in_(added))
            .group_by(Contact.account_id)
        ).all()
    )
    now = utcnow()
    for account_id in added:
        db.session.add(
            IncidentAccount(
                incident_id=incident_id,
                account_id=account_id,
                contacts_concerned=int(counts.get(account_id, 0)),
                selected_at=now,
            )
        )
    if added:
        _log(
            incident_id,
            IncidentStep.ACCOUNTS_SELECTED,
            operator_id,
            detail="accounts " + ", ".join(f"#{a}" for a in added),
        )
    db.session.commit()
    return len(added)


def send_notices(operator_id: int, incident_id: int) -> int:
    """Send the notice to the owners of every selected account not notified yet (one job
    per account, after the commit); returns how many accounts. Audited. Commits."""
    from breaches import tasks

    _operator(operator_id)
    incident = _incident(incident_id)
    if incident.status == IncidentStatus.REPORTED:
        raise ValidationError("The report was sent: the incident is closed.")
    pending = list(
        db.session.scalars(
            select(IncidentAccount.id).where(
                IncidentAccount.incident_id == incident_id,
                IncidentAccount.notice_sent_at.is_(None),
            )
        )
    )
    if not pending:
        raise ValidationError("Every selected account has had the notice; select accounts first.")
    now = utcnow()
    incident.status = IncidentStatus.NOTIFIED.value
    incident.notified_at = incident.notified_at or now
    _log(incident_id, IncidentStep.NOTICES_SENT, operator_id, detail=f"{len(pending)} accounts")
    for link_id in pending:
        queue.enqueue_after_commit(tasks.send_notice, link_id)
    db.session.commit()
    return len(pending)


def send_report(operator_id: int, incident_id: int, report: str) -> int:
    """Attach the report of the actions taken and send it to the owners of every account
    that had the notice (one job per account); closes the incident. Returns how many
    accounts. Audited. Commits."""
    from breaches import tasks

    _operator(operator_id)
    incident = _incident(incident_id)
    report = report.strip()
    if not report:
        raise ValidationError("Write what was done in response.", field="report")
    if incident.status == IncidentStatus.REPORTED:
        raise ValidationError("The report was already sent.")
    notified = list(
        db.session.scalars(
            select(IncidentAccount.id).where(
                IncidentAccount.incident_id == incident_id,
                IncidentAccount.notice_sent_at.is_not(None),
            )
        )
    )
    if incident.status != IncidentStatus.NOTIFIED or not notified:
        raise ValidationError("Send the notices first; the report follows them.")
    incident.report = report
    incident.status = IncidentStatus.REPORTED.value
    incident.reported_at = utcnow()
    _log(incident_id, IncidentStep.REPORT_SENT, operator_id, detail=f"{len(notified)} accounts")
    for link_id in notified:
        queue.enqueue_after_commit(tasks.send_report, link_id)
    db.session.commit()
    return len(notified)


def _owners_and_link(link_id: int) -> tuple[IncidentAccount, Incident, Account, list[str]] | None:
    from accounts.queries import owner_emails

    link = db.session.get(IncidentAccount, link_id)
    if link is None:
        return None
    incident = db.session.get(Incident, link.incident_id)
    account = db.session.get(Account, link.account_id)
    if incident is None or account is None:
        return None
    return link, incident, account, owner_emails(account.id)


def _notice_text(incident: Incident, account: Account, contacts: int) -> str:
    return (
        f"We are writing to tell you about a security incident on the Envoy platform that "
        f"affects your account {account.name}.\n\n"
        f"What happened:\n{incident.what_happened}\n\n"
        f"Discovered: {incident.discovered_at:%d %b %Y, %H:%M} UTC\n\n"
        f"Data concerned:\n{incident.data_categories}\n\n"
        f"Contacts of {account.name} concerned: {contacts}\n\n"
        f"Likely consequences:\n{incident.consequences}\n\n"
        f"What we did and what we are doing:\n{incident.measures}\n\n"
        f"We will send you a report of the actions taken. This notice stays under "
        f"Settings > Breach notices:\n{external_url('breaches.account_notices')}\n"
    )


def _report_text(incident: Incident, account: Account, link: IncidentAccount) -> str:
    sent = link.notice_sent_at or utcnow()
    return (
        f"We notified you on {sent:%d %b %Y} of a security incident affecting your account "
        f"{account.name} ({incident.title}).\n\n"
        f"Here is our report of the actions taken in response:\n\n{incident.report}\n\n"
        f"The notice and this report stay under Settings > Breach notices:\n"
        f"{external_url('breaches.account_notices')}\n"
    )


def _deliver(link_id: int, step: str) -> bool:
    """Email the owners of one affected account the notice (``step="notice"``) or the
    report, then mark it sent and record it in the incident's log and the account's
    security log. At least once: a job retried after a mail failure sends again; a run
    after the mark sends nothing (returns False). Commits."""
    found = _owners_and_link(link_id)
    if found is None:
        return False
    link, incident, account, owners = found
    column = IncidentAccount.notice_sent_at if step == "notice" else IncidentAccount.report_sent_at
    if getattr(link, column.key) is not None or (step == "report" and not incident.report):
        return False
    if step == "notice":
        subject = f"Security incident notice: {incident.title}"
        body = _notice_text(incident, account, link.contacts_concerned)
        logged = IncidentStep.NOTICE_DELIVERED
    else:
        subject = f"Report on the security incident: {incident.title}"
        body = _report_text(incident, account, link)
        logged = IncidentStep.REPORT_DELIVERED
    for owner in owners:
        send_system_mail(owner, subject, body)
    marked = db.session.execute(
        update(IncidentAccount)
        .where(IncidentAccount.id == link_id, column.is_(None))
        .values({column.key: utcnow()})
        .execution_options(synchronize_session=False)
    )
    if marked.rowcount == 1:  # type: ignore[attr-defined]
        _log(incident.id, logged, None, account.id, f"{len(owners)} owners")
        record_security_event(
            account.id,
            None,
            SecurityEventKind.BREACH_NOTICE,
            {"incident_id": incident.id, "step": step, "owners": len(owners)},
        )
    db.session.commit()
    return True


def deliver_notice(link_id: int) -> bool:
    """Email the notice to one affected account's owners (see :func:`_deliver`)."""
    return _deliver(link_id, "notice")


def deliver_report(link_id: int) -> bool:
    """Email the report of the actions taken to one affected account's owners (see
    :func:`_deliver`)."""
    return _deliver(link_id, "report")
