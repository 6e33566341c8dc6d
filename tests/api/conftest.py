"""Helpers for the API tests: keys made through the service, requests with a bearer key."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from flask import Flask
from flask.testing import FlaskClient

from api import keys
from core.permissions import ALL, Permission
from tests.factories import Tenant


def make_key(
    app: Flask, tenant: Tenant, scopes: Iterable[Permission] = ALL, name: str = "Test key"
) -> str:
    """A live key of ``tenant``'s owner with ``scopes``; returns the secret."""
    with app.app_context():
        made = keys.create_key(
            tenant.account_id, tenant.user_id, ALL, name, [scope.value for scope in scopes]
        )
        return made.secret


class Api:
    """A test client that sends ``Authorization: Bearer <key>`` (no cookies of its own)."""

    def __init__(self, client: FlaskClient, key: str | None) -> None:
        self.client = client
        self.key = key

    def request(self, method: str, path: str, **kwargs: Any) -> Any:
        headers = dict(kwargs.pop("headers", {}) or {})
        if self.key is not None:
            headers.setdefault("Authorization", f"Bearer {self.key}")
        return self.client.open(path, method=method, headers=headers, **kwargs)

    def get(self, path: str, **kwargs: Any) -> Any:
        return self.request("GET", path, **kwargs)

    def post(self, path: str, **kwargs: Any) -> Any:
        return self.request("POST", path, **kwargs)

    def put(self, path: str, **kwargs: Any) -> Any:
        return self.request("PUT", path, **kwargs)

    def patch(self, path: str, **kwargs: Any) -> Any:
        return self.request("PATCH", path, **kwargs)

    def delete(self, path: str, **kwargs: Any) -> Any:
        return self.request("DELETE", path, **kwargs)


def api(app: Flask, key: str | None) -> Api:
    return Api(app.test_client(), key)
