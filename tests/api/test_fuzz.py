"""Schemathesis, driven by the served OpenAPI document, against the live app (the browser
tests' server, with its worker) on the run's database (SQLite or PostgreSQL): no 5xx, every
answer conforms to the document (status, content type, headers, body), and authentication is
enforced on every operation (the ``ignored_auth`` check replays each call without the key and
must get 401). Bounded: a few examples per operation, about a minute per database."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    ignored_auth,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from subscribers import services as subscribers
from tests.api.conftest import make_key
from tests.conftest import LiveServer
from tests.factories import make_list_with_contacts, make_tenant

#: Examples per operation: with about 15 operations this stays near a minute per database.
EXAMPLES = 20
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    ignored_auth,
]


@pytest.fixture
def fuzzed(live_server: LiveServer) -> Iterator[tuple[str, str]]:
    """The live server's URL and an owner's key with every scope; some rows to find."""
    app = live_server.app
    app.config["API_RATE_LIMIT_PER_MINUTE"] = 100_000
    with app.app_context():
        tenant = make_tenant("owner@fuzz.example", "Fuzz")
        list_id = make_list_with_contacts(tenant, ["ana@example.org", "zoë@example.org"])
        subscribers.add_contact_to_list(tenant.account_id, list_id, "李@example.cn")
    yield live_server.url, make_key(app, tenant)


def test_the_api_keeps_its_document(fuzzed: tuple[str, str]) -> None:
    """Every operation of the served document, each with its own bounded Hypothesis run; the
    failures of all operations are reported together."""
    url, key = fuzzed
    schema = schemathesis.openapi.from_url(f"{url}/api/v1/openapi.json")
    failures = []
    operations = 0
    for result in schema.get_all_operations():
        operation = result.ok()
        operations += 1

        @given(case=operation.as_strategy())
        @settings(
            max_examples=EXAMPLES,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
            phases=[Phase.explicit, Phase.generate],  # report the first failure, unshrunk
        )
        def run(case: Any) -> None:
            case.call_and_validate(
                base_url=url, headers={"Authorization": f"Bearer {key}"}, checks=CHECKS
            )

        try:
            run()
        except Exception as failure:
            failures.append(f"{operation.label}: {failure}")
    assert operations >= 10
    assert not failures, "\n\n".join(failures)
