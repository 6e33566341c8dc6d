"""The gallery of starter templates: responsive layouts written in MJML (``campaigns/gallery/``),
made into a campaign's **visual** body (``content_format`` visual, the MJML as its source), so the
visual editor opens them as blocks; :func:`campaigns.content.compile_content` compiles them on
the server (mrml, the Rust port of MJML, then CSS inlined), so what is previewed is what is
sent.

Each layout's images are the platform's own static files (``campaigns/static/gallery/``): the
MJML names them ``__GALLERY_ASSETS__/<file>``, replaced by their absolute URL when compiled, so
no third party is contacted when the email is opened. Personalisation is the campaigns' Jinja
(``{{ contact.first_name }}``), which MJML passes through in text. The thumbnails
(``campaigns/static/gallery/thumbs/<slug>.png``) are rendered ahead of time by
``scripts/gallery-thumbnails``; ``thumbs/sources.json`` holds the hash of the source each was
made from, and a test fails when one is stale.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from core.errors import NotFoundError

SOURCE_DIR = Path(__file__).resolve().parent / "gallery"
STATIC_DIR = Path(__file__).resolve().parent / "static" / "gallery"
THUMBS_DIR = STATIC_DIR / "thumbs"
THUMB_SOURCES = THUMBS_DIR / "sources.json"
ASSETS_MARK = "__GALLERY_ASSETS__"


@dataclass(frozen=True)
class StarterTemplate:
    slug: str
    name: str
    description: str
    subject: str

    @property
    def source_path(self) -> Path:
        return SOURCE_DIR / f"{self.slug}.mjml"

    @property
    def thumbnail(self) -> str:
        """The thumbnail's path under the campaigns blueprint's static folder."""
        return f"gallery/thumbs/{self.slug}.png"


GALLERY: tuple[StarterTemplate, ...] = (
    StarterTemplate(
        "newsletter",
        "Newsletter",
        "A banner, a greeting and two stories side by side (stacked on phones).",
        "What's new this month",
    ),
    StarterTemplate(
        "announcement",
        "Announcement",
        "One message, one button: a launch, a change, a piece of news.",
        "Introducing something new",
    ),
    StarterTemplate(
        "promotion",
        "Promotion",
        "A bold offer, a discount code and three reasons to buy.",
        "20 % off this week only",
    ),
    StarterTemplate(
        "event",
        "Event invitation",
        "An invitation with when, where and a button to reply.",
        "You are invited: our spring evening",
    ),
    StarterTemplate(
        "plain-letter",
        "Plain letter",
        "A personal note: text only, like a message from a person.",
        "A short note from us",
    ),
    StarterTemplate(
        "receipt",
        "Receipt",
        "An order summary with items, quantities and a total.",
        "Your receipt for order 1042",
    ),
)


def starter(slug: str) -> StarterTemplate:
    """The gallery template named ``slug``, or NotFoundError."""
    for template in GALLERY:
        if template.slug == slug:
            return template
    raise NotFoundError("template")


def mjml_source(slug: str) -> str:
    """The layout's MJML, as written (the assets still marked)."""
    return starter(slug).source_path.read_text(encoding="utf-8")


def source_hash(slug: str) -> str:
    """What the thumbnail records: the SHA-256 of the MJML source."""
    return hashlib.sha256(mjml_source(slug).encode()).hexdigest()


def visual_source(slug: str, assets_url: str) -> str:
    """The layout's MJML as a campaign's visual body: its images under ``assets_url``
    (absolute, no slash at the end)."""
    return mjml_source(slug).replace(ASSETS_MARK, assets_url)


def compiled_html(slug: str, assets_url: str) -> str:
    """The email HTML a campaign made from the layout sends (the content formats' own
    compiler: mrml, then CSS inlined)."""
    from campaigns.content import compile_content
    from campaigns.models import ContentFormat

    return compile_content(ContentFormat.VISUAL, visual_source(slug, assets_url)).html
