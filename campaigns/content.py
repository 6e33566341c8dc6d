"""From the body as a marketer writes it to the HTML and text that are previewed and sent.

:func:`compile_content` is the one function that does it, called when a campaign or template
is saved; the result is stored as ``html_body`` (what the preview and every send render), so
what is sent is exactly what was previewed. Per format:

- **visual**: MJML from the drag-and-drop editor, compiled on the server by ``mrml`` (a Rust
  port of MJML) with no web font and no include loader (an ``mj-include`` reads nothing), then
  its CSS inlined;
- **markdown**: ``markdown-it-py`` (CommonMark, tables, strikethrough; raw HTML in the markdown
  is escaped, not passed through), put in the email theme (:mod:`campaigns.email_theme`);
- **richtext**: the rich-text editor's HTML (or anything pasted into it) sanitised by ``nh3``
  to an allow-list of tags and attributes, then themed;
- **html**: the marketer's own HTML, unchanged (their responsibility; previewed sandboxed);
- **plain**: the text is the text part; a minimal HTML part is generated from it (paragraphs,
  links made clickable) so the unsubscribe footer, the tracked links and the open beacon work as
  in every other format.

Every format's CSS except raw HTML's is inlined by ``css-inline`` (no remote stylesheet is
fetched) for clients that drop ``<style>``; the ``<style>`` blocks stay for the media queries.

Personalisation is the sending sandbox's Jinja in every format: its tags (``{{ … }}``,
``{% … %}``, ``{# … #}``) are set aside before compiling and put back after, so no compiler,
sanitiser or escaper touches them, then rendered per contact by :mod:`campaigns.render` like any
HTML body (where the link tracking also happens).
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass

import css_inline
import mrml
import nh3
from markdown_it import MarkdownIt

from campaigns.email_theme import themed
from campaigns.input_checks import check_templates
from campaigns.models import Campaign, ContentFormat, Template
from campaigns.render import text_from_html
from core.errors import ValidationError

#: Formats a body may be converted to from each format (always downwards, to raw HTML).
CONVERSIONS: dict[ContentFormat, tuple[ContentFormat, ...]] = {
    ContentFormat.VISUAL: (ContentFormat.HTML,),
    ContentFormat.RICHTEXT: (ContentFormat.HTML,),
    ContentFormat.MARKDOWN: (ContentFormat.HTML,),
    ContentFormat.HTML: (),
    ContentFormat.PLAIN: (),
}

_JINJA = re.compile(r"{{.*?}}|{%.*?%}|{#.*?#}", re.S)
_PLACEHOLDER = re.compile(r"JINJA(\d+)X")

# What rich text may hold: text structure, links, images, simple tables; style only as the
# editor's alignment classes. Scripts, event handlers, forms, frames and styles are dropped.
_RICH_TAGS = {
    "a", "b", "blockquote", "br", "code", "del", "div", "em", "h1", "h2", "h3", "h4", "hr",
    "i", "img", "li", "ol", "p", "pre", "s", "span", "strong", "sub", "sup", "table", "tbody",
    "td", "th", "thead", "tr", "u", "ul",
}  # fmt: skip
_RICH_ATTRIBUTES = {
    "a": {"href", "title"},
    "img": {"src", "alt", "width", "height"},
    "td": {"colspan", "rowspan"},
    "th": {"colspan", "rowspan"},
}
_RICH_CLASSES = {
    tag: {"ql-align-center", "ql-align-right", "ql-align-justify"}
    for tag in ("p", "h1", "h2", "h3", "h4", "li", "div")
}
_URL_SCHEMES = {"http", "https", "mailto", "tel"}

_MARKDOWN = MarkdownIt("commonmark", {"html": False, "linkify": False, "typographer": False})
_MARKDOWN.enable(["table", "strikethrough"])

_INLINER = css_inline.CSSInliner(
    keep_style_tags=True, load_remote_stylesheets=False, keep_at_rules=True
)
_URL_IN_TEXT = re.compile(r"https?://[^\s<>\"']+[^\s<>\"'.,;:!?)\]]")


@dataclass(frozen=True)
class Compiled:
    """A body compiled for sending: the HTML part, and the text part generated with it."""

    html: str
    text: str


class _Tags:
    """The Jinja tags of a source, set aside as ``JINJA<n>X`` words and put back after."""

    def __init__(self) -> None:
        self.tags: list[str] = []

    def protect(self, source: str) -> str:
        def keep(match: re.Match[str]) -> str:
            self.tags.append(match.group(0))
            return f"JINJA{len(self.tags) - 1}X"

        return _JINJA.sub(keep, source)

    def restore(self, compiled: str) -> str:
        def put_back(match: re.Match[str]) -> str:
            index = int(match.group(1))
            return self.tags[index] if index < len(self.tags) else match.group(0)

        return _PLACEHOLDER.sub(put_back, compiled)


def compile_content(content_format: ContentFormat | str, source: str) -> Compiled:
    """The HTML and text to send for ``source`` written in ``content_format``.

    Deterministic and offline (nothing is fetched). ValidationError on ``content_source`` when
    the source cannot be compiled (MJML that does not parse) or the format is unknown.
    """
    try:
        fmt = ContentFormat(content_format)
    except ValueError as exc:
        raise ValidationError("Choose a content format.", field="content_format") from exc
    if "JINJA" in source and _PLACEHOLDER.search(source):
        # A literal JINJA<n>X would be taken for a set-aside tag: keep it apart.
        source = _PLACEHOLDER.sub(lambda m: m.group(0).replace("JINJA", "JINJ\u200bA"), source)
    if fmt is ContentFormat.HTML:
        return Compiled(source, text_from_html(source))
    if fmt is ContentFormat.PLAIN:
        return Compiled(_plain_html(source), source)
    tags = _Tags()
    protected = tags.protect(source)
    if fmt is ContentFormat.VISUAL:
        body = _inline(_mjml(protected))
    elif fmt is ContentFormat.MARKDOWN:
        body = _inline(themed(_MARKDOWN.render(protected)))
    else:
        body = _inline(themed(sanitise_rich_text(protected)))
    compiled_html = tags.restore(body)
    return Compiled(compiled_html, text_from_html(compiled_html))


def sanitise_rich_text(fragment: str) -> str:
    """``fragment`` with only the rich-text allow-list left: no script, style, event handler
    (``on*``), frame, form or ``javascript:`` URL; links get ``rel="noopener noreferrer"``."""
    return nh3.clean(
        fragment,
        tags=_RICH_TAGS,
        attributes=_RICH_ATTRIBUTES,
        allowed_classes=_RICH_CLASSES,
        url_schemes=_URL_SCHEMES,
        clean_content_tags={"script", "style"},
        link_rel="noopener noreferrer",
    )


def _mjml(source: str) -> str:
    if not source.strip():
        return ""
    try:
        output = mrml.to_html(
            source,
            parser_options=mrml.ParserOptions(include_loader=mrml.noop_loader()),
            render_options=mrml.RenderOptions(fonts={}),
        )
    except Exception as exc:  # mrml raises its own error types for every parse failure
        raise ValidationError(
            f"The visual editor's content could not be compiled: {exc}", field="content_source"
        ) from exc
    return str(output.content)


def _inline(document: str) -> str:
    if not document.strip():
        return ""
    return str(_INLINER.inline(document))


def _plain_html(text: str) -> str:
    """A minimal HTML part for a plain-text body: escaped paragraphs, line breaks kept, URLs
    made links (so they are tracked like any link); Jinja tags kept as they are."""
    if not text.strip():
        return ""
    tags = _Tags()
    protected = tags.protect(text.replace("\r\n", "\n"))
    paragraphs = []
    for block in re.split(r"\n\s*\n", protected.strip()):
        escaped = html.escape(block, quote=True)
        linked = _URL_IN_TEXT.sub(lambda m: f'<a href="{m.group(0)}">{m.group(0)}</a>', escaped)
        paragraphs.append("<p>" + linked.replace("\n", "<br>\n") + "</p>")
    body = "\n".join(paragraphs)
    return tags.restore(
        '<!doctype html>\n<html><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1"></head>\n'
        '<body style="font-family:Helvetica,Arial,sans-serif;font-size:15px;'
        'line-height:1.5;color:#222">\n'
        f"{body}\n</body></html>\n"
    )


def can_convert(from_format: ContentFormat | str, to_format: ContentFormat | str) -> bool:
    """Whether a body in ``from_format`` may be converted to ``to_format`` (downwards only)."""
    return ContentFormat(to_format) in CONVERSIONS.get(ContentFormat(from_format), ())


@dataclass(frozen=True)
class Body:
    """A body ready to store: its format and source, and the HTML and text compiled from
    them (``text`` empty: generated from the HTML when sending)."""

    content_format: ContentFormat
    source: str
    html: str
    text: str


def checked_body(
    content_format: ContentFormat | str, source: str, *, subject: str, text_body: str
) -> Body:
    """``source`` compiled (:func:`compile_content`) and its templates checked in the sending
    sandbox with ``subject`` and ``text_body`` (the marketer's own text part, "" to generate
    it; a plain-text body is its own text part). ValidationError naming the field at fault."""
    compiled = compile_content(content_format, source)
    fmt = ContentFormat(content_format)
    text = source if fmt is ContentFormat.PLAIN else text_body
    try:
        check_templates(subject, compiled.html, text)
    except ValidationError as exc:
        field = "html_body" if fmt is ContentFormat.HTML else "content_source"
        raise ValidationError(exc.message, field=field) from exc
    return Body(fmt, source, compiled.html, text)


def apply_body(target: Campaign | Template, body: Body) -> None:
    """Store ``body`` on a campaign or template: the one place their body columns are
    written, so the HTML always is the source's compiled form. No commit."""
    target.content_format = body.content_format
    target.content_source = body.source
    target.html_body = body.html
    target.text_body = body.text
