"""The media library over HTTP: what is accepted, what is kept of it, how it is served, who
may see it, and that it goes with the account."""

from __future__ import annotations

import io
import logging
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from PIL import Image

from core import db
from media.models import MediaFile
from tests.factories import Tenant
from tests.media import images
from tests.media.conftest import client_for, upload


def _files(app: Flask) -> list[str]:
    root = Path(app.config["MEDIA_DIR"])
    return sorted(p.name for p in root.glob("*/*")) if root.exists() else []


def _path_of(url: str) -> str:
    return url.removeprefix("http://localhost")


def test_upload_answers_the_editor_shape_and_lists_it(
    app: Flask, tenants: dict[str, Tenant]
) -> None:
    client = client_for(app, "ana@a.example")
    response = upload(client, images.png(800, 600), "Ünïcode logo.png")
    assert response.status_code == 201, response.get_data(as_text=True)
    item = response.get_json()
    assert set(item) == {"id", "url", "thumb_url", "width", "height", "name"}
    assert (item["width"], item["height"], item["name"]) == (800, 600, "Ünïcode logo.png")
    # 128 random bits in hex as the public name; the thumbnail beside it.
    name = item["url"].rsplit("/", 1)[1]
    assert len(name) == len("0" * 32 + ".png") and item["url"].startswith("http://localhost/img/")
    listed = client.get("/media.json")
    assert listed.status_code == 200 and listed.get_json() == [item]
    # The thumbnail is a PNG no larger than MEDIA_THUMBNAIL_SIZE on its longest side.
    thumb = client.get(_path_of(item["thumb_url"]))
    assert thumb.status_code == 200 and thumb.mimetype == "image/png"
    with Image.open(io.BytesIO(thumb.data)) as image:
        assert image.size == (320, 240)
    page = client.get("/media").get_data(as_text=True)
    assert "Ünïcode logo.png" in page and item["thumb_url"] in page


def test_the_media_page_shows_an_empty_state_and_uploads_without_script(
    app: Flask, tenants: dict[str, Tenant]
) -> None:
    client = client_for(app, "ana@a.example")
    assert "No images yet" in client.get("/media").get_data(as_text=True)
    response = client.post(
        "/media",
        data={"file": (io.BytesIO(images.png()), "banner.png")},
        content_type="multipart/form-data",
        follow_redirects=True,
    )
    body = response.get_data(as_text=True)
    assert response.status_code == 200 and "Image uploaded." in body and "banner.png" in body
    refused = client.post(
        "/media",
        data={"file": (io.BytesIO(b"<html><script>alert(1)</script></html>"), "x.png")},
        content_type="multipart/form-data",
    )
    assert refused.status_code == 422
    assert "not an image we accept" in refused.get_data(as_text=True)


@pytest.mark.parametrize(
    ("data", "filename", "message"),
    [
        (b"<!doctype html><html><body onload=alert(1)>hi</body></html>", "cat.png", "not an image"),
        (
            b'<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg"><script>x</script></svg>',
            "logo.svg",
            "SVG images are not accepted",
        ),
        (b"GIF89a<html><script>alert(document.cookie)</script></html>", "a.gif", "not an image"),
        (images.png()[:60], "cut.png", "could not be read"),
        (b"", "empty.png", "empty"),
    ],
    ids=["html-named-png", "svg", "gif-html-polyglot", "truncated", "empty"],
)
def test_files_that_are_not_accepted_images_are_refused_with_the_reason(
    app: Flask, tenants: dict[str, Tenant], data: bytes, filename: str, message: str
) -> None:
    client = client_for(app, "ana@a.example")
    response = upload(client, data, filename)
    assert response.status_code == 422
    assert message in response.get_json()["error"]
    assert client.get("/media.json").get_json() == []
    assert _files(app) == []


def test_a_polyglot_keeps_only_its_pixels(app: Flask, tenants: dict[str, Tenant]) -> None:
    """A real PNG with an HTML page after its end: what is stored and served is the image
    encoded again, so the page is gone; served as image/png with nosniff."""
    hostile = images.png(30, 30) + b"<html><script>alert(document.domain)</script></html>"
    client = client_for(app, "ana@a.example")
    item = upload(client, hostile, "innocent.png").get_json()
    served = app.test_client().get(_path_of(item["url"]))
    assert served.status_code == 200
    assert served.headers["Content-Type"] == "image/png"
    assert served.headers["X-Content-Type-Options"] == "nosniff"
    assert b"<script" not in served.data and b"<html" not in served.data
    with Image.open(io.BytesIO(served.data)) as image:
        assert image.size == (30, 30)


