"""What an uploaded file is, and the image the library keeps of it.

Pure functions (no database, no storage). The type is read from the bytes, never from the
name or the browser's content type: PNG, JPEG, GIF and WebP are accepted, SVG is refused with
the reason (it is a document that can carry scripts and links, and many mail clients do not
show it), anything else is "not an image". The dimensions are read from the header and
checked before a pixel is decoded (decompression bombs), and every accepted image is decoded
and encoded again, so what is stored is pixels only: no EXIF (camera, time, GPS location), no
comments, and nothing a polyglot file carried after or between the image's own data.
"""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass

from PIL import Image, ImageOps, ImageSequence, UnidentifiedImageError

from core.errors import ValidationError

#: Pillow's format name -> (content type, file extension) of what we keep.
FORMATS: dict[str, tuple[str, str]] = {
    "PNG": ("image/png", "png"),
    "JPEG": ("image/jpeg", "jpg"),
    "GIF": ("image/gif", "gif"),
    "WEBP": ("image/webp", "webp"),
}
#: Content type of each extension a public image name may end with.
CONTENT_TYPES: dict[str, str] = {ext: ctype for ctype, ext in FORMATS.values()}

SVG_REFUSED = (
    "SVG images are not accepted: an SVG is a document that can carry scripts and links, and "
    "many mail clients do not show it. Export it as PNG and upload that."
)
NOT_AN_IMAGE = "This file is not an image we accept: upload a PNG, JPEG, GIF or WebP image."


@dataclass(frozen=True)
class Limits:
    max_bytes: int
    max_dimension: int
    max_pixels: int
    thumbnail_size: int


@dataclass(frozen=True)
class PreparedImage:
    """The re-encoded image and its thumbnail (PNG), ready to store."""

    data: bytes
    content_type: str
    extension: str
    width: int
    height: int
    thumbnail: bytes


def sniff(data: bytes) -> str | None:
    """The format the leading bytes announce (a key of :data:`FORMATS`), ``"SVG"``, or None."""
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "PNG"
    if data.startswith(b"\xff\xd8\xff"):
        return "JPEG"
    if data[:6] in (b"GIF87a", b"GIF89a"):
        return "GIF"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "WEBP"
    head = data[:1024].lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    if head.startswith(b"<") and (b"<svg" in head or b"svg+xml" in head):
        return "SVG"
    return None


def prepare(data: bytes, limits: Limits) -> PreparedImage:
    """Check ``data`` and return the image to keep. Raises ValidationError (field ``file``)
    with a message for the person uploading: too large, not an image, SVG, too many pixels."""
    if not data:
        raise ValidationError("The file is empty.", field="file")
    if len(data) > limits.max_bytes:
        raise ValidationError(
            f"The file is {_size(len(data))}; images may be at most {_size(limits.max_bytes)}.",
            field="file",
        )
    announced = sniff(data)
    if announced == "SVG":
        raise ValidationError(SVG_REFUSED, field="file")
    if announced is None:
        raise ValidationError(NOT_AN_IMAGE, field="file")
    with warnings.catch_warnings():
        # Pillow's own bomb guard (a warning, then an error at twice its limit) as an error.
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            return _reencode(data, announced, limits)
        except ValidationError:
            raise
        except (Image.DecompressionBombError, Image.DecompressionBombWarning):
            # Pillow refuses to even open an image announcing far more pixels than it allows.
            raise ValidationError(
                f"The image has too many pixels; each side may be at most "
                f"{limits.max_dimension} pixels and at most {limits.max_pixels:,} in all.",
                field="file",
            ) from None
        except UnidentifiedImageError:
            raise ValidationError(NOT_AN_IMAGE, field="file") from None
        except (OSError, ValueError, SyntaxError, EOFError):
            # A truncated or corrupt image (or a polyglot whose image part does not decode).
            raise ValidationError(
                "This image could not be read (damaged or incomplete file).", field="file"
            ) from None


def _reencode(data: bytes, announced: str, limits: Limits) -> PreparedImage:
    with Image.open(io.BytesIO(data), formats=[announced]) as image:
        width, height = image.size
        frames = int(getattr(image, "n_frames", 1))
        if width > limits.max_dimension or height > limits.max_dimension:
            raise ValidationError(
                f"The image is {width} x {height} pixels; each side may be at most "
                f"{limits.max_dimension} pixels.",
                field="file",
            )
        if width * height * frames > limits.max_pixels:
            raise ValidationError(
                f"The image has too many pixels ({width} x {height}"
                + (f" x {frames} frames" if frames > 1 else "")
                + f"); at most {limits.max_pixels:,} are accepted.",
                field="file",
            )
        content_type, extension = FORMATS[announced]
        if frames > 1 and announced in ("GIF", "WEBP"):
            encoded = _animated(image, announced)
            first = image.copy()
        else:
            image.load()
            first = ImageOps.exif_transpose(image) if announced == "JPEG" else image.copy()
            encoded = _still(first, announced)
            width, height = first.size
        return PreparedImage(
            data=encoded,
            content_type=content_type,
            extension=extension,
            width=width,
            height=height,
            thumbnail=_thumbnail(first, limits.thumbnail_size),
        )


def _still(image: Image.Image, fmt: str) -> bytes:
    """One frame encoded again, with no metadata (exif, XMP, text chunks and comments are
    never passed to the encoder; the colour profile is kept so colours stay right)."""
    out = io.BytesIO()
    icc = image.info.get("icc_profile")
    extra = {"icc_profile": icc} if icc else {}
    if fmt == "JPEG":
        if image.mode not in ("RGB", "L", "CMYK"):
            image = image.convert("RGB")
        image.save(out, "JPEG", quality=90, optimize=True, **extra)
    elif fmt == "PNG":
        image.save(out, "PNG", optimize=True, **extra)
    elif fmt == "GIF":
        image.save(
            out,
            "GIF",
            **(
                {"transparency": image.info["transparency"]} if "transparency" in image.info else {}
            ),
        )
    else:
        image.save(out, "WEBP", quality=90, **extra)
    return out.getvalue()


def _animated(image: Image.Image, fmt: str) -> bytes:
    frames = [frame.copy() for frame in ImageSequence.Iterator(image)]
    out = io.BytesIO()
    options: dict[str, object] = {
        "save_all": True,
        "append_images": frames[1:],
        "loop": image.info.get("loop", 0),
        "duration": image.info.get("duration", 100),
    }
    frames[0].save(out, fmt, **options)
    return out.getvalue()


def _thumbnail(image: Image.Image, size: int) -> bytes:
    thumb = image.convert("RGBA") if image.mode not in ("RGB", "RGBA") else image.copy()
    thumb.thumbnail((size, size))
    out = io.BytesIO()
    thumb.save(out, "PNG", optimize=True)
    return out.getvalue()


def _size(count: int) -> str:
    if count >= 1000 * 1000:
        return f"{count / 1000 / 1000:.1f} MB"
    return f"{max(1, count // 1000)} kB"
