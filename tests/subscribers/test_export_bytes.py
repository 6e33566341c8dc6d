"""The exact bytes of list and segment exports, CSV and JSON, for awkward rows: formula-like
cells (``=``, ``+``, ``-``, ``@``, tab, carriage return), quotes, backslashes, line breaks,
non-ASCII text, numbers and true/false among the attributes, attributes stored by the importer
(JSON with ``\\u`` escapes, names unsorted) and by the services."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import update

from core import db as core_db
from subscribers import exports, services
from subscribers.models import Contact
from tests.subscribers.helpers import logged_in, run_import, tenant_with_list

#: Added through the services, in this order: (address, name, attributes, source).
PEOPLE: list[tuple[str, str, dict[str, Any], str]] = [
    ("plain@example.org", "=1+1", {"note": "+cmd|' /C calc'!A0", "n": 4.5, "ok": True}, "manual"),
    ("minus@example.org", "+", {}, "-api"),
    ("at@example.org", "@SUM(A1)", {"Zoë": "李", "b": "-1", "a": None}, "@form"),
    ("tab@example.org", "\tTab", {"q": 'Say "hi" \\ there'}, "\tsrc"),  # names are stripped
    ("cr@example.org", "CR", {"big": 10**20, "neg": -2}, "\r=1"),
    ("lines@example.org", 'Line\nbreak "quoted", comma', {"multi": "a\nb\r\nc"}, "manual"),
    ("zoë@exämple.org", "Zoë Ångström ✉", {"city": "Kraków"}, "manual"),
]
IMPORTED = 'email,name,zeta,alpha\nimported@example.org,-Imported,KRAKÓW,"=x"\n'

CSV_ROWS = [
    "email,name,status,source,created_at,attributes",
    'plain@example.org,\'=1+1,subscribed,manual,2026-01-02T03:04:00,"{""n"": 4.5, ""note"":'
    ' ""+cmd|\' /C calc\'!A0"", ""ok"": true}"',
    "minus@example.org,'+,subscribed,'-api,2026-01-02T03:04:01,{}",
    'at@example.org,\'@SUM(A1),subscribed,\'@form,2026-01-02T03:04:02,"{""Zoë"": ""李"",'
    ' ""a"": null, ""b"": ""-1""}"',
    'tab@example.org,Tab,subscribed,\'\tsrc,2026-01-02T03:04:03,"{""q"": ""Say \\""hi\\""'
    ' \\\\ there""}"',
    'cr@example.org,CR,subscribed,"\'\r=1",2026-01-02T03:04:04,'
    '"{""big"": 100000000000000000000, ""neg"": -2}"',
    'lines@example.org,"Line\nbreak ""quoted"", comma",subscribed,manual,2026-01-02T03:04:05,'
    '"{""multi"": ""a\\nb\\r\\nc""}"',
    'zoë@exämple.org,Zoë Ångström ✉,subscribed,manual,2026-01-02T03:04:06,"{""city"": ""Kraków""}"',
    'imported@example.org,\'-Imported,subscribed,import,2026-01-02T03:04:07,"{""alpha"":'
    ' ""=x"", ""zeta"": ""KRAKÓW""}"',
]

JSON_ROWS = [
    '{"email": "plain@example.org", "name": "=1+1", "status": "subscribed", "source": "manual",'
    ' "created_at": "2026-01-02T03:04:00", "attributes": {"note": "+cmd|\' /C calc\'!A0",'
    ' "n": 4.5, "ok": true}}',
    '{"email": "minus@example.org", "name": "+", "status": "subscribed", "source": "-api",'
    ' "created_at": "2026-01-02T03:04:01", "attributes": {}}',
    '{"email": "at@example.org", "name": "@SUM(A1)", "status": "subscribed", "source":'
    ' "@form", "created_at": "2026-01-02T03:04:02", "attributes": {"Zoë": "李", "b": "-1",'
    ' "a": null}}',
    '{"email": "tab@example.org", "name": "Tab", "status": "subscribed", "source": "\\tsrc",'
    ' "created_at": "2026-01-02T03:04:03", "attributes": {"q": "Say \\"hi\\" \\\\ there"}}',
    '{"email": "cr@example.org", "name": "CR", "status": "subscribed", "source": "\\r=1",'
    ' "created_at": "2026-01-02T03:04:04", "attributes": {"big": 100000000000000000000,'
    ' "neg": -2}}',
    '{"email": "lines@example.org", "name": "Line\\nbreak \\"quoted\\", comma", "status":'
    ' "subscribed", "source": "manual", "created_at": "2026-01-02T03:04:05", "attributes":'
    ' {"multi": "a\\nb\\r\\nc"}}',
    '{"email": "zoë@exämple.org", "name": "Zoë Ångström ✉", "status": "subscribed", "source":'
    ' "manual", "created_at": "2026-01-02T03:04:06", "attributes": {"city": "Kraków"}}',
    '{"email": "imported@example.org", "name": "-Imported", "status": "subscribed", "source":'
    ' "import", "created_at": "2026-01-02T03:04:07", "attributes": {"zeta": "KRAKÓW",'
    ' "alpha": "=x"}}',
]


@pytest.fixture
def exported(app: Flask) -> tuple[Any, int, int]:
    """The tenant's client, its list of PEOPLE and the imported row, and a segment of all."""
    tenant, list_id = tenant_with_list(app)
    with app.app_context():
        for email, name, attributes, source in PEOPLE:
            services.add_contact_to_list(
                tenant.account_id, list_id, email, name, attributes, source
            )
    client = logged_in(app, tenant)
    run_import(app, client, list_id, IMPORTED, {"0": "email", "1": "name"})
    with app.app_context():
        ids = core_db.session.scalars(
            Contact.__table__.select()
            .with_only_columns(Contact.id)
            .where(Contact.account_id == tenant.account_id)
            .order_by(Contact.id)
        ).all()
        for second, contact_id in enumerate(ids):
            core_db.session.execute(
                update(Contact)
                .where(Contact.id == contact_id)
                .values(created_at=datetime(2026, 1, 2, 3, 4, second, 987654))
            )
        core_db.session.commit()
        segment = services.save_segment(
            tenant.account_id,
            None,
            "Everyone",
            "all",
            [{"field": "email", "op": "contains", "value": "@"}],
        )
    return client, list_id, segment.id


@pytest.mark.parametrize("page_rows", [5000, 3])
def test_exports_give_exactly_these_bytes(
    exported: tuple[Any, int, int], monkeypatch: pytest.MonkeyPatch, page_rows: int
) -> None:
    monkeypatch.setattr(exports, "PAGE_ROWS", page_rows)
    client, list_id, segment_id = exported
    csv_text = "".join(row + "\r\n" for row in CSV_ROWS)
    json_text = "[\n" + ",\n".join(JSON_ROWS) + "\n]\n"
    assert client.get(f"/lists/{list_id}/export.csv").get_data() == csv_text.encode()
    assert client.get(f"/lists/{list_id}/export.json").get_data() == json_text.encode()
    on_segment = client.get(f"/segments/{segment_id}/export.csv").get_data()
    assert on_segment == csv_text.replace(",subscribed,", ",,").encode()
    on_segment = client.get(f"/segments/{segment_id}/export.json").get_data()
    assert on_segment == json_text.replace('"status": "subscribed"', '"status": ""').encode()
