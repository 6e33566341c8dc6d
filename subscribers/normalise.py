"""Email address normalisation and validation (email-validator does the hard part)."""

from __future__ import annotations

import unicodedata

from email_validator import EmailNotValidError, validate_email

from core.errors import ValidationError


def normalise_email(raw: str) -> str:
    """Return the canonical form of an address or raise ValidationError.

    Whitespace is stripped, Unicode is NFC-normalised, the domain is lower-cased (and IDNA
    domains kept in Unicode form); the local part keeps its case, as RFC 5321 requires.
    No DNS lookup: validation must be fast and work offline.
    """
    value = unicodedata.normalize("NFC", (raw or "").strip())
    if not value:
        raise ValidationError("Enter an email address.", field="email")
    try:
        result = validate_email(value, check_deliverability=False, allow_smtputf8=True)
    except EmailNotValidError as exc:
        raise ValidationError(
            f"{value!r} is not a valid email address: {exc}", field="email"
        ) from exc
    return f"{result.local_part}@{result.domain.lower()}"