def test_huge_dimensions_are_refused_before_decoding(
    app: Flask, tenants: dict[str, Tenant]
) -> None:
    client = client_for(app, "ana@a.example")
    bomb = images.png_header_only(60_000, 60_000)  # 3.6 gigapixels announced in 80 bytes
    response = upload(client, bomb, "bomb.png")
    assert response.status_code == 422
    assert "too many pixels" in response.get_json()["error"]
    tall = upload(client, images.png_header_only(10, 5000), "tall.png")
    assert tall.status_code == 422
    assert "10 x 5000 pixels; each side may be at most 4000" in tall.get_json()["error"]
    app.config["MEDIA_MAX_PIXELS"] = 1_000_000
    many = upload(client, images.png_header_only(2000, 1000), "wide.png")
    assert many.status_code == 422 and "too many pixels" in many.get_json()["error"]
    assert _files(app) == []


def test_the_size_limit_refuses_large_uploads(app: Flask, tenants: dict[str, Tenant]) -> None:
    app.config["MEDIA_MAX_BYTES"] = 2000
    client = client_for(app, "ana@a.example")
    large = io.BytesIO()
    Image.effect_noise((200, 200), 64).save(large, "PNG")
    assert len(large.getvalue()) > 2000 + 16 * 1024
    response = upload(client, large.getvalue(), "noise.png")
    assert response.status_code == 413 and "larger than" in response.get_json()["error"]
    small_but_over = large.getvalue()[:3000]  # under the request limit, over the image one
    over = upload(client, small_but_over, "over.png")
    assert over.status_code == 422 and "at most 2 kB" in over.get_json()["error"]


def test_exif_and_gps_are_removed(app: Flask, tenants: dict[str, Tenant]) -> None:
    original = images.jpeg_with_gps()
    with Image.open(io.BytesIO(original)) as image:  # the fixture does carry a location
        assert image.getexif().get_ifd(images.GPS_IFD)
    client = client_for(app, "ana@a.example")
    photo = upload(client, original, "holiday.jpg").get_json()
    served = app.test_client().get(_path_of(photo["url"]))
    assert served.headers["Content-Type"] == "image/jpeg"
    assert b"Exif" not in served.data and b"PhoneMaker" not in served.data
    with Image.open(io.BytesIO(served.data)) as image:
        assert not image.getexif() and image.size == (64, 48)
    drawing = upload(client, images.png_with_exif(), "drawing.png").get_json()
    served_png = app.test_client().get(_path_of(drawing["url"])).data
    assert b"eXIf" not in served_png and b"PhoneMaker" not in served_png
    assert b"Rue Example" not in served_png
    # Nothing on disk carries it either.
    root = Path(app.config["MEDIA_DIR"])
    for path in root.glob("*/*"):
        assert b"PhoneMaker" not in path.read_bytes()


def test_animated_gifs_keep_their_frames(app: Flask, tenants: dict[str, Tenant]) -> None:
    client = client_for(app, "ana@a.example")
    item = upload(client, images.animated_gif(3), "spinner.gif").get_json()
    served = app.test_client().get(_path_of(item["url"]))
    assert served.headers["Content-Type"] == "image/gif"
    with Image.open(io.BytesIO(served.data)) as image:
        assert image.n_frames == 3


def test_the_public_path_records_nothing_and_sets_no_cookie(
    app: Flask, tenants: dict[str, Tenant], caplog: pytest.LogCaptureFixture
) -> None:
    client = client_for(app, "ana@a.example")
    item = upload(client, images.png(), "p.png").get_json()
    path = _path_of(item["url"])
    caplog.set_level(logging.DEBUG)
    # A recipient (no cookie) and the marketer (with the session cookie) alike.
    for who in (app.test_client(), client):
        response = who.get(path, headers={"Referer": "https://mail.example/inbox"})
        assert response.status_code == 200
        assert "Set-Cookie" not in response.headers
        assert response.headers["Cache-Control"] == "public, max-age=31536000, immutable"
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        assert "Vary" not in response.headers
    head = app.test_client().head(path)
    assert head.status_code == 200 and head.data == b""
    assert not [r for r in caplog.records if item["url"].rsplit("/", 1)[1][:32] in r.getMessage()]
    # Nothing was written: the table holds what the upload wrote, no more.
    with app.app_context():
        assert db.session.query(MediaFile).count() == 1
    assert app.test_client().get("/img/" + "0" * 32 + ".png").status_code == 404
    assert app.test_client().get("/img/../../etc/passwd").status_code == 404
    assert app.test_client().get("/img/%2e%2e%2fsecret_key").status_code == 404


