"""Forms of the operator's incident pages."""

from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import DateTimeLocalField, SelectMultipleField, StringField, TextAreaField, widgets
from wtforms.validators import DataRequired, Length


class IncidentForm(FlaskForm):
    title = StringField("Title", validators=[DataRequired(), Length(max=200)])
    what_happened = TextAreaField("What happened", validators=[DataRequired()])
    discovered_at = DateTimeLocalField(
        "Discovered (UTC)", format="%Y-%m-%dT%H:%M", validators=[DataRequired()]
    )
    data_categories = TextAreaField(
        "Data concerned",
        validators=[DataRequired()],
        description="The categories of personal data, e.g. contact email addresses and names.",
    )
    consequences = TextAreaField("Likely consequences", validators=[DataRequired()])
    measures = TextAreaField(
        "Measures taken or proposed",
        validators=[DataRequired()],
        description="Including what account owners can do to reduce the effects.",
    )


class AccountsForm(FlaskForm):
    account_ids = SelectMultipleField(
        "Affected accounts",
        coerce=int,
        widget=widgets.ListWidget(prefix_label=False),
        option_widget=widgets.CheckboxInput(),
        validate_choice=False,
    )


class ReportForm(FlaskForm):
    report = TextAreaField(
        "Report of the actions taken",
        validators=[DataRequired()],
        description="Sent to the owners of every notified account; the incident is then closed.",
    )
