"""Templates are bounded in time, memory and output: a hostile template is refused on save
with a clear message, fails (or pauses) only what it belongs to at send time, and never takes
the worker down."""

from __future__ import annotations

import os
import re
import resource
import secrets
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select, update

from campaigns import senders, services, template_library
from campaigns.models import Campaign, Message
from campaigns.render import SANDBOX, SANDBOX_TEXT, TemplateError, compile_campaign
from campaigns.sandbox import Limits, TemplateLimitError, render_limited
from core import db as core_db
from core.errors import ValidationError
from subscribers import services as subscribers
from subscribers.models import Contact
from tests import services_available
from tests.campaigns.fault_harness import OwnRedis, Worker, worker_env_like_tests
from tests.campaigns.helpers import campaign_with, html_of
from tests.conftest import drain
from tests.factories import login, make_tenant

ROOT = Path(__file__).resolve().parents[2]

THIRTY_MILLION = '<p>{{ "x" * 30000000 }}</p>'
REFUSAL = "The template makes a string of 30,000,000 characters; the limit is 100,000."


def _rss_bytes() -> int:
    """This process's resident memory now (not its peak): /proc/self/statm, in bytes."""
    resident_pages = int(Path("/proc/self/statm").read_text().split()[1])
    return resident_pages * os.sysconf("SC_PAGE_SIZE")


def _render(source: str, limits: Limits | None = None) -> str:
    return render_limited(SANDBOX.from_string(source), {"contact": {"name": "Zoë Ñúñez"}}, limits)


@pytest.mark.parametrize(
    "source,reason",
    [
        ('{{ "x" * 30000000 }}', REFUSAL),
        ('{{ ["李小龍"] * 30000000 }}', "makes a list of"),
        ("{{ 9 ** 9999999 }}", "makes a number of about 9,542,424 digits; the limit is 4,300"),
        ('{% set a = "Ольга" * 20000 %}{{ a + a }}', "makes a string of 200,000 characters"),
        ('{% set a = "Ольга" * 20000 %}{{ a ~ a }}', "makes a string of 200,000 characters"),
        ('{% set a = "ab" * 40000 %}{{ a|replace("a", "aaaa") }}', "string of 200,000"),
        ('{{ "x"|center(30000000) }}', "asks the center filter for a width of 30,000,000"),
        ('{{ "x"|indent(30000000) }}', "asks the indent filter for a width of 30,000,000"),
        ('{{ "%030000000d"|format(1) }}', "asks a format for a width of 30,000,000"),
        ('{{ "%030000000d" % 1 }}', "asks a format for a width of 30,000,000"),
        ('{{ "{:>30000000}".format(1) }}', "asks a format for a width of 30,000,000"),
        ('{{ "x".ljust(30000000) }}', "asks ljust for a width of 30,000,000"),
        ('{{ "{:>{w}}".format(1, w=30000000) }}', "asks a format for a width of 30,000,000"),
        ('{{ "%*d" % (30000000, 1) }}', "asks a format for a width of 30,000,000"),
        ('{{ (["y" * 50000] * 2)|join }}', "makes a list of 100,008 characters"),
        # Each [x, x] doubles what it prints as, with no operator at all.
        ('{% set x = "Zoë" %}' + "{% set x = [x, x] %}" * 40 + "{{ x }}", "makes a list of"),
        # 10^10 empty iterations: the step budget, not the output, stops them.
        (
            '{% set a = "x" * 100000 %}{% for i in a %}{% for j in a %}{% endfor %}{% endfor %}',
            "runs more than 100,000 loop steps and calls",
        ),
        # A loop writing into a variable, never yielded: its output is counted as made.
        (
            '{% set a = "x" * 90000 %}{% set s %}{% for i in a %}{{ a }}{% endfor %}{% endset %}',
            "writes more than 2,000,000 characters",
        ),
        # Many outputs of a value just under the limit, without any loop.
        ("<p>{{ contact.name|center(99999) }}</p>" * 1000, "writes more than 2,000,000"),
    ],
)
def test_a_template_that_would_make_too_much_is_refused_before_it_does(
    source: str, reason: str
) -> None:
    before = _rss_bytes()
    with pytest.raises(TemplateLimitError) as refused:
        _render(source)
    assert reason in str(refused.value)
    assert _rss_bytes() - before < 20 * 2**20


