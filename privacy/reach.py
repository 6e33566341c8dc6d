"""How a contact finds the public data-request form, and what the public forms say to minors.

One URL and one wording for every email a contact gets (campaign footers, the sign-up
confirmation) and, through ``privacy/_rights_link.html`` and ``privacy/_minors_notice.html``,
for the public pages (sign-up, confirmation, preference centre, unsubscribe, the request form).
"""

from __future__ import annotations

from core.urls import external_url

#: The public data-request form (privacy.views.request_form).
REQUEST_FORM_ENDPOINT = "privacy.request_form"
#: The words in front of the link, in every email to a contact.
RIGHTS_LINK_TEXT = "Your data: ask for a copy, a correction or its erasure"


def request_form_url() -> str:
    """The absolute URL of the public data-request form; needs an app context, not a request."""
    return external_url(REQUEST_FORM_ENDPOINT)


def rights_footer_text() -> str:
    """The plain-text footer line of an email to a contact: the wording and the form's URL."""
    return f"{RIGHTS_LINK_TEXT}: {request_form_url()}"
