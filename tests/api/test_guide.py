"""docs/api.md runs as written: every ``sh`` block, in order, in one bash against a live
server (``$ENVOY_URL``, and ``$ENVOY_KEY`` a fresh account's key), and what each prints is
the ``text`` block that follows it."""

from __future__ import annotations

import os
import re
import subprocess
from itertools import pairwise
from pathlib import Path

from tests import services_available
from tests.api.conftest import make_key
from tests.conftest import LiveServer
from tests.factories import make_tenant

GUIDE = Path(__file__).resolve().parents[2] / "docs" / "api.md"
BLOCK = re.compile(r"```(sh|text)\n(.*?)```", re.DOTALL)


def examples() -> list[tuple[str, str]]:
    """(commands, expected output) pairs, in the guide's order."""
    blocks = BLOCK.findall(GUIDE.read_text())
    pairs = []
    for (kind, commands), (next_kind, output) in pairwise(blocks):
        if kind == "sh":
            assert next_kind == "text", f"no output block after:\n{commands}"
            pairs.append((commands, output))
    return pairs


def test_the_guides_examples_print_what_it_says(live_server: LiveServer) -> None:
    services_available.require("curl-and-jq")
    with live_server.app.app_context():
        tenant = make_tenant("owner@guide.example", "Guide")
    key = make_key(live_server.app, tenant)
    pairs = examples()
    assert len(pairs) >= 7
    script = "set -e -o pipefail\n" + "".join(
        f"echo '@@example {n}@@'\n{commands}\n" for n, (commands, _output) in enumerate(pairs)
    )
    env = {**os.environ, "ENVOY_URL": live_server.url, "ENVOY_KEY": key, "LC_ALL": "C.UTF-8"}
    done = subprocess.run(
        ["/bin/bash", "-c", script],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    printed = re.split(r"@@example (\d+)@@\n", done.stdout)[1:]
    outputs = dict(zip(printed[::2], printed[1::2], strict=True))
    for n, (commands, expected) in enumerate(pairs):
        assert str(n) in outputs, f"stopped before example {n}:\n{commands}\n{done.stderr}"
        assert outputs[str(n)].strip() == expected.strip(), f"example {n}:\n{commands}"
    assert done.returncode == 0, done.stderr
