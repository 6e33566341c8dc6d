"""The API keys page's form (the service checks the scopes)."""

from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import SelectMultipleField, StringField
from wtforms.validators import DataRequired, Length


class ApiKeyForm(FlaskForm):
    name = StringField(
        "Name", validators=[DataRequired("Name the key, e.g. “Shop sign-ups”."), Length(max=100)]
    )
    # Choices are the member's permissions, set by the view.
    scopes = SelectMultipleField("Scopes", choices=[], validate_choice=False)
