"""Subjects as people read them in the app: a personalised subject (``{{ contact.first_name
}}, …``) shown rendered, never as raw template code.

Rendered in the sending sandbox (:data:`campaigns.render.SANDBOX_TEXT`): for a contact, with
that contact's data, exactly as the message's header; for the marketer's lists and headers,
with each field shown as its name in brackets (``[first_name], la rentrée à [city]``), which
reads as a sentence and says what varies. A subject that cannot be rendered is shown as it was
written and marked as a template. Nothing here raises into a page.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

from jinja2 import Undefined
from jinja2.environment import Template
from jinja2.sandbox import ImmutableSandboxedEnvironment

from campaigns.render import SANDBOX_TEXT, Recipient
from campaigns.sandbox import render_limited

_TEMPLATE_MARKS = ("{{", "{%", "{#")


class _Placeholder(Undefined):
    """A field without a value, written as its name in brackets (still false in a test)."""

    __slots__ = ()

    def __str__(self) -> str:
        return f"[{self._undefined_name}]" if self._undefined_name else ""


#: The sending sandbox, with fields shown as placeholders: the same rules on what is reachable.
_PLACEHOLDERS = SANDBOX_TEXT.overlay(undefined=_Placeholder)
assert isinstance(_PLACEHOLDERS, ImmutableSandboxedEnvironment)
#: The context of "no contact": every field is a placeholder.
_NOBODY: dict[str, object] = {"contact": {"attributes": {}}, "attributes": {}}


def is_personalised(subject: str) -> bool:
    """Whether the subject holds template syntax (and so differs per recipient)."""
    return any(mark in subject for mark in _TEMPLATE_MARKS)


@functools.lru_cache(maxsize=512)
def _compiled(subject: str, placeholders: bool) -> Template | None:
    try:
        return (_PLACEHOLDERS if placeholders else SANDBOX_TEXT).from_string(subject)
    except Exception:  # any template the sandbox refuses is shown raw
        return None


def render_subject(subject: str, recipient: Recipient | None) -> str | None:
    """The subject as ``recipient`` gets it (one line, as in the message's header), or with
    fields as ``[name]`` placeholders when ``recipient`` is None; None when it cannot be
    rendered. Never raises."""
    template = _compiled(subject, recipient is None)
    if template is None:
        return None
    try:
        rendered = render_limited(template, recipient.context() if recipient else _NOBODY)
    except Exception:  # a page shows the raw template instead
        return None
    return rendered.replace("\r", " ").replace("\n", " ").strip()


@dataclass(frozen=True)
class ShownSubject:
    """What a page shows for a subject: ``text`` to read, ``raw`` as written;
    ``personalised`` when it differs per recipient, ``failed`` when it could not be rendered
    (``text`` is then the raw template)."""

    text: str
    raw: str
    personalised: bool
    failed: bool = False


def shown_subject(subject: str | None, recipient: Recipient | None = None) -> ShownSubject:
    """``subject`` for display: when it is personalised, rendered for ``recipient`` or, without
    one, with placeholders. Never raises."""
    raw = subject or ""
    if not is_personalised(raw):
        return ShownSubject(raw, raw, False)
    rendered = render_subject(raw, recipient)
    if rendered is None:
        return ShownSubject(raw, raw, True, failed=True)
    return ShownSubject(rendered, raw, True)
