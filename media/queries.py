"""Reads of the media library: the account's images, as rows and as the editors' JSON."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from core import db
from core.urls import external_url
from media.models import MediaFile


def account_media(account_id: int) -> list[MediaFile]:
    """The account's images, newest first."""
    return list(
        db.session.scalars(
            select(MediaFile)
            .where(MediaFile.account_id == account_id)
            .order_by(MediaFile.created_at.desc(), MediaFile.id.desc())
        )
    )


def as_json(item: MediaFile) -> dict[str, Any]:
    """What the editors read: absolute URLs (they go into emails), size and name."""
    return {
        "id": item.id,
        "url": external_url("media.public_image", name=item.file_name),
        "thumb_url": external_url("media.public_image", name=item.thumb_name),
        "width": item.width,
        "height": item.height,
        "name": item.name,
    }
