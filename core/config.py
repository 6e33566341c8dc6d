"""Configuration: safe embedded defaults, overridden by environment variables.

Every setting can be given as an environment variable of the same name. With none set the
platform runs on a SQLite file, an in-process queue and a Maildir outbox under ``var/``.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable
from pathlib import Path
from typing import Any

from core.secrets import generate_key, parse_keys

PROJECT_ROOT = Path(__file__).resolve().parent.parent
VAR_DIR = Path(os.environ.get("VAR_DIR", PROJECT_ROOT / "var"))


def _bool(value: str | None, default: bool) -> bool:
    if value is None or value == "":
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def _development_secret(
    name: str = "secret_key", make: Callable[[], str] = lambda: secrets.token_urlsafe(48)
) -> str:
    """A random key kept in var/ so that embedded installs survive restarts without config.
    Created with mode 0600 (never readable by others, even for a moment)."""
    path = VAR_DIR / name
    if path.exists():
        return path.read_text().strip()
    VAR_DIR.mkdir(parents=True, exist_ok=True)
    key = make()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as file:
        file.write(key)
    path.chmod(0o600)
    return key


def _subprocessors(raw: str) -> list[dict[str, str]]:
    """Parse ``SUBPROCESSORS`` ("name|purpose|country;..."); the embedded default has none."""
    found = []
    for entry in raw.split(";"):
        parts = [p.strip() for p in entry.split("|")]
        if parts and parts[0]:
            parts += ["", ""]
            found.append({"name": parts[0], "purpose": parts[1], "country": parts[2]})
    return found


def load_config(overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    """Return the settings: defaults, then the environment, then ``overrides`` (tests)."""
    env = os.environ
    overrides = dict(overrides or {})
    keys_raw = overrides.pop("SECRET_KEYS", None) or env.get("SECRET_KEYS", "")
    if isinstance(keys_raw, str):
        secret_keys = [k.strip() for k in keys_raw.split(",") if k.strip()]
    else:
        secret_keys = list(keys_raw)
    if not secret_keys:
        secret_keys = [_development_secret()]
    # Encryption of secrets at rest (core/secrets.py): newest first, unlike SECRET_KEYS.
    encryption_keys = parse_keys(
        overrides.pop("ENCRYPTION_KEYS", None) or env.get("ENCRYPTION_KEYS", "")
    ) or [_development_secret("encryption_key", generate_key)]
    base_url = env.get("BASE_URL", "http://127.0.0.1:5000").rstrip("/")
    config: dict[str, Any] = {
        # Oldest first: itsdangerous signs with the last key and verifies with all of them.
        "SECRET_KEYS": secret_keys,
        "SECRET_KEY": secret_keys[-1],
        "BASE_URL": base_url,
        # Fernet keys of the secrets stored encrypted (SMTP URLs, DKIM keys): the first one
        # encrypts, every one decrypts; `flask rotate-secrets` re-encrypts with the first.
        "ENCRYPTION_KEYS": encryption_keys,
        # Never rotated: suppression hashes must keep matching (see subscribers/suppression.py).
        "ADDRESS_HASH_KEY": env.get("ADDRESS_HASH_KEY") or _development_secret("address_hash_key"),
        "DATABASE_URL": env.get("DATABASE_URL", f"sqlite:///{VAR_DIR / 'envoy.sqlite3'}"),
        "REDIS_URL": env.get("REDIS_URL", ""),
        "REDIS_NAMESPACE": env.get("REDIS_NAMESPACE", "envoy"),
        "SMTP_URL": env.get("SMTP_URL", ""),
        "MAILDIR_PATH": env.get("MAILDIR_PATH", str(VAR_DIR / "outbox")),
        "MAIL_FROM": env.get("MAIL_FROM", "Envoy <no-reply@localhost>"),
        # Run a dramatiq worker inside the web process when no Redis broker is configured.
        "INPROCESS_WORKER": _bool(env.get("INPROCESS_WORKER"), True),
        "SEND_BATCH_SIZE": int(env.get("SEND_BATCH_SIZE", "200")),
        "PASSWORD_RESET_MAX_AGE": int(env.get("PASSWORD_RESET_MAX_AGE", str(3600))),
        # Privacy (data-subject requests, retention, account lifecycle; docs/readme/privacy.md).
        # Sub-processors named in access reports: "name|purpose|country" entries separated by ";".
        "SUBPROCESSORS": _subprocessors(env.get("SUBPROCESSORS", "")),
        "SUPERVISORY_AUTHORITY": env.get(
            "SUPERVISORY_AUTHORITY",
            "the data-protection authority of your country of residence, work or the place of "
            "the alleged infringement (list: https://edpb.europa.eu/about-edpb/members_en)",
        ),
        "DATA_REQUEST_MAX_AGE": int(env.get("DATA_REQUEST_MAX_AGE", str(24 * 3600))),
        "DOWNLOAD_MAX_AGE": int(env.get("DOWNLOAD_MAX_AGE", str(24 * 3600))),
        "DATA_REQUEST_KEEP_DAYS": int(env.get("DATA_REQUEST_KEEP_DAYS", "90")),
        "DATA_REQUEST_EMAIL_WINDOW": int(env.get("DATA_REQUEST_EMAIL_WINDOW", "900")),
        "DATA_REQUEST_LIMIT_PER_ADDRESS": int(env.get("DATA_REQUEST_LIMIT_PER_ADDRESS", "5")),
        "DATA_REQUEST_LIMIT_PER_CLIENT": int(env.get("DATA_REQUEST_LIMIT_PER_CLIENT", "20")),
        "DATA_REQUEST_LIMIT_WINDOW": int(env.get("DATA_REQUEST_LIMIT_WINDOW", "3600")),
        "UNCONFIRMED_SIGNUP_DAYS": int(env.get("UNCONFIRMED_SIGNUP_DAYS", "7")),
        "ACCOUNT_DELETION_GRACE_DAYS": int(env.get("ACCOUNT_DELETION_GRACE_DAYS", "30")),
        "ACCOUNT_INACTIVITY_DAYS": int(env.get("ACCOUNT_INACTIVITY_DAYS", "365")),
        "ACCOUNT_INACTIVITY_WARNING_DAYS": int(env.get("ACCOUNT_INACTIVITY_WARNING_DAYS", "30")),
        # Level of the process's log lines (the start script keeps its one-off commands quiet).
        "LOG_LEVEL": env.get("LOG_LEVEL", "INFO").strip().upper() or "INFO",
        "SCHEDULER_INTERVAL_SECONDS": int(env.get("SCHEDULER_INTERVAL_SECONDS", "300")),
        # Run the periodic jobs inside the web process (embedded default, no Redis).
        "SCHEDULER_INPROCESS": _bool(env.get("SCHEDULER_INPROCESS"), True),
        # Sessions (accounts/sessions.py): idle and absolute lifetime of a login, in seconds.
        "SESSION_IDLE_TIMEOUT": int(env.get("SESSION_IDLE_TIMEOUT", str(7 * 86400))),
        "SESSION_MAX_AGE": int(env.get("SESSION_MAX_AGE", str(30 * 86400))),
        # Login throttling (accounts/throttle.py): failed logins per address and per client
        # network (/24, /48) in moving windows ("limits" notation, ";" between tiers), then a
        # lockout of the address with an email to its owner.
        "LOGIN_LIMITS_PER_ADDRESS": env.get("LOGIN_LIMITS_PER_ADDRESS", "5/minute;8/10 minutes"),
        "LOGIN_LIMITS_PER_NETWORK": env.get("LOGIN_LIMITS_PER_NETWORK", "30/minute;200/hour"),
        "LOGIN_LOCKOUT_AFTER": int(env.get("LOGIN_LOCKOUT_AFTER", "10")),
        "LOGIN_LOCKOUT_WINDOW": int(env.get("LOGIN_LOCKOUT_WINDOW", "900")),
        "LOGIN_LOCKOUT_SECONDS": int(env.get("LOGIN_LOCKOUT_SECONDS", "900")),
        # Reverse proxies in front of the app that each append to X-Forwarded-For/-Proto/-Host
        # (core/app.py wires Werkzeug's ProxyFix). 0 trusts no such header: anyone can send one.
        "TRUSTED_PROXY_HOPS": int(env.get("TRUSTED_PROXY_HOPS", "0")),
        # The public forms' bot check (core/botcheck.py): proof-of-work difficulty in leading
        # zero bits (0-32; each one doubles the browser's work, 18 is about 0.3 s on a laptop),
        # the least seconds between rendering a form and sending it, a challenge's lifetime,
        # and POSTs per form and client network (/24, /48) in moving windows.
        "BOT_CHALLENGE_DIFFICULTY": int(env.get("BOT_CHALLENGE_DIFFICULTY", "18")),
        "BOT_CHALLENGE_MIN_SECONDS": float(env.get("BOT_CHALLENGE_MIN_SECONDS", "2")),
        "BOT_CHALLENGE_MAX_AGE": int(env.get("BOT_CHALLENGE_MAX_AGE", "3600")),
        "PUBLIC_FORM_LIMITS": env.get("PUBLIC_FORM_LIMITS", "10/minute;60/hour"),
        "SESSION_COOKIE_HTTPONLY": True,
        "SESSION_COOKIE_SAMESITE": "Lax",
        "SESSION_COOKIE_SECURE": base_url.startswith("https://"),
        "WTF_CSRF_TIME_LIMIT": None,
        "TESTING": False,
    }
    config.update(overrides)
    config["BASE_URL"] = str(config["BASE_URL"]).rstrip("/")
    if "SESSION_COOKIE_SECURE" not in overrides:
        config["SESSION_COOKIE_SECURE"] = config["BASE_URL"].startswith("https://")
    if not 0 <= int(config["TRUSTED_PROXY_HOPS"]) <= 10:
        raise ValueError("TRUSTED_PROXY_HOPS must be between 0 and 10")
    if not 0 <= int(config["BOT_CHALLENGE_DIFFICULTY"]) <= 32:
        raise ValueError("BOT_CHALLENGE_DIFFICULTY must be between 0 and 32")
    if "SECRET_KEYS" in overrides or "SECRET_KEY" not in overrides:
        config["SECRET_KEY"] = config["SECRET_KEYS"][-1]
    return config