def test_a_recursive_loop_counts_the_steps_of_every_level() -> None:
    source = (
        "{% set tree = [[1] * 150] * 130 %}{% for node in tree recursive %}"
        "{% if node is iterable %}{{ loop(node) }}{% endif %}{% endfor %}"
    )
    assert _render(source) == ""  # 130 + 130 x 150 iterations, 131 calls
    with pytest.raises(TemplateLimitError, match="runs more than 5,000 loop steps and calls"):
        _render(source, Limits(steps=5_000))


#: 2^40 macro calls without a loop: only the step or the time limit stops them.
MACRO_BOMB = (
    "{% macro f(n) %}{% if n %}{{ f(n - 1) }}{{ f(n - 1) }}{% endif %}{% endmacro %}{{ f(40) }}"
)


def test_calls_without_a_loop_are_stopped_by_the_step_limit(app_factory: Any) -> None:
    # A minute to spend: on a busy machine the default 2 s could run out before 100,000 steps.
    app = app_factory(TEMPLATE_MAX_SECONDS=60)
    with app.app_context(), pytest.raises(TemplateLimitError) as refused:
        _render(MACRO_BOMB)
    assert str(refused.value) == (
        "The template runs more than 100,000 loop steps and calls; that is the limit."
    )
    with app.app_context(), pytest.raises(TemplateLimitError, match="more than 500 loop steps"):
        app.config["TEMPLATE_MAX_STEPS"] = 500
        _render(MACRO_BOMB)


def test_time_is_bounded_without_signals(app_factory: Any) -> None:
    app = app_factory(TEMPLATE_MAX_STEPS=10**9, TEMPLATE_MAX_SECONDS=0.2)
    with app.app_context(), pytest.raises(TemplateLimitError) as refused:
        _render(MACRO_BOMB)
    assert (
        str(refused.value)
        == "The template takes longer than 0.2 seconds to render; that is the limit."
    )


def test_the_limits_are_settings_read_from_the_environment(
    monkeypatch: pytest.MonkeyPatch, app_factory: Any
) -> None:
    monkeypatch.setenv("TEMPLATE_MAX_VALUE", "10")
    monkeypatch.setenv("TEMPLATE_MAX_OUTPUT", "30")
    monkeypatch.setenv("TEMPLATE_MAX_DIGITS", "5")
    with pytest.raises(TemplateLimitError, match="a string of 12 characters; the limit is 10"):
        _render("{{ 'Zoë' * 4 }}")
    with app_factory().app_context():
        with pytest.raises(TemplateLimitError, match="number of about 6 digits; the limit is 5"):
            _render("{{ 10 ** 6 }}")
        with pytest.raises(TemplateLimitError, match="writes more than 30 characters"):
            _render("{{ contact.name }}" * 4)
        assert _render("{{ 'Zoë' * 3 }}") == "ZoëZoëZoë"


def test_ordinary_templates_render_as_before() -> None:
    source = (
        "{% for word in ['Zoë', 'Ñúñez', '李小龍'] %}{{ loop.index }}. {{ word }} {% endfor %}"
        "{{ '%5.1f' % 2.25 }}|{{ '★' * 3 }}|{{ 2 ** 10 }}|{{ 'a-b'|replace('-', '·') }}|"
        "{{ contact.name|center(13) }}|{{ [1, 2]|join(', ') }}|{{ '{:>4}'.format(7) }}|"
        "{{ contact.name ~ '!' }}|{{ {'k': 'v'}['k'] }}"
    )
    assert _render(source) == (
        "1. Zoë 2. Ñúñez 3. 李小龍   2.2|★★★|1024|a·b|  Zoë Ñúñez  |1, 2|   7|Zoë Ñúñez!|v"
    )
    with pytest.raises(TemplateLimitError, match="writes more than 10 characters"):
        render_limited(SANDBOX_TEXT.from_string("{{ contact.name }}" * 3), {"contact": {
            "name": "Zoë Ñúñez"}}, Limits(output=10))  # fmt: skip


