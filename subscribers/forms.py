"""Forms of the lists, contacts, segments, imports and public sign-up pages."""

from __future__ import annotations

from flask_wtf import FlaskForm
from flask_wtf.file import FileField, FileRequired
from wtforms import BooleanField, SelectField, StringField, TextAreaField
from wtforms.validators import DataRequired, Length, Optional


class ListForm(FlaskForm):
    name = StringField("Name", validators=[DataRequired(), Length(max=200)])
    description = TextAreaField("Description", validators=[Length(max=2000)])


class ContactForm(FlaskForm):
    email = StringField("Email", validators=[DataRequired(), Length(max=320)])
    name = StringField("Name", validators=[Length(max=200)])


class ContactEditForm(FlaskForm):
    name = StringField("Name", validators=[Length(max=200)])
    attributes = TextAreaField(
        "Attributes",
        description="One per line as name = value. Use them in templates.",
        validators=[Length(max=20000)],
    )


class SignupForm(FlaskForm):
    email = StringField("Email address", validators=[DataRequired(), Length(max=320)])
    name = StringField("Name (optional)", validators=[Optional(), Length(max=200)])


class ImportUploadForm(FlaskForm):
    file = FileField("CSV file", validators=[FileRequired("Choose a CSV file.")])
    list_id = SelectField("Into list", coerce=int)
    update_existing = BooleanField("Update contacts that already exist (otherwise keep them)")


class ImportFormatForm(FlaskForm):
    """How to read an uploaded file, when the detected format is wrong."""

    delimiter = SelectField(
        "Separator",
        choices=[("comma", "Comma ,"), ("semicolon", "Semicolon ;"), ("tab", "Tab")],
    )
    encoding = SelectField(
        "Encoding",
        choices=[
            ("utf-8", "UTF-8"),
            ("utf-16-le", "UTF-16 LE (Excel “Unicode text”)"),
            ("utf-16-be", "UTF-16 BE"),
            ("cp1252", "Windows-1252 (Western European)"),
        ],
    )


class SegmentForm(FlaskForm):
    name = StringField("Name", validators=[DataRequired(), Length(max=200)])
    match = SelectField(
        "Contacts matching", choices=[("all", "all conditions"), ("any", "any condition")]
    )


class SettingsForm(FlaskForm):
    record_consent_ip = BooleanField(
        "Record the IP address with each consent (kept truncated: /24 for IPv4, /48 for IPv6)"
    )


class BlockAddressForm(FlaskForm):
    email = StringField("Address", validators=[DataRequired(), Length(max=320)])


class BlockDomainForm(FlaskForm):
    domain = StringField("Domain", validators=[DataRequired(), Length(max=255)])
    note = StringField("Why (optional)", validators=[Optional(), Length(max=200)])
