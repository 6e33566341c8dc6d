"""Every page a person uses, crawled in Chromium: zero axe-core (WCAG 2.1 A/AA) violations at
1280 px, no sideways scrolling and no cut-off controls at 390 px, no 404 for any resource.

The crawl starts from the pages reached by a link in an email (tokens) and from the dashboard,
then follows every same-site link it finds, once per endpoint (and settings tab). The url_map is
the list of what must be covered: a new GET page that no crawl reaches fails the test by name,
unless it is in EXCLUDED with the reason it is not an HTML page."""

from __future__ import annotations

import io
import re
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pyotp
import pytest
from flask import Flask
from sqlalchemy import select

from accounts import roles, twofactor
from accounts import services as accounts
from accounts.models import User
from campaigns import senders, template_library
from campaigns import services as campaigns
from core import db as core_db
from core.auth import Audience, access_of
from core.permissions import ALL, Permission
from privacy import services as privacy
from subscribers import services as subscribers
from subscribers.models import MailingList
from tests.browser.a11y import (
    assert_fits,
    assert_no_axe_violations,
    axe_violations,
    format_violations,
    layout_problems,
)
from tests.browser.conftest import LiveServer, screenshot
from tests.factories import PASSWORD, make_campaign, make_tenant
from tests.mail_parsing import path_of
from tests.smtp_sink import SMTPSink

pytestmark = pytest.mark.browser

#: GET endpoints that are not pages a person reads, each with the reason.
EXCLUDED = {
    "static": "CSS, scripts and the icon: files, not pages",
    "subscribers.static": "the segment builder's script: a file, not a page",
    "favicon": "the icon itself (the crawl checks it is served to every page)",
    "tracking.beacon": "the open-tracking pixel, an image",
    "tracking.click": "a redirect to the link's destination",
    "accounts.sso_callback": "a redirect from the identity provider (test_sso_flow.py)",
    "tracking.honeypot": "a plain-text answer for link scanners",
    "tracking.report_csv": "CSV download",
    "campaigns.failed_csv": "CSV download of the failed recipients and their reasons",
    "campaigns.before_sending": "a part of the campaign page, which fetches it in a large "
    "account (test_send_confirmation_flow.py checks it there)",
    "subscribers.list_export": "CSV/JSON download",
    "subscribers.segment_export": "CSV/JSON download",
    "subscribers.import_report": "CSV download of the import's errors",
    "subscribers.import_status": "JSON polled by the import progress bar",
    "campaigns.progress": "JSON polled by the sending progress bar",
    "campaigns.preview": "the author's own email HTML, shown in the editor's sandboxed frame",
    "accounts.index": "redirects to the dashboard or the login page",
    "media.static": "the media page's upload script: a file, not a page",
    "campaigns.static": "the gallery's thumbnails and the layouts' images: files, not pages",
    "media.list_json": "JSON of the account's images, read by the editors",
    "media.public_image": "an image in an email (or its thumbnail), not a page",
    "api.v1.openapi_document": "the API's OpenAPI document (JSON)",
    "api.v1.reference_asset": "the reference page's vendored Swagger UI files",
    "api.v1.reference": "the vendored Swagger UI (third-party); tests/api checks it loads, from "
    "our origin only",
}

#: Pages saved as screenshots at both widths, by the key the crawl counts them under.
SCREENSHOTS = {
    "subscribers.lists": "lists",
    "subscribers.list_detail": "list-detail",
    "campaigns.sending": "sending",
    "campaigns.detail": "campaign",
    "tracking.report": "report",
    "subscribers.preferences": "public-preferences",
    "privacy.request_form": "public-data-request",
    "accounts.login": "public-login",
}
WIDE = {"width": 1280, "height": 900}
NARROW = {"width": 390, "height": 844}
TWO_FACTOR_EMAIL = "guard@example.tr"
PEOPLE = [
    ("zoe@example.org", "Zoë Ñúñez"),
    ("li@example.cn", "李小龍"),
    ("olga@example.ru", "Ольга"),
]


