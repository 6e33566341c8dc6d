"""Sending settings: defaults, overridden by environment variables, overridden by app config.

| name | default | meaning |
|---|---|---|
| ``REQUIRE_VERIFIED_SENDER`` | true | campaigns may only use confirmed sender addresses |
| ``SEND_CONNECTIONS`` | 2 | parallel batches (SMTP connections) per campaign, platform SMTP |
| ``SMTP_MAX_PER_SECOND`` | 0 | messages/s over the platform transport (0: no limit) |
| ``SEND_CLAIM_TIMEOUT`` | 600 | seconds after which a claim is a dead worker's |
| ``SEND_STALL_SECONDS`` | 120 | no progress: the reconciler re-enqueues; no outcome: page flag |
| ``SEND_RETRY_BASE_SECONDS`` | 60 | first retry delay after a 4xx; doubles per attempt |
| ``SEND_MAX_ATTEMPTS`` | 5 | deferrals (4xx) before a message fails as a soft bounce |
| ``SEND_MAX_TRANSPORT_ERRORS`` | 5 | transport errors in a row before the campaign pauses |
| ``SEND_JOB_SECONDS`` | 30 | a send job claims batch after batch for this long |
| ``SEND_MARK_DURABILITY`` | server | ``disk``: wait for PostgreSQL's flush on each sent mark |
| ``SOFT_BOUNCE_LIMIT`` | 3 | soft bounces of a contact before the address is suppressed |
| ``RETURN_PATH`` | empty | e.g. ``bounces@mail.example.com``: VERP envelope senders |
| ``BOUNCE_WEBHOOK_SECRET`` | empty | HMAC key of the generic bounce webhook (off when empty) |
| ``BOUNCE_MAILDIR`` | empty | Maildir read for DSN and ARF reports |
| ``BOUNCE_IMAP_URL`` | empty | ``imaps://user:pass@host/INBOX`` read for DSN and ARF reports |
| ``SES_TOPIC_ARNS`` | empty | comma-separated SNS topic ARNs accepted by the SES webhook |
| ``TEMPLATE_MAX_SECONDS`` | 2 | wall-clock seconds one template render may take |
| ``TEMPLATE_MAX_STEPS`` | 100000 | loop iterations plus calls in one render |
| ``TEMPLATE_MAX_OUTPUT`` | 2000000 | characters one render writes |
| ``TEMPLATE_MAX_VALUE`` | 100000 | characters of one string, list or dict a template makes |
| ``TEMPLATE_MAX_DIGITS`` | 4300 | decimal digits of one number a template makes |
"""

from __future__ import annotations

import os
from typing import Any

from flask import current_app, has_app_context

DEFAULTS: dict[str, Any] = {
    "REQUIRE_VERIFIED_SENDER": True,
    "SEND_CONNECTIONS": 2,
    "SMTP_MAX_PER_SECOND": 0.0,
    "SEND_CLAIM_TIMEOUT": 600.0,
    "SEND_STALL_SECONDS": 120.0,
    "SEND_RETRY_BASE_SECONDS": 60.0,
    "SEND_MAX_ATTEMPTS": 5,
    "SEND_MAX_TRANSPORT_ERRORS": 5,
    "SOFT_BOUNCE_LIMIT": 3,
    "SEND_MARK_DURABILITY": "server",
    "SEND_JOB_SECONDS": 30.0,
    "RETURN_PATH": "",
    "BOUNCE_WEBHOOK_SECRET": "",
    "BOUNCE_MAILDIR": "",
    "BOUNCE_IMAP_URL": "",
    "SES_TOPIC_ARNS": "",
    # The template sandbox's limits (campaigns/sandbox.py, Limits).
    "TEMPLATE_MAX_SECONDS": 2.0,
    "TEMPLATE_MAX_STEPS": 100_000,
    "TEMPLATE_MAX_OUTPUT": 2_000_000,
    "TEMPLATE_MAX_VALUE": 100_000,
    "TEMPLATE_MAX_DIGITS": 4_300,
}


def setting(name: str) -> Any:
    """The value of a sending setting: app config, else environment, else the default (outside
    an app context: environment, else the default)."""
    if has_app_context() and name in current_app.config:
        return current_app.config[name]
    default = DEFAULTS[name]
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    if isinstance(default, bool):
        return raw.strip().lower() in {"1", "true", "yes", "on"}
    return type(default)(raw)
