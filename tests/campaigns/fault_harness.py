"""Processes for the fault scenarios: our own redis-server and real ``dramatiq core.worker``
processes, each started and stopped by PID (never the shared Redis)."""

from __future__ import annotations

import os
import resource
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import redis
from sqlalchemy import select

ROOT = Path(__file__).resolve().parents[2]
DRAMATIQ = str(Path(sys.executable).parent / "dramatiq")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


class OwnRedis:
    """A private redis-server without persistence on a free port."""

    def __init__(self) -> None:
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> OwnRedis:
        self.process = subprocess.Popen(
            [
                "redis-server",
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        client = redis.Redis.from_url(self.url)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                client.ping()
                return self
            except redis.ConnectionError:
                time.sleep(0.05)
        raise RuntimeError("redis-server did not start")

    def kill(self) -> None:
        """SIGKILL: everything in it is lost (no persistence)."""
        if self.process is not None:
            self.process.kill()
            self.process.wait(timeout=10)
            self.process = None

    def restart(self) -> None:
        self.kill()
        self.start()


class Worker:
    """``dramatiq core.worker`` in its own process group."""

    def __init__(
        self,
        env: dict[str, str],
        log_path: Path,
        threads: int = 4,
        processes: int = 1,
        memory_limit: int | None = None,
    ) -> None:
        """``memory_limit``: bytes of address space (RLIMIT_AS) of dramatiq's processes."""
        self.env = env
        self.log_path = log_path
        self.threads = threads
        self.processes = processes
        self.memory_limit = memory_limit
        self.process: subprocess.Popen[bytes] | None = None

    def _limit_memory(self) -> None:
        """Runs in the child before exec: its worker process inherits the limit."""
        if self.memory_limit is not None:
            resource.setrlimit(resource.RLIMIT_AS, (self.memory_limit, self.memory_limit))

    def start(self) -> Worker:
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            [
                DRAMATIQ,
                "core.worker",
                "--processes",
                str(self.processes),
                "--threads",
                str(self.threads),
                "--queues",
                "send",
                "default",
            ],
            cwd=str(ROOT),
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=self._limit_memory if self.memory_limit is not None else None,
        )
        return self

    def alive(self) -> bool:
        """True while dramatiq's main process runs."""
        return self.process is not None and self.process.poll() is None

    def kill(self) -> None:
        """SIGKILL the whole worker (dramatiq's parent and its worker process)."""
        if self.process is not None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)
            self.process = None

    def terminate(self, timeout: float = 30) -> tuple[int, float]:
        """SIGTERM to dramatiq's main process only (as a container runtime does); dramatiq
        passes it on to its worker process. Returns (exit code, seconds until it exited)."""
        assert self.process is not None
        started = time.monotonic()
        self.process.send_signal(signal.SIGTERM)
        code = self.process.wait(timeout=timeout)
        self.process = None
        return code, time.monotonic() - started

    def stop(self) -> None:
        if self.process is not None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=10)
            self.process = None


class SchedulerProcess(Worker):
    """``python -m core.scheduler`` (the production scheduler process) in its own group;
    stopped as a worker is."""

    def start(self) -> SchedulerProcess:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "core.scheduler"],
            cwd=str(ROOT),
            env=self.env,
            stdout=self.log_path.open("ab"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        return self


def worker_env(config: dict[str, Any]) -> dict[str, str]:
    """The environment a worker needs to act on the same database, Redis and SMTP sink."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DATABASE", "REDIS", "SMTP"))}
    for key, value in config.items():
        env[key] = ",".join(value) if isinstance(value, list) else str(value)
    env["PYTHONPATH"] = str(ROOT)
    return env


def worker_env_like_tests(
    database_url: str, redis_url: str, namespace: str, smtp_url: str, tmp_path: Path, **timing: Any
) -> dict[str, str]:
    """:func:`worker_env` for a ``dramatiq core.worker`` that acts like the tests' apps (their
    keys, sink and database, its own Redis namespace and data dir) with ``timing`` settings."""
    from tests.conftest import TEST_ENCRYPTION_KEYS, TEST_KEYS

    return worker_env(
        {
            "DATABASE_URL": database_url,
            "REDIS_URL": redis_url,
            "REDIS_NAMESPACE": namespace,
            "SMTP_URL": smtp_url,
            "SECRET_KEYS": list(TEST_KEYS),
            "ENCRYPTION_KEYS": list(TEST_ENCRYPTION_KEYS),
            "ADDRESS_HASH_KEY": "test-address-hash-key",
            "BASE_URL": "http://localhost",
            "REQUIRE_VERIFIED_SENDER": "false",
            "VAR_DIR": str(tmp_path / "var"),
            "MAILDIR_PATH": str(tmp_path / "outbox"),
            "INPROCESS_WORKER": "false",
            **timing,
        }
    )


def wait_for_status(campaign_id: int, status: str, seconds: float) -> str:
    """Poll the campaign's status (in the current app context) until it is ``status`` or
    ``seconds`` have passed; return the last status seen."""
    from campaigns.models import Campaign
    from core import db

    deadline = time.monotonic() + seconds
    seen = ""
    while time.monotonic() < deadline:
        db.session.expire_all()
        seen = str(db.session.scalar(select(Campaign.status).where(Campaign.id == campaign_id)))
        db.session.rollback()
        if seen == status:
            break
        time.sleep(0.5)
    return seen


@dataclass
class Outcome:
    """What the sink received against what the database says."""

    recipients: int
    received: int
    duplicates: int
    missing: list[str]
    interrupted: int
    seconds: float

    def report(self, label: str) -> str:
        return (
            f"{label}: {self.recipients} recipients, {self.received} messages received, "
            f"{self.duplicates} duplicates, {len(self.missing)} missing, "
            f"{self.interrupted} in the documented window (interrupted), {self.seconds:.1f}s"
        )


def outcome(addresses: list[str], received: list[str], interrupted: int, seconds: float) -> Outcome:
    counts = Counter(received)
    return Outcome(
        recipients=len(addresses),
        received=len(received),
        duplicates=sum(n - 1 for n in counts.values() if n > 1),
        missing=[a for a in addresses if counts[a] == 0],
        interrupted=interrupted,
        seconds=seconds,
    )
