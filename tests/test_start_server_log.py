"""The server ``scripts/start`` runs (``flask run``, werkzeug's embedded server) logs no client
address and no tracking token, even at INFO where it writes a line per request (issue 13).

The server runs as its own process, as the start script runs it, and its whole output is read.
"""

from __future__ import annotations

import http.client
import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from tests.conftest import TEST_KEYS

ROOT = Path(__file__).resolve().parent.parent
TOKEN = "WzEyLDM0XQ.Zm9vYmFyYmF6cXV4cXV1eC1sb25nLXRva2Vu.c2lnbmF0dXJlLWJ5dGVz"
FORWARDED = "198.51.100.77"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _wait_until_serving(port: int, server: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        assert server.poll() is None, "the server stopped"
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(0.2)
    raise AssertionError("the server never listened")


def test_the_start_scripts_server_logs_no_client_address_or_token(
    database_url: str, tmp_path: Any
) -> None:
    port = _free_port()
    env = {
        **{k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "SMTP_URL")},
        "PYTHONPATH": str(ROOT),
        "FLASK_APP": "wsgi",
        "DATABASE_URL": database_url,
        "VAR_DIR": str(tmp_path),
        "SECRET_KEYS": ",".join(TEST_KEYS),
        "BASE_URL": f"http://127.0.0.1:{port}",
        "INPROCESS_WORKER": "false",
        "SCHEDULER_INPROCESS": "false",
        "LOG_LEVEL": "INFO",  # stricter than the script's WARNING: a line per request
        "TRUSTED_PROXY_HOPS": "1",
    }
    log_path = tmp_path / "server.log"
    # The command scripts/start ends with (exec flask run --host --port --no-reload).
    command = [sys.executable, "-m", "flask", "run", "--host", "127.0.0.1", "--port", str(port)]
    command.append("--no-reload")
    with log_path.open("wb") as log:
        server = subprocess.Popen(
            command,
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        _wait_until_serving(port, server)
        for path in (f"/o/{TOKEN}", f"/c/{TOKEN}", f"/u/{TOKEN}", f"/preferences/{TOKEN}"):
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            connection.request("GET", path, headers={"X-Forwarded-For": FORWARDED})
            connection.getresponse().read()
            connection.close()
        # A malformed request: werkzeug logs it as an error line, address first.
        with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
            raw.sendall(f"GET /o/{TOKEN} HTTP/9.9 extra\r\n\r\n".encode())
            raw.recv(1024)
        time.sleep(0.5)
    finally:
        server.terminate()
        server.wait(timeout=20)
    output = log_path.read_text(encoding="utf-8", errors="replace")
    print(output)  # shown on failure
    requests = [line for line in output.splitlines() if "HTTP/1.1" in line or "code 400" in line]
    assert len(requests) >= 5, output  # every request was logged (so the check means something)
    assert "/o/<token>" in output and "/preferences/<token>" in output
    assert TOKEN not in output and "Zm9vYmFy" not in output and "WzEyLDM0XQ" not in output
    assert FORWARDED not in output
    # The only address written is the server's own, in its start-up banner.
    for line in output.splitlines():
        if "127.0.0.1" in line:
            assert re.search(rf"Running on http://127\.0\.0\.1:{port}", line), line