def test_output_close_to_the_limit_is_not_counted_twice() -> None:
    rows = "{% for i in '" + "x" * 1500 + "' %}<tr><td>{{ loop.index }}</td><td>Ольга"
    rows += "·" * 950 + "</td></tr>"
    nested = "{% for j in 'ab' %}<i>{{ j }}</i>{% endfor %}{% endfor %}"
    rendered = _render(rows + nested)  # 1,500 rows of 1,000 characters: 1.5 MB, under 2 MB
    assert len(rendered) > 1_000_000 and rendered.count("<tr>") == 1500
    rendered = _render(("<p>" + "z" * 999 + "</p>{{ 'é' * 3 }}") * 1500)
    assert len(rendered) == 1500 * 1009
    # A macro may write more than one value may hold: it is output, counted as such.
    table = "{% macro table() %}{% for i in '" + "x" * 1500 + "' %}<tr>" + "ß" * 200
    rendered = _render(table + "</tr>{% endfor %}{% endmacro %}{{ table() }}")
    assert len(rendered) == 1500 * 209


def test_a_campaign_template_over_a_limit_does_not_compile() -> None:
    with pytest.raises(TemplateError) as refused:
        compile_campaign(
            subject="Hi", html=THIRTY_MILLION, text="", account_name="Shop", postal_address="1 Rd"
        )
    assert str(refused.value) == f"HTML body: {REFUSAL}"


def test_saving_over_http_is_refused_with_the_limit_and_memory_does_not_jump(
    app: Any, client: Any, db: Any
) -> None:
    setup = campaign_with(["zoe@example.org"])
    login(client, setup.tenant.email)
    client.get(f"/campaigns/{setup.campaign_id}/edit")  # warm up the page's own imports
    form = {
        "name": "Spring",
        "subject": "Hello {{ contact.first_name }}",
        "from_name": "Shop",
        "from_email": "news@shop.example",
        "html_body": THIRTY_MILLION,
        "list_ids": [str(setup.list_id)],
        "best_hour_start": "",
        "best_hour_end": "12",
    }
    before, peak = _rss_bytes(), resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    response = client.post(f"/campaigns/{setup.campaign_id}/edit", data=form)
    grown = _rss_bytes() - before
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - peak < 20 * 1024  # KiB
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    assert "The template makes a string of 30,000,000 characters; the limit is 100,000." in page
    assert grown < 20 * 2**20, f"the worker grew by {grown / 2**20:.0f} MB"
    campaign = services.get_campaign(setup.tenant.account_id, setup.campaign_id)
    assert campaign.html_body != THIRTY_MILLION

    template = client.post(
        "/templates/new",
        data={"name": "Ольга", "subject": "Hi", "html_body": '{{ "x"|center(30000000) }}'},
    )
    assert template.status_code == 200
    assert "width of 30,000,000; the limit is 100,000" in template.get_data(as_text=True)


def test_saving_through_the_service_names_the_limit(app: Any, db: Any) -> None:
    setup = campaign_with([])
    with pytest.raises(ValidationError) as refused:
        template_library.save_template(
            setup.tenant.account_id,
            template_id=None,
            name="Big",
            subject="{{ 9 ** 9999999 }}",
            html_body="<p>Hi</p>",
        )
    assert "subject: The template makes a number of about" in refused.value.message


