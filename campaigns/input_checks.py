"""Checks of what a marketer types that composing, templates and senders share: header values
that must stay on one line (no header injection) and templates that must compile in the
sandbox."""

from __future__ import annotations

from campaigns.render import SAMPLE_RECIPIENT, TemplateError, compile_campaign
from core.errors import ValidationError


def one_line(value: str, field: str, label: str) -> str:
    """``value`` stripped; ValidationError on ``field`` when it spans lines (a header value)."""
    if "\r" in value or "\n" in value:
        raise ValidationError(f"The {label} must be one line.", field=field)
    return value.strip()


def check_templates(subject: str, html_body: str, text_body: str) -> None:
    """Compile the subject and bodies in the sandbox and render them for the sample recipient;
    ValidationError on ``html_body`` naming the personalisation error."""
    try:
        compiled = compile_campaign(
            subject=subject, html=html_body, text=text_body, account_name="", postal_address=""
        )
        for part in (compiled.subject, compiled.html, compiled.text):
            part.pieces(SAMPLE_RECIPIENT.context())
    except TemplateError as exc:
        raise ValidationError(f"Personalisation error: {exc}", field="html_body") from exc
