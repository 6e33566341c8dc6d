"""Uploading and deleting images (every write of the media library)."""

from __future__ import annotations

import logging
import secrets
import unicodedata

from flask import current_app
from sqlalchemy import select

from core import db
from core.errors import NotFoundError
from core.logsafe import log_failure
from media import images, storage
from media.models import MediaFile

log = logging.getLogger(__name__)


def limits() -> images.Limits:
    config = current_app.config
    return images.Limits(
        max_bytes=int(config["MEDIA_MAX_BYTES"]),
        max_dimension=int(config["MEDIA_MAX_DIMENSION"]),
        max_pixels=int(config["MEDIA_MAX_PIXELS"]),
        thumbnail_size=int(config["MEDIA_THUMBNAIL_SIZE"]),
    )


def display_name(filename: str) -> str:
    """The name shown in the library: the file's own name without any folder, control
    characters removed, at most 200 characters ("image" when nothing is left)."""
    base = filename.replace("\\", "/").rsplit("/", 1)[-1]
    base = "".join(
        c for c in unicodedata.normalize("NFC", base) if unicodedata.category(c)[0] != "C"
    )
    return base.strip()[:200] or "image"


def upload(account_id: int, user_id: int | None, filename: str, data: bytes) -> MediaFile:
    """Check, re-encode and store an image with its thumbnail, then record it. Commits.

    Raises ValidationError (field ``file``) for anything that is not an accepted image, and
    StorageError when the storage refuses; nothing is recorded then, and stored bytes of a
    failed record are removed again."""
    prepared = images.prepare(data, limits())
    key = secrets.token_hex(16)  # 128 random bits: the image's public name
    item = MediaFile(
        account_id=account_id,
        key=key,
        extension=prepared.extension,
        content_type=prepared.content_type,
        name=display_name(filename),
        width=prepared.width,
        height=prepared.height,
        size_bytes=len(prepared.data),
        uploaded_by_id=user_id,
    )
    store = storage.for_app(current_app)
    store.put(item.file_name, prepared.data, prepared.content_type)
    store.put(item.thumb_name, prepared.thumbnail, "image/png")
    try:
        db.session.add(item)
        db.session.commit()
    except BaseException:
        db.session.rollback()
        store.delete([item.file_name, item.thumb_name])
        raise
    return item


def get_media(account_id: int, media_id: int) -> MediaFile:
    """The account's image, or NotFoundError (another account's id included)."""
    found = db.session.scalar(
        select(MediaFile).where(MediaFile.id == media_id, MediaFile.account_id == account_id)
    )
    if found is None:
        raise NotFoundError("image")
    return found


def delete(account_id: int, media_id: int) -> None:
    """Remove an image and its thumbnail. Commits, then removes the bytes: campaigns already
    sent that show it show a missing image from then on."""
    item = get_media(account_id, media_id)
    names = [item.file_name, item.thumb_name]
    db.session.delete(item)
    db.session.commit()
    remove_files(names)


def remove_files(names: list[str]) -> None:
    """Remove stored bytes; a failure is logged (the rows are already gone)."""
    try:
        storage.for_app(current_app).delete(names)
    except Exception as exc:
        log_failure(log, exc, "removing %d media files failed", len(names))
