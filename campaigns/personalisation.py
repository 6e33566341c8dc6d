"""Which personalisation fields a message uses that a given contact does not have.

The preview renders the campaign's templates once more in the sending sandbox, with the
contact's empty values left out and an ``Undefined`` that records each name looked up and not
found. A field that is missing or empty renders as nothing in the real message; the preview
names it instead of silently showing a gap.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from jinja2 import Undefined
from jinja2.sandbox import ImmutableSandboxedEnvironment

from campaigns.render import SANDBOX_TEXT, Recipient
from campaigns.sandbox import render_limited


def _present(values: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in values.items() if v is not None and str(v).strip() != ""}


def missing_fields(templates: Iterable[str], recipient: Recipient) -> list[str]:
    """The fields (``contact.first_name``, ``contact.attributes.city``, …) the templates look
    up that are missing or empty for ``recipient``, in the order first met. Templates that
    do not compile or render are skipped (saving reports those). Never raises."""
    context = recipient.context()
    attributes = _present(context["attributes"])
    contact = {**_present(context["contact"]), "attributes": attributes}
    names: dict[str, None] = {}

    def path(obj: Any, name: str | None) -> str:
        if obj is contact:
            return f"contact.{name}"
        if obj is attributes:
            return f"contact.attributes.{name}"
        return str(name)

    class Recording(Undefined):
        __slots__ = ()

        def __init__(self, hint: str | None = None, obj: Any = None, name: str | None = None,
                     exc: Any = None) -> None:  # fmt: skip
            super().__init__(hint, obj, name, exc)
            if name is not None:
                names.setdefault(path(obj, name), None)

    env = SANDBOX_TEXT.overlay(undefined=Recording)
    assert isinstance(env, ImmutableSandboxedEnvironment)  # the same sandbox as sending
    for source in templates:
        if not source:
            continue
        try:
            render_limited(env.from_string(source), {"contact": contact, "attributes": attributes})
        except Exception:  # noqa: S112 - broken templates are reported when saved
            continue
    return list(names)