def get_page_endpoints(app: Flask) -> set[str]:
    """Every endpoint answering GET, from the url_map (new routes appear here by themselves),
    but the API's operations: JSON for code, taking a key, never a page (tests/api)."""
    return {
        rule.endpoint
        for rule in app.url_map.iter_rules()
        if "GET" in (rule.methods or ())
        and getattr(access_of(app.view_functions[rule.endpoint]), "audience", None)
        is not Audience.API_KEY
    }


def uncovered_pages(app: Flask, covered: set[str]) -> list[str]:
    """GET endpoints neither covered by a crawl nor excluded, by name."""
    return sorted(get_page_endpoints(app) - covered - set(EXCLUDED))


@dataclass
class Seeded:
    """What the crawl needs besides the dashboard: the pages only a link in an email reaches."""

    owner_email: str
    access_confirm: str
    signup_form: str
    signup_confirm: str
    unsubscribe: str
    public_paths: list[str] = field(default_factory=list)
    member_paths: list[str] = field(default_factory=list)


def _link(smtp_sink: SMTPSink, address: str, marker: str, timeout: float = 15.0) -> str:
    """The path of the newest link containing ``marker`` in a message to ``address``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for received in reversed(smtp_sink.to(address)):
            for part in received.message.walk():
                if part.get_content_maintype() != "text":
                    continue
                for url in re.findall(r"https?://[^\s\"'<>]+", part.get_content()):
                    if marker in url:
                        return path_of(url.replace("&amp;", "&"))
        time.sleep(0.05)
    raise AssertionError(f"no {marker} link for {address}")


def seed(app: Flask, smtp_sink: SMTPSink) -> Seeded:
    """An account with lists, contacts, a segment, a sent campaign, a draft, a template,
    imports (one waiting for its mapping, one done), senders and data requests; its owner is
    also a platform operator."""
    app.config["DATA_REQUEST_EMAIL_WINDOW"] = 0
    with app.app_context():
        tenant = make_tenant(
            "owner@cafe-olga.example", "Café Ольга & Zoë", "Calle Ñandú 1, Sevilla"
        )
        owner = core_db.session.get(User, tenant.user_id)
        assert owner is not None
        owner.is_platform_admin = True
        core_db.session.commit()
        account_id = tenant.account_id
        senders.add_sender(account_id, "news@cafe-olga.example", "Café Ольга", verified=True)
        senders.add_sender(account_id, "hola@cafe-olga.example", "Zoë")  # awaits confirmation

        news = subscribers.create_list(account_id, "Новости <b>& offers</b>", "Weekly, 每周")
        subscribers.set_signup_form(account_id, news.id, True)
        for address, name in PEOPLE:
            subscribers.add_contact_to_list(account_id, news.id, address, name, {"city": "Zürich"})
        subscribers.create_list(account_id, "Empty list")
        subscribers.save_segment(
            account_id,
            None,
            "Zürich readers",
            "all",
            [{"field": "attribute", "key": "city", "op": "equals", "value": "Zürich"}],
        )
        template_library.save_template(
            account_id,
            template_id=None,
            name="Monthly letter",
            subject="Hola {{ contact.first_name }}",
            html_body="<html><body><p>Hola {{ contact.first_name }}</p></body></html>",
        )
        # An image, so the Media page shows its grid (the thumbnail must load: no 404).
        from media import services as media_services
        from tests.media.images import png

        media_services.upload(account_id, tenant.user_id, "Café logo ☕.png", png(300, 120))
        sent_id = make_campaign(tenant, news.id, subject="Otoño 🍂 news")
        campaigns.start(account_id, sent_id)
        make_campaign(tenant, news.id, subject="Draft <script>alert(1)</script>")
        csv = "Email,Name\nana@example.pt,Ana Conceição\nnot-an-address,Broken\n".encode()
        waiting = subscribers.create_import(
            account_id, news.id, io.BytesIO(csv), "Контакты.csv", False
        )
        done = subscribers.create_import(account_id, news.id, io.BytesIO(csv), "ok.csv", False)
        subscribers.start_import(account_id, done.id, {"0": "email", "1": "name"}, False)
        signup_key = core_db.session.scalar(
            select(MailingList.signup_key).where(MailingList.id == news.id)
        )
        assert signup_key
        subscribers.request_signup(signup_key, "new@example.org", "Новый", None)
        accounts.request_password_reset(tenant.email)
        # An account's own role, so Team > Roles lists one and its edit page is reached.
        roles.save_role(account_id, ALL, None, "Analyst", [Permission.VIEW_REPORTS.value])
        # A person asks for a correction, which the account is told about; another asks for
        # access and has not confirmed yet.
        privacy.submit_request("olga@example.ru", "rectify", None, {"new_name": "Ольга Петрова"})
        privacy.submit_request("li@example.cn", "access", None)
        # A security incident the owner's account was notified of (operator and owner pages).
        from datetime import datetime

        from breaches import services as breaches

        incident = breaches.record_incident(
            tenant.user_id,
            title="Leaked replica credential <b>",
            what_happened="A replica credential leaked; contacts were read.",
            discovered_at=datetime(2026, 11, 19, 22, 15),
            data_categories="Contact addresses and names (Zoë, 李小龍).",
            consequences="Phishing of contacts is possible.",
            measures="The credential was revoked.",
        )
        breaches.select_accounts(tenant.user_id, incident.id, [account_id])
        breaches.send_notices(tenant.user_id, incident.id)
        # A person with two-factor on: the public crawl meets the login's second step.
        guarded = make_tenant(TWO_FACTOR_EMAIL, "Ölçü Güvenli A.Ş.")
        secret = twofactor.begin_enrolment(guarded.user_id).secret
        twofactor.confirm_enrolment(guarded.user_id, pyotp.TOTP(secret).now(), None)
        # A webhook endpoint whose test event failed (its page, log and retry button).
        from webhooks import endpoints as webhook_endpoints

        app.config["WEBHOOKS_ALLOW_PRIVATE_TARGETS"] = True
        hook = webhook_endpoints.create_endpoint(
            account_id, None, "http://127.0.0.1:9/envoy", ["message.sent"], "CRM — Zoë"
        )
        webhook_endpoints.send_test_event(account_id, hook.endpoint.id)
        other = make_tenant("owner@leaving.example", "Leaving Ltd")
        accounts.request_account_deletion(other.account_id, other.user_id, "owner")
        core_db.session.remove()
    for address, _name in PEOPLE:
        _link(smtp_sink, address, "/u/")
    with app.app_context():
        privacy.confirm_request(_link(smtp_sink, "olga@example.ru", "/privacy/confirm/")[17:])
        core_db.session.remove()
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        with app.app_context():
            finished = subscribers.get_import(account_id, done.id).status == "done"
            core_db.session.remove()
        if finished:
            break
        time.sleep(0.1)

    access_confirm = _link(smtp_sink, "li@example.cn", "/privacy/confirm/")
    signup_confirm = _link(smtp_sink, "new@example.org", "/subscribe/confirm/")
    unsubscribe = _link(smtp_sink, "zoe@example.org", "/u/")
    return Seeded(
        owner_email=tenant.email,
        access_confirm=access_confirm,
        signup_form=f"/subscribe/{signup_key}",
        signup_confirm=signup_confirm,
        unsubscribe=unsubscribe,
        public_paths=[
            "/login",
            "/privacy/request",
            f"/subscribe/{signup_key}",
            signup_confirm,
            unsubscribe,
            _link(smtp_sink, "zoe@example.org", "/preferences/"),
            access_confirm,
            _link(smtp_sink, tenant.email, "/password/reset/"),
            _link(smtp_sink, "owner@leaving.example", "/account/delete/confirm/"),
            _link(smtp_sink, "hola@cafe-olga.example", "/senders/confirm/"),
            # The answers to links that are broken or spent.
            "/u/not-a-token",
            "/preferences/not-a-token",
            "/privacy/confirm/not-a-token",
            "/subscribe/confirm/not-a-token",
            "/account/delete/confirm/not-a-token",
            "/senders/confirm/not-a-token",
            "/no-such-page",
        ],
        member_paths=[
            "/dashboard",
            f"/campaigns/{sent_id}",
            f"/imports/{waiting.id}",
            f"/imports/{done.id}",
            "/account/reactivate",
            "/no-such-page",
        ],
    )


@dataclass
class Crawl:
    """Visits pages once per endpoint (and tab), checking each; collects what went wrong."""

    app: Flask
    base: str
    page: Any
    name: str
    covered: set[str]
    problems: list[str] = field(default_factory=list)
    missing_resources: list[str] = field(default_factory=list)
    seen: set[str] = field(default_factory=set)
    shot: set[str] = field(default_factory=set)

    def __post_init__(self) -> None:
        self.page.on("response", self._response)

    def _response(self, response: Any) -> None:
        if response.status == 404 and response.request.resource_type != "document":
            self.missing_resources.append(f"{response.url} (on {self.page.url})")

    def endpoint(self, url: str) -> tuple[str | None, str]:
        """The endpoint a same-site URL routes to, and the key under which it counts as seen."""
        parts = urlsplit(url)
        if f"{parts.scheme}://{parts.netloc}" != self.base:
            return None, ""
        adapter = self.app.url_map.bind("127.0.0.1")
        try:
            endpoint, _args = adapter.match(parts.path, method="GET")
        except Exception:
            return None, f"404:{parts.path}"
        tab = parse_qs(parts.query).get("tab", [""])[0]
        return str(endpoint), f"{endpoint}?tab={tab}" if tab else str(endpoint)

    def check(self, what: str = "") -> None:
        """Check the page as loaded: axe at 1280 px, then the layout at 390 px."""
        self.page.wait_for_load_state("networkidle")
        endpoint, key = self.endpoint(self.page.url)
        self.seen.add(key)
        if endpoint is not None:
            self.covered.add(endpoint)
        label = f"{self.name} {key or self.page.url}{what}"
        self.page.set_viewport_size(WIDE)
        shot = SCREENSHOTS.get(key) if not what and key not in self.shot else None
        if shot:
            self.shot.add(key)
            screenshot(self.page, f"a11y-{shot}-1280")
        violations = axe_violations(self.page)
        if violations:
            self.problems.append(format_violations(label, violations))
        self.page.set_viewport_size(NARROW)
        narrow = layout_problems(self.page, NARROW["width"])
        if narrow:
            self.problems.append(f"{label} at 390 px: " + "; ".join(narrow))
        if shot:
            screenshot(self.page, f"a11y-{shot}-390")

    def submit(self, button: str, what: str) -> None:
        """Press a form's button on the current page and check the page it leads to."""
        self.page.set_viewport_size(WIDE)
        self.page.click(button)
        self.check(f" ({what})")

    def visit(self, path: str) -> None:
        """Load ``path``, check it at both widths, then follow its links to unseen pages."""
        queue = [self.base + path]
        forced = True  # a start path is always checked (e.g. a link problem page)
        while queue:
            url = queue.pop(0)
            endpoint, key = self.endpoint(url)
            if not forced and (key in self.seen or endpoint in EXCLUDED):
                continue
            self.seen.add(key)
            self.page.set_viewport_size(WIDE)
            response = self.page.goto(url)
            status = response.status if response is not None else 0
            if status >= 500 or (status == 404 and not forced):
                self.problems.append(f"{self.name} {key}: answered {status} (from a link)")
            forced = False
            self.check()
            hrefs = self.page.eval_on_selector_all(
                "a[href]:not([download])", "links => links.map(a => a.href)"
            )
            for href in hrefs:
                href = href.split("#")[0]
                if self.endpoint(href)[1] not in self.seen:
                    queue.append(href)


