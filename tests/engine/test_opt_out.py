"""Leaving the engine: what the account contributed is gone in one job run, before and after a
recomputation; from then on nothing enters and its sends get nothing; joining again starts from
nothing."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import time_machine
from flask import Flask

from accounts import services as accounts
from core import db
from engine import tasks
from privacy import engine_gate
from tests.conftest import drain
from tests.engine.scan import domains_of, rows_derived_from, snapshot
from tests.factories import Tenant, make_list_with_contacts, make_tenant

NOW = datetime(2026, 11, 20, 15, 0)
ONLY_B = ["ann@b-only.example", "bob@b-only.example", "dead@b-only.example"]
SHARED = "shared@both.example"
ONLY_A = ["carl@a-only.example", "dead@a-only.example"]


def _two_accounts() -> tuple[Tenant, Tenant]:
    a = make_tenant("owner@a.example", "A")
    b = make_tenant("owner@b.example", "B")
    make_list_with_contacts(a, [*ONLY_A, SHARED])
    make_list_with_contacts(b, [*ONLY_B, SHARED])
    for tenant in (a, b):
        accounts.update_privacy_settings(tenant.account_id, True, "truncate", 180)
    return a, b


def _contribute(tenant: Tenant, emails: list[str], dead: str | None = None) -> None:
    """Deliveries, one hard bounce and human engagement at 19h, through the gate."""
    for email in emails:
        outcome = "bounced" if email == dead else "delivered"
        assert engine_gate.record_delivery_outcome(tenant.account_id, None, email, outcome, NOW)
    for email in emails:
        if email != dead:
            engine_gate.record_delivery_outcome(
                tenant.account_id, None, email, "deferred", NOW.replace(hour=3)
            )
    db.session.commit()


def test_opt_out_removes_everything_the_account_contributed_in_one_job_run(
    app: Flask, db: Any
) -> None:
    with time_machine.travel(NOW, tick=False):
        a, b = _two_accounts()
        _contribute(a, [*ONLY_A, SHARED], dead="dead@a-only.example")
        a_alone = snapshot()  # what the engine holds when only A contributed
        _contribute(b, [*ONLY_B, SHARED], dead="dead@b-only.example")
        assert rows_derived_from(b.account_id, ONLY_B, domains_of(ONLY_B))  # B is in there
        assert engine_gate.contribution_count(b.account_id) > 0

        accounts.set_engine_participation(b.account_id, False)
        drain(app)  # one job run

        assert rows_derived_from(b.account_id, ONLY_B, domains_of(ONLY_B)) == []
        assert engine_gate.contribution_count(b.account_id) == 0
        # Its effect is recomputed away: the shared address and domain-days are as if B
        # had never contributed.
        assert snapshot() == a_alone

        tasks.run_maintenance()  # a full recomputation from the ledger
        assert rows_derived_from(b.account_id, ONLY_B, domains_of(ONLY_B)) == []
        assert snapshot() == a_alone


def test_after_opt_out_nothing_enters_and_its_sends_get_no_insight(app: Flask, db: Any) -> None:
    with time_machine.travel(NOW, tick=False):
        a, b = _two_accounts()
        _contribute(a, [*ONLY_A, SHARED], dead="dead@a-only.example")
        accounts.set_engine_participation(b.account_id, False)
        drain(app)

        # Nothing of B's contacts enters from now on.
        assert not engine_gate.record_delivery_outcome(
            b.account_id, None, "dead@b-only.example", "bounced", NOW
        )
        db.commit()
        assert rows_derived_from(b.account_id, ONLY_B, domains_of(ONLY_B)) == []

        # A still gets the engine's answers; B gets none: no suppression, no send time, no pace.
        assert engine_gate.engine_suppressed(a.account_id, ["dead@a-only.example"]) == {
            "dead@a-only.example"
        }
        assert engine_gate.engine_suppressed(b.account_id, ["dead@a-only.example"]) == set()
        for hour in (19, 19, 20):
            _engage(a, SHARED, hour)
        assert engine_gate.best_send_hour(a.account_id, SHARED, (8, 22)) == 19
        assert engine_gate.best_send_hour(b.account_id, SHARED, (8, 22)) is None
        assert engine_gate.best_send_hours(b.account_id, [SHARED], (8, 22)) == {}
        for _ in range(30):
            engine_gate.record_delivery_outcome(a.account_id, None, SHARED, "deferred", NOW)
        db.commit()
        assert engine_gate.domain_pace(a.account_id, "both.example") is not None
        assert engine_gate.domain_pace(b.account_id, "both.example") is None


def _engage(tenant: Tenant, email: str, hour: int) -> None:
    """A human open at ``hour`` of a message sent to ``email`` by the tenant."""
    from tests.engine.sending import message_for

    message_id = message_for(tenant, email)
    assert engine_gate.record_engagement(
        tenant.account_id, message_id, "open", NOW.replace(hour=hour), is_machine=False
    )
    db.session.commit()


def test_opting_back_in_starts_from_nothing(app: Flask, db: Any) -> None:
    with time_machine.travel(NOW, tick=False):
        _a, b = _two_accounts()
        _contribute(b, [*ONLY_B, SHARED], dead="dead@b-only.example")
        assert engine_gate.engine_suppressed(b.account_id, ["dead@b-only.example"])

        # Leave and come back before the removal job ran: the old contributions go at once.
        accounts.set_engine_participation(b.account_id, False)
        accounts.set_engine_participation(b.account_id, True)
        assert engine_gate.contribution_count(b.account_id) == 0
        assert rows_derived_from(b.account_id, ONLY_B, domains_of(ONLY_B)) == []
        assert engine_gate.engine_suppressed(b.account_id, ["dead@b-only.example"]) == set()

        # What it contributes after joining again is kept, even when the late job runs.
        assert engine_gate.record_delivery_outcome(
            b.account_id, None, "ann@b-only.example", "complained", NOW
        )
        db.commit()
        drain(app)
        assert engine_gate.contribution_count(b.account_id) == 1
        assert engine_gate.engine_suppressed(b.account_id, ["ann@b-only.example"]) == {
            "ann@b-only.example"
        }


def test_saving_the_same_choice_again_removes_nothing(app: Flask, db: Any) -> None:
    with time_machine.travel(NOW, tick=False):
        _a, b = _two_accounts()
        _contribute(b, ONLY_B)
        before = engine_gate.contribution_count(b.account_id)
        accounts.set_engine_participation(b.account_id, True)
        drain(app)
        assert engine_gate.contribution_count(b.account_id) == before > 0


def test_deleting_an_account_leaves_nothing_of_it(app: Flask, db: Any) -> None:
    from accounts.models import Account

    with time_machine.travel(NOW, tick=False):
        _a, b = _two_accounts()
        _contribute(b, ONLY_B, dead="dead@b-only.example")
        engine_gate.forget_account(b.account_id)
        db.delete(db.get(Account, b.account_id))
        db.commit()
        assert rows_derived_from(b.account_id, ONLY_B, domains_of(ONLY_B)) == []


def test_maintenance_drops_what_accounts_that_left_or_old_days_left_behind(
    app: Flask, db: Any
) -> None:
    from accounts.models import Account

    with time_machine.travel(NOW, tick=False) as traveller:
        a, b = _two_accounts()
        _contribute(a, ONLY_A, dead="dead@a-only.example")
        _contribute(b, ONLY_B, dead="dead@b-only.example")
        # B's flag flipped without the removal job (say, the queue lost it).
        db.get(Account, b.account_id).engine_participation = False
        db.commit()
        tasks.run_maintenance()
        assert rows_derived_from(b.account_id, ONLY_B, domains_of(ONLY_B)) == []
        assert engine_gate.engine_suppressed(a.account_id, ["dead@a-only.example"])

        # A year and a day later A's contributions are past retention and gone too.
        traveller.move_to(NOW.replace(year=NOW.year + 1) + timedelta(days=2))
        tasks.run_maintenance()
        assert snapshot() == {name: [] for name in snapshot()}
