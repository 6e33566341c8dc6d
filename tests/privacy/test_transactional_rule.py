"""The rule for transactional mail (privacy.policy.transactional_refusal), on every path: what
is about marketing only (an unsubscribe, a consent withdrawal) does not stop a receipt; a
restriction, an objection, an erasure, a bounce, a complaint or a block does. And the
suppression store keeps the stronger reason when an address that unsubscribed bounces later."""

from __future__ import annotations

import itertools
from datetime import datetime
from types import SimpleNamespace
from typing import Any

import pytest
from flask import Flask

from privacy import policy
from subscribers.suppression import REASONS, suppress, suppression_reasons
from tests.factories import make_tenant

NOW = datetime(2026, 12, 2, 12, 0)
FLAGS = ("restricted_at", "objected_at", "consent_withdrawn_at")


def _contact(**set_flags: bool) -> Any:
    return SimpleNamespace(**{flag: NOW if set_flags.get(flag) else None for flag in FLAGS})


@pytest.mark.parametrize("flags", list(itertools.product([False, True], repeat=len(FLAGS))))
def test_contact_flags(flags: tuple[bool, ...]) -> None:
    state = dict(zip(FLAGS, flags, strict=True))
    refusal = policy.transactional_refusal(_contact(**state), set())
    if state["restricted_at"]:
        assert refusal == "the address's processing is restricted"
    elif state["objected_at"]:
        assert refusal == "the person objected to being mailed"
    else:  # a consent withdrawal alone is about marketing
        assert refusal is None


@pytest.mark.parametrize("reason", [*REASONS, "blocked_domain", "engine"])
def test_each_suppression_reason(reason: str) -> None:
    for contact in (None, _contact()):  # a contact of the account or only an address
        refusal = policy.transactional_refusal(contact, {reason})
        if reason == "unsubscribed":
            assert refusal is None
        else:
            assert refusal, reason
            assert "@" not in refusal


def test_an_unsubscribe_does_not_hide_a_stronger_reason() -> None:
    assert policy.transactional_refusal(None, {"unsubscribed", "erased"}) == (
        "the person's data was erased"
    )
    assert policy.transactional_refusal(None, set()) is None


def test_a_later_reason_replaces_an_unsubscribe_and_an_opt_in_does_not_lift_it(
    app: Flask,
) -> None:
    from core import db
    from subscribers.services import LIFTED_BY_OPT_IN
    from subscribers.suppression import unsuppress

    with app.app_context():
        tenant = make_tenant()
        assert suppress(tenant.account_id, "Ana@example.org", "unsubscribed")
        assert suppression_reasons(tenant.account_id, "ana@example.org") == {"unsubscribed"}
        assert not suppress(tenant.account_id, "ana@example.org", "hard_bounce")  # already there
        assert not suppress(tenant.account_id, "ana@example.org", "unsubscribed")  # not weakened
        db.session.commit()
        assert suppression_reasons(tenant.account_id, "ana@example.org") == {"hard_bounce"}
        unsuppress(tenant.account_id, "ana@example.org", LIFTED_BY_OPT_IN)
        db.session.commit()
        assert suppression_reasons(tenant.account_id, "ana@example.org") == {"hard_bounce"}
        # Platform-wide reasons count for every account.
        suppress(None, "bo@example.org", "objected")
        db.session.commit()
        assert suppression_reasons(tenant.account_id, "bo@example.org") == {"objected"}
