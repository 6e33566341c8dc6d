"""Forms of Settings > Webhooks (the service checks the URL and the event types)."""

from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import BooleanField, SelectMultipleField, StringField
from wtforms.validators import DataRequired, Length

from webhooks.models import SUBSCRIBABLE


class EndpointForm(FlaskForm):
    url = StringField(
        "Endpoint URL",
        validators=[
            DataRequired(message="Enter the URL that receives the events."),
            Length(max=2000),
        ],
    )
    description = StringField("Description (optional)", validators=[Length(max=200)])
    event_types = SelectMultipleField(
        "Events",
        choices=[(t.value, t.label) for t in SUBSCRIBABLE],
        validate_choice=False,
    )
    enabled = BooleanField("Enabled", default=True)
