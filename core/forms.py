"""Helpers shared by the thin views: putting a service's ValidationError onto a form."""

from __future__ import annotations

from flask import flash
from flask_wtf import FlaskForm

from core.errors import ValidationError


def show_error(form: FlaskForm, error: ValidationError) -> None:
    """Show a service's refusal inline on its field, or as a flash message when it has none."""
    field = getattr(form, error.field, None) if error.field else None
    if field is not None:
        field.errors = [*list(field.errors or []), error.message]
    else:
        flash(error.message, "error")


class ActionForm(FlaskForm):
    """A form with only the CSRF token, for buttons that POST an action."""
