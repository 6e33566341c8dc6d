"""The media library's table: one row per uploaded image (the bytes live in the storage)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import DateTime, ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from core.db import Base, utcnow


class MediaFile(Base):
    """An image of an account, re-encoded on upload (no metadata kept), with a thumbnail.

    ``key`` is 128 random bits in hex: the public name of the image and of its thumbnail
    (``<key>.<extension>``, ``<key>-thumb.png``), so a URL cannot be guessed from another.
    """

    __tablename__ = "media_files"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    account_id: Mapped[int] = mapped_column(
        ForeignKey("accounts.id", ondelete="CASCADE"), index=True
    )
    key: Mapped[str] = mapped_column(String(32), unique=True)
    extension: Mapped[str] = mapped_column(String(8))
    content_type: Mapped[str] = mapped_column(String(32))
    # The uploaded file's name, shown in the library (never part of a URL).
    name: Mapped[str] = mapped_column(String(200))
    width: Mapped[int] = mapped_column(Integer)
    height: Mapped[int] = mapped_column(Integer)
    size_bytes: Mapped[int] = mapped_column(Integer)
    uploaded_by_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), nullable=True, index=True
    )
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)

    @property
    def file_name(self) -> str:
        return f"{self.key}.{self.extension}"

    @property
    def thumb_name(self) -> str:
        return thumb_name(self.key)


def thumb_name(key: str) -> str:
    """The stored (and public) name of an image's thumbnail."""
    return f"{key}-thumb.png"
