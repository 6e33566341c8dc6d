"""Forms of the privacy pages."""

from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import EmailField, RadioField, StringField, TextAreaField
from wtforms.validators import DataRequired, Length, Optional

from privacy.models import REQUEST_KINDS


class DataRequestForm(FlaskForm):
    email = EmailField(
        "Your email address",
        validators=[DataRequired(message="Enter your email address."), Length(max=320)],
    )
    kind = RadioField(
        "What would you like us to do?",
        choices=list(REQUEST_KINDS.items()),
        validators=[DataRequired(message="Choose what you would like us to do.")],
    )
    new_name = StringField(
        "Correct name (for a correction)", validators=[Optional(), Length(max=200)]
    )
    note = TextAreaField("Anything else to correct", validators=[Optional(), Length(max=500)])
