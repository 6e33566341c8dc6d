"""Forms of the campaign pages."""

from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import SelectField, StringField, TextAreaField
from wtforms.validators import DataRequired, Length, Optional


class CampaignForm(FlaskForm):
    name = StringField("Internal name", validators=[DataRequired(), Length(max=200)])
    subject = StringField("Subject", validators=[Length(max=500)])
    from_name = StringField("Sender name", validators=[Length(max=200)])
    from_email = StringField("Sender address", validators=[Length(max=320)])
    list_id = SelectField("Send to list", coerce=int, validators=[Optional()])
    html_body = TextAreaField("HTML body", validators=[Length(max=2_000_000)])
