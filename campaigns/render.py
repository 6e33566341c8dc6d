"""Turning a campaign into one message per recipient, cheaply.

Once per campaign (:func:`compile_campaign`): links are found in the HTML, their ``href`` values
replaced by slot markers, the footer (postal address, unsubscribe link, beacon and the footer
extras) appended with markers of its own, and subject, HTML and text compiled as *sandboxed*
Jinja templates (:data:`SANDBOX`): they see the contact's fields and attributes and nothing
else. A body without personalisation is rendered once and only cut at the markers.

Per recipient (:func:`render_message`): the templates are rendered with the contact (when they
use it), the markers are filled with the signed URLs of this message (without ids in URLs,
the beacon and links are the same for everyone and were written into the template once, see
:meth:`CampaignView.html_part`), and the MIME message is
assembled as bytes directly (quoted-printable through :mod:`binascii`), which is an order of
magnitude faster than building an ``EmailMessage`` for a 20 KB body.
"""

from __future__ import annotations

import binascii
import hashlib
import hmac
import random
import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from email.header import Header
from email.utils import formatdate
from html import escape
from html.parser import HTMLParser
from typing import Any

import html2text
from jinja2 import TemplateSyntaxError, nodes
from jinja2.environment import Template
from jinja2.exceptions import SecurityError
from jinja2.sandbox import ImmutableSandboxedEnvironment

from campaigns.sandbox import LimitedSandbox, TemplateLimitError, render_limited
from core.addresses import (
    AddressError,
    WireAddress,
    ascii_domain,
    format_address,
    wire_address,
)
from privacy import reach
from subscribers.services import preference_test_url, preference_url_for_message
from tracking import urls

SLOT = "\x1f"  # never valid in HTML or text; marks where per-message values go


class TemplateError(ValueError):
    """A template that does not compile or render; ``str()`` says where and why."""


class RecipientError(ValueError):
    """A failure that belongs to one recipient's message (its personalisation, its address, its
    data): that message fails and the campaign goes on. ``str()`` is the reason to store and
    show; it never contains the recipient's address or name."""


#: What a marketer reads when the sandbox refuses a template (the exception's own wording names
#: Python internals, which help nobody writing an email).
SANDBOX_REFUSAL = (
    "the template uses something templates may not reach (only the contact's fields, the "
    "campaign's and the filters listed in the help)"
)


class PersonalisationError(TemplateError, RecipientError):
    """The templates raised while being rendered for one contact (any exception: a division
    by an attribute that is zero, a filter given the wrong type, a missing key...)."""


def _sandbox(autoescape: bool) -> ImmutableSandboxedEnvironment:
    env = LimitedSandbox(autoescape=autoescape, keep_trailing_newline=True)
    env.globals.clear()  # no range, lipsum, cycler, namespace...: only what we pass
    return env


#: Sandboxed environments, bounded in time, memory and output (:mod:`campaigns.sandbox`):
#: HTML autoescaped, subject and text not.
SANDBOX = _sandbox(autoescape=True)
SANDBOX_TEXT = _sandbox(autoescape=False)


