"""Email addresses on the wire: which ones a server can take, and how each is written.

One decision per address, :func:`wire_address`, shared by the import (an address is refused
there for the same reason sending would fail it) and the send path (contacts stored before
these rules). It is cheap enough for the send path: the domain's verdict is cached per
distinct domain (email-validator: IDNA 2008 with UTS 46 mapping, DNS label and length rules),
and an ASCII local part, nearly every one, is one regular-expression match.

How an address is written:

- **Envelope** (MAIL FROM, RCPT TO): the local part as stored, the domain in A-labels
  (``user@xn--mnchen-3ya.de``), so an IDN domain with an ASCII local part needs no SMTPUTF8.
- **SMTPUTF8** (RFC 6531) only for a non-ASCII local part; such a message carries raw UTF-8
  headers (RFC 6532) and the domain in its To header as stored (U-labels).
- **Headers** otherwise are ASCII: the domain in A-labels, and a display name that is not
  printable ASCII becomes RFC 2047 encoded words *in the phrase only* (never in the address).
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from email.header import Header

from email_validator import EmailNotValidError, validate_email

#: RFC 5321 4.5.3.1.1 and 4.5.3.1.3 (with RFC 3696 erratum 1690), in octets.
MAX_LOCAL_OCTETS = 64
MAX_ADDRESS_OCTETS = 254

#: RFC 5322 dot-atom: what an unquoted ASCII local part may be.
_DOT_ATOM = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*\Z")
#: A placeholder domain for checking an international local part on its own.
_PLACEHOLDER_DOMAIN = "x.io"
#: Characters that need a quoted string in a display name (RFC 5322 specials).
_SPECIALS = re.compile(r'[][\\()<>@,:;".]')


class AddressError(ValueError):
    """An address no server can take. ``str()`` is the reason, fit to show a person; it never
    contains the address."""


@dataclass(frozen=True, slots=True)
class WireAddress:
    """An address checked for sending: its local part and its domain in both forms."""

    local: str
    #: The domain as stored (U-labels for an IDN).
    domain: str
    #: The domain in A-labels (``xn--…``), the same as ``domain`` when it is ASCII.
    ascii_domain: str

    @property
    def smtputf8(self) -> bool:
        """True when the address can only travel with SMTPUTF8 (its local part is not ASCII)."""
        return not self.local.isascii()

    @property
    def envelope(self) -> str:
        """The form for MAIL FROM / RCPT TO: the domain in A-labels."""
        return f"{self.local}@{self.ascii_domain}"

    @property
    def header(self) -> str:
        """The addr-spec for a header: ASCII unless the address needs SMTPUTF8 anyway."""
        return f"{self.local}@{self.domain}" if self.smtputf8 else self.envelope


@functools.lru_cache(maxsize=65536)
def domain_verdict(domain: str) -> tuple[str, str] | str:
    """(the domain in Unicode form, lower-cased; its A-label form), or the reason it is not a
    domain mail can be sent to. Cached per distinct domain string."""
    try:
        result = validate_email(f"a@{domain}", check_deliverability=False, allow_smtputf8=True)
    except EmailNotValidError as exc:
        return str(exc)
    return result.domain.lower(), (result.ascii_domain or result.domain).lower()


def ascii_domain(domain: str) -> str:
    """``domain`` in A-labels (for a Message-ID, which must be ASCII); as it is when it is not
    a valid domain. Cached."""
    verdict = domain_verdict(domain)
    return domain if isinstance(verdict, str) else verdict[1]


@functools.lru_cache(maxsize=4096)
def _international_local_part(local: str) -> str | None:
    """Why a non-ASCII local part is not valid (email-validator's check), or None."""
    try:
        validate_email(
            f"{local}@{_PLACEHOLDER_DOMAIN}", check_deliverability=False, allow_smtputf8=True
        )
    except EmailNotValidError as exc:
        return str(exc)
    return None


def local_part_problem(local: str) -> str | None:
    """Why ``local`` cannot be the part before the @ of an address any server takes, or None."""
    if not local:
        return "there is nothing before the @."
    try:
        octets = len(local.encode("utf-8"))
    except UnicodeEncodeError:
        return "the part before the @ is not valid text (broken UTF-8)."
    if octets > MAX_LOCAL_OCTETS:
        return (
            f"the part before the @ is {octets} octets long; servers accept at most "
            f"{MAX_LOCAL_OCTETS} (RFC 5321)."
        )
    if local.isascii():
        if _DOT_ATOM.match(local) is None:
            return (
                "the part before the @ has characters no server accepts unquoted (spaces, "
                "quotes, brackets, commas or dots in a row)."
            )
        return None
    return _international_local_part(local)


def wire_address(address: str) -> WireAddress:
    """The address checked for sending and split into its wire forms.

    Raises AddressError (its reason names no address) when no server could take it: no @,
    a local part over 64 octets or outside RFC 5322 / RFC 6531 syntax, a domain that is not
    valid under IDNA 2008 / UTS 46 or the DNS rules, or more than 254 octets in all.
    """
    local, at, domain = address.rpartition("@")
    if not at or not domain:
        raise AddressError("it needs one @ between a name and a domain.")
    problem = local_part_problem(local)
    if problem is not None:
        raise AddressError(problem)
    verdict = domain_verdict(domain)
    if isinstance(verdict, str):
        raise AddressError(verdict)
    unicode_domain, ascii_domain = verdict
    wire = WireAddress(local, unicode_domain, ascii_domain)
    if len(wire.envelope.encode("utf-8")) > MAX_ADDRESS_OCTETS:
        raise AddressError(
            f"the address is longer than {MAX_ADDRESS_OCTETS} octets, the most servers accept "
            "(RFC 5321)."
        )
    return wire


def _one_line(value: str) -> str:
    return " ".join(value.replace("\r", " ").replace("\n", " ").split())


def display_name(name: str, utf8: bool = False) -> str:
    """``name`` as the phrase of an address header: as it is when it is a printable atom
    sequence, a quoted string when it holds RFC 5322 specials, RFC 2047 encoded words when it
    is not printable ASCII (or, with ``utf8`` (RFC 6532), when it is not printable at all).
    Line breaks become spaces. Empty when the name is."""
    name = _one_line(name)
    if not name:
        return ""
    if (name.isascii() or utf8) and name.isprintable():
        if _SPECIALS.search(name) is None:
            return name
        return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'
    # At most 75 characters an encoded word (RFC 2047 2); the words are folded with CRLF.
    return Header(name, "utf-8", maxlinelen=75).encode(linesep="\r\n")


def format_address(name: str, address: WireAddress) -> str:
    """The value of a To / From header for ``address`` with the display name ``name``.

    Raw UTF-8 (RFC 6532) only when the address needs SMTPUTF8; otherwise ASCII, with any
    Unicode of the name in encoded words of the phrase (RFC 2047 5.3), never in the address.
    """
    phrase = display_name(name, utf8=address.smtputf8)
    return f"{phrase} <{address.header}>" if phrase else address.header
