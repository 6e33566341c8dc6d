"""The S3 backend against a real S3-compatible server: moto in server mode, started here on a
free 127.0.0.1 port and stopped by its PID."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

import pytest
from flask import Flask

from core import db
from media import storage
from media.models import MediaFile
from tests.factories import make_tenant
from tests.media import images
from tests.media.conftest import client_for, upload

BUCKET = "envoy-media-test"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture(scope="module")
def s3_endpoint() -> Iterator[str]:
    port = _free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                    break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("moto server did not start") from None
                time.sleep(0.1)
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture
def s3_app(app_factory: Any, s3_endpoint: str) -> Flask:
    app: Flask = app_factory(
        MEDIA_STORAGE="s3",
        MEDIA_S3_BUCKET=BUCKET,
        MEDIA_S3_ENDPOINT_URL=s3_endpoint,
        MEDIA_S3_REGION="eu-west-1",
        MEDIA_S3_ACCESS_KEY_ID="test-key",
        MEDIA_S3_SECRET_ACCESS_KEY="test-secret",
        MEDIA_S3_PREFIX="tests/",
    )
    client = storage.for_app(app).client  # type: ignore[attr-defined]
    existing = [b["Name"] for b in client.list_buckets().get("Buckets", [])]
    if BUCKET not in existing:
        client.create_bucket(
            Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": "eu-west-1"}
        )
    store = storage.for_app(app)
    store.delete(list(store.names()))
    return app


def test_images_live_in_the_bucket_and_are_served_by_the_platform(s3_app: Flask) -> None:
    with s3_app.app_context():
        tenant = make_tenant("ana@a.example", "Atelier")
        other = make_tenant("bo@b.example", "Bureau")
    ana = client_for(s3_app, "ana@a.example")
    item = upload(ana, images.jpeg_with_gps(), "façade.jpg").get_json()
    bo = client_for(s3_app, "bo@b.example")
    upload(bo, images.png(), "kept.png")
    store = storage.for_app(s3_app)
    key = item["url"].rsplit("/", 1)[1]
    assert {key, key.replace(".jpg", "-thumb.png")} <= set(store.names())
    raw = store.client.get_object(Bucket=BUCKET, Key="tests/" + key)  # type: ignore[attr-defined]
    assert raw["ContentType"] == "image/jpeg"
    assert b"PhoneMaker" not in raw["Body"].read()
    # Recipients load it from the platform's own path, not the bucket's.
    served = s3_app.test_client().get(item["url"].removeprefix("http://localhost"))
    assert served.status_code == 200 and served.headers["Content-Type"] == "image/jpeg"
    assert served.headers["Cache-Control"].startswith("public, max-age=")
    assert "Set-Cookie" not in served.headers
    # Deleting the account removes its objects from the bucket, and only its objects.
    from accounts import services as accounts

    with s3_app.app_context():
        assert accounts.delete_account_permanently(tenant.account_id, "test")
        assert [m.account_id for m in db.session.query(MediaFile)] == [other.account_id]
    assert len(list(store.names())) == 2 and key not in set(store.names())
    assert s3_app.test_client().get(item["url"].removeprefix("http://localhost")).status_code == 404


def test_a_single_delete_removes_both_objects(s3_app: Flask) -> None:
    with s3_app.app_context():
        make_tenant("ana@a.example", "Atelier")
    ana = client_for(s3_app, "ana@a.example")
    item = upload(ana, images.png(), "x.png").get_json()
    assert len(list(storage.for_app(s3_app).names())) == 2
    ana.post(f"/media/{item['id']}/delete", headers={"Accept": "application/json"})
    assert list(storage.for_app(s3_app).names()) == []
