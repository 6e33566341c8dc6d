"""The compose page's editor bundle (core/static/editor/) is committed, so the platform starts
without Node.js; it must be exactly what frontend/'s lockfile builds. This rebuilds it with
``npm ci && npm run build`` in a copy of frontend/ and compares the files byte for byte."""

from __future__ import annotations

import filecmp
import os
import shutil
import subprocess
from pathlib import Path

from tests import services_available

ROOT = Path(__file__).resolve().parents[1]
FRONTEND = ROOT / "frontend"
BUNDLE = ROOT / "core" / "static" / "editor"
BUILT = ("editor.js", "editor.css", "editor.js.LEGAL.txt", "editor.css.LEGAL.txt")


def test_the_committed_bundle_is_what_the_lockfile_builds(tmp_path: Path) -> None:
    services_available.require("npm")
    work = tmp_path / "frontend"
    shutil.copytree(FRONTEND, work, ignore=shutil.ignore_patterns("node_modules"))
    out = tmp_path / "built"
    env = {**os.environ, "EDITOR_OUTDIR": str(out), "npm_config_audit": "false",
           "npm_config_fund": "false", "npm_config_update_notifier": "false"}  # fmt: skip
    for command in (["npm", "ci", "--no-progress"], ["npm", "run", "build"]):
        done = subprocess.run(
            command, cwd=work, env=env, capture_output=True, text=True, timeout=600, check=False
        )
        assert done.returncode == 0, f"{' '.join(command)} failed:\n{done.stdout}\n{done.stderr}"
    for name in BUILT:
        assert (out / name).is_file(), f"the build made no {name}"
        assert filecmp.cmp(out / name, BUNDLE / name, shallow=False), (
            f"core/static/editor/{name} differs from what frontend/ builds: run "
            "`cd frontend && npm ci && npm run build` and commit the result"
        )
    assert sorted(p.name for p in out.iterdir()) == sorted(BUILT)