def test_a_contact_whose_data_goes_over_a_limit_fails_alone(
    app: Any, db: Any, smtp_sink: Any
) -> None:
    tenant = make_tenant()
    senders.add_sender(tenant.account_id, "news@shop.example", "Shop", verified=True)
    news = subscribers.create_list(tenant.account_id, "Fans")
    stars = {"zoe@example.org": 3, "olga@example.org": 5, "greedy@example.org": 30_000_000}
    for address, count in stars.items():
        subscribers.add_contact_to_list(
            tenant.account_id, news.id, address, name="Zoë Ñúñez", attributes={"stars": count}
        )
    campaign = services.save_campaign(
        tenant.account_id,
        campaign_id=None,
        name="Stars",
        subject="Your stars",
        from_name="Shop",
        from_email="news@shop.example",
        html_body="<p>{{ '★' * (contact.attributes.stars or 1) }}</p>",
        list_ids=[news.id],
    )
    services.start(tenant.account_id, campaign.id)
    drain(app)

    received = {r.recipients[0]: r for r in smtp_sink.wait_for(2)}
    assert sorted(received) == ["olga@example.org", "zoe@example.org"]
    assert "★★★★★" in html_of(received["olga@example.org"].data)
    rows = db.execute(
        select(Contact.email, Message.status, Message.error)
        .join(Contact, Contact.id == Message.contact_id)
        .where(Message.campaign_id == campaign.id)
    ).all()
    states = {email: (status, error) for email, status, error in rows}
    assert states["greedy@example.org"] == (
        "failed",
        "the template went over a limit for this contact: "
        "The template makes a string of 30,000,000 characters; the limit is 100,000.",
    )
    db.expire_all()
    sent = db.get(Campaign, campaign.id)
    assert sent is not None and sent.status == "sent"


def test_a_campaign_whose_template_goes_over_a_limit_is_paused_with_the_reason(
    app: Any, db: Any, smtp_sink: Any
) -> None:
    setup = campaign_with(["zoe@example.org", "olga@example.org"])
    # Saved before the limits existed: written straight into the database.
    db.execute(
        update(Campaign).where(Campaign.id == setup.campaign_id).values(html_body=THIRTY_MILLION)
    )
    db.commit()
    services.start(setup.tenant.account_id, setup.campaign_id)
    drain(app)

    assert smtp_sink.messages == []
    db.expire_all()
    campaign = db.get(Campaign, setup.campaign_id)
    assert campaign is not None and campaign.status == "paused"
    assert campaign.pause_reason == f"The templates do not render: HTML body: {REFUSAL}"
    statuses = db.scalars(
        select(Message.status).where(Message.campaign_id == setup.campaign_id)
    ).all()
    assert sorted(statuses) == ["pending", "pending"]


_WORKER = textwrap.dedent(
    """
    import resource, sys
    resource.setrlimit(resource.RLIMIT_AS, (512 * 2**20, 512 * 2**20))
    from campaigns.render import SANDBOX
    from campaigns.sandbox import TemplateLimitError, render_limited
    render_limited(SANDBOX.from_string("{{ 'warm' * 2 }}{% for c in 'ab' %}{% endfor %}"), {})
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    for source in sys.argv[1:]:
        try:
            render_limited(SANDBOX.from_string(source), {})
        except TemplateLimitError as exc:
            print("refused:", exc)
    print("alive:", render_limited(SANDBOX.from_string("{{ 'Zoë' * 2 }}"), {}))
    print("peak grew by KiB:", resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - peak)
    """
)


