"""Forms of the accounts area."""

from __future__ import annotations

from typing import Any

from flask_wtf import FlaskForm
from wtforms import (
    BooleanField,
    EmailField,
    HiddenField,
    IntegerField,
    PasswordField,
    SelectField,
    SelectMultipleField,
    StringField,
    TextAreaField,
)
from wtforms.validators import DataRequired, Email, EqualTo, Length, NumberRange

from accounts.services import OF_AGE_REQUIRED
from core.timezones import zone_names


class SignupForm(FlaskForm):
    account_name = StringField("Organisation", validators=[DataRequired(), Length(max=200)])
    name = StringField("Your name", validators=[DataRequired(), Length(max=200)])
    email = EmailField("Email", validators=[DataRequired(), Email()])
    password = PasswordField("Password", validators=[DataRequired(), Length(min=10, max=200)])
    # accounts.services.sign_up refuses (and records nothing) without it too.
    of_age = BooleanField(
        "I am of the age of majority where I live",
        validators=[DataRequired(message=OF_AGE_REQUIRED)],
        description="Envoy is not for minors: a minor may use it only with an adult, who "
        "creates the account.",
    )
    # Filled by a script from the browser's zone; absent without JS (the account gets UTC).
    time_zone = HiddenField(default="")


class LoginForm(FlaskForm):
    email = EmailField("Email", validators=[DataRequired()])
    password = PasswordField("Password", validators=[DataRequired()])


class ForgotPasswordForm(FlaskForm):
    email = EmailField("Email", validators=[DataRequired(), Email()])


class ResetPasswordForm(FlaskForm):
    password = PasswordField("New password", validators=[DataRequired(), Length(min=10, max=200)])
    confirm = PasswordField(
        "Repeat it", validators=[DataRequired(), EqualTo("password", "The two passwords differ.")]
    )


class ChangePasswordForm(FlaskForm):
    current_password = PasswordField("Current password", validators=[DataRequired()])
    password = PasswordField("New password", validators=[DataRequired(), Length(min=10, max=200)])
    confirm = PasswordField(
        "Repeat the new password",
        validators=[DataRequired(), EqualTo("password", "The two passwords differ.")],
    )


class GeneralSettingsForm(FlaskForm):
    name = StringField("Organisation name", validators=[DataRequired(), Length(max=200)])
    postal_address = TextAreaField(
        "Postal address",
        description="Printed in the footer of every campaign, as anti-spam laws require.",
        validators=[Length(max=1000)],
    )
    # The service checks the name, so a forged value gets its message inline.
    time_zone = SelectField(
        "Time zone",
        description="Dates, schedules, send windows and reports are shown in this zone.",
        validate_choice=False,
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.time_zone.choices = [(name, name.replace("_", " ")) for name in zone_names()]


class PrivacySettingsForm(FlaskForm):
    individual_tracking = BooleanField(
        "Track opens and clicks per recipient",
        description="Off: only anonymous totals are counted and the email's links identify nobody.",
    )
    ip_handling = SelectField(
        "IP addresses",
        choices=[
            (
                "truncate",
                "Use the network (/24 or /48) to spot mail proxies and scanners, then drop it",
            ),
            ("drop", "Do not use them at all"),
        ],
    )
    event_retention_days = IntegerField(
        "Keep identified events for (days)", validators=[NumberRange(min=1, max=3650)]
    )


class AdvancedSettingsForm(FlaskForm):
    engine_participation = BooleanField("Take part in the Delivery Optimization Engine")


class AddMemberForm(FlaskForm):
    email = EmailField("Email", validators=[DataRequired(), Email()])
    name = StringField("Name", validators=[Length(max=200)])
    # Choices are the account's roles (accounts.roles.choices), set by the view.
    role = SelectField("Role", choices=[], validate_choice=False)


class RoleForm(FlaskForm):
    """A custom role: its name, what it is for, and its permissions (checked by the service)."""

    name = StringField("Name", validators=[DataRequired(), Length(max=60)])
    description = StringField("What it is for (optional)", validators=[Length(max=300)])
    permissions = SelectMultipleField("Permissions", choices=[], validate_choice=False)


class TotpConfirmForm(FlaskForm):
    code = StringField(
        "Code from the app", validators=[DataRequired("Enter the 6-digit code."), Length(max=20)]
    )


class LoginCodeForm(FlaskForm):
    code = StringField(
        "Code",
        validators=[
            DataRequired("Enter the code from your app or a recovery code."),
            Length(max=40),
        ],
    )


class PasswordCheckForm(FlaskForm):
    """Turning the second factor off or new recovery codes: the password again."""

    password = PasswordField("Your password", validators=[DataRequired("Enter your password.")])


class SecuritySettingsForm(FlaskForm):
    require_two_factor = BooleanField("Require two-factor authentication for every member")


class SsoSettingsForm(FlaskForm):
    issuer = StringField(
        "Issuer URL", validators=[DataRequired(), Length(max=500)], render_kw={"inputmode": "url"}
    )
    client_id = StringField("Client id", validators=[DataRequired(), Length(max=255)])
    # Empty on an existing set-up: the stored secret is kept.
    client_secret = PasswordField("Client secret", validators=[Length(max=2000)])
    email_domain = StringField("Email domain", validators=[DataRequired(), Length(max=255)])
    default_role = SelectField(
        "Role of people who sign in for the first time",
        choices=[("member", "Member"), ("admin", "Admin")],
    )
    enabled = BooleanField("Let people of this domain sign in through the provider")


class SsoLoginForm(FlaskForm):
    email = EmailField("Work email", validators=[DataRequired(), Email()])