class _LinkFinder(HTMLParser):
    """Finds the character span of every ``href`` value of an ``<a>`` tag."""

    def __init__(self, source: str) -> None:
        super().__init__(convert_charrefs=True)
        self.source = source
        # HTMLParser counts lines by "\n" only; so must we.
        self.line_offsets = [0] + [i + 1 for i, ch in enumerate(source) if ch == "\n"]
        self.spans: list[tuple[int, int, str]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag != "a":
            return
        href = dict(attrs).get("href")
        if not href or not href.strip().lower().startswith(("http://", "https://")):
            return
        if "{{" in href or "{%" in href:
            return  # a personalised destination: left as written, not tracked
        line, col = self.getpos()
        start = self.line_offsets[line - 1] + col
        tag_text = self.get_starttag_text() or ""
        raw_start = self._find_href_value(tag_text)
        if raw_start is None:
            return
        value_start, value_end = raw_start
        self.spans.append((start + value_start, start + value_end, href.strip()))

    @staticmethod
    def _find_href_value(tag_text: str) -> tuple[int, int] | None:
        lower = tag_text.lower()
        index = 0
        while True:
            index = lower.find("href", index)
            if index < 0:
                return None
            rest = index + 4
            while rest < len(tag_text) and tag_text[rest].isspace():
                rest += 1
            if (
                rest < len(tag_text)
                and tag_text[rest] == "="
                and (index == 0 or not lower[index - 1].isalnum())
            ):
                rest += 1
                while rest < len(tag_text) and tag_text[rest].isspace():
                    rest += 1
                quote = tag_text[rest] if rest < len(tag_text) else ""
                if quote in ("'", '"'):
                    end = tag_text.find(quote, rest + 1)
                    return (rest + 1, end) if end > 0 else None
                end = rest
                while end < len(tag_text) and not tag_text[end].isspace() and tag_text[end] != ">":
                    end += 1
                return rest, end
            index += 4


def _spans(html: str) -> list[tuple[int, int, str]]:
    finder = _LinkFinder(html)
    finder.feed(html)
    finder.close()
    return finder.spans


def find_links(html: str) -> list[str]:
    """The tracked http(s) destinations of the body's links, in order of appearance."""
    return [url for _, _, url in _spans(html)]


_JINJA_TAG = re.compile(r"{{.*?}}|{%.*?%}|{#.*?#}", re.S)


def _literal_source(text: str) -> str | None:
    """Jinja source that renders exactly ``text``: the text itself when it has no ``{``, else
    a raw block (``{#`` would open a comment); None when a raw block cannot hold it (``{%``)."""
    if "{" not in text:
        return text
    if "{%" in text:
        return None
    return "{% raw %}" + text + "{% endraw %}"


def text_from_html(html: str) -> str:
    """A plain-text alternative of an HTML template; its Jinja tags survive the conversion.

    A tracked link's destination is literal text, never template code (the HTML part slots it
    out), so it is written as :func:`_literal_source`.
    """
    tags: list[str] = []

    def protect(match: re.Match[str]) -> str:
        tags.append(match.group(0))
        return f"JINJATAG{len(tags) - 1}X"

    pieces: list[str] = []
    cursor = 0
    for start, end, url in _spans(html):
        literal = _literal_source(url)
        if literal is not None and literal != url:
            tags.append(literal)
            pieces += [html[cursor:start], f"JINJATAG{len(tags) - 1}X"]
            cursor = end
    pieces.append(html[cursor:])
    protected = "".join(_JINJA_TAG.sub(protect, piece) for piece in pieces)
    converter = html2text.HTML2Text()
    converter.body_width = 78
    # Email bodies lay out with tables (MJML, the theme, most hand-written HTML): their cells
    # are text to read in order, not a grid of pipes.
    converter.ignore_tables = True
    text = converter.handle(protected)
    return re.sub(r"JINJATAG(\d+)X", lambda m: tags[int(m.group(1))], text)


def _is_static(env: ImmutableSandboxedEnvironment, source: str) -> bool:
    tree = env.parse(source)
    return all(
        isinstance(node, nodes.Output)
        and all(isinstance(c, nodes.TemplateData) for c in node.nodes)
        for node in tree.body
    )


def _insert_before_body_end(pieces: list[str], footer: list[str]) -> list[str]:
    """``pieces`` (literal, slot, literal, ...) with ``footer`` put before the last </body>."""
    for index in range(len(pieces) - 1, -1, -2):
        close = pieces[index].lower().rfind("</body>")
        if close >= 0:
            literal = pieces[index]
            head = [*footer]
            head[0] = literal[:close] + head[0]
            head[-1] = head[-1] + literal[close:]
            return [*pieces[:index], *head, *pieces[index + 1 :]]
    joined = [*pieces]
    joined[-1] += footer[0]
    return [*joined, *footer[1:]]


@dataclass(frozen=True)
class CompiledPart:
    """A template whose output is cut at :data:`SLOT` markers, and the footer to add to it.

    ``static`` holds the finished pieces when the template uses no contact data.
    """

    template: Template
    footer: list[str]
    at_body_end: bool
    static: list[str] | None
    #: The (slotted) template source and its environment, to compile a specialised copy.
    source: str = ""
    env: ImmutableSandboxedEnvironment | None = None

    def with_constants(self, values: dict[str, str]) -> CompiledPart:
        """This part with the slots in ``values`` written into its source and footer (as
        :func:`_literal_source`), compiled again: those are then rendered as template text
        instead of being filled per message. A value no raw block can hold stays a slot."""
        literals = {SLOT + name + SLOT: _literal_source(value) for name, value in values.items()}
        safe = {marker: literal for marker, literal in literals.items() if literal is not None}
        if not safe or self.env is None:
            return self
        source, footer = self.source, SLOT.join(self.footer)
        for marker, literal in safe.items():
            source = source.replace(marker, literal)
            footer = footer.replace(marker, literal)
        return _compile(self.env, source, "specialised part", footer, self.at_body_end)

    def pieces(self, context: dict[str, Any]) -> list[str]:
        """The output cut at the markers: literal, slot name, literal, slot name, ..."""
        if self.static is not None:
            return self.static
        try:
            rendered = render_limited(self.template, context)
        except TemplateLimitError as exc:
            raise PersonalisationError(
                f"the template went over a limit for this contact: {exc}"
            ) from exc
        except SecurityError as exc:
            raise PersonalisationError(SANDBOX_REFUSAL) from exc
        except Exception as exc:  # any error of the sandboxed template belongs to this contact
            raise PersonalisationError(
                f"the personalisation failed for this contact ({type(exc).__name__}: {exc})"
            ) from exc
        return self._finish(rendered.split(SLOT))

    def _finish(self, pieces: list[str]) -> list[str]:
        if self.at_body_end:
            return _insert_before_body_end(pieces, self.footer)
        joined = [*pieces]
        joined[-1] += self.footer[0]
        return [*joined, *self.footer[1:]]


def _compile(
    env: ImmutableSandboxedEnvironment, source: str, what: str, footer: str = "", html: bool = False
) -> CompiledPart:
    try:
        template = env.from_string(source)
        part = CompiledPart(template, footer.split(SLOT), html, None, source, env)
        if _is_static(env, source):
            static = part._finish(render_limited(template, {}).split(SLOT))
            part = CompiledPart(template, part.footer, html, static, source, env)
        else:
            _probe(template)
    except TemplateSyntaxError as exc:
        raise TemplateError(f"{what}, line {exc.lineno}: {exc.message}") from exc
    except TemplateLimitError as exc:
        raise TemplateError(f"{what}: {exc}") from exc
    except SecurityError as exc:
        raise TemplateError(f"{what}: {SANDBOX_REFUSAL}") from exc
    return part


def _footer_html(account_name: str, postal_address: str) -> str:
    address_html = escape(postal_address).replace("\n", "<br>")
    return (
        '<div style="margin-top:32px;font-size:12px;color:#666">'
        f"<p>{escape(account_name)}<br>{address_html}</p>"
        f'<p><a href="{SLOT}unsubscribe{SLOT}">Unsubscribe</a> from these emails.</p>'
        f"{SLOT}beacon{SLOT}{SLOT}extras{SLOT}</div>"
    )


@dataclass(frozen=True)
class CompiledCampaign:
    """Everything about a campaign's message that does not depend on the recipient."""

    subject: CompiledPart
    html: CompiledPart
    text: CompiledPart
    links: list[str]
    uses_contact: bool


def compile_campaign(
    *, subject: str, html: str, text: str, account_name: str, postal_address: str
) -> CompiledCampaign:
    """Compile the campaign's templates once; raise TemplateError on a broken one.

    An empty ``text`` is generated from the HTML.
    """
    if "\x1f" in html or "\x1f" in text or "\x1f" in subject:
        raise TemplateError("the body contains a control character (0x1F)")
    spans = _spans(html)
    pieces: list[str] = []
    cursor = 0
    for index, (start, end, _url) in enumerate(spans):
        pieces.append(html[cursor:start])
        pieces.append(f"{SLOT}link{index}{SLOT}")
        cursor = end
    pieces.append(html[cursor:])
    slotted = "".join(pieces)
    text_source = text if text.strip() else text_from_html(html)
    text_footer = (
        f"\n\n--\n{account_name}\n{postal_address}\n\nUnsubscribe: {SLOT}unsubscribe{SLOT}\n"
        f"{SLOT}extras{SLOT}"
    )
    compiled_html = _compile(
        SANDBOX, slotted, "HTML body", _footer_html(account_name, postal_address), html=True
    )
    compiled_text = _compile(SANDBOX_TEXT, text_source.rstrip(), "text body", text_footer)
    compiled_subject = _compile(SANDBOX_TEXT, subject, "subject")
    return CompiledCampaign(
        subject=compiled_subject,
        html=compiled_html,
        text=compiled_text,
        links=[url for _, _, url in spans],
        uses_contact=any(
            part.static is None for part in (compiled_html, compiled_text, compiled_subject)
        ),
    )


@dataclass(frozen=True)
class Recipient:
    """The contact data a message may use: the only data templates see."""

    message_id: int
    email: str
    name: str
    attributes: dict[str, Any] = field(default_factory=dict)

    def context(self) -> dict[str, Any]:
        """The template context: ``contact.email``, ``contact.name``, ``contact.attributes``,
        and ``data``: empty here, a transactional message's data when it is sent (so one
        stored template serves campaigns and transactional mail)."""
        first = self.name.split()[0] if self.name.strip() else ""
        contact = {
            "email": self.email,
            "name": self.name,
            "first_name": first,
            "attributes": dict(self.attributes),
        }
        return {"contact": contact, "attributes": contact["attributes"], "data": {}}


#: The contact a personalised template is tried with when compiled.
SAMPLE_RECIPIENT = Recipient(0, "sample@example.org", "Sample Person", {})


def _probe(template: Template) -> None:
    """Render ``template`` for :data:`SAMPLE_RECIPIENT`: a limit it goes over for such a plain
    contact is the template's own (it would for everyone), raised as TemplateLimitError. Any
    other error may depend on the contact's data and is left to each message."""
    try:
        render_limited(template, SAMPLE_RECIPIENT.context())
    except TemplateLimitError:
        raise
    except Exception:  # noqa: S110 - data-dependent: reported per message
        pass


@dataclass(frozen=True)
class Signing:
    """A DKIM signer's ``sign(bytes) -> bytes``, or None."""

    sign: Callable[[bytes], bytes] | None = None


@dataclass
class CampaignView:
    """What rendering needs of a campaign, read once per batch (and cached per worker)."""

    campaign_id: int
    from_name: str
    from_email: str
    reply_to: str
    account_name: str
    identify_in_urls: bool
    track_opens: bool
    track_clicks: bool
    link_ids: list[int]
    compiled: CompiledCampaign
    message_id_domain: str
    return_path: str = ""
    dkim: Signing = field(default_factory=Signing)
    # A test send: links go through the tracking redirect marked as a test (they land and
    # record nothing), the unsubscribe and preference links open test pages, no beacon and no
    # honeypot.
    test: bool = False
    # Anonymous URLs are the same in every message: signed once per campaign.
    _anonymous_urls: dict[str, str] = field(default_factory=dict)
    _escaped: dict[str, str] = field(default_factory=dict)
    _html: CompiledPart | None = None
    _sender: tuple[bytes, bytes, str] | None = None

    def sender_headers(self) -> tuple[bytes, bytes, str]:
        """(the From header, the Reply-To header or b"", the envelope sender without VERP),
        written once per worker: IDN domains in A-labels, the name as :func:`format_address`
        writes it."""
        if self._sender is None:
            sender = _sender_address(self.from_email)
            reply_to = b""
            if self.reply_to:
                reply_to = _raw_header("Reply-To", _sender_address(self.reply_to).header)
            self._sender = (
                _raw_header("From", format_address(self.from_name, sender)),
                reply_to,
                sender.envelope,
            )
        return self._sender

    def html_part(self) -> CompiledPart:
        """The HTML part to render. Without ids in URLs, the beacon and every link are the same
        in every message: they are written into the template once (per worker), so a message
        fills only its own slots (unsubscribe, footer extras)."""
        if self._html is None:
            html = self.compiled.html
            if not self.identify_in_urls:
                slots = ["beacon", *(f"link{index}" for index in range(len(self.compiled.links)))]
                html = html.with_constants(
                    {slot: _slot_html(self, slot, _NO_MESSAGE) for slot in slots}
                )
            self._html = html
        return self._html

    def url_for_slot(self, slot: str, message_id: int) -> str:
        """The signed URL that fills ``slot`` in one message."""
        if self.test:
            return self._test_url(slot)
        if slot == "unsubscribe":
            return urls.unsubscribe_url(message_id)
        tracked = message_id if self.identify_in_urls else None
        if tracked is None and slot in self._anonymous_urls:
            return self._anonymous_urls[slot]
        if slot == "beacon":
            value = urls.open_url(self.campaign_id, tracked) if self.track_opens else ""
        else:
            index = int(slot.removeprefix("link"))
            url = self.compiled.links[index]
            value = (
                urls.click_url(self.campaign_id, self.link_ids[index], url, tracked)
                if self.track_clicks
                else url
            )
        if tracked is None:
            self._anonymous_urls[slot] = value
        return value

    def _test_url(self, slot: str) -> str:
        found = self._anonymous_urls.get(slot)
        if found is None:
            if slot == "unsubscribe":
                found = urls.test_unsubscribe_url(self.campaign_id)
            elif slot == "beacon":
                found = ""
            else:
                url = self.compiled.links[int(slot.removeprefix("link"))]
                found = urls.test_click_url(self.campaign_id, url)
            self._anonymous_urls[slot] = found
        return found


def footer_extras(view: CampaignView, recipient: Recipient, html: bool = True) -> str:
    """What is added at the end of every message's footer (the one place for footer extras),
    in HTML or (``html=False``) plain text: the link to the recipient's preference centre, the
    link to the public data-request form, and, when the campaign tracks clicks, the hidden
    honeypot link that only machines follow (tracking's machine detection; HTML only)."""
    if view.test:
        preferences = preference_test_url(view.campaign_id)
    else:
        preferences = preference_url_for_message(recipient.message_id)
    rights = _rights_footer(view, html)
    if not html:
        return f"\nManage your preferences: {preferences}\n{rights}\n"
    extras = f'<p><a href="{escape(preferences, quote=True)}">Manage your preferences</a></p>'
    extras += rights
    if view.test or not view.track_clicks:
        return extras
    if view.identify_in_urls:
        honeypot = urls.honeypot_html(view.campaign_id, recipient.message_id)
    else:  # the campaign's one anonymous honeypot
        honeypot = view._escaped.get("honeypot") or urls.honeypot_html(view.campaign_id, None)
        view._escaped["honeypot"] = honeypot
    return extras + honeypot


def _rights_footer(view: CampaignView, html: bool) -> str:
    """The data-request form's link as the footer shows it (the same in every message)."""
    key = "rights-html" if html else "rights-text"
    found = view._escaped.get(key)
    if found is None:
        if html:
            url = escape(reach.request_form_url(), quote=True)
            found = f'<p><a href="{url}">{escape(reach.RIGHTS_LINK_TEXT)}</a></p>'
        else:
            found = reach.rights_footer_text()
        view._escaped[key] = found
    return found


def _one_line(value: str) -> str:
    """Header values from data: CR and LF become spaces (no header injection)."""
    return value.replace("\r", " ").replace("\n", " ").strip()


def _header(name: str, value: str) -> bytes:
    """An unstructured header (Subject...): as it is when short ASCII, else RFC 2047 encoded
    words folded with CRLF."""
    value = _one_line(value)
    if value.isascii() and len(value) + len(name) < 900:
        return f"{name}: {value}\r\n".encode()
    encoded = Header(value, "utf-8", header_name=name).encode(linesep="\r\n")
    return f"{name}: {encoded}\r\n".encode()


def _raw_header(name: str, value: str) -> bytes:
    """An address header already written by :func:`format_address` (UTF-8 only when the
    message goes with SMTPUTF8)."""
    return f"{name}: {value}\r\n".encode()


def _sender_address(address: str) -> WireAddress:
    """The campaign's own address (checked when the campaign was saved); a preview's
    placeholder is taken as it is."""
    address = _one_line(address)
    try:
        return wire_address(address)
    except AddressError:
        local, _, domain = address.rpartition("@")
        return WireAddress(local, domain, domain)


def _lines_fit(data: bytes, limit: int = 990) -> bool:
    """True when no line of ``data`` (LF-separated) is longer than ``limit`` octets.

    Jumps to the last line end within ``limit`` octets of a line start: a handful of steps
    for a 20 KB body whatever its number of lines."""
    start = 0
    rfind = data.rfind
    while len(data) - start > limit:
        end = rfind(b"\n", start, start + limit + 1)
        if end < 0:
            return False
        start = end + 1
    return True


def _encode_part(text: str) -> tuple[str, bytes]:
    """(Content-Transfer-Encoding, body bytes with CRLF): 7bit when the text is ASCII with short
    lines (no encoding work at all), quoted-printable otherwise. The work is done on bytes,
    whose ``replace`` is several times faster than ``str.replace`` on a 20 KB body."""
    data = text.encode("utf-8")
    if b"\r" in data:
        data = data.replace(b"\r\n", b"\n")
    if text.isascii() and _lines_fit(data):
        return "7bit", data.replace(b"\n", b"\r\n")
    encoded = binascii.b2a_qp(data, istext=True)
    return "quoted-printable", encoded.replace(b"\n", b"\r\n")


def _fill(
    pieces: list[str], view: CampaignView, recipient: Recipient, html: bool, unsubscribe: str
) -> str:
    out: list[str] = []
    for index, piece in enumerate(pieces):
        if index % 2 == 0:
            out.append(piece)
            continue
        if piece == "extras":
            out.append(footer_extras(view, recipient, html))
            continue
        if piece == "unsubscribe":
            out.append(escape(unsubscribe, quote=True) if html else unsubscribe)
            continue
        if html:
            out.append(_slot_html(view, piece, recipient.message_id))
        elif piece != "beacon":
            out.append(view.url_for_slot(piece, recipient.message_id))
    return "".join(out)


#: The message id passed for URLs that name no message (anonymous tracking ignores it).
_NO_MESSAGE = 0


def _slot_html(view: CampaignView, slot: str, message_id: int) -> str:
    """The HTML that fills a link or beacon slot of one message (escaped; the beacon's image)."""
    anonymous = not view.identify_in_urls
    if anonymous and slot in view._escaped:
        return view._escaped[slot]
    url = view.url_for_slot(slot, message_id)
    if slot == "beacon":
        image = f'<img src="{escape(url, quote=True)}" width="1" height="1" alt=""'
        value = f'{image} style="display:block">' if url else ""
    else:
        value = escape(url, quote=True)
    if anonymous:
        view._escaped[slot] = value
    return value


def message_id_for(message_id: int, domain: str, key: str = "", prefix: str = "m") -> str:
    """A unique Message-ID that names our message row (bounces are matched by it): ``prefix``
    ``m`` for a campaign's message row, ``t`` for a transactional message.

    With ``key`` its second part is a MAC of the row id, which no one can forge for another
    row and which costs no system call (the kernel's random source costs more per message
    than the rest of its headers); without, it is random.
    """
    if key:
        signed = f"{prefix}id:{message_id}".encode()
        mac = hmac.new(key.encode(), signed, hashlib.sha256).hexdigest()
        return f"<{prefix}{message_id}.{mac[:16]}@{domain}>"
    return f"<{prefix}{message_id}.{secrets.token_hex(6)}@{domain}>"


#: MIME boundaries need only be unlikely to occur in the content, not unpredictable.
_boundaries = random.Random(secrets.randbits(64))


def verp_address(return_path: str, message_id: int, key: str, prefix: str = "") -> str:
    """``bounces+<id>-<mac>@domain`` for ``bounces@domain``: a bounce to it names the message
    (``bounces+t<id>-<mac>`` with ``prefix`` ``t``: a transactional message). The domain in
    A-labels (an envelope address)."""
    local, _, domain = return_path.partition("@")
    signed = f"{prefix}{message_id}".encode()
    mac = hmac.new(key.encode(), signed, hashlib.sha256).hexdigest()[:10]
    return f"{local}+{prefix}{message_id}-{mac}@{ascii_domain(domain)}"


def parse_verp(address: str, key: str, prefix: str = "") -> int | None:
    """The message id in a VERP address made by :func:`verp_address` with the same
    ``prefix``, if it is genuine."""
    match = re.search(rf"\+{prefix}(\d+)-([0-9a-f]{{10}})@", address.strip("<> "))
    if not match:
        return None
    message_id = int(match.group(1))
    signed = f"{prefix}{message_id}".encode()
    expected = hmac.new(key.encode(), signed, hashlib.sha256).hexdigest()[:10]
    return message_id if hmac.compare_digest(expected, match.group(2)) else None


def assemble(
    *,
    from_header: bytes,
    reply_to_header: bytes,
    to_header: bytes,
    subject: str,
    message_id: str,
    extra_headers: list[bytes],
    text: str,
    html: str,
    dkim: Signing,
) -> bytes:
    """The wire bytes of a multipart/alternative message (text and HTML parts), DKIM-signed
    when ``dkim`` has a signer: the one assembly of campaign and transactional messages.
    Address headers come written (:func:`format_address`); ``extra_headers`` are complete
    header lines."""
    boundary = f"=_{_boundaries.getrandbits(96):024x}"
    head = [
        from_header,
        to_header,
        _header("Subject", subject),
        _header("Date", formatdate(localtime=False)),
        _header("Message-ID", message_id),
    ]
    if reply_to_header:
        head.append(reply_to_header)
    head += [
        *extra_headers,
        b"MIME-Version: 1.0\r\n",
        f'Content-Type: multipart/alternative; boundary="{boundary}"\r\n'.encode(),
        b"\r\n",
    ]
    part_head = "--{b}\r\nContent-Type: text/{kind}; charset=utf-8\r\n"
    part_head += "Content-Transfer-Encoding: {cte}\r\n\r\n"
    text_cte, text_bytes = _encode_part(text)
    html_cte, html_bytes = _encode_part(html)
    body = b"".join(
        [
            part_head.format(b=boundary, kind="plain", cte=text_cte).encode(),
            text_bytes,
            b"\r\n",
            part_head.format(b=boundary, kind="html", cte=html_cte).encode(),
            html_bytes,
            f"\r\n--{boundary}--\r\n".encode(),
        ]
    )
    wire = b"".join(head) + body
    return dkim.sign(wire) if dkim.sign is not None else wire


@dataclass(frozen=True)
class RenderedMessage:
    """A message ready for SMTP: wire bytes, its Message-ID and envelope sender."""

    wire: bytes
    message_id_header: str
    envelope_from: str
    #: The envelope recipient (RCPT TO): the domain in A-labels.
    recipient: str
    #: What the connection writes for ``wire`` (``Connection.payload``), when made ahead.
    payload: bytes | None = None


def render_message(
    view: CampaignView, recipient: Recipient, verp_key: str = "", subject_prefix: str = ""
) -> RenderedMessage:
    """One recipient's message: personalised, tracked links, footer, unsubscribe headers, DKIM.

    Raises RecipientError for anything that belongs to this recipient (the personalisation
    raised, whatever the exception; the address cannot be sent to; the contact's data is not
    valid text), with a reason that names neither the address nor the name.
    """
    to = _recipient_address(recipient)
    try:
        return _render(view, recipient, to, verp_key, subject_prefix)
    except RecipientError as exc:
        raise type(exc)(_scrubbed(str(exc), recipient)) from exc
    except UnicodeError as exc:
        raise RecipientError(
            f"the contact's data is not valid text ({type(exc).__name__})"
        ) from exc


def _recipient_address(recipient: Recipient) -> WireAddress:
    """The recipient's address checked for sending; RecipientError (naming no address) when
    it cannot be sent to."""
    try:
        return wire_address(_one_line(recipient.email))
    except AddressError as exc:
        reason = str(exc)
        reason = reason[:1].lower() + reason[1:]  # email-validator's sentences start capitalised
        raise RecipientError(f"the address cannot be sent to: {reason}") from exc


def _scrubbed(reason: str, recipient: Recipient) -> str:
    """``reason`` without the recipient's address, name or text attributes (an exception's
    text may quote the value it choked on)."""
    values = [recipient.email, recipient.name]
    if isinstance(recipient.attributes, dict):
        values += [v for v in recipient.attributes.values() if isinstance(v, str)]
    for value in sorted(values, key=len, reverse=True):
        if len(value.strip()) >= 3:
            reason = reason.replace(value, "…")
    return reason[:500]


def _context(recipient: Recipient) -> dict[str, Any]:
    try:
        return recipient.context()
    except Exception as exc:  # e.g. attributes that are not a JSON object
        raise RecipientError(
            f"the contact's attributes cannot be read ({type(exc).__name__})"
        ) from exc


def _render(
    view: CampaignView, recipient: Recipient, to: WireAddress, verp_key: str, subject_prefix: str
) -> RenderedMessage:
    context = _context(recipient) if view.compiled.uses_contact else {}
    subject = subject_prefix + "".join(view.compiled.subject.pieces(context))
    unsubscribe = view.url_for_slot("unsubscribe", recipient.message_id)
    html = _fill(view.html_part().pieces(context), view, recipient, True, unsubscribe)
    text = _fill(view.compiled.text.pieces(context), view, recipient, False, unsubscribe)
    message_id = message_id_for(
        recipient.message_id, ascii_domain(view.message_id_domain), verp_key
    )
    from_header, reply_to_header, sender_envelope = view.sender_headers()
    wire = assemble(
        from_header=from_header,
        reply_to_header=reply_to_header,
        to_header=_raw_header("To", format_address(recipient.name, to)),
        subject=subject,
        message_id=message_id,
        extra_headers=[
            # a test send: marked for filters and people, counted nowhere
            *([b"X-Envoy-Test: yes\r\n"] if view.test else []),
            _header("List-Unsubscribe", f"<{unsubscribe}>"),
            _header("List-Unsubscribe-Post", "List-Unsubscribe=One-Click"),
        ],
        text=text,
        html=html,
        dkim=view.dkim,
    )
    envelope_from = (
        verp_address(view.return_path, recipient.message_id, verp_key)
        if view.return_path and verp_key
        else sender_envelope
    )
    return RenderedMessage(wire, message_id, envelope_from, to.envelope)


# --------------------------------------------------------------------------- transactional


def compile_transactional(*, subject: str, html: str, text: str) -> CompiledCampaign:
    """A transactional message's templates compiled in the same sandbox as a campaign's, with
    no footer (no unsubscribe: it is not marketing) and its links left as written (no
    tracking). An empty ``text`` is generated from the HTML. Raises TemplateError."""
    if SLOT in html or SLOT in text or SLOT in subject:
        raise TemplateError("the body contains a control character (0x1F)")
    text_source = text if text.strip() else text_from_html(html)
    return CompiledCampaign(
        subject=_compile(SANDBOX_TEXT, subject, "subject"),
        html=_compile(SANDBOX, html, "HTML body", html=True),
        text=_compile(SANDBOX_TEXT, text_source.rstrip(), "text body"),
        links=[],
        uses_contact=True,
    )


@dataclass(frozen=True)
class TransactionalSender:
    """Who a transactional message is from, and how it is signed and bounced."""

    from_name: str
    from_email: str
    reply_to: str
    dkim: Signing
    return_path: str = ""


def render_transactional(
    compiled: CompiledCampaign,
    sender: TransactionalSender,
    recipient: Recipient,
    data: dict[str, Any],
    verp_key: str,
) -> RenderedMessage:
    """One transactional message: personalised with the recipient (``contact``) and the
    caller's ``data``, DKIM-signed, with a Message-ID and VERP address naming the
    transactional row (prefix ``t``). Raises RecipientError (its reason names neither the
    address nor the name) for anything of this message: the address, the personalisation."""
    to = _recipient_address(recipient)
    try:
        context = {**_context(recipient), "data": data}
        pieces = {
            name: "".join(part.pieces(context))
            for name, part in (
                ("subject", compiled.subject),
                ("html", compiled.html),
                ("text", compiled.text),
            )
        }
    except RecipientError as exc:  # the reason quotes none of the recipient's or data's text
        quoted = {**recipient.attributes, **{f"data.{k}": v for k, v in data.items()}}
        reason = _scrubbed(str(exc), Recipient(0, recipient.email, recipient.name, quoted))
        raise type(exc)(reason) from exc
    from_address = _sender_address(sender.from_email)
    message_id = message_id_for(recipient.message_id, from_address.ascii_domain, verp_key, "t")
    reply_to = b""
    if sender.reply_to:
        reply_to = _raw_header("Reply-To", _sender_address(sender.reply_to).header)
    try:
        wire = assemble(
            from_header=_raw_header("From", format_address(sender.from_name, from_address)),
            reply_to_header=reply_to,
            to_header=_raw_header("To", format_address(recipient.name, to)),
            subject=pieces["subject"],
            message_id=message_id,
            extra_headers=[_header("Auto-Submitted", "auto-generated")],
            text=pieces["text"],
            html=pieces["html"],
            dkim=sender.dkim,
        )
    except UnicodeError as exc:
        raise RecipientError(f"the data is not valid text ({type(exc).__name__})") from exc
    envelope_from = (
        verp_address(sender.return_path, recipient.message_id, verp_key, "t")
        if sender.return_path and verp_key
        else from_address.envelope
    )
    return RenderedMessage(wire, message_id, envelope_from, to.envelope)
