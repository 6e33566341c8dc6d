"""Address normalisation and validation edge cases (email-validator with a domain cache)."""

from __future__ import annotations

import pytest

from core.errors import ValidationError
from subscribers.normalise import normalise_email


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("  Ada@Example.COM \n", "Ada@example.com"),  # whitespace, domain case; local kept
        ("ada@EXAMPLE.com", "ada@example.com"),
        ("a@bücher.DE", "a@bücher.de"),  # IDN kept in Unicode, lower-cased
        ("a@xn--bcher-kva.de", "a@bücher.de"),  # punycode and Unicode give one contact
        ("Zoe\u0301@example.org", "Zo\u00e9@example.org"),  # NFC: combining accent composed
        ("first.last+tag@sub.example.co.uk", "first.last+tag@sub.example.co.uk"),
        ("用户@例子.广告", "用户@例子.广告"),  # SMTPUTF8 address
    ],
)
def test_addresses_are_normalised(raw: str, expected: str) -> None:
    assert normalise_email(raw) == expected


def test_same_domain_twice_gives_the_same_answer() -> None:
    assert normalise_email("x@Cached.Example") == "x@cached.example"
    assert normalise_email("y@Cached.Example") == "y@cached.example"


@pytest.mark.parametrize(
    "raw",
    [
        "",
        "   ",
        "plainaddress",
        "@example.com",
        "ada@",
        "ada@@example.com",
        "ada lovelace@example.com",
        "Ada <ada@example.com>",
        "ada@example",  # no dot in the domain
        "ada@localhost",
        "ada@example.test",  # special-use domain
        "ada@-example.com",
        "ada@example.com.",
        ".ada@example.com",
        "ada..lovelace@example.com",
        '"quoted"@example.com',
        "ada@exa_mple.com",
        "a@" + "b" * 250 + ".com",  # too long
        "ada@[192.168.0.1]",  # domain literals refused
    ],
)
def test_invalid_addresses_are_refused_with_a_message(raw: str) -> None:
    with pytest.raises(ValidationError) as caught:
        normalise_email(raw)
    assert caught.value.field == "email"
    assert caught.value.message


def test_invalid_domain_stays_invalid_on_the_second_address() -> None:
    for local in ("a", "b"):
        with pytest.raises(ValidationError):
            normalise_email(f"{local}@bad_domain.example")
