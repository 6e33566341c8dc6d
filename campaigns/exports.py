"""The failed recipients of a campaign as CSV, streamed, formulas neutralised like every export
(:func:`subscribers.exports.neutralise`)."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator

from campaigns import queries, services
from subscribers.exports import neutralise

FAILED_COLUMNS = ("email", "name", "reason")


def failed_csv(account_id: int, campaign_id: int) -> Iterator[str]:
    """CSV text (email, name, reason) of the campaign's failed messages, in chunks. The
    account's ownership is checked before the first chunk (NotFoundError otherwise)."""
    services.get_campaign(account_id, campaign_id)
    rows = queries.iter_failed_recipients(campaign_id)

    def generate() -> Iterator[str]:
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        writer.writerow(FAILED_COLUMNS)
        for count, row in enumerate(rows):
            writer.writerow([neutralise(row.email), neutralise(row.name), neutralise(row.reason)])
            if count % 500 == 499:
                yield buffer.getvalue()
                buffer.seek(0)
                buffer.truncate()
        yield buffer.getvalue()

    return generate()