def test_a_worker_under_a_memory_limit_survives_hostile_templates() -> None:
    hostile = [
        '{{ "x" * 30000000 }}',
        '{{ "x" * 3000000000 }}',  # 3 GB: MemoryError under 512 MB without the limits
        "{{ 7 ** 999999999 }}",
        '{% set a = "x" * 90000 %}{% set s %}{% for i in a %}{{ a }}{% endfor %}{% endset %}',
    ]
    done = subprocess.run(
        [sys.executable, "-c", _WORKER, *hostile],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "MemoryError" not in done.stderr
    *lines, peak = done.stdout.splitlines()
    # The peak, not the memory after: a string made and freed would show here.
    assert int(peak.removeprefix("peak grew by KiB: ")) < 10 * 1024, peak
    assert lines == [
        f"refused: {REFUSAL}",
        "refused: The template makes a string of 3,000,000,000 characters; the limit is 100,000.",
        "refused: The template makes a number of about 845,098,039 digits; the limit is 4,300.",
        "refused: The template writes more than 2,000,000 characters; that is the limit.",
        "alive: ZoëZoë",
    ]


def test_without_the_limits_the_same_worker_dies() -> None:
    """The control for the test above: the plain sandbox under the same memory limit."""
    script = textwrap.dedent(
        """
        import resource
        resource.setrlimit(resource.RLIMIT_AS, (512 * 2**20, 512 * 2**20))
        from jinja2.sandbox import ImmutableSandboxedEnvironment
        ImmutableSandboxedEnvironment().from_string('{{ "x" * 3000000000 }}').render()
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode != 0 and "MemoryError" in done.stderr


def _wait_for_status(campaign_id: int, wanted: str, worker: Any, log: Path) -> Campaign:
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        core_db.session.expire_all()
        campaign = core_db.session.get(Campaign, campaign_id)
        core_db.session.rollback()
        if campaign is not None and campaign.status == wanted:
            return campaign
        assert worker.alive(), log.read_text()[-3000:]
        time.sleep(0.3)
    raise AssertionError(f"campaign {campaign_id} not {wanted}:\n{log.read_text()[-3000:]}")


@pytest.mark.redis
def test_a_real_worker_under_a_memory_limit_fails_the_campaign_and_sends_the_next(
    app_factory: Any, database_url: str, smtp_sink: Any, tmp_path: Path
) -> None:
    """The acceptance test of issue 15: a ``dramatiq core.worker`` limited to 600 MB of address
    space (where building the 3 GB string would raise MemoryError) is sent a campaign whose
    template builds it, and a contact whose data would; the campaign stops with the reason,
    the contact fails alone, and the same process then sends the next campaign."""
    services_available.require("redis")
    own = OwnRedis().start()
    namespace = f"rlimit-{secrets.token_hex(3)}"
    app = app_factory(REDIS_URL=own.url, REDIS_NAMESPACE=namespace)
    env = worker_env_like_tests(database_url, own.url, namespace, smtp_sink.url, tmp_path)
    env["MALLOC_ARENA_MAX"] = "2"  # each thread's malloc arena would reserve 64 MB of the limit
    log = tmp_path / "worker.log"
    worker = Worker(env, log, threads=2, memory_limit=600 * 2**20).start()
    try:
        assert worker.process is not None
        limits = Path(f"/proc/{worker.process.pid}/limits").read_text()
        assert re.search(r"Max address space\s+629145600\s+629145600", limits), limits
        with app.app_context():
            hostile = campaign_with(["zoe@example.org", "olga@example.org"])
            # Saved before the limits existed: written straight into the database.
            core_db.session.execute(
                update(Campaign)
                .where(Campaign.id == hostile.campaign_id)
                .values(html_body='<p>{{ "x" * 3000000000 }}</p>')
            )
            core_db.session.commit()
            services.start(hostile.tenant.account_id, hostile.campaign_id)
            paused = _wait_for_status(hostile.campaign_id, "paused", worker, log)
            assert paused.pause_reason == (
                "The templates do not render: HTML body: The template makes a string of "
                "3,000,000,000 characters; the limit is 100,000."
            )
            assert smtp_sink.messages == []

            news = subscribers.create_list(hostile.tenant.account_id, "Stars")
            for address, count in {"ada@example.net": 3, "greedy@example.org": 3 * 10**9}.items():
                subscribers.add_contact_to_list(
                    hostile.tenant.account_id, news.id, address, attributes={"stars": count}
                )
            following = services.save_campaign(
                hostile.tenant.account_id,
                campaign_id=None,
                name="Next",
                subject="Your stars",
                from_name="Shop",
                from_email="news@shop.example",
                html_body="<p>{{ '★' * (contact.attributes.stars or 1) }}</p>",
                list_ids=[news.id],
            )
            services.start(hostile.tenant.account_id, following.id)
            _wait_for_status(following.id, "sent", worker, log)
            [received] = smtp_sink.wait_for(1)
            assert received.recipients == ["ada@example.net"]
            assert "★★★" in html_of(received.data)
            errors = core_db.session.scalars(
                select(Message.error).where(
                    Message.campaign_id == following.id, Message.status == "failed"
                )
            ).all()
            assert errors == [
                "the template went over a limit for this contact: The template makes a string "
                "of 3,000,000,000 characters; the limit is 100,000."
            ]
            assert worker.alive()
        assert "MemoryError" not in log.read_text()
    finally:
        worker.stop()
        own.kill()
