"""The OpenAPI document is generated from the code, served, valid OpenAPI 3.1, and says for
every operation what it needs and how it fails; the reference page uses our origin only."""

from __future__ import annotations

import re

from flask import Flask
from openapi_spec_validator import validate

from api.spec import build_spec


def test_the_served_document_is_valid_openapi_3_1(app: Flask) -> None:
    served = app.test_client().get("/api/v1/openapi.json")
    assert served.status_code == 200 and served.is_json
    spec = served.get_json()
    assert spec["openapi"].startswith("3.1")
    validate(spec)
    assert spec == build_spec(app)
    assert spec["components"]["securitySchemes"]["apiKey"]["scheme"] == "bearer"


def test_every_operation_documents_its_scope_and_its_problems(app: Flask) -> None:
    spec = build_spec(app)
    for path, methods in spec["paths"].items():
        assert path.startswith("/api/v1/"), path
        for method, item in methods.items():
            name = f"{method.upper()} {path}"
            assert item["summary"] and not item["summary"].endswith(f"<{method.upper()}>"), name
            assert item["x-scope"] in item["description"], name
            for code in ("401", "403", "404", "422", "429"):
                content = item["responses"][code]["content"]
                assert list(content) == ["application/problem+json"], (name, code)
            if method == "post" and "requestBody" in item and item["responses"].get("201"):
                names = [p["name"] for p in item.get("parameters", [])]
                assert "Idempotency-Key" in names, name
            if method in ("patch", "delete") and "412" in item["responses"]:
                assert "If-Match" in [p["name"] for p in item["parameters"]], name


def test_the_reference_page_references_only_our_own_files(app: Flask) -> None:
    client = app.test_client()
    page = client.get("/api/v1/docs").get_data(as_text=True)
    references = re.findall(r'(?:src|href)="([^"]+)"', page)
    assert references, page
    for reference in references:
        assert reference.startswith("/") and not reference.startswith("//"), reference
        assert client.get(reference).status_code in (200, 302), reference  # / leads to login
    assert client.get("/api/v1/docs/assets/../../../pyproject.toml").status_code == 404
    assert client.get("/api/v1/docs/assets/index.html").status_code == 404
