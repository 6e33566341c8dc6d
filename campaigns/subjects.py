"""Subjects as people read them in the app: a personalised subject (``{{ contact.first_name
}}, …``) shown rendered, never as raw template code.

Rendered in the sending sandbox (:data:`campaigns.render.SANDBOX_TEXT`) with the contact's data,
or with the sample contact previews use; a subject that cannot be rendered is shown as it was
written and marked as a template. Nothing here raises into a page.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

from jinja2.environment import Template

from campaigns.render import SANDBOX_TEXT, Recipient

#: Who a personalised subject is shown for when no contact is at hand (as in the preview).
SAMPLE = Recipient(0, "preview@example.org", "Sample Contact", {})
_TEMPLATE_MARKS = ("{{", "{%", "{#")


def is_personalised(subject: str) -> bool:
    """Whether the subject holds template syntax (and so differs per recipient)."""
    return any(mark in subject for mark in _TEMPLATE_MARKS)


@functools.lru_cache(maxsize=512)
def _compiled(subject: str) -> Template | None:
    try:
        return SANDBOX_TEXT.from_string(subject)
    except Exception:  # any template the sandbox refuses is shown raw
        return None


def render_subject(subject: str, recipient: Recipient) -> str | None:
    """The subject as ``recipient`` gets it (one line, as in the message's header), or None
    when it cannot be rendered. Never raises."""
    template = _compiled(subject)
    if template is None:
        return None
    try:
        rendered = template.render(recipient.context())
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
    """``subject`` for display: rendered for ``recipient`` (or :data:`SAMPLE`) when it is
    personalised. Never raises."""
    raw = subject or ""
    if not is_personalised(raw):
        return ShownSubject(raw, raw, False)
    rendered = render_subject(raw, recipient or SAMPLE)
    if rendered is None:
        return ShownSubject(raw, raw, True, failed=True)
    return ShownSubject(rendered, raw, True)
