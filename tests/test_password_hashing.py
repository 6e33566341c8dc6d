"""The production password profiles: the rest of the suite hashes with a light one
(tests/conftest.py QUICK_HASHER); here production's do the work, through sign-up, login and
two-factor enrolment, and each profile's parameters are written out in the assertions, so a
change to either shows up as a failing test, not silently."""

from __future__ import annotations

from typing import Any

import pyotp
import pytest
from argon2 import PasswordHasher, Type, extract_parameters
from flask import Flask
from sqlalchemy import select

from accounts import services, twofactor
from accounts.models import RecoveryCode, User
from core import db
from tests.conftest import QUICK_HASHER
from tests.factories import PASSWORD, login, make_tenant


@pytest.fixture
def production_hashes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(services, "_hasher", services.PASSWORD_HASHER)
    monkeypatch.setattr(twofactor, "_code_hasher", twofactor.RECOVERY_CODE_HASHER)


def _stored_hash(email: str) -> str:
    return str(db.session.scalar(select(User.password_hash).where(User.email == email)))


def test_passwords_are_argon2id_over_64_mib_in_three_passes(
    app: Flask, production_hashes: None
) -> None:
    with app.app_context():
        make_tenant("olga@kafe.example")
        stored = extract_parameters(_stored_hash("olga@kafe.example"))
    assert stored.type is Type.ID
    assert (stored.time_cost, stored.memory_cost, stored.parallelism) == (3, 65_536, 4)
    assert stored.salt_len >= 16 and stored.hash_len >= 32


def test_a_weaker_hash_is_upgraded_at_the_next_login(
    app: Flask, client: Any, production_hashes: None
) -> None:
    with app.app_context():
        make_tenant("zoe@cafe.example")
        user = db.session.scalar(select(User).where(User.email == "zoe@cafe.example"))
        assert user is not None
        user.password_hash = QUICK_HASHER.hash(PASSWORD)  # as an older, lighter profile left it
        db.session.commit()
    login(client, "zoe@cafe.example")
    with app.app_context():
        upgraded = extract_parameters(_stored_hash("zoe@cafe.example"))
    assert (upgraded.time_cost, upgraded.memory_cost) == (3, 65_536)


def test_an_unknown_address_is_checked_against_a_hash_of_the_same_cost(
    app: Flask, production_hashes: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    checked: list[str] = []
    real = services.PASSWORD_HASHER

    class Recording(PasswordHasher):
        def verify(self, hash: str | bytes, password: str | bytes) -> bool:
            checked.append(str(hash))
            return real.verify(hash, password)

    recording = Recording(real.time_cost, real.memory_cost, real.parallelism)
    monkeypatch.setattr(services, "_hasher", recording)
    with app.app_context():
        assert services.authenticate("nobody@nowhere.example", PASSWORD) is None
    assert len(checked) == 1
    dummy = extract_parameters(checked[0])
    assert (dummy.time_cost, dummy.memory_cost, dummy.parallelism) == (3, 65_536, 4)


def test_recovery_codes_use_the_owasp_minimum_profile(app: Flask, production_hashes: None) -> None:
    with app.app_context():
        tenant = make_tenant("jose@ejemplo.es")
        enrolment = twofactor.begin_enrolment(tenant.user_id)
        codes = twofactor.confirm_enrolment(
            tenant.user_id, pyotp.TOTP(enrolment.secret).now(), None
        )
        hashes = db.session.scalars(
            select(RecoveryCode.code_hash).where(RecoveryCode.user_id == tenant.user_id)
        ).all()
    assert len(codes) == len(hashes) == 10
    for code_hash in hashes:
        stored = extract_parameters(code_hash)
        assert stored.type is Type.ID
        assert (stored.time_cost, stored.memory_cost, stored.parallelism) == (2, 19_456, 1)
