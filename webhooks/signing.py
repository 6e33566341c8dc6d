"""Standard Webhooks signatures (https://www.standardwebhooks.com/, "Signature scheme").

The content signed is ``<webhook-id>.<webhook-timestamp>.<body>``, HMAC-SHA256 with the
endpoint's secret (``whsec_`` + base64 of 24 to 64 random bytes), sent as
``webhook-signature: v1,<base64 signature>``. During a secret rotation every active secret
signs, the signatures separated by spaces, so a receiver holding either secret verifies.
Signing is the specification's reference library (``standardwebhooks``); the tests check it
against an HMAC they compute themselves.
"""

from __future__ import annotations

import base64
import secrets
from collections.abc import Sequence
from datetime import UTC, datetime

from standardwebhooks.webhooks import Webhook

SECRET_PREFIX = "whsec_"  # noqa: S105 - a prefix, not a secret
SECRET_BYTES = 32  # within the spec's 24..64


def new_secret() -> str:
    """A new signing secret, ``whsec_<base64 of 32 random bytes>``."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode()


def signature_header(secrets_in_use: Sequence[str], msg_id: str, timestamp: int, body: str) -> str:
    """The ``webhook-signature`` value: ``v1,<sig>`` per secret, space-separated."""
    when = datetime.fromtimestamp(timestamp, tz=UTC)
    return " ".join(
        Webhook(secret).sign(msg_id=msg_id, timestamp=when, data=body) for secret in secrets_in_use
    )


def headers(
    secrets_in_use: Sequence[str], msg_id: str, timestamp: int, body: str
) -> dict[str, str]:
    """The three Standard Webhooks headers of one attempt (the timestamp is the attempt's)."""
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": signature_header(secrets_in_use, msg_id, timestamp, body),
    }
