"""One rule for "may this contact be processed": every caller answers as privacy.policy does.

A matrix of contact states (each combination of restriction, objection and consent withdrawal)
goes through each caller: the audience query, the engine gate, the tracking ingest's state,
list and segment exports and the segment preview (through HTTP). A source scan fails when a
module outside privacy/policy.py decides on the state columns itself (a second copy).
"""

from __future__ import annotations

import csv
import io
import itertools
import json
import re
from datetime import datetime
from pathlib import Path
from typing import Any

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from core.registry import DOMAIN_PACKAGES
from privacy import engine_gate, policy
from subscribers import services as subscribers
from subscribers.audience import audience_contact_ids
from subscribers.models import Contact
from tests.factories import login, make_campaign, make_tenant

AT = datetime(2026, 11, 20, 9, 0)
COLUMNS = policy.CONTACT_STATE_COLUMNS
#: Every combination of the states: (), ("restricted_at",), ..., all three.
STATES = [
    combo for size in range(len(COLUMNS) + 1) for combo in itertools.combinations(COLUMNS, size)
]


def _address(state: tuple[str, ...]) -> str:
    return ("-".join(name.removesuffix("_at") for name in state) or "plain") + "@mail.example"


def _matrix(db: Any) -> tuple[Any, int, int, set[str]]:
    """A tenant with one list holding a contact per state, a segment matching all of them,
    and the addresses the rule allows."""
    tenant = make_tenant()
    mailing_list = subscribers.create_list(tenant.account_id, "News")
    for state in STATES:
        subscribers.add_contact_to_list(tenant.account_id, mailing_list.id, _address(state))
    for contact in db.scalars(select(Contact).where(Contact.account_id == tenant.account_id)):
        state = next(s for s in STATES if _address(s) == contact.email)
        for name in state:
            setattr(contact, name, AT)
    db.commit()
    segment = subscribers.save_segment(
        tenant.account_id,
        None,
        "Everyone",
        "all",
        [{"field": "email", "op": "contains", "value": "@mail.example"}],
    )
    return tenant, mailing_list.id, segment.id, {_address(())}


def test_the_rule_in_python_and_in_sql_agree_on_every_state(app: Flask, db: Any) -> None:
    tenant, _list_id, _segment_id, allowed = _matrix(db)
    contacts = list(db.scalars(select(Contact).where(Contact.account_id == tenant.account_id)))
    assert len(contacts) == len(STATES) == 8
    by_python = {c.email for c in contacts if policy.may_process(c)}
    by_sql = set(
        db.scalars(
            select(Contact.email).where(
                Contact.account_id == tenant.account_id, policy.may_process_condition(Contact)
            )
        )
    )
    assert by_python == by_sql == allowed
    assert not policy.may_process(None)  # erased
    for contact in contacts:
        state = policy.contact_state(contact, "subscribed")
        # The tracking ingest's state: excluded exactly when the rule says no.
        assert state.excluded_from_processing is not policy.may_process(contact)
    assert policy.contact_state(None, None).excluded_from_processing


def test_the_audience_and_the_engine_gate_follow_the_rule(app: Flask, db: Any) -> None:
    tenant, list_id, segment_id, allowed = _matrix(db)
    emails = {row.id: row.email for row in db.execute(select(Contact.id, Contact.email))}
    by_list = {emails[i] for i in db.scalars(audience_contact_ids(tenant.account_id, [list_id]))}
    by_segment = {
        emails[i] for i in db.scalars(audience_contact_ids(tenant.account_id, [], [segment_id]))
    }
    assert by_list == by_segment == allowed
    entered = {
        email
        for email in emails.values()
        if engine_gate.record_delivery_outcome(tenant.account_id, None, email, "delivered", AT)
    }
    assert entered == allowed


def _csv_emails(client: FlaskClient, path: str) -> set[str]:
    response = client.get(path)
    assert response.status_code == 200
    return {row["email"] for row in csv.DictReader(io.StringIO(response.get_data(as_text=True)))}


def _json_emails(client: FlaskClient, path: str) -> set[str]:
    response = client.get(path)
    assert response.status_code == 200
    return {row["email"] for row in json.loads(response.get_data(as_text=True))}


def test_exports_leave_out_restricted_objecting_and_withdrawn_contacts(
    app: Flask, db: Any, client: FlaskClient
) -> None:
    tenant, list_id, segment_id, allowed = _matrix(db)
    login(client, tenant.email)
    assert _csv_emails(client, f"/lists/{list_id}/export.csv") == allowed
    assert _json_emails(client, f"/lists/{list_id}/export.json") == allowed
    assert _csv_emails(client, f"/segments/{segment_id}/export.csv") == allowed
    assert _json_emails(client, f"/segments/{segment_id}/export.json") == allowed


def test_the_segment_preview_counts_the_kept_out_apart_and_never_lists_them(
    app: Flask, db: Any, client: FlaskClient
) -> None:
    tenant, _list_id, segment_id, allowed = _matrix(db)
    login(client, tenant.email)
    page = client.get(f"/segments/{segment_id}").get_data(as_text=True)
    assert re.search(r'id="segment-count">\s*1\s*<', page)
    assert re.search(r'id="segment-kept-out">\s*7\s*<', page)
    assert "kept out" in page
    for state in STATES:
        assert (_address(state) in page) is (_address(state) in allowed)


def test_a_campaign_is_previewed_only_as_a_contact_the_rule_allows(
    app: Flask, db: Any, client: FlaskClient
) -> None:
    tenant, list_id, _segment_id, allowed = _matrix(db)
    campaign_id = make_campaign(tenant, list_id, html="<p>Hi {{ contact.email }}</p>")
    ids = {row.email: row.id for row in db.execute(select(Contact.id, Contact.email))}
    login(client, tenant.email)
    page = client.get(f"/campaigns/{campaign_id}").get_data(as_text=True)
    for state in STATES:  # the "preview as" choices
        assert (_address(state) in page) is (_address(state) in allowed)
    for email, contact_id in ids.items():
        shown = client.get(f"/campaigns/{campaign_id}/preview?contact_id={contact_id}")
        assert (shown.status_code == 200) is (email in allowed)
        assert (email in shown.get_data(as_text=True)) is (email in allowed)


#: Outside the rule, the state columns are only defined (models), reported (the access report),
#: shown (templates), and set or lifted by the data-rights services: those test a restriction
#: to manage it (who set it, may it be lifted), never to decide on processing. Any other module
#: that tests them holds a copy of the rule.
MANAGES_THE_STATES = {"privacy/policy.py", "privacy/services.py"}
_TESTS_A_STATE = re.compile(
    r"(restricted_at|objected_at|consent_withdrawn_at)\)?\s*"
    r"(\.is_\(|\.isnot\(|\.is_not\(|is None|is not None|==|!=)"
)


def test_no_module_but_the_policy_decides_on_the_state_columns() -> None:
    root = Path(__file__).resolve().parents[2]
    copies = []
    paths = [p for package in ("core", *DOMAIN_PACKAGES) for p in (root / package).rglob("*.py")]
    assert len(paths) > 50
    for path in paths:
        relative = path.relative_to(root).as_posix()
        if relative in MANAGES_THE_STATES:
            continue
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if _TESTS_A_STATE.search(line):
                copies.append(f"{relative}:{number}: {line.strip()}")
    assert copies == [], "decide through privacy.policy.may_process(_condition):\n" + "\n".join(
        copies
    )
