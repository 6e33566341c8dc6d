"""The public forms (account sign-up, the data-request form, a list's sign-up page) resist bots
without a third party: a signed proof-of-work challenge solved in the browser, single use and
expiring, a minimum time between rendering and sending, and limits per client network. A
refused POST says why inline and records nothing."""

from __future__ import annotations

import html
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import pytest
import time_machine
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select

from accounts.models import User
from core import botcheck
from core import db as core_db
from privacy.models import DataRequest
from subscribers import services as subscribers
from tests.conftest import drain, solve_challenge
from tests.factories import make_tenant
from tests.smtp_sink import SMTPSink

START = datetime(2026, 12, 2, 12, 0, 0)


@dataclass
class PublicForm:
    path: str
    data: dict[str, str]
    #: The address the accepted form emails (or, for sign-up, the account it creates).
    address: str


def _forms(app: Flask) -> list[PublicForm]:
    with app.app_context():
        tenant = make_tenant(email="owner@shop.example")
        news = subscribers.create_list(tenant.account_id, "Ольга's news")
        key = subscribers.set_signup_form(tenant.account_id, news.id, True).signup_key
    return [
        PublicForm(
            "/signup",
            {
                "account_name": "Zoë's bakery",
                "name": "Zoë Ñúñez",
                "email": "zoe@bakery.example",
                "password": "correct horse battery",
                "of_age": "y",
            },
            "zoe@bakery.example",
        ),
        PublicForm(
            "/privacy/request", {"email": "li@example.cn", "kind": "access"}, "li@example.cn"
        ),
        PublicForm(
            f"/subscribe/{key}", {"email": "olga@example.ru", "name": "Ольга"}, "olga@example.ru"
        ),
    ]


FORM_NAMES = ["signup", "data-request", "list-signup"]


def _challenge_of(page: str) -> tuple[str, int]:
    token = re.search(r'name="bot_challenge" value="([^"]+)"', page)
    difficulty = re.search(r'data-difficulty="(\d+)"', page)
    assert token and difficulty, page
    return html.unescape(token[1]), int(difficulty[1])


def _solved(client: FlaskClient, path: str) -> dict[str, str]:
    """What the page's script sends: the page's challenge and its solution."""
    token, difficulty = _challenge_of(client.get(path).get_data(as_text=True))
    return {"bot_challenge": token, "bot_solution": solve_challenge(token, difficulty)}


def _recorded(app: Flask, smtp_sink: SMTPSink, form: PublicForm) -> int:
    """How many times the form's effect happened: accounts made, or emails sent."""
    if form.path == "/signup":
        with app.app_context():
            count = core_db.session.scalar(
                select(func.count()).select_from(User).where(User.email == form.address)
            )
            core_db.session.remove()
            return int(count or 0)
    drain(app)  # a list's confirmation email is sent by a job
    return len(smtp_sink.to(form.address))


def _inline_error(response: Any) -> str:
    found = re.search(r'<p class="error" role="alert" id="botcheck-error">([^<]+)</p>',
                      response.get_data(as_text=True))  # fmt: skip
    assert found, response.get_data(as_text=True)[-2000:]
    return html.unescape(found[1])


@pytest.fixture
def strict_app(app_factory: Any) -> Flask:
    built: Flask = app_factory(
        BOT_CHALLENGE_DIFFICULTY=10, BOT_CHALLENGE_MIN_SECONDS=2, BOT_CHALLENGE_MAX_AGE=600
    )
    return built


def _post_solved(app: Flask, form: PublicForm, wait: float, times: int = 1) -> list[Any]:
    """Open the form's page, solve its challenge, wait ``wait`` seconds (frozen time), then
    send the form with that solution ``times`` times, each from a new browser."""
    with time_machine.travel(START, tick=False) as traveller:
        solved = _solved(app.test_client(), form.path)
        traveller.shift(wait)
        return [
            app.test_client().post(form.path, data={**form.data, **solved}) for _ in range(times)
        ]


@pytest.mark.parametrize("which", range(3), ids=FORM_NAMES)
def test_a_solved_challenge_is_accepted_once(
    strict_app: Flask, smtp_sink: SMTPSink, which: int
) -> None:
    form = _forms(strict_app)[which]
    accepted, replayed = _post_solved(strict_app, form, wait=3, times=2)
    assert accepted.status_code in (200, 302), accepted.get_data(as_text=True)[-2000:]
    assert replayed.status_code == 422
    assert _inline_error(replayed) == botcheck.REPLAYED
    assert _recorded(strict_app, smtp_sink, form) == 1


