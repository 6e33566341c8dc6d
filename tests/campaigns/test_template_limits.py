"""Templates are bounded in time, memory and output: a hostile template is refused on save
with a clear message, fails (or pauses) only what it belongs to at send time, and never takes
the worker down."""

from __future__ import annotations

import os
import resource
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select, update

from campaigns import senders, services, template_library
from campaigns.models import Campaign, Message
from campaigns.render import SANDBOX, SANDBOX_TEXT, TemplateError, compile_campaign
from campaigns.sandbox import Limits, TemplateLimitError, render_limited
from core.errors import ValidationError
from subscribers import services as subscribers
from subscribers.models import Contact
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
        # 2^40 macro calls without a loop.
        (
            "{% macro f(n) %}{% if n %}{{ f(n - 1) }}{{ f(n - 1) }}{% endif %}{% endmacro %}"
            "{{ f(40) }}",
            "runs more than 100,000 loop steps and calls",
        ),
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


def test_time_is_bounded_without_signals() -> None:
    source = "{% macro f(n) %}{% if n %}{{ f(n - 1) }}{{ f(n - 1) }}{% endif %}{% endmacro %}"
    limits = Limits(steps=10**9, seconds=0.2)
    with pytest.raises(TemplateLimitError, match=r"takes longer than 0\.2 seconds to render"):
        _render(source + "{{ f(40) }}", limits)


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
