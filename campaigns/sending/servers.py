"""Where a campaign's mail goes: the account's enabled SMTP servers (or the platform transport),
a pooled connection to one, and the send chains started for a campaign (one per connection)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from flask import current_app
from sqlalchemy import select

from campaigns.models import Campaign, SmtpServer
from campaigns.settings import setting
from core import db, queue
from core.mail import Connection, open_connection, smtp_pool


@dataclass(frozen=True)
class Server:
    """Where a chain sends: an account's SMTP server, or the platform transport (id 0)."""

    id: int
    url: str
    max_per_second: float
    max_connections: int


def account_servers(account_id: int) -> list[Server]:
    """The account's enabled SMTP servers in id order, or (none enabled) the platform
    transport as server 0 with the platform's rate and connection settings."""
    rows = db.session.scalars(
        select(SmtpServer)
        .where(SmtpServer.account_id == account_id, SmtpServer.enabled.is_(True))
        .order_by(SmtpServer.id)
    ).all()
    if rows:
        return [Server(s.id, s.url, s.max_per_second, s.max_connections) for s in rows]
    return [
        Server(
            0,
            str(current_app.config.get("SMTP_URL", "")),
            float(setting("SMTP_MAX_PER_SECOND")),
            int(setting("SEND_CONNECTIONS")),
        )
    ]


@contextmanager
def server_connection(server: Server) -> Iterator[Connection]:
    """A connection to ``server``, from its pool (a transport without a URL opens its own)."""
    if not server.url:
        with open_connection("") as conn:
            yield conn
        return
    pool = smtp_pool(server.url, server.max_connections)
    with pool.connection() as conn:
        yield conn


def enqueue_chains(campaign: Campaign) -> None:
    """Enqueue (after the commit) one send chain per connection of the account's servers."""
    from campaigns import tasks

    chains = sum(server.max_connections for server in account_servers(campaign.account_id))
    for chain in range(max(1, chains)):
        queue.enqueue_after_commit(tasks.send_batch, campaign.id, chain)