@pytest.mark.parametrize("which", range(3), ids=FORM_NAMES)
def test_a_missing_forged_unsolved_or_hasty_challenge_is_refused_inline(
    strict_app: Flask, smtp_sink: SMTPSink, which: int
) -> None:
    form = _forms(strict_app)[which]
    client = strict_app.test_client()
    other_form = "signup" if which else "data-request"
    with time_machine.travel(START, tick=False) as traveller:
        page = client.get(form.path).get_data(as_text=True)
        assert "<noscript>" in page and "needs JavaScript" in page
        token, difficulty = _challenge_of(page)
        assert difficulty == 10
        with strict_app.app_context():
            for_another_form = botcheck.challenge(other_form)
        solution = solve_challenge(token, difficulty)
        unsolved = next(
            str(n) for n in range(1000) if botcheck.leading_zero_bits(token, str(n)) < 10
        )
        traveller.shift(1)
        hasty = client.post(
            form.path, data={**form.data, "bot_challenge": token, "bot_solution": solution}
        )
        traveller.shift(2)
        cases = {
            botcheck.MISSING: {"bot_challenge": ""},
            botcheck.INVALID: {"bot_challenge": token[:-2] + "xx", "bot_solution": solution},
            botcheck.UNSOLVED: {"bot_challenge": token, "bot_solution": unsolved},
        }
        cases_for_another_form = {
            "bot_challenge": for_another_form,
            "bot_solution": solve_challenge(for_another_form, difficulty),
        }
        answers = {
            message: client.post(form.path, data={**form.data, **fields})
            for message, fields in cases.items()
        }
        another = client.post(form.path, data={**form.data, **cases_for_another_form})
    assert hasty.status_code == 422 and _inline_error(hasty) == botcheck.TOO_FAST
    for message, answer in answers.items():
        assert answer.status_code == 422
        assert _inline_error(answer) == message
    assert another.status_code == 422 and _inline_error(another) == botcheck.INVALID
    # What was typed is kept for the next try, with a fresh challenge.
    page = hasty.get_data(as_text=True)
    assert html.escape(form.data["email"]) in page and _challenge_of(page)[0] != token
    assert _recorded(strict_app, smtp_sink, form) == 0


@pytest.mark.parametrize("which", range(3), ids=FORM_NAMES)
def test_an_expired_challenge_is_refused(
    strict_app: Flask, smtp_sink: SMTPSink, which: int
) -> None:
    form = _forms(strict_app)[which]
    [late] = _post_solved(strict_app, form, wait=601)
    assert late.status_code == 422
    assert (
        _inline_error(late) == "This form was open for more than 10 minutes. Please send it again."
    )
    assert _recorded(strict_app, smtp_sink, form) == 0


def test_posts_are_limited_per_client_network_and_form(
    app_factory: Any, smtp_sink: SMTPSink
) -> None:
    app = app_factory(PUBLIC_FORM_LIMITS="2/minute;5/hour")
    signup, form, _list_signup = _forms(app)
    client = app.test_client()
    neighbour = {"REMOTE_ADDR": "198.51.100.7"}
    for n in range(2):
        sent = client.post(
            form.path,
            data={**form.data, "email": f"p{n}@example.org"},
            environ_base={"REMOTE_ADDR": "198.51.100.200"},
        )
        assert sent.status_code == 200
    third = client.post(form.path, data=form.data, environ_base=neighbour)  # same /24
    assert third.status_code == 429
    assert 0 < int(third.headers["Retry-After"]) <= 60
    assert _inline_error(third) == (
        "Too many forms were sent from your network. Please try again in 1 minute."
    )
    assert _recorded(app, smtp_sink, form) == 0
    # Another network, and another form from the same network, are not held back.
    elsewhere = client.post(form.path, data=form.data, environ_base={"REMOTE_ADDR": "203.0.113.9"})
    assert elsewhere.status_code == 200 and _recorded(app, smtp_sink, form) == 1
    created = client.post(signup.path, data=signup.data, environ_base=neighbour)
    assert created.status_code == 302


def test_the_embedded_list_form_counts_against_the_same_limits(
    app_factory: Any, smtp_sink: SMTPSink
) -> None:
    app = app_factory(PUBLIC_FORM_LIMITS="1/minute")
    form = _forms(app)[2]
    client = app.test_client()
    assert client.post(f"{form.path}/embed", data=form.data).status_code == 200
    again = client.post(f"{form.path}/embed", data={**form.data, "email": "p@example.org"})
    assert again.status_code == 429
    assert "Too many forms were sent from your network" in _inline_error(again)
    assert len(smtp_sink.to("p@example.org")) == 0


def test_nothing_is_recorded_for_a_refused_data_request(
    strict_app: Flask, smtp_sink: SMTPSink
) -> None:
    form = _forms(strict_app)[1]
    strict_app.test_client().post(form.path, data={**form.data, "bot_challenge": ""})
    with strict_app.app_context():
        assert core_db.session.scalar(select(func.count()).select_from(DataRequest)) == 0
        core_db.session.remove()
