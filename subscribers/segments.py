"""Segments: saved filters built only from an allow-list of fields and operators.

A rule is a small dict ``{"field": ..., "op": ..., "value": ..., "key": ...}``. :func:`check_rules`
refuses any field or operator that is not in :data:`FIELDS`, and values of the wrong kind; the
checked rules are turned into SQLAlchemy expressions with bound parameters by
:func:`segment_condition`. No text from a user ever becomes SQL.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Float,
    and_,
    case,
    cast,
    exists,
    false,
    not_,
    or_,
    select,
    true,
)

from core.db import utcnow
from core.errors import ValidationError
from core.timezones import get_zone, to_utc
from subscribers.models import Contact, Subscription


@dataclass(frozen=True)
class FieldSpec:
    label: str
    ops: tuple[str, ...]
    value: str  # text | date | list | days | none-or-text | number-or-text


TEXT_OPS = ("equals", "not_equals", "contains", "not_contains", "starts_with", "ends_with")

#: Everything a segment can filter on, and how.
FIELDS: dict[str, FieldSpec] = {
    "email": FieldSpec("Email", TEXT_OPS, "text"),
    "name": FieldSpec("Name", (*TEXT_OPS, "is_empty", "is_not_empty"), "text"),
    "source": FieldSpec("Source", ("equals", "not_equals"), "text"),
    "created_at": FieldSpec("Added", ("before", "after"), "date"),
    "attribute": FieldSpec(
        "Attribute",
        ("equals", "not_equals", "contains", "greater_than", "less_than", "exists", "missing"),
        "text",
    ),
    "list": FieldSpec("List", ("subscribed", "unconfirmed", "unsubscribed", "not_on"), "list"),
    "engagement": FieldSpec(
        "Engagement",
        ("opened_within", "clicked_within", "no_open_within", "no_click_within"),
        "days",
    ),
}

OP_LABELS = {
    "equals": "is",
    "not_equals": "is not",
    "contains": "contains",
    "not_contains": "does not contain",
    "starts_with": "starts with",
    "ends_with": "ends with",
    "is_empty": "is empty",
    "is_not_empty": "is not empty",
    "before": "before",
    "after": "on or after",
    "greater_than": "is greater than",
    "less_than": "is less than",
    "exists": "is set",
    "missing": "is not set",
    "subscribed": "subscribed to",
    "unconfirmed": "awaiting confirmation on",
    "unsubscribed": "unsubscribed from",
    "not_on": "not on",
    "opened_within": "opened an email in the last (days)",
    "clicked_within": "clicked in an email in the last (days)",
    "no_open_within": "opened nothing in the last (days)",
    "no_click_within": "clicked nothing in the last (days)",
}
VALUELESS_OPS = ("is_empty", "is_not_empty", "exists", "missing")
ATTRIBUTE_KEY = re.compile(r"^[A-Za-z0-9_.\- ]{1,64}$")
MAX_RULES = 20


def check_rules(
    rules: Sequence[dict[str, Any]], account_list_ids: set[int]
) -> list[dict[str, Any]]:
    """Validated, normalised rules; ValidationError names the first thing refused."""
    if not rules:
        raise ValidationError("Add at least one condition.", field="rules")
    if len(rules) > MAX_RULES:
        raise ValidationError(f"A segment has at most {MAX_RULES} conditions.", field="rules")
    checked = []
    for number, rule in enumerate(rules, start=1):
        if not isinstance(rule, dict):
            raise ValidationError(f"Condition {number} is malformed.", field="rules")
        field = rule.get("field")
        op = rule.get("op")
        if field not in FIELDS:
            raise ValidationError(f"Condition {number}: unknown field {field!r}.", field="rules")
        spec = FIELDS[field]
        if op not in spec.ops:
            raise ValidationError(
                f"Condition {number}: {op!r} is not an operator of {spec.label}.", field="rules"
            )
        clean: dict[str, Any] = {"field": field, "op": op}
        raw = rule.get("value")
        value = "" if raw is None else str(raw).strip()
        if field == "attribute":
            key = str(rule.get("key") or "").strip()
            if not ATTRIBUTE_KEY.match(key):
                raise ValidationError(
                    f"Condition {number}: name the attribute (letters, digits, _ . - space).",
                    field="rules",
                )
            clean["key"] = key
        if op in VALUELESS_OPS:
            checked.append(clean)
            continue
        if spec.value == "date":
            try:
                clean["value"] = date.fromisoformat(value).isoformat()
            except ValueError as exc:
                raise ValidationError(
                    f"Condition {number}: give a date as YYYY-MM-DD.", field="rules"
                ) from exc
        elif spec.value == "list":
            if not value.isdigit() or int(value) not in account_list_ids:
                raise ValidationError(
                    f"Condition {number}: choose one of your lists.", field="rules"
                )
            clean["value"] = int(value)
        elif spec.value == "days":
            if not value.isdigit() or not 1 <= int(value) <= 3650:
                raise ValidationError(
                    f"Condition {number}: give a number of days from 1 to 3650.", field="rules"
                )
            clean["value"] = int(value)
        else:
            if not value or len(value) > 320:
                raise ValidationError(f"Condition {number}: give a value.", field="rules")
            if op in ("greater_than", "less_than"):
                try:
                    float(value)
                except ValueError as exc:
                    raise ValidationError(
                        f"Condition {number}: compare with a number.", field="rules"
                    ) from exc
            clean["value"] = value
        checked.append(clean)
    return checked


def _text(column: Any, op: str, value: str) -> ColumnElement[bool]:
    lowered = value.lower()
    from sqlalchemy import func

    col = func.lower(column)
    if op == "equals":
        return col == lowered
    if op == "not_equals":
        return col != lowered
    if op == "contains":
        return col.contains(lowered, autoescape=True)
    if op == "not_contains":
        return not_(col.contains(lowered, autoescape=True))
    if op == "starts_with":
        return col.startswith(lowered, autoescape=True)
    if op == "ends_with":
        return col.endswith(lowered, autoescape=True)
    if op == "is_empty":
        return or_(column.is_(None), column == "")
    if op == "is_not_empty":
        return and_(column.is_not(None), column != "")
    raise ValidationError(f"unknown operator {op!r}")


def _engagement(kind: str, days: int) -> ColumnElement[bool]:
    from campaigns.models import Message
    from tracking.models import TrackingEvent

    since = utcnow() - timedelta(days=days)
    return exists(
        select(TrackingEvent.id)
        .join(Message, Message.id == TrackingEvent.message_id)
        .where(
            Message.contact_id == Contact.id,
            TrackingEvent.kind == kind,
            TrackingEvent.is_machine.is_(False),
            TrackingEvent.occurred_at >= since,
        )
    )


def _rule(rule: dict[str, Any], zone: str) -> ColumnElement[bool]:
    field, op = rule["field"], rule["op"]
    value: Any = rule.get("value")
    if field in ("email", "name", "source"):
        return _text(getattr(Contact, field), op, str(value or ""))
    if field == "created_at":
        # The date is the account's: its local midnight (the day's first moment), in UTC.
        local = datetime.combine(date.fromisoformat(str(value)), time(), get_zone(zone))
        day = to_utc(local)
        return Contact.created_at < day if op == "before" else Contact.created_at >= day
    if field == "attribute":
        item = Contact.attributes[rule["key"]]
        if op == "exists":
            return item.as_string().is_not(None)
        if op == "missing":
            return item.as_string().is_(None)
        if op in ("greater_than", "less_than"):
            number = float(str(value))
            # Only values that look like numbers are compared (PostgreSQL would refuse to cast
            # the others, SQLite would compare them as text).
            text_value = item.as_string()
            numeric = case(
                (text_value.regexp_match(r"^-?[0-9]+([.][0-9]+)?$"), cast(text_value, Float)),
                else_=None,
            )
            return numeric > number if op == "greater_than" else numeric < number
        return _text(item.as_string(), op, str(value))
    if field == "list":
        on_list = select(Subscription.id).where(
            Subscription.contact_id == Contact.id, Subscription.list_id == int(value)
        )
        if op == "not_on":
            return not_(exists(on_list.where(Subscription.status == "subscribed")))
        return exists(on_list.where(Subscription.status == op))
    if field == "engagement":
        if op == "opened_within":
            return _engagement("open", int(value))
        if op == "clicked_within":
            return _engagement("click", int(value))
        if op == "no_open_within":
            return not_(_engagement("open", int(value)))
        return not_(_engagement("click", int(value)))
    raise ValidationError(f"unknown field {field!r}")


def segment_condition(
    match: str, rules: Sequence[dict[str, Any]], zone: str = "UTC"
) -> ColumnElement[bool]:
    """The WHERE condition of checked rules over ``Contact`` (all must match, or any).
    Dates in rules are days of ``zone``, the account's time zone."""
    parts = [_rule(rule, zone) for rule in rules]
    if not parts:
        return false()
    if match == "any":
        return or_(*parts)
    return and_(true(), *parts)


def describe(rule: dict[str, Any], list_names: dict[int, str]) -> str:
    """A rule in words, for the segment pages."""
    spec = FIELDS.get(rule.get("field", ""))
    if spec is None:
        return "unknown condition"
    subject = spec.label
    if rule["field"] == "attribute":
        subject = f"Attribute “{rule.get('key', '')}”"
    value = rule.get("value")
    if rule["field"] == "list":
        return f"{OP_LABELS[rule['op']].capitalize()} “{list_names.get(int(value or 0), '?')}”"
    if rule["field"] == "engagement":
        return OP_LABELS[rule["op"]].replace("(days)", f"{value} days").capitalize()
    text = f"{subject} {OP_LABELS[rule['op']]}"
    return f"{text} “{value}”" if value is not None else text
