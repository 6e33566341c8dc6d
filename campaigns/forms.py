"""Forms of the campaign and sending pages."""

from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import (
    BooleanField,
    DateTimeLocalField,
    FloatField,
    IntegerField,
    SelectField,
    SelectMultipleField,
    StringField,
    TextAreaField,
)
from wtforms.validators import DataRequired, Length, NumberRange, Optional

#: The body formats a marketer chooses from, as the compose page names them.
FORMAT_CHOICES = [
    ("visual", "Visual editor (drag and drop)"),
    ("richtext", "Rich text"),
    ("markdown", "Markdown"),
    ("html", "Raw HTML"),
    ("plain", "Plain text"),
]


def _body_fields() -> tuple[SelectField, TextAreaField]:
    return (
        SelectField("Body format", choices=FORMAT_CHOICES, default="html"),
        TextAreaField("Body", validators=[Length(max=2_000_000)]),
    )


HOURS = [(str(hour), f"{hour:02d}:00") for hour in range(24)]


class CampaignForm(FlaskForm):
    name = StringField("Internal name", validators=[DataRequired(), Length(max=200)])
    list_ids = SelectMultipleField("Send to lists", coerce=int, validators=[Optional()])
    segment_ids = SelectMultipleField("and to segments", coerce=int, validators=[Optional()])
    # Hours of the account's time zone; the view names the zone in the labels.
    best_hour_start = SelectField(
        "Send at each recipient's best hour from",
        choices=[("", "off: send to everyone at once")]
        + [(str(h), f"{h:02d}:00") for h in range(24)],
        default="",
        description="Uses the Delivery Optimization Engine when your account takes part; "
        "recipients it knows too little of get the email when the window opens.",
    )
    best_hour_end = SelectField("until", choices=HOURS, default="12")
    subject = StringField(
        "Subject",
        validators=[Length(max=500)],
        description="Personalise with {{ contact.first_name }}, {{ contact.attributes.city }}…",
    )
    from_name = StringField("Sender name", validators=[Length(max=200)])
    from_email = StringField("Sender address", validators=[Length(max=320)])
    reply_to = StringField("Reply-to address (optional)", validators=[Length(max=320)])
    content_format, content_source = _body_fields()
    html_body = TextAreaField("HTML body", validators=[Length(max=2_000_000)])
    text_body = TextAreaField(
        "Plain-text body (optional)",
        validators=[Length(max=2_000_000)],
        description="Left empty, it is generated from the HTML.",
    )
    track_opens = BooleanField(
        "Track opens",
        default=True,
        description="Off: the emails carry no tracking image and no open is recorded.",
    )
    track_clicks = BooleanField(
        "Track clicks",
        default=True,
        description="Off: links go straight to their destination and no click is recorded.",
    )


class NewFromTemplateForm(FlaskForm):
    template_id = SelectField("Start from a template", coerce=int)
    name = StringField("Campaign name", validators=[Optional(), Length(max=200)])


class SaveAsTemplateForm(FlaskForm):
    name = StringField("Template name", validators=[Optional(), Length(max=200)])


PREVIEW_VIEWS = [
    ("desktop", "Desktop"),
    ("mobile", "Mobile"),
    ("dark", "Dark mode"),
    ("text", "Plain text"),
]


class PreviewForm(FlaskForm):
    class Meta:
        csrf = False

    q = StringField("Find a contact", validators=[Optional(), Length(max=200)])
    contact_id = SelectField("Preview as", coerce=int, validators=[Optional()])
    view = SelectField("Show", choices=PREVIEW_VIEWS, default="desktop")


class TestSendForm(FlaskForm):
    addresses = TextAreaField(
        "Send a test to",
        validators=[DataRequired(message="Give at least one address."), Length(max=5000)],
        description="Up to 10 addresses, separated by commas or one per line. Marked as a "
        "test: “[Test]” before the subject; its links work and count nowhere.",
    )
    contact_id = SelectField("Personalised as", coerce=int, validators=[Optional()])


class ScheduleForm(FlaskForm):
    # A wall-clock time in the account's zone (the view names it in the label).
    send_at = DateTimeLocalField(
        "Send at",
        format="%Y-%m-%dT%H:%M",
        description="In your account's time zone (Settings > General).",
        validators=[DataRequired(message="Choose a date and time.")],
    )


