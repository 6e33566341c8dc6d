"""Transactional messages: send one message to one address (a receipt, a welcome mail) through
the campaigns' pipeline, and read its status back (campaigns/transactional.py)."""

from __future__ import annotations

from typing import Any, Literal

from flask import request
from pydantic import BaseModel, Field

from api.schemas import Strict, Timestamp
from api.spec import operation
from api.v1 import v1
from campaigns import queries
from campaigns.transactional import send_transactional
from core.auth import api_caller
from core.permissions import Permission

TAGS = ("messages",)


class MessageIn(Strict):
    to: str = Field(min_length=1, max_length=320, description="the recipient's address")
    to_name: str = Field("", max_length=200, description="the recipient's name (To header)")
    from_email: str = Field(
        min_length=1, max_length=320, description="one of the account's verified senders"
    )
    from_name: str = Field("", max_length=200)
    reply_to: str = Field("", max_length=320)
    template_id: int | None = Field(
        None, description="a stored template (its subject and bodies); or give subject and html"
    )
    subject: str | None = Field(None, max_length=500, description="personalisable (Jinja)")
    html: str | None = Field(None, max_length=1_000_000, description="personalisable (Jinja)")
    text: str | None = Field(
        None, max_length=1_000_000, description="the text part; generated from the HTML when empty"
    )
    data: dict[str, Any] = Field(
        default_factory=dict,
        description="what the templates see as `data` (64 KB of JSON at most); they also see "
        "`contact` (the account's contact with this address, or the address and name given)",
    )
    track_opens: bool = Field(
        False, description="transactional messages are not tracked: true is refused (422)"
    )
    track_clicks: bool = Field(
        False, description="transactional messages are not tracked: true is refused (422)"
    )


class MessageOut(BaseModel):
    id: int
    status: Literal["queued", "sent", "failed", "bounced"]
    reason: str | None = Field(
        description="why it failed (or, while queued, the last deferral); never the address"
    )
    bounce_kind: Literal["hard", "soft", "complaint"] | None
    attempts: int
    created_at: Timestamp
    sent_at: Timestamp | None
    failed_at: Timestamp | None
    bounced_at: Timestamp | None

    @classmethod
    def of(cls, state: queries.TransactionalState) -> MessageOut:
        return cls(
            id=state.id,
            status=state.status,  # type: ignore[arg-type]
            reason=state.reason,
            bounce_kind=state.bounce_kind,  # type: ignore[arg-type]
            attempts=state.attempts,
            created_at=state.created_at,
            sent_at=state.sent_at,
            failed_at=state.failed_at,
            bounced_at=state.bounced_at,
        )


@v1.post("/messages")
@operation(Permission.SEND_CAMPAIGNS, MessageOut, status=202, creates=True, tags=TAGS)
def send_message(json: MessageIn) -> tuple[MessageOut, int]:
    """Send one transactional message to one address.

    Queued at once (202) and sent by a worker. Refused (422, the field `to`) for an address
    whose processing is restricted, that objected, was erased, bounced hard, complained or is
    blocked; an unsubscribe from marketing or a consent withdrawal does not stop it. With an
    `Idempotency-Key`, a retry returns the same message and sends nothing more (kept with the
    message, not only for the API's idempotency window)."""
    account_id = api_caller().account_id
    message_id = send_transactional(
        account_id,
        json.to,
        from_email=json.from_email,
        from_name=json.from_name,
        reply_to=json.reply_to,
        to_name=json.to_name,
        template_id=json.template_id,
        subject=json.subject,
        html=json.html,
        text=json.text,
        data=json.data,
        idempotency_key=request.headers.get("Idempotency-Key"),
        track_opens=json.track_opens,
        track_clicks=json.track_clicks,
    )
    return MessageOut.of(queries.transactional_status(account_id, message_id)), 202


@v1.get("/messages/<int:message_id>")
@operation(Permission.SEND_CAMPAIGNS, MessageOut, etag=True, tags=TAGS)
def get_message(message_id: int) -> MessageOut:
    """A transactional message's status: queued, sent, failed (with the reason) or bounced."""
    return MessageOut.of(queries.transactional_status(api_caller().account_id, message_id))
