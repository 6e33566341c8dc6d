"""A bot check for the public forms, served by the platform itself (no third-party CAPTCHA).

Three layers, checked on each POST of a public form (account sign-up, the data-request form,
a list's sign-up page) before anything is recorded:

* **Limits per client network**: every POST counts against ``PUBLIC_FORM_LIMITS`` (moving
  windows in "limits" notation, ";" between tiers) per form and per client prefix (/24, /48),
  in the login throttle's storage (Redis when configured, else memory; core/limiting.py).
* **Proof of work**: the page carries a signed, timed challenge (form name, a random salt, the
  difficulty ``BOT_CHALLENGE_DIFFICULTY`` in leading zero bits, the time it was issued). A Web
  Worker (core/static/botcheck-worker.js) finds a number ``n`` such that
  ``sha256("<challenge>:<n>")`` starts with that many zero bits; the server checks it in one
  hash. A challenge expires after ``BOT_CHALLENGE_MAX_AGE`` seconds and is accepted once.
* **Timing**: a form sent less than ``BOT_CHALLENGE_MIN_SECONDS`` after its page was rendered
  is refused (the script waits that long before sending, so a person never sees this).

Without JavaScript the form cannot be sent; the page says so in a ``<noscript>`` note, and a
form sent anyway is refused with the same explanation inline.
"""

from __future__ import annotations

import hashlib
import math
import secrets
import time
from collections.abc import Mapping
from typing import Any

from flask import Response, current_app, render_template, request
from itsdangerous import SignatureExpired
from limits import parse_many

from core.limiting import moving_window, storage
from core.network import network_of
from core.signing import BadTokenError, Purpose, sign_timed, unsign_timed

#: The form fields the widget adds (core/templates/core/_botcheck.html).
CHALLENGE_FIELD = "bot_challenge"
SOLUTION_FIELD = "bot_solution"

MISSING = (
    "This form could not show that a person sent it: it needs JavaScript, which does a short "
    "calculation in your browser (no third party involved). Turn JavaScript on for this page "
    "and send the form again."
)
INVALID = "The check that a person sent this form was not valid. Please send the form again."
UNSOLVED = (
    "The check that a person sent this form had not finished. Please wait a moment and send "
    "the form again."
)
REPLAYED = "This form was already sent once. Please send it again."
TOO_FAST = (
    "The form was sent too quickly after the page opened for a person to have filled it in. "
    "Please send it again."
)


class BotCheckError(Exception):
    """A public form's POST refused by the bot check: ``message`` to show inline, the HTTP
    ``status`` (422, or 429 with ``retry_after`` seconds when over a limit)."""

    def __init__(self, message: str, status: int = 422, retry_after: int = 0) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.retry_after = retry_after


def _config(name: str) -> Any:
    return current_app.config[name]


def challenge(form_name: str) -> str:
    """A new signed challenge for ``form_name`` at the configured difficulty."""
    difficulty = int(_config("BOT_CHALLENGE_DIFFICULTY"))
    issued_ms = int(time.time() * 1000)
    return sign_timed(
        Purpose.BOT_CHALLENGE, [form_name, secrets.token_hex(8), difficulty, issued_ms]
    )


def widget(form_name: str, error: BotCheckError | None = None) -> dict[str, Any]:
    """What the form's template needs (``{% include "core/_botcheck.html" %}`` with ``bot``):
    a fresh challenge, its difficulty, the minimum wait, and the refusal to show, if any."""
    return {
        "token": challenge(form_name),
        "difficulty": int(_config("BOT_CHALLENGE_DIFFICULTY")),
        "min_ms": int(float(_config("BOT_CHALLENGE_MIN_SECONDS")) * 1000),
        "error": error.message if error is not None else "",
    }


def leading_zero_bits(token: str, solution: str) -> int:
    """How many leading zero bits ``sha256("<token>:<solution>")`` has."""
    digest = hashlib.sha256(f"{token}:{solution}".encode()).digest()
    value = int.from_bytes(digest, "big")
    return 256 - value.bit_length()