def test_gunicorn_logs_the_media_path_without_address_or_name(
    app: Flask, tenants: dict[str, Tenant]
) -> None:
    from datetime import timedelta
    from types import SimpleNamespace

    from core.gunicorn_log import AccessLogger

    client = client_for(app, "ana@a.example")
    item = upload(client, images.png(), "p.png").get_json()
    path = _path_of(item["url"])
    logger = AccessLogger.__new__(AccessLogger)
    environ = {
        "REQUEST_METHOD": "GET",
        "PATH_INFO": path,
        "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": "203.0.113.7",
        "HTTP_USER_AGENT": "Mail/1.0",
    }
    atoms: dict[str, Any] = logger.atoms(
        SimpleNamespace(status="200 OK", sent=10), None, environ, timedelta(microseconds=5)
    )
    assert atoms["h"] == "-" and atoms["a"] == "-"
    assert atoms["r"] == "GET /img/<token> HTTP/1.1"
    assert "203.0.113" not in str(atoms) and item["url"].rsplit("/", 1)[1] not in str(atoms)


def test_another_account_can_neither_list_nor_delete(
    app: Flask, tenants: dict[str, Tenant]
) -> None:
    ana = client_for(app, "ana@a.example")
    item = upload(ana, images.png(), "private.png").get_json()
    bo = client_for(app, "bo@b.example")
    assert bo.get("/media.json").get_json() == []
    assert "private.png" not in bo.get("/media").get_data(as_text=True)
    refused = bo.post(f"/media/{item['id']}/delete", headers={"Accept": "application/json"})
    assert refused.status_code == 404 and refused.get_json() == {"error": "Not found."}
    assert bo.post(f"/media/{item['id']}/delete").status_code == 404
    assert [i["id"] for i in ana.get("/media.json").get_json()] == [item["id"]]
    # Anonymous visitors are sent to the login page, for the JSON too.
    assert app.test_client().get("/media.json").status_code == 302
    # Her own delete works and removes both files.
    done = ana.post(f"/media/{item['id']}/delete", headers={"Accept": "application/json"})
    assert done.get_json() == {"deleted": item["id"]}
    assert ana.get("/media.json").get_json() == []
    assert _files(app) == []
    assert app.test_client().get(_path_of(item["url"])).status_code == 404


def test_media_goes_with_the_account_and_is_in_the_uploaders_report(
    app: Flask, tenants: dict[str, Tenant]
) -> None:
    from accounts import services as accounts
    from privacy import registry

    ana = client_for(app, "ana@a.example")
    upload(ana, images.png(), "team photo.png")
    bo = client_for(app, "bo@b.example")
    upload(bo, images.png(), "kept.png")
    assert len(_files(app)) == 4
    with app.app_context():
        person = registry.person_for("ana@a.example", [])
        reports = {store.name: records for store, records in registry.report(person)}
        assert [r["image"] for r in reports["media"][None]] == ["team photo.png"]
        assert accounts.delete_account_permanently(tenants["a"].account_id, "test")
        assert [m.name for m in db.session.query(MediaFile)] == ["kept.png"]
    assert len(_files(app)) == 2  # B's image and thumbnail only


def test_an_upload_without_a_file_says_so_on_the_page(
    app: Flask, tenants: dict[str, Tenant]
) -> None:
    client = client_for(app, "ana@a.example")
    response = client.post("/media", data={}, content_type="multipart/form-data")
    assert response.status_code == 422
    assert "Choose an image to upload." in response.get_data(as_text=True)
    as_json = client.post("/media", data={}, headers={"Accept": "application/json"})
    assert as_json.status_code == 422 and as_json.get_json() == {
        "error": "Choose an image to upload."
    }
