"""Where image bytes live: one interface, two backends.

- :class:`DiskStorage` (the default): files under ``MEDIA_DIR``, fanned out by the first two
  characters of the name; written to a temporary file and renamed, so a reader never sees half
  a file.
- :class:`S3Storage` (``MEDIA_STORAGE=s3``): objects in an S3-compatible bucket through boto3
  (``MEDIA_S3_*``). The platform still serves them itself (``/img/<name>``), so recipients
  never contact the storage provider and the provider sees no recipient.

Names are the public file names (``<32 hex>.<ext>``, ``<32 hex>-thumb.png``); a name that is
not of that shape is refused by :func:`valid_name` before any backend sees it.
"""

from __future__ import annotations

import os
import re
import tempfile
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any, Protocol

NAME = re.compile(r"^[0-9a-f]{32}(?:\.(?:png|jpg|gif|webp)|-thumb\.png)$")


def valid_name(name: str) -> bool:
    """Whether ``name`` is the shape of a stored image or thumbnail name."""
    return bool(NAME.match(name))


class StorageError(RuntimeError):
    """The storage could not be reached or refused an operation."""


class Storage(Protocol):
    def put(self, name: str, data: bytes, content_type: str) -> None:
        """Store ``data`` under ``name`` (replacing it)."""

    def get(self, name: str) -> bytes | None:
        """The bytes stored under ``name``, or None."""

    def delete(self, names: Iterable[str]) -> None:
        """Remove each name; a missing one is not an error."""

    def names(self) -> Iterator[str]:
        """Every stored name."""


class DiskStorage:
    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)

    def _path(self, name: str) -> Path:
        if not valid_name(name):
            raise ValueError("not a media name")
        return self.root / name[:2] / name

    def put(self, name: str, data: bytes, content_type: str) -> None:
        path = self._path(name)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".upload-")
        try:
            with os.fdopen(fd, "wb") as out:
                out.write(data)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def get(self, name: str) -> bytes | None:
        try:
            return self._path(name).read_bytes()
        except FileNotFoundError:
            return None

    def delete(self, names: Iterable[str]) -> None:
        for name in names:
            self._path(name).unlink(missing_ok=True)

    def names(self) -> Iterator[str]:
        if not self.root.is_dir():
            return
        for path in self.root.glob("*/*"):
            if valid_name(path.name):
                yield path.name


class S3Storage:
    def __init__(self, client: Any, bucket: str, prefix: str) -> None:
        self.client = client
        self.bucket = bucket
        self.prefix = prefix

    def _key(self, name: str) -> str:
        if not valid_name(name):
            raise ValueError("not a media name")
        return self.prefix + name

    def put(self, name: str, data: bytes, content_type: str) -> None:
        try:
            self.client.put_object(
                Bucket=self.bucket, Key=self._key(name), Body=data, ContentType=content_type
            )
        except Exception as exc:  # botocore's errors, without importing botocore here
            raise StorageError(
                f"the media bucket refused the upload ({type(exc).__name__})"
            ) from exc

    def get(self, name: str) -> bytes | None:
        try:
            answer = self.client.get_object(Bucket=self.bucket, Key=self._key(name))
        except self.client.exceptions.NoSuchKey:
            return None
        body: bytes = answer["Body"].read()
        return body

    def delete(self, names: Iterable[str]) -> None:
        keys = [{"Key": self._key(name)} for name in names]
        for start in range(0, len(keys), 1000):  # the API's limit per request
            self.client.delete_objects(
                Bucket=self.bucket, Delete={"Objects": keys[start : start + 1000], "Quiet": True}
            )

    def names(self) -> Iterator[str]:
        paginator = self.client.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=self.bucket, Prefix=self.prefix):
            for item in page.get("Contents", []):
                name = item["Key"][len(self.prefix) :]
                if valid_name(name):
                    yield name


def _settings_key(config: Mapping[str, Any]) -> tuple[Any, ...]:
    return tuple(
        config[name]
        for name in (
            "MEDIA_STORAGE",
            "MEDIA_DIR",
            "MEDIA_S3_BUCKET",
            "MEDIA_S3_ENDPOINT_URL",
            "MEDIA_S3_REGION",
            "MEDIA_S3_ACCESS_KEY_ID",
            "MEDIA_S3_SECRET_ACCESS_KEY",
            "MEDIA_S3_PREFIX",
        )
    )


def build(config: Mapping[str, Any]) -> Storage:
    """The backend the settings choose."""
    if config["MEDIA_STORAGE"] != "s3":
        return DiskStorage(config["MEDIA_DIR"])
    if not config["MEDIA_S3_BUCKET"]:
        raise StorageError("MEDIA_STORAGE=s3 needs MEDIA_S3_BUCKET")
    import boto3

    credentials = {}
    if config["MEDIA_S3_ACCESS_KEY_ID"]:
        credentials = {
            "aws_access_key_id": config["MEDIA_S3_ACCESS_KEY_ID"],
            "aws_secret_access_key": config["MEDIA_S3_SECRET_ACCESS_KEY"],
        }
    client = boto3.client(
        "s3",
        endpoint_url=config["MEDIA_S3_ENDPOINT_URL"] or None,
        region_name=config["MEDIA_S3_REGION"],
        **credentials,
    )
    return S3Storage(client, config["MEDIA_S3_BUCKET"], config["MEDIA_S3_PREFIX"])


def for_app(app: Any) -> Storage:
    """The app's backend, built once per distinct media configuration (tests change the
    config of a built app)."""
    cache: dict[tuple[Any, ...], Storage] = app.extensions.setdefault("media_storage", {})
    key = _settings_key(app.config)
    if key not in cache:
        cache[key] = build(app.config)
    return cache[key]
