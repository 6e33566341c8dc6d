"""Fixtures of the media tests: two accounts, logged-in clients, and upload helpers."""

from __future__ import annotations

import io
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from tests.factories import Tenant, login, make_tenant


@pytest.fixture
def tenants(app: Flask) -> dict[str, Tenant]:
    with app.app_context():
        return {
            "a": make_tenant("ana@a.example", "Atelier Ä"),
            "b": make_tenant("bo@b.example", "Bureau B"),
        }


def client_for(app: Flask, email: str) -> FlaskClient:
    client = app.test_client()
    login(client, email)
    return client


def upload(client: FlaskClient, data: bytes, filename: str = "photo.png", **headers: Any) -> Any:
    """POST /media as the editors do (JSON answer)."""
    return client.post(
        "/media",
        data={"file": (io.BytesIO(data), filename)},
        content_type="multipart/form-data",
        headers={"Accept": "application/json", **headers},
    )