def test_every_page_is_accessible_and_fits_a_phone(
    live_server: LiveServer, browser: Any, smtp_sink: SMTPSink
) -> None:
    app = live_server.app
    seeded = seed(app, smtp_sink)
    covered: set[str] = set()
    crawls = []

    visitor = browser.new_context(viewport=WIDE)
    public = Crawl(app, live_server.url, visitor.new_page(), "public", covered)
    for path in seeded.public_paths:
        public.visit(path)
    # The pages that answer a form, as a person reaches them.
    public.page.goto(live_server.url + "/privacy/request")
    public.submit("button[type=submit]", "form errors")
    public.page.fill("#email", "Ольга@example.ru")
    public.page.check("input[name=kind][value=access]")
    public.submit("button[type=submit]", "check your inbox")
    public.page.goto(live_server.url + seeded.access_confirm)
    public.submit("#confirm-request", "access report")
    public.page.goto(live_server.url + seeded.signup_form)
    public.page.fill("#email", "not an address")
    public.submit("button:has-text('Subscribe')", "form errors")
    public.page.fill("#email", "小龍@example.cn")
    public.submit("button:has-text('Subscribe')", "check your inbox")
    public.page.goto(live_server.url + seeded.signup_confirm)
    public.submit("button:has-text('Yes, subscribe me')", "subscribed")
    public.page.goto(live_server.url + seeded.unsubscribe)
    public.submit("form button[type=submit]", "unsubscribed")
    public.page.goto(live_server.url + "/login")
    public.page.fill("#email", TWO_FACTOR_EMAIL)
    public.page.fill("#password", PASSWORD)
    public.submit("button[type=submit]", "second step")
    public.page.fill("#code", "000000")
    public.submit("button[type=submit]", "wrong code")
    crawls.append(public)
    visitor.close()

    marketer = browser.new_context(viewport=WIDE)
    member = Crawl(app, live_server.url, marketer.new_page(), "member", covered)
    member.page.goto(f"{live_server.url}/login")
    member.page.fill("#email", seeded.owner_email)
    member.page.fill("#password", PASSWORD)
    member.page.click("button[type=submit]")
    member.page.wait_for_url(re.compile(r".*/dashboard"))
    for path in seeded.member_paths:
        member.visit(path)
    crawls.append(member)
    marketer.close()

    problems = [problem for crawl in crawls for problem in crawl.problems]
    assert not problems, "\n\n".join(problems)
    missing = [resource for crawl in crawls for resource in crawl.missing_resources]
    assert not missing, "resources answered 404:\n" + "\n".join(missing)
    uncovered = uncovered_pages(app, covered)
    assert not uncovered, (
        "GET pages no crawl reached; seed data or a start path for them in this file, "
        f"or exclude them with a reason if they are not HTML pages: {uncovered}"
    )
    seen = {key for crawl in crawls for key in crawl.seen}
    for tab in ("general", "privacy", "advanced"):
        assert f"accounts.settings?tab={tab}" in seen
    assert len(covered) >= 40, sorted(covered)


