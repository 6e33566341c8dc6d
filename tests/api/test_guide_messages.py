"""The transactional section of docs/api.md, run verbatim with curl against the live app: the
message is queued, sent (received by the SMTP sink) and read back."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

from campaigns import senders
from core.permissions import Permission
from tests.api.conftest import make_key
from tests.conftest import LiveServer, drain
from tests.factories import make_tenant
from tests.smtp_sink import SMTPSink

GUIDE = Path(__file__).resolve().parents[2] / "docs" / "api.md"


def _section(title: str) -> str:
    text = GUIDE.read_text(encoding="utf-8")
    start = text.index(f"## {title}")
    end = text.find("\n## ", start + 1)
    return text[start : end if end > 0 else len(text)]


def test_the_guides_curl_examples_send_a_message(
    live_server: LiveServer, smtp_sink: SMTPSink
) -> None:
    assert shutil.which("curl"), "curl is needed to run the guide"
    app = live_server.app
    with app.app_context():
        tenant = make_tenant("owner@shop.example", "Shop")
        senders.add_sender(tenant.account_id, "orders@shop.example", "Shop", verified=True)
    key = make_key(app, tenant, [Permission.SEND_CAMPAIGNS])
    blocks = re.findall(r"```sh\n(.*?)```", _section("Transactional messages"), re.S)
    assert len(blocks) == 2
    env = {**os.environ, "ENVOY_URL": live_server.url, "ENVOY_KEY": key}
    sent = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", blocks[0]],
        capture_output=True, text=True, env=env, timeout=60,
    )  # fmt: skip
    assert sent.returncode == 0, sent.stderr
    assert sent.stdout.startswith("queued as ")
    message_id = int(sent.stdout.strip().removeprefix("queued as "))
    drain(app)
    received = smtp_sink.wait_for(1)[0]
    assert received.recipients == ["ada@example.org"]
    assert (
        "Thank you, Ada! Order 1042: 12,50 €." in received.message.get_body(("html",)).get_content()
    )
    read = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", blocks[1]],
        capture_output=True, text=True, timeout=60,
        env={**env, "MESSAGE_ID": str(message_id)},
    )  # fmt: skip
    assert read.returncode == 0, read.stderr
    assert json.loads(read.stdout)["status"] == "sent"
    # The retry the guide promises is safe: the same command answers the same message.
    again = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", blocks[0]],
        capture_output=True, text=True, env=env, timeout=60,
    )  # fmt: skip
    assert again.returncode == 0 and again.stdout.strip() == f"queued as {message_id}"
    drain(app)
    assert len(smtp_sink.messages) == 1
