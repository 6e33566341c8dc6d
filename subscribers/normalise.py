"""Email address normalisation and validation (email-validator does the hard part).

Every address goes through email-validator. Because a file or a form sees the same few domains
again and again, the domain's verdict (valid and its normalised form, or the error) is cached
per distinct domain string; the local part of every address is still checked each time.
"""

from __future__ import annotations

import functools
import unicodedata

from email_validator import EmailNotValidError, validate_email

from core.errors import ValidationError

#: A short, valid placeholder domain: with the real domain's verdict cached, only the local
#: part of an address still needs email-validator's checks.
_PLACEHOLDER_DOMAIN = "x.io"
_MAX_ADDRESS_OCTETS = 254


@functools.lru_cache(maxsize=65536)
def _domain_verdict(domain: str) -> tuple[str, str] | str:
    """(the domain lower-cased in Unicode form, its ASCII form), or email-validator's error."""
    try:
        result = validate_email(f"a@{domain}", check_deliverability=False, allow_smtputf8=True)
    except EmailNotValidError as exc:
        return str(exc)
    return result.domain.lower(), (result.ascii_domain or result.domain).lower()


def _invalid(value: str, reason: str) -> ValidationError:
    return ValidationError(f"{value!r} is not a valid email address: {reason}", field="email")


def normalise_email(raw: str) -> str:
    """Return the canonical form of an address or raise ValidationError.

    Whitespace is stripped, Unicode is NFC-normalised, the domain is lower-cased (and IDNA
    domains kept in Unicode form); the local part keeps its case, as RFC 5321 requires.
    No DNS lookup: validation must be fast and work offline.
    """
    value = unicodedata.normalize("NFC", (raw or "").strip())
    if not value:
        raise ValidationError("Enter an email address.", field="email")
    local, at, domain = value.rpartition("@")
    if not at or not local or not domain:
        try:
            validate_email(value, check_deliverability=False, allow_smtputf8=True)
        except EmailNotValidError as exc:
            raise _invalid(value, str(exc)) from exc
        raise _invalid(value, "it needs one @ between a name and a domain.")
    verdict = _domain_verdict(domain)
    if isinstance(verdict, str):
        raise _invalid(value, verdict)
    unicode_domain, ascii_domain = verdict
    try:
        result = validate_email(
            f"{local}@{_PLACEHOLDER_DOMAIN}", check_deliverability=False, allow_smtputf8=True
        )
    except EmailNotValidError as exc:
        raise _invalid(value, str(exc)) from exc
    if len(f"{result.local_part}@{ascii_domain}".encode()) > _MAX_ADDRESS_OCTETS:
        raise _invalid(value, "the address is too long.")
    return f"{result.local_part}@{unicode_domain}"
