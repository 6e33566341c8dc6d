"""The partial index of the engine's suppressed addresses (migration 0329) holds exactly the
rows :func:`engine.queries.is_suppressed` selects: its predicate is written out as SQL text
once, and this test keeps the two the same rule."""

from __future__ import annotations

from datetime import date
from itertools import product

from flask import Flask
from sqlalchemy import select, text

from core import db as core_db
from engine.models import SUPPRESSED_SQL, EngineAddress
from engine.queries import is_suppressed


def test_the_index_predicate_is_the_suppression_rule(app: Flask) -> None:
    days = (None, date(2026, 1, 1), date(2026, 6, 1))
    with app.app_context():
        for n, (complained, bounced, delivered_on, bounced_on) in enumerate(
            product((0, 1), (0, 2), days, days)
        ):
            core_db.session.add(
                EngineAddress(
                    address_hash=f"{n:064x}",
                    domain="example.org",
                    complained=complained,
                    bounced=bounced,
                    last_delivered_on=delivered_on,
                    last_bounced_on=bounced_on,
                )
            )
        core_db.session.commit()
        by_rule = set(
            core_db.session.scalars(select(EngineAddress.address_hash).where(is_suppressed()))
        )
        by_index = set(
            core_db.session.scalars(select(EngineAddress.address_hash).where(text(SUPPRESSED_SQL)))
        )
        assert by_rule == by_index
        assert 0 < len(by_rule) < 36
