"""Fault scenarios at a larger scale: a real ``dramatiq core.worker`` SIGKILLed mid-campaign and
restarted, and our own Redis restarted without persistence mid-campaign; prints what the SMTP
sink received (duplicates, missing, rows in the documented window).

    .venv/bin/python bench/fault_bench.py --recipients 3000 --rate 400 [--db postgresql]

Runs tests/campaigns/test_faults.py with these sizes (own redis-server on a free port).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--recipients", type=int, default=3000)
    parser.add_argument("--rate", type=float, default=400.0, help="messages/s during the run")
    parser.add_argument("--db", choices=["sqlite", "postgresql"], default="sqlite")
    args = parser.parse_args()
    env = dict(os.environ, FAULT_RECIPIENTS=str(args.recipients), FAULT_RATE=str(args.rate))
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-s",
            "-p",
            "no:cacheprovider",
            f"--db={args.db}",
            "tests/campaigns/test_faults.py",
        ],
        cwd=ROOT,
        env=env,
        check=False,
    )
    sys.exit(result.returncode)


if __name__ == "__main__":
    main()
