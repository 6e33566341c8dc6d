"""Email address normalisation and validation (email-validator does the hard part).

Every address goes through email-validator. Because a file or a form sees the same few domains
again and again, the domain's verdict (valid and its normalised form, or the error) is cached
per distinct domain string (:func:`core.addresses.domain_verdict`); the local part of every
address is still checked each time. An address is accepted only when the send path could send
it (:func:`core.addresses.wire_address`: e.g. at most 64 octets before the @), so nothing is
accepted here and failed later for its form.
"""

from __future__ import annotations

import unicodedata

from email_validator import EmailNotValidError, validate_email

from core.addresses import AddressError, domain_verdict, wire_address
from core.errors import ValidationError

#: A short, valid placeholder domain: with the real domain's verdict cached, only the local
#: part of an address still needs email-validator's checks.
_PLACEHOLDER_DOMAIN = "x.io"


def _invalid(value: str, reason: str) -> ValidationError:
    shown = value if len(value) <= 80 else value[:60] + "…"  # the reason must stay readable
    return ValidationError(f"{shown!r} is not a valid email address: {reason}", field="email")


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
    verdict = domain_verdict(domain)
    if isinstance(verdict, str):
        raise _invalid(value, verdict)
    unicode_domain = verdict[0]
    try:
        result = validate_email(
            f"{local}@{_PLACEHOLDER_DOMAIN}", check_deliverability=False, allow_smtputf8=True
        )
    except EmailNotValidError as exc:
        raise _invalid(value, str(exc)) from exc
    address = f"{result.local_part}@{unicode_domain}"
    try:
        wire_address(address)  # the send path's own check (lengths in octets)
    except AddressError as exc:
        raise _invalid(value, str(exc)) from exc
    return address
