"""Addresses on the wire (core.addresses): what any server can take, the envelope in A-labels,
display names encoded in the phrase only, raw UTF-8 only where SMTPUTF8 is needed. Header
values are checked by parsing them back with the standard library's RFC 5322 parser."""

from __future__ import annotations

from email import message_from_bytes, message_from_string, policy
from email.header import decode_header, make_header
from email.message import EmailMessage

import pytest

from core.addresses import AddressError, format_address, wire_address


@pytest.mark.parametrize(
    ("address", "envelope", "smtputf8"),
    [
        ("ada@example.org", "ada@example.org", False),
        ("bruce@例子.广告", "bruce@xn--fsqu00a.xn--4rr70v", False),  # IDN: A-labels, no UTF-8
        ("olga@почта.рф", "olga@xn--80a1acny.xn--p1ai", False),
        ("x@faß.de", "x@xn--fa-hia.de", False),  # IDNA 2008: ß kept (IDNA 2003 made it "ss")
        # UTS 46 maps full-width letters ("EXAMPLE" in full width)
        ("x@\uff25\uff38\uff21\uff2d\uff30\uff2c\uff25.com", "x@example.com", False),
        ("zoë.ñúñez@example.org", "zoë.ñúñez@example.org", True),
        ("用户@例子.广告", "用户@xn--fsqu00a.xn--4rr70v", True),
        ("a" * 64 + "@example.org", "a" * 64 + "@example.org", False),  # the limit itself
    ],
)
def test_envelope_forms(address: str, envelope: str, smtputf8: bool) -> None:
    wire = wire_address(address)
    assert (wire.envelope, wire.smtputf8) == (envelope, smtputf8)
    assert wire.envelope.isascii() is not smtputf8


@pytest.mark.parametrize(
    ("address", "reason"),
    [
        ("é" * 33 + "@example.org", "66 octets long; servers accept at most 64"),  # 33 chars
        ("x" * 65 + "@example.org", "65 octets long"),
        ("x" * 64 + "@" + ".".join(["a" * 60] * 3) + ".example.org", "longer than 254 octets"),
        ("anna@💩.la", "not allowed"),  # no emoji under IDNA 2008
        ("user@xn--ab.com", "not valid IDNA"),
        ("user@ex_ample.com", "invalid characters"),
        ("user@localhost", "should have a period"),
        ("two words@example.org", "no server accepts unquoted"),
        ("a..b@example.org", "no server accepts unquoted"),
        ("ada@example.org\r\nBcc: x@example.org", "no server accepts unquoted"),
        ("@example.org", "nothing before the @"),
        ("no-at-sign", "needs one @"),
        ("\udcff@example.org", "not valid text"),
    ],
)
def test_addresses_no_server_takes_are_refused_with_a_reason(address: str, reason: str) -> None:
    with pytest.raises(AddressError) as caught:
        wire_address(address)
    assert reason in str(caught.value)
    assert address not in str(caught.value)


def _parsed_to(value: str, utf8: bool = False) -> EmailMessage:
    raw = f"To: {value}\r\nSubject: x\r\n\r\nbody\r\n"
    parsed = (
        message_from_string(raw, policy=policy.default)
        if utf8
        else message_from_bytes(raw.encode("ascii"), policy=policy.default)
    )
    assert isinstance(parsed, EmailMessage)
    return parsed


NAMES = [
    "Zoë Ñúñez",
    "李小龍",
    "Ольга Петрова",
    "Ada Lovelace",
    'O\'Brien, "Pat" (Sales)',
    "back\\slash; <angle> @ [x]",
    "Ünïcødé, with a comma",
    "Ω" * 200,  # long: several encoded words, folded
    "emoji 👩‍💻 and a zero-width joiner",
]


@pytest.mark.parametrize("name", NAMES)
def test_display_names_are_encoded_in_the_phrase_only(name: str) -> None:
    value = format_address(name, wire_address("olga@почта.рф"))
    assert value.isascii()
    phrase, _, address = value.rpartition(" <")
    assert address == "olga@xn--80a1acny.xn--p1ai>"  # never an encoded word
    for line in value.split("\r\n"):
        assert len(line) <= 998
    for word in phrase.split():
        assert len(word) <= 75  # RFC 2047 2: an encoded word is at most 75 characters
    to = _parsed_to(value)["To"].addresses[0]
    assert (to.username, to.domain) == ("olga", "xn--80a1acny.xn--p1ai")
    if not phrase.startswith("=?"):
        assert to.display_name == name  # as it is, or a quoted string
        return
    assert str(make_header(decode_header(phrase))) == name
    if "\r\n" not in value:  # one encoded word: the stdlib's address parser reads it alike
        assert to.display_name == name  # (it keeps the space between adjacent encoded words)


@pytest.mark.parametrize("name", NAMES)
def test_with_smtputf8_names_and_addresses_are_raw_utf8(name: str) -> None:
    value = format_address(name, wire_address("用户@例子.广告"))
    to = _parsed_to(value, utf8=True)["To"].addresses[0]
    assert (to.display_name, to.username, to.domain) == (name, "用户", "例子.广告")
    if name.isprintable():
        assert "=?" not in value  # RFC 6532: no need for encoded words


def test_line_breaks_in_a_name_cannot_inject_a_header() -> None:
    value = format_address("Eve\r\nBcc: victim@example.org", wire_address("eve@example.org"))
    assert "\r\nBcc" not in value and "\n" not in value
    parsed = _parsed_to(value)
    assert parsed["Bcc"] is None
    assert parsed["To"].addresses[0].display_name == "Eve Bcc: victim@example.org"


def test_no_name_gives_the_bare_address() -> None:
    assert format_address("", wire_address("bruce@例子.广告")) == "bruce@xn--fsqu00a.xn--4rr70v"
    assert format_address("  ", wire_address("用户@例子.广告")) == "用户@例子.广告"