def test_exclusions_name_real_routes(app: Flask) -> None:
    """An exclusion for a route that no longer exists would hide nothing; keep the list true."""
    assert set(EXCLUDED) <= get_page_endpoints(app)


def test_a_new_page_route_is_reported_until_covered(app: Flask) -> None:
    everything_today = get_page_endpoints(app) - set(EXCLUDED)
    assert uncovered_pages(app, everything_today) == []
    app.add_url_rule("/campaigns/<int:campaign_id>/forecast", "campaigns.forecast", str)
    app.add_url_rule("/settings/holidays", "accounts.holidays", str, methods=["GET", "POST"])
    app.add_url_rule(
        "/campaigns/<int:campaign_id>/archive", "campaigns.archive", str, methods=["POST"]
    )
    assert uncovered_pages(app, everything_today) == [
        "accounts.holidays",
        "campaigns.forecast",
    ]


def test_navigation_is_one_line_wide_and_a_menu_on_a_phone(
    live_server: LiveServer, page: Any
) -> None:
    with live_server.app.app_context():
        tenant = make_tenant("olga@studio.example", "Студия Ольги & Zoë Ñúñez Ltd")
        owner = core_db.session.get(User, tenant.user_id)
        assert owner is not None
        owner.is_platform_admin = True  # the longest menu: every operator entry too
        core_db.session.commit()
    base = live_server.url
    page.goto(f"{base}/login")
    page.fill("#email", tenant.email)
    page.fill("#password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(re.compile(r".*/dashboard"))

    nav = page.locator("nav.mainnav")
    entries = page.locator("nav.mainnav a, .account > summary")
    assert entries.count() == 13  # 12 pages for an owner, and the account menu
    boxes = [entries.nth(i).bounding_box() for i in range(entries.count())]
    assert len({round(box["y"] + box["height"] / 2) for box in boxes}) == 1, "it wraps at 1280 px"
    assert nav.bounding_box()["height"] <= boxes[0]["height"] + 1, "the menu is one line high"
    assert page.locator(".topbar").bounding_box()["height"] <= 64
    assert page.evaluate("() => document.documentElement.scrollWidth") <= 1280
    assert page.locator("summary.menu-toggle").is_hidden()
    engine = page.locator("nav.operator a:has-text('Engine')")
    assert engine.is_hidden()
    page.click(".account > summary")
    assert engine.is_visible()
    assert page.locator("button:has-text('Log out')").is_visible()
    screenshot(page, "a11y-dashboard-1280-account-menu")
    assert_no_axe_violations(page, "dashboard at 1280 px, account menu open")
    page.click(".account > summary")
    screenshot(page, "a11y-dashboard-1280")

    page.set_viewport_size(NARROW)
    page.reload()
    toggle = page.locator("summary.menu-toggle")
    assert toggle.is_visible()
    links = nav.locator("a")
    assert links.first.is_hidden()
    header = page.locator(".topbar").bounding_box()
    assert header["height"] <= 64, "the closed menu takes one short bar"
    assert_fits(page, "dashboard")
    screenshot(page, "a11y-dashboard-390")
    toggle.click()
    assert page.locator("nav.mainnav a:has-text('Settings')").is_visible()
    page.click(".account > summary")
    assert page.locator("nav.operator a:has-text('Engine')").is_visible()
    assert page.locator("button:has-text('Log out')").is_visible()
    assert_fits(page, "dashboard, menu open")
    screenshot(page, "a11y-dashboard-390-menu")
    assert_no_axe_violations(page, "dashboard, menu open at 390 px")
    page.click("nav.mainnav a:has-text('Lists')")
    page.wait_for_url(re.compile(r".*/lists"))
    assert page.locator("summary.menu-toggle").is_visible()
    assert links.first.is_hidden(), "the menu closes on the next page"


def test_favicon_is_served(live_server: LiveServer, page: Any) -> None:
    response = page.goto(f"{live_server.url}/favicon.ico")
    assert response is not None and response.status == 200
    assert response.headers["content-type"].startswith("image/")
    page.goto(f"{live_server.url}/login")
    icon = page.get_attribute("link[rel=icon]", "href")
    assert icon
    served = page.goto(live_server.url + icon)
    assert served is not None and served.status == 200
    assert served.headers["content-type"].startswith("image/svg+xml")
