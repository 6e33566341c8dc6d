"""Image files for the media tests, made with Pillow (and a few forged by hand)."""

from __future__ import annotations

import io
import struct
import zlib

from PIL import Image

GPS_IFD = 0x8825


def png(width: int = 40, height: int = 30, colour: tuple[int, int, int] = (200, 40, 40)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (width, height), colour).save(out, "PNG")
    return out.getvalue()


def jpeg_with_gps(width: int = 64, height: int = 48) -> bytes:
    """A JPEG whose EXIF names a camera and a GPS position (Brussels)."""
    image = Image.new("RGB", (width, height), (10, 120, 200))
    exif = Image.Exif()
    exif[0x010F] = "PhoneMaker"  # Make
    exif[0x0110] = "Phone 12"  # Model
    gps = exif.get_ifd(GPS_IFD)
    gps[1] = "N"
    gps[2] = (50.0, 50.0, 46.0)
    gps[3] = "E"
    gps[4] = (4.0, 21.0, 8.0)
    out = io.BytesIO()
    image.save(out, "JPEG", exif=exif)
    return out.getvalue()


def png_with_exif() -> bytes:
    """A PNG with an eXIf chunk (GPS) and a text chunk."""
    from PIL import PngImagePlugin

    image = Image.new("RGB", (20, 20), (0, 0, 0))
    exif = Image.Exif()
    exif.get_ifd(GPS_IFD)[1] = "N"
    exif[0x010F] = "PhoneMaker"
    info = PngImagePlugin.PngInfo()
    info.add_text("Comment", "taken at home, 12 Rue Example")
    out = io.BytesIO()
    image.save(out, "PNG", exif=exif, pnginfo=info)
    return out.getvalue()


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png_header_only(width: int, height: int) -> bytes:
    """A PNG that announces ``width`` x ``height`` (a decompression bomb's header) with one
    tiny compressed row: decoding it would allocate width x height pixels."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\x00" * 64)
    return (
        b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", idat) + _chunk(b"IEND", b"")
    )


def animated_gif(frames: int = 3) -> bytes:
    colours = [(255, 0, 0), (0, 255, 0), (0, 0, 255), (255, 255, 0)]
    images = [Image.new("RGB", (16, 16), colours[i % 4]) for i in range(frames)]
    out = io.BytesIO()
    images[0].save(out, "GIF", save_all=True, append_images=images[1:], duration=100, loop=0)
    return out.getvalue()