class SenderForm(FlaskForm):
    email = StringField("Sender address", validators=[DataRequired(), Length(max=320)])
    name = StringField("Sender name", validators=[Optional(), Length(max=200)])


class SmtpServerForm(FlaskForm):
    name = StringField("Name", validators=[Optional(), Length(max=200)])
    url = StringField(
        "SMTP URL",
        validators=[DataRequired(), Length(max=1000)],
        description="smtp://user:password@host:587 (STARTTLS) or smtps://user:password@host:465",
    )
    max_per_second = FloatField(
        "Messages per second (0: no limit)", default=0, validators=[NumberRange(min=0)]
    )
    max_connections = IntegerField(
        "Connections", default=2, validators=[NumberRange(min=1, max=50)]
    )


class DkimForm(FlaskForm):
    domain = StringField("Domain", validators=[DataRequired(), Length(max=255)])
    selector = StringField("Selector", default="envoy", validators=[DataRequired(), Length(max=63)])


class LimitsForm(FlaskForm):
    max_per_second = FloatField(
        "Account messages per second (0: no limit)", validators=[NumberRange(min=0)]
    )
    max_per_domain = IntegerField(
        "Concurrent messages per recipient domain (0: no limit)", validators=[NumberRange(min=0)]
    )


class TemplateForm(FlaskForm):
    name = StringField("Template name", validators=[DataRequired(), Length(max=200)])
    subject = StringField("Subject", validators=[Length(max=500)])
    content_format, content_source = _body_fields()
    html_body = TextAreaField("HTML body", validators=[Length(max=2_000_000)])
    text_body = TextAreaField("Plain-text body (optional)", validators=[Length(max=2_000_000)])


class ConvertForm(FlaskForm):
    """Converting a body down to raw HTML, which cannot be undone."""

    confirm = BooleanField(
        "I understand: the body becomes raw HTML and no longer opens in its editor.",
        validators=[DataRequired(message="Tick the box to confirm the conversion.")],
    )


class ContentPreviewForm(FlaskForm):
    """A body as it is being written, for the compose page's live preview."""

    content_format, content_source = _body_fields()


class ConfirmSendForm(FlaskForm):
    """The "Send now" confirmation: carries the recipient count the person saw."""

    expected = IntegerField("Recipients you confirmed", validators=[NumberRange(min=0)])


class ABTestForm(FlaskForm):
    """Up to four variants of subject (and sender name), the test share, the measure, the
    wait and what happens then."""

    subject_0 = StringField("Subject A", validators=[Length(max=500)])
    from_name_0 = StringField("Sender name A (optional)", validators=[Length(max=200)])
    subject_1 = StringField("Subject B", validators=[Length(max=500)])
    from_name_1 = StringField("Sender name B (optional)", validators=[Length(max=200)])
    subject_2 = StringField("Subject C (optional)", validators=[Length(max=500)])
    from_name_2 = StringField("Sender name C (optional)", validators=[Length(max=200)])
    subject_3 = StringField("Subject D (optional)", validators=[Length(max=500)])
    from_name_3 = StringField("Sender name D (optional)", validators=[Length(max=200)])
    test_percent = IntegerField(
        "Test share of the audience (%)",
        default=20,
        validators=[DataRequired(message="Choose 10 to 50 %."), NumberRange(min=10, max=50)],
        description="Split evenly and at random between the variants.",
    )
    metric = SelectField(
        "The winner has the most people who",
        choices=[("opens", "opened it"), ("clicks", "clicked a link")],
        default="opens",
        description="Counted from people only: mail proxies, link scanners and other machine "
        "activity are left out.",
    )
    wait_hours = IntegerField(
        "Choose the winner after (hours)",
        default=4,
        validators=[DataRequired(message="Wait 1 to 168 hours."), NumberRange(min=1, max=168)],
    )
    auto_send = SelectField(
        "Then",
        choices=[("yes", "send the winner to the rest"), ("no", "wait for my confirmation")],
        default="yes",
    )

    def subjects(self) -> list[str]:
        return [getattr(self, f"subject_{i}").data or "" for i in range(4)]

    def from_names(self) -> list[str]:
        return [getattr(self, f"from_name_{i}").data or "" for i in range(4)]


class ConfirmWinnerForm(FlaskForm):
    position = SelectField("Send the rest", coerce=int)
