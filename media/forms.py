"""The upload form of the Media page."""

from __future__ import annotations

from flask_wtf import FlaskForm
from flask_wtf.file import FileField, FileRequired


class UploadForm(FlaskForm):
    file = FileField(
        "Image",
        validators=[FileRequired("Choose an image to upload.")],
        description="PNG, JPEG, GIF or WebP. Location and camera data are removed.",
        render_kw={"accept": "image/png,image/jpeg,image/gif,image/webp"},
    )
