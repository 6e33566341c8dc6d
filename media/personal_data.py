"""The media library's store (registered in ``privacy.registry`` as ``media``).

Images are the organisation's content, uploaded by its marketers; none is linked to a contact,
so they are not contact data. An image can still show a person, and the library records who
uploaded it: a marketer's access report lists the images they uploaded. Account deletion
removes every image's bytes (disk or bucket) before the rows go by cascade.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from flask import current_app
from sqlalchemy import func, select

from core import db
from core.db import iso
from media import storage
from media.models import MediaFile

if TYPE_CHECKING:
    from privacy.registry import Person, Records


def report_uploads(person: Person) -> Records:
    """The images a marketer login with the address uploaded: name, size, account, when."""
    from accounts.models import Account, User

    if not person.address or not person.platform_wide:
        return {}
    rows = db.session.execute(
        select(MediaFile, Account.name)
        .join(User, User.id == MediaFile.uploaded_by_id)
        .join(Account, Account.id == MediaFile.account_id)
        .where(func.lower(User.email) == person.address.lower())
        .order_by(MediaFile.id)
    ).all()
    records = [
        {
            "image": item.name,
            "account": account_name,
            "width": item.width,
            "height": item.height,
            "uploaded_at": iso(item.created_at),
        }
        for item, account_name in rows
    ]
    return {None: records} if records else {}


def delete_account_media(account_id: int) -> None:
    """Every image and thumbnail of the account, removed from the storage (the rows then go
    with the account)."""
    names = [
        name
        for item in db.session.scalars(select(MediaFile).where(MediaFile.account_id == account_id))
        for name in (item.file_name, item.thumb_name)
    ]
    if names:
        storage.for_app(current_app).delete(names)