def _count_attempt(form_name: str, raw_ip: str | None) -> None:
    limiter = moving_window("public-forms")
    key = f"{form_name}:{network_of(raw_ip) or 'unknown'}"
    waits = []
    for item in parse_many(str(_config("PUBLIC_FORM_LIMITS"))):
        if not limiter.hit(item, key):
            reset_at = limiter.get_window_stats(item, key).reset_time
            waits.append(max(1, math.ceil(reset_at - time.time())))
    if waits:
        minutes = math.ceil(max(waits) / 60)
        raise BotCheckError(
            "Too many forms were sent from your network. "
            f"Please try again in {minutes} minute{'s' if minutes != 1 else ''}.",
            status=429,
            retry_after=max(waits),
        )


def verify(form_name: str, data: Mapping[str, str], raw_ip: str | None) -> None:
    """Accept one POST of ``form_name`` or raise BotCheckError: over the client network's
    limits, challenge missing, forged, for another form, expired, sent too fast, unsolved, or
    already used. An accepted challenge can never be accepted again (within its max age)."""
    _count_attempt(form_name, raw_ip)
    token = str(data.get(CHALLENGE_FIELD) or "")[:512]
    solution = str(data.get(SOLUTION_FIELD) or "")[:24]
    if not token:
        raise BotCheckError(MISSING)
    max_age = int(_config("BOT_CHALLENGE_MAX_AGE"))
    try:
        payload = unsign_timed(Purpose.BOT_CHALLENGE, token, max_age=max_age)
    except BadTokenError as exc:
        if isinstance(exc.__cause__, SignatureExpired):
            minutes = max(1, max_age // 60)
            raise BotCheckError(
                f"This form was open for more than {minutes} minutes. Please send it again."
            ) from exc
        raise BotCheckError(INVALID) from exc
    if not (
        isinstance(payload, list)
        and len(payload) == 4
        and payload[0] == form_name
        and isinstance(payload[2], int)
        and isinstance(payload[3], int)
    ):
        raise BotCheckError(INVALID)
    _form, _salt, difficulty, issued_ms = payload
    if not solution:
        raise BotCheckError(MISSING)
    if time.time() * 1000 - issued_ms < float(_config("BOT_CHALLENGE_MIN_SECONDS")) * 1000:
        raise BotCheckError(TOO_FAST)
    if not solution.isdigit() or leading_zero_bits(token, solution) < difficulty:
        raise BotCheckError(UNSOLVED)
    used_key = "used:" + hashlib.sha256(token.encode()).hexdigest()[:32]
    if storage("public-forms").incr(used_key, max_age + 60) > 1:
        raise BotCheckError(REPLAYED)


def limit_request(form_name: str) -> BotCheckError | None:
    """For a POST that cannot carry a challenge (a form embedded on another site): only the
    per-network limits; the refusal, else None."""
    try:
        _count_attempt(form_name, request.remote_addr)
    except BotCheckError as exc:
        return exc
    return None


def check_request(form_name: str) -> BotCheckError | None:
    """For a view: on a POST, the refusal of :func:`verify` for this request, else None."""
    if request.method != "POST":
        return None
    try:
        verify(form_name, request.form, request.remote_addr)
    except BotCheckError as exc:
        return exc
    return None


def render(
    template: str,
    form_name: str,
    refused: BotCheckError | None,
    headers: Mapping[str, str] | None = None,
    **context: Any,
) -> Response:
    """A public form's page with a fresh challenge (``bot`` in the template): 200 on a GET,
    the refusal's status (422, or 429 with Retry-After) or 422 for a form with errors."""
    status = 422 if request.method == "POST" else 200
    if refused is not None:
        status = refused.status
    body = render_template(template, bot=widget(form_name, refused), **context)
    response = Response(body, status=status)
    if refused is not None and refused.retry_after:
        response.headers["Retry-After"] = str(refused.retry_after)
    response.headers.update(headers or {})
    return response
