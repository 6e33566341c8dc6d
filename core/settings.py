"""Every setting the platform reads, in one typed declaration: name, type, default, meaning and
what is allowed.

This module is the only reader of the environment. ``Settings`` (pydantic-settings) takes each
declared name from the environment variable of the same name, an empty variable meaning "the
default"; ``load_config`` validates it together with the app factory's overrides (tests) and
returns the Flask config, so code reads ``current_app.config[NAME]`` (or ``setting(NAME)``) and
finds a typed value there, never a string to convert. A value that is not allowed stops the
start with a ``SettingsError`` naming each such setting and what it allows; the entry points
(``wsgi.py``, ``core/worker.py``, hence ``flask --app wsgi ...`` and ``./scripts/start``) end the
process with that message (``create_app_or_exit``).

Booleans take true/false, 1/0, yes/no or on/off, in any case; anything else is refused.

    python -m core.settings --markdown    prints docs/readme/settings.md, the generated table
"""

from __future__ import annotations

import argparse
import ipaddress
import os
import secrets
import sys
from collections.abc import Callable
from email.utils import parseaddr
from pathlib import Path
from typing import Annotated, Any, Literal, get_args, get_origin
from urllib.parse import urlsplit

from flask import current_app, has_app_context
from pydantic import AfterValidator, BeforeValidator, Field, ValidationError, model_validator
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

PROJECT_ROOT = Path(__file__).resolve().parent.parent
#: The generated settings table (``python -m core.settings --markdown``).
DOC_PATH = PROJECT_ROOT / "docs" / "readme" / "settings.md"

TRUE_WORDS = frozenset({"true", "1", "yes", "on"})
FALSE_WORDS = frozenset({"false", "0", "no", "off"})
BOOL_ALLOWED = "true or false (also 1/0, yes/no, on/off; any case)"


class SettingsError(ValueError):
    """One or more settings hold a value that is not allowed; the message names each."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        lines = "\n".join(f"  - {p}" for p in problems)
        super().__init__(f"Invalid settings (see docs/readme/settings.md):\n{lines}")


def parse_bool(value: object) -> bool:
    """``value`` as a boolean: a bool, 0/1, or true/false, 1/0, yes/no, on/off in any case.

    Raises ValueError on anything else (never guesses: "flase" is refused, not True)."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str):
        word = value.strip().lower()
        if word in TRUE_WORDS:
            return True
        if word in FALSE_WORDS:
            return False
    raise ValueError(f"must be {BOOL_ALLOWED}")


def _comma_list(value: object) -> object:
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    return value


def _subprocessors(value: object) -> object:
    """``"name|purpose|country;..."`` as a list of dicts (a list is taken as it is)."""
    if not isinstance(value, str):
        return value
    found = []
    for entry in value.split(";"):
        parts = [p.strip() for p in entry.split("|")]
        if parts and parts[0]:
            parts += ["", ""]
            found.append({"name": parts[0], "purpose": parts[1], "country": parts[2]})
    return found


def _url(*schemes: str) -> AfterValidator:
    """A URL with one of ``schemes``, or empty."""

    def check(value: str) -> str:
        if value and urlsplit(value).scheme not in schemes:
            raise ValueError("must be empty or a URL starting with " + _schemes_text(schemes))
        return value

    return AfterValidator(check)


def _schemes_text(schemes: tuple[str, ...]) -> str:
    return _either([f"{s}://" for s in schemes])


def _either(words: list[str]) -> str:
    """``a``, ``a or b``, ``a, b or c``."""
    return " or ".join([", ".join(words[:-1]), words[-1]]) if len(words) > 1 else words[0]


def _base_url(value: str) -> str:
    if urlsplit(value).scheme not in {"http", "https"} or not urlsplit(value).netloc:
        raise ValueError("must be an http:// or https:// URL with a host")
    return value.rstrip("/")


def _rate_limits(value: str) -> str:
    from limits import parse_many

    try:
        parsed = parse_many(value)
    except ValueError:
        parsed = []
    if not parsed:
        raise ValueError('must be rate limits such as "5/minute;8/10 minutes"')
    return value


def _networks(value: str) -> str:
    for part in value.split(","):
        if part.strip():
            try:
                ipaddress.ip_network(part.strip(), strict=False)
            except ValueError:
                raise ValueError(f"{part.strip()!r} is not a network (CIDR)") from None
    return value


def _address(value: str) -> str:
    if value and ("@" not in value or " " in value.strip()):
        raise ValueError("must be empty or an address such as bounces@mail.example.com")
    return value


def _mail_from(value: str) -> str:
    if "@" not in parseaddr(value)[1]:
        raise ValueError("must be an address such as Envoy <no-reply@mail.example.com>")
    return value


def _level(value: object) -> object:
    return value.strip().upper() if isinstance(value, str) else value


Flag = Annotated[bool, BeforeValidator(parse_bool)]
CommaList = Annotated[list[str], NoDecode, BeforeValidator(_comma_list)]
LogLevel = Annotated[
    Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"], BeforeValidator(_level)
]


def _s(
    default: Any,
    description: str,
    area: str,
    *,
    allowed: str | None = None,
    shown: str | None = None,
    secret: bool = False,
    **constraints: Any,
) -> Any:
    """A declared setting: ``area`` groups the table, ``allowed`` and ``shown`` replace the
    generated type and default text, ``secret`` keeps its value out of error messages."""
    extra: dict[str, Any] = {"area": area, "secret": secret}
    if allowed is not None:
        extra["allowed"] = allowed
    if shown is not None:
        extra["shown"] = shown
    return Field(default, description=description, json_schema_extra=extra, **constraints)


AREAS = (
    "core",
    "accounts",
    "subscribers",
    "sending",
    "media",
    "tracking",
    "privacy",
    "engine",
    "api",
    "webhooks",
)
CORE, ACCOUNTS, SUBSCRIBERS, SENDING, MEDIA, TRACKING, PRIVACY, ENGINE, API, WEBHOOKS = AREAS
HOUR, DAY = 3600, 86400


class Settings(BaseSettings):
    """The declared settings, each from the environment variable of its name (empty: default)."""

    model_config = SettingsConfigDict(
        case_sensitive=True, env_ignore_empty=True, extra="forbid", validate_default=True
    )

    # --- core -----------------------------------------------------------------------------
    VAR_DIR: Path = _s(
        PROJECT_ROOT / "var",
        "data directory of the embedded defaults (database, outbox, keys, imports, spool)",
        CORE,
        shown="`var/` in the project",
    )
    DATABASE_URL: Annotated[str, _url("sqlite", "postgresql", "postgresql+psycopg")] = _s(
        "",
        "SQLAlchemy URL; `postgresql://` uses psycopg 3",
        CORE,
        shown="`sqlite:///$VAR_DIR/envoy.sqlite3`",
        allowed="URL: " + _schemes_text(("sqlite", "postgresql", "postgresql+psycopg")),
        secret=True,
    )
    REDIS_URL: Annotated[str, _url("redis", "rediss", "unix")] = _s(
        "",
        "Redis for the Dramatiq broker, the hit buffer and the throttles; empty runs jobs in an "
        "in-process worker",
        CORE,
        allowed="URL: redis://, rediss:// or unix://, or empty",
        secret=True,
    )
    REDIS_NAMESPACE: str = _s("envoy", "prefix of every Redis key", CORE, min_length=1)
    SMTP_URL: Annotated[str, _url("smtp", "smtps")] = _s(
        "",
        "`smtp://user:pass@host:587` (STARTTLS when offered; `?starttls=0/1` to force), "
        "`smtps://…:465` (implicit TLS); `?pipelining=0` / `?chunking=0` turn those off; empty "
        "writes to the Maildir outbox",
        CORE,
        allowed="URL: smtp:// or smtps://, or empty",
        secret=True,
    )
    MAILDIR_PATH: str = _s(
        "",
        "the Maildir outbox when there is no `SMTP_URL`",
        CORE,
        shown="`$VAR_DIR/outbox`",
        allowed="path",
    )
    MAIL_FROM: Annotated[str, AfterValidator(_mail_from)] = _s(
        "Envoy <no-reply@localhost>",
        "sender of system mail (password resets, confirmations, notices)",
        CORE,
        allowed="an address, with or without a display name",
    )
    SECRET_KEYS: CommaList = _s(
        [],
        "signing keys, oldest first; add a new key at the end to rotate, drop the oldest later",
        CORE,
        shown="a random key kept in `$VAR_DIR/secret_key`",
        allowed="comma-separated list",
        secret=True,
    )
    ENCRYPTION_KEYS: CommaList = _s(
        [],
        "Fernet keys that encrypt stored secrets (SMTP URLs, DKIM keys), newest first: the "
        "first encrypts, every one decrypts; `flask --app wsgi rotate-secrets` re-encrypts "
        "with the first. Set the same value on every web and worker process",
        CORE,
        shown="a key kept in `$VAR_DIR/encryption_key`",
        allowed="comma-separated list of Fernet keys",
        secret=True,
    )
    ADDRESS_HASH_KEY: str = _s(
        "",
        "HMAC key of suppression hashes; never rotate it",
        CORE,
        shown="a random key kept in `$VAR_DIR/address_hash_key`",
        secret=True,
    )
    BASE_URL: Annotated[str, AfterValidator(_base_url)] = _s(
        "http://127.0.0.1:5000",
        "public address in emails and tracking links; https makes the session cookie Secure",
        CORE,
        allowed="URL: http:// or https://",
    )
    INPROCESS_WORKER: Flag = _s(
        True, "run a worker thread in the web process when there is no Redis", CORE
    )
    SCHEDULER_INPROCESS: Flag = _s(
        True, "run the periodic jobs in the web process when there is no Redis", CORE
    )
    SCHEDULER_INTERVAL_SECONDS: int = _s(
        300, "how often the periodic jobs (retention, lifecycle, reconciler) run", CORE, ge=1
    )
    TRUSTED_PROXY_HOPS: int = _s(
        0,
        "reverse proxies in front of the app whose `X-Forwarded-For`/`-Proto`/`-Host` are "
        "believed (0: none, the socket address is the client)",
        CORE,
        ge=0,
        le=10,
    )
    LOG_LEVEL: LogLevel = _s(
        "INFO",
        "level of the log lines a process writes (`./scripts/start` sets `WARNING`)",
        CORE,
        allowed="DEBUG, INFO, WARNING, ERROR or CRITICAL (any case)",
    )

    # --- accounts -------------------------------------------------------------------------
    PASSWORD_RESET_MAX_AGE: int = _s(
        HOUR, "seconds a password-reset link stays valid", ACCOUNTS, ge=1
    )
    SESSION_IDLE_TIMEOUT: int = _s(
        7 * DAY, "seconds without a request after which a login session ends", ACCOUNTS, ge=1
    )
    SESSION_MAX_AGE: int = _s(
        30 * DAY, "seconds after login after which a session ends, used or not", ACCOUNTS, ge=1
    )
    LOGIN_CHALLENGE_SECONDS: int = _s(
        300,
        "seconds a login waits between the right password and the second-factor code",
        ACCOUNTS,
        ge=30,
    )
    TOTP_ISSUER: str = _s(
        "Envoy", "the name authenticator apps show next to the code", ACCOUNTS, min_length=1
    )
    SSO_ALLOW_LOCAL_ISSUERS: Flag = _s(
        False,
        "let owners name an identity provider on http or on a loopback/private address (the "
        "server fetches it): for development and tests only",
        ACCOUNTS,
        allowed=BOOL_ALLOWED,
    )
    SECURITY_LOG_RETENTION_DAYS: int = _s(
        365, "days an account's security log keeps an entry", ACCOUNTS, ge=1
    )
    LOGIN_LIMITS_PER_ADDRESS: Annotated[str, AfterValidator(_rate_limits)] = _s(
        "5/minute;8/10 minutes",
        "failed logins per address before it must wait (429 with `Retry-After`; the password "
        "is not checked then)",
        ACCOUNTS,
        allowed='rate limits, ";" between tiers',
    )
    LOGIN_LIMITS_PER_NETWORK: Annotated[str, AfterValidator(_rate_limits)] = _s(
        "30/minute;200/hour",
        "failed logins per client network (/24, /48), across addresses",
        ACCOUNTS,
        allowed='rate limits, ";" between tiers',
    )
    LOGIN_LOCKOUT_AFTER: int = _s(
        10, "failures within `LOGIN_LOCKOUT_WINDOW` that lock the address", ACCOUNTS, ge=1
    )
    LOGIN_LOCKOUT_WINDOW: int = _s(
        900, "seconds in which `LOGIN_LOCKOUT_AFTER` failures lock the address", ACCOUNTS, ge=1
    )
    LOGIN_LOCKOUT_SECONDS: int = _s(
        900, "how long a lockout lasts, even for the right password", ACCOUNTS, ge=1
    )

    BOT_CHALLENGE_DIFFICULTY: int = _s(
        18,
        "the public forms' proof of work, in leading zero bits (each doubles the browser's "
        "work; 18 is about 0.3 s on a laptop; 0 turns it off)",
        ACCOUNTS,
        ge=0,
        le=32,
    )
    BOT_CHALLENGE_MIN_SECONDS: float = _s(
        2.0, "least seconds between rendering a public form and sending it", ACCOUNTS, ge=0
    )
    BOT_CHALLENGE_MAX_AGE: int = _s(
        3600, "seconds a public form's challenge stays valid", ACCOUNTS, ge=1
    )
    PUBLIC_FORM_LIMITS: Annotated[str, AfterValidator(_rate_limits)] = _s(
        "10/minute;60/hour",
        "POSTs per public form (sign-up, data request, list sign-up) and client network",
        ACCOUNTS,
    )

    # --- subscribers ----------------------------------------------------------------------
    SIGNUP_CONFIRM_MAX_AGE: int = _s(
        48 * HOUR, "seconds a double opt-in link stays valid", SUBSCRIBERS, ge=1
    )
    IMPORT_DIR: str = _s(
        "",
        "where uploaded CSV files and error reports are kept",
        SUBSCRIBERS,
        shown="`$VAR_DIR/imports`",
        allowed="path",
    )
    IMPORT_MAX_BYTES: int = _s(
        500 * 1000 * 1000,
        "largest CSV upload accepted (bytes), refused while streaming",
        SUBSCRIBERS,
        ge=1,
    )
    IMPORT_UPLOAD_KEEP_HOURS: int = _s(
        24,
        "uploads not mapped and started within this many hours are deleted (the import says why)",
        SUBSCRIBERS,
        ge=1,
    )
    IMPORT_HELPER_MIN_BYTES: int = _s(
        4 * 1024 * 1024,
        "files from this size are checked in helper processes, so checking and writing use "
        "two cores",
        SUBSCRIBERS,
        ge=0,
    )
    IMPORT_HELPERS: int = _s(
        1,
        "helper processes that check rows (batches alternate between them, written in order)",
        SUBSCRIBERS,
        ge=1,
        le=64,
    )

    # --- sending --------------------------------------------------------------------------
    REQUIRE_VERIFIED_SENDER: Flag = _s(
        True, "campaigns may only use confirmed sender addresses", SENDING
    )
    SEND_CONNECTIONS: int = _s(
        2,
        "connections (parallel send chains) per campaign over the platform `SMTP_URL`",
        SENDING,
        ge=1,
    )
    SMTP_MAX_PER_SECOND: float = _s(
        0.0, "messages/s over the platform `SMTP_URL` (0: no limit)", SENDING, ge=0
    )
    SEND_BATCH_SIZE: int = _s(200, "rows per claim", SENDING, ge=1)
    SEND_JOB_SECONDS: float = _s(
        30.0,
        "a send job claims batch after batch for this long, then re-enqueues itself",
        SENDING,
        gt=0,
    )
    SEND_CLAIM_TIMEOUT: float = _s(
        20.0,
        "lease of a claim: a claim not renewed for this long is a dead worker's (its sender "
        "renews it every quarter of this)",
        SENDING,
        gt=0,
    )
    RECONCILE_INTERVAL_SECONDS: int = _s(
        10,
        "how often the scheduler runs the send reconciler (recovery of dead workers' claims)",
        SENDING,
        ge=1,
    )
    PROGRESS_SNAPSHOT_FROM: int = _s(
        50_000,
        "campaigns of at least this many messages show the counts the send reconciler keeps "
        "(refreshed every `RECONCILE_INTERVAL_SECONDS` while sending) instead of counting "
        "their messages on each page and progress poll",
        SENDING,
        ge=1,
    )
    SEND_STALL_SECONDS: float = _s(
        120.0,
        "seconds without any message outcome before the campaign page flags the stall with "
        "its cause",
        SENDING,
        gt=0,
    )
    SEND_RETRY_BASE_SECONDS: float = _s(
        60.0, "first retry delay after a 4xx; doubles per attempt", SENDING, ge=0
    )
    SEND_MAX_ATTEMPTS: int = _s(
        5, "deferrals (4xx) before a message fails as a soft bounce", SENDING, ge=1
    )
    SEND_MAX_TRANSPORT_ERRORS: int = _s(
        5, "transport errors in a row before the campaign pauses", SENDING, ge=1
    )
    SEND_MARK_DURABILITY: Literal["server", "disk"] = _s(
        "server", "`disk` waits for PostgreSQL's flush on every sent mark", SENDING
    )
    SOFT_BOUNCE_LIMIT: int = _s(
        3, "soft bounces of a contact before the address is suppressed", SENDING, ge=1
    )
    RETURN_PATH: Annotated[str, AfterValidator(_address)] = _s(
        "",
        "VERP bounce address base, e.g. `bounces@mail.example.com`",
        SENDING,
        allowed="an address, or empty",
    )
    BOUNCE_WEBHOOK_SECRET: str = _s(
        "", "HMAC key of the generic bounce webhook (off when empty)", SENDING, secret=True
    )
    SES_TOPIC_ARNS: str = _s(
        "",
        "comma-separated SNS topic ARNs accepted by `/webhooks/ses`, checked before any fetch "
        "(any topic when empty; set it in production)",
        SENDING,
    )
    BOUNCE_MAILDIR: str = _s(
        "", "Maildir read for DSN and ARF reports", SENDING, allowed="path, or empty"
    )
    BOUNCE_IMAP_URL: Annotated[str, _url("imap", "imaps")] = _s(
        "",
        "`imaps://user:pass@host/INBOX` read for DSN and ARF reports",
        SENDING,
        allowed="URL: imap:// or imaps://, or empty",
        secret=True,
    )

    TEMPLATE_MAX_SECONDS: float = _s(
        2.0, "wall-clock seconds one template render may take", SENDING, gt=0
    )
    TEMPLATE_MAX_STEPS: int = _s(
        100_000, "loop iterations plus calls in one template render", SENDING, ge=1
    )
    TEMPLATE_MAX_OUTPUT: int = _s(2_000_000, "characters one template render writes", SENDING, ge=1)
    TEMPLATE_MAX_VALUE: int = _s(
        100_000, "characters of one string, list or dict a template makes", SENDING, ge=1
    )
    TEMPLATE_MAX_DIGITS: int = _s(
        4_300, "decimal digits of one number a template makes", SENDING, ge=1
    )

    # --- tracking -------------------------------------------------------------------------
    TRACKING_SPOOL_DIR: str = _s(
        "",
        "local spool of hits when Redis (or, embedded, the database) is unreachable",
        TRACKING,
        shown="`$VAR_DIR/spool`",
        allowed="path",
    )
    TRACKING_BATCH_SIZE: int = _s(1000, "hits per ingest transaction", TRACKING, ge=1)
    TRACKING_MACHINE_WINDOW_SECONDS: float = _s(
        10.0,
        "hits this close to delivery, or to machine evidence from the same source, are machine "
        "activity",
        TRACKING,
        ge=0,
    )
    TRACKING_MACHINE_NETWORKS: Annotated[str, AfterValidator(_networks)] = _s(
        "",
        "extra proxy/scanner networks",
        TRACKING,
        allowed="comma-separated CIDRs",
    )
    TRACKING_SETTINGS_CACHE_SECONDS: float = _s(
        30.0, "how long a web process caches an account's IP handling", TRACKING, ge=0
    )
    TRACKING_INGEST_GATHER_MS: float = _s(
        200.0,
        "under live traffic, how long the ingest lets hits gather after a small batch",
        TRACKING,
        ge=0,
    )
    TRACKING_FLUSH_INTERVAL_MS: float = _s(
        5.0,
        "how long the flusher lets hits gather before one RPUSH (the hard-kill window)",
        TRACKING,
        ge=0,
    )
    TRACKING_ANSWER_AFTER_FLUSH: Flag = _s(
        False,
        "answer a hit only once it is in Redis or the spool (no hard-kill window, more CPU)",
        TRACKING,
    )
    UNSUBSCRIBE_UNDO_SECONDS: int = _s(
        15 * 60, "how long the unsubscribe page offers to undo an unsubscribe", TRACKING, ge=0
    )

    # --- privacy --------------------------------------------------------------------------
    SUBPROCESSORS: Annotated[list[dict[str, str]], NoDecode, BeforeValidator(_subprocessors)] = _s(
        [],
        "sub-processors named in access reports",
        PRIVACY,
        shown="none",
        allowed="`name|purpose|country` entries separated by `;`",
    )
    SUPERVISORY_AUTHORITY: str = _s(
        "the data-protection authority of your country of residence, work or the place of "
        "the alleged infringement (list: https://edpb.europa.eu/about-edpb/members_en)",
        "where people may complain, shown in access reports",
        PRIVACY,
        shown="EDPB members list",
    )
    DATA_REQUEST_MAX_AGE: int = _s(DAY, "seconds a confirmation link works", PRIVACY, ge=1)
    DOWNLOAD_MAX_AGE: int = _s(DAY, "seconds a download works (once)", PRIVACY, ge=1)
    IMPORT_FILE_KEEP_DAYS: int = _s(
        30, "days an import's error report (and its file) is kept", PRIVACY, ge=1
    )
    OUTBOX_KEEP_DAYS: int = _s(
        30, "days the embedded Maildir outbox keeps a mail the platform wrote", PRIVACY, ge=1
    )
    DATA_REQUEST_KEEP_DAYS: int = _s(
        90, "days a request row is kept (the audit log stays)", PRIVACY, ge=1
    )
    DATA_REQUEST_EMAIL_WINDOW: int = _s(
        900,
        "at most one confirmation email per address in this many seconds",
        PRIVACY,
        ge=0,
    )
    DATA_REQUEST_LIMIT_PER_ADDRESS: int = _s(
        5, "requests per address in `DATA_REQUEST_LIMIT_WINDOW`", PRIVACY, ge=1
    )
    DATA_REQUEST_LIMIT_PER_CLIENT: int = _s(
        20, "requests per client network in `DATA_REQUEST_LIMIT_WINDOW`", PRIVACY, ge=1
    )
    DATA_REQUEST_LIMIT_WINDOW: int = _s(
        HOUR, "seconds of the data-request rate limits", PRIVACY, ge=1
    )
    UNCONFIRMED_SIGNUP_DAYS: int = _s(
        7, "days after which unconfirmed sign-ups are purged", PRIVACY, ge=1
    )
    TRANSACTIONAL_RETENTION_DAYS: int = _s(
        90,
        "days a transactional message's record (address, status, times) is kept; its content "
        "goes as soon as it is sent or failed",
        PRIVACY,
        ge=1,
    )
    ACCOUNT_DELETION_GRACE_DAYS: int = _s(
        30, "days from a confirmed account deletion to the permanent deletion", PRIVACY, ge=1
    )
    ACCOUNT_INACTIVITY_DAYS: int = _s(
        365, "days without activity after which an account is deleted", PRIVACY, ge=1
    )
    ACCOUNT_INACTIVITY_WARNING_DAYS: int = _s(
        30, "days before that deletion when the owners are warned", PRIVACY, ge=1
    )

    # --- engine ---------------------------------------------------------------------------
    ENGINE_HASH_KEY: str = _s(
        "",
        "HMAC key of the engine's address hashes; never rotate it; distinct from "
        "`ADDRESS_HASH_KEY`",
        ENGINE,
        shown="a random key kept in `$VAR_DIR/engine_hash_key`",
        secret=True,
    )
    ENGINE_MIN_ENGAGEMENTS: int = _s(
        2, "human opens/clicks of an address needed before a best hour is given", ENGINE, ge=1
    )
    ENGINE_PACING_DAYS: int = _s(7, "days of domain outcomes pacing looks at", ENGINE, ge=1)
    ENGINE_PACING_MIN_ATTEMPTS: int = _s(
        20, "delivery attempts needed before a domain is paced", ENGINE, ge=1
    )
    ENGINE_DEFERRAL_THRESHOLD: float = _s(
        0.05, "share of deferred attempts from which a domain is slowed", ENGINE, gt=0, le=1
    )
    ENGINE_PACE_PER_MINUTE: int = _s(
        300,
        "messages per minute at the threshold, halved each time the deferral rate doubles",
        ENGINE,
        ge=1,
    )
    ENGINE_MIN_PACE_PER_MINUTE: int = _s(5, "slowest pace (messages per minute)", ENGINE, ge=1)
    ENGINE_RETENTION_DAYS: int = _s(
        365, "contributions older than this are dropped by maintenance", ENGINE, ge=1
    )
    ENGINE_OPERATOR_MIN_ADDRESSES: int = _s(
        5,
        "the operator page names only domains with at least this many known addresses",
        ENGINE,
        ge=1,
    )

    # --- media ---------------------------------------------------------------------------
    MEDIA_DIR: str = _s(
        "",
        "where uploaded images and their thumbnails are kept (disk storage)",
        MEDIA,
        shown="`$VAR_DIR/media`",
        allowed="path",
    )
    MEDIA_STORAGE: Literal["disk", "s3"] = _s(
        "disk",
        "where uploaded images are stored: `disk` (`MEDIA_DIR`) or an S3-compatible bucket",
        MEDIA,
    )
    MEDIA_S3_BUCKET: str = _s("", "the bucket when `MEDIA_STORAGE=s3`", MEDIA)
    MEDIA_S3_ENDPOINT_URL: Annotated[str, _url("http", "https")] = _s(
        "",
        "the S3-compatible endpoint (empty: AWS's own for the region)",
        MEDIA,
        allowed="URL: http:// or https://, or empty",
    )
    MEDIA_S3_REGION: str = _s("us-east-1", "the bucket's region", MEDIA)
    MEDIA_S3_ACCESS_KEY_ID: str = _s(
        "", "access key id (empty: boto3's own credential chain)", MEDIA, secret=True
    )
    MEDIA_S3_SECRET_ACCESS_KEY: str = _s("", "secret access key", MEDIA, secret=True)
    MEDIA_S3_PREFIX: str = _s("media/", "prefix of every object name in the bucket", MEDIA)
    MEDIA_MAX_BYTES: int = _s(5 * 1000 * 1000, "largest image upload accepted (bytes)", MEDIA, ge=1)
    MEDIA_MAX_DIMENSION: int = _s(
        4000, "widest or tallest image accepted (pixels, each side)", MEDIA, ge=1
    )
    MEDIA_MAX_PIXELS: int = _s(
        16_000_000,
        "most pixels an image may decode to (width x height, every frame); guards against "
        "decompression bombs",
        MEDIA,
        ge=1,
    )
    MEDIA_THUMBNAIL_SIZE: int = _s(
        320, "longest side of a thumbnail (pixels)", MEDIA, ge=16, le=2000
    )
    MEDIA_CACHE_SECONDS: int = _s(
        365 * DAY,
        "how long browsers and mail proxies may cache a public image (its name never changes)",
        MEDIA,
        ge=0,
    )

    # --- api ------------------------------------------------------------------------------
    API_RATE_LIMIT_PER_MINUTE: int = _s(
        600,
        "requests one API key may make per minute (moving window); more answer 429 with "
        "`Retry-After`",
        API,
        ge=1,
    )
    API_IDEMPOTENCY_HOURS: int = _s(
        24,
        "hours the answer to a POST with an `Idempotency-Key` is kept and replayed on retry",
        API,
        ge=1,
    )
    # --- webhooks -------------------------------------------------------------------------
    WEBHOOKS_ALLOW_PRIVATE_TARGETS: Flag = _s(
        False,
        "let webhook endpoints point at loopback, private, link-local, multicast or reserved "
        "addresses (the server would otherwise refuse to become a relay into its own "
        "network): for development and tests only",
        WEBHOOKS,
        allowed=BOOL_ALLOWED,
    )
    WEBHOOKS_TIMEOUT_SECONDS: int = _s(
        10, "seconds a webhook delivery waits to connect and for the answer", WEBHOOKS, ge=1
    )
    WEBHOOKS_DISABLE_AFTER_FAILURES: int = _s(
        50,
        "consecutive failed delivery attempts after which an endpoint is disabled and the "
        "account's owners are emailed",
        WEBHOOKS,
        ge=1,
    )
    WEBHOOKS_DISABLE_AFTER_DAYS: int = _s(
        5,
        "days an endpoint may fail every delivery (no success in between) before it is "
        "disabled and the account's owners are emailed",
        WEBHOOKS,
        ge=1,
    )
    WEBHOOKS_SECRET_GRACE_HOURS: int = _s(
        24,
        "hours a rotated-out signing secret still signs deliveries next to the new one",
        WEBHOOKS,
        ge=0,
    )
    WEBHOOKS_EVENT_RETENTION_DAYS: int = _s(
        30,
        "days a webhook event (its payload may name a contact) is kept once every delivery of "
        "it has succeeded or finally failed",
        WEBHOOKS,
        ge=1,
    )
    WEBHOOKS_SUBSCRIPTION_CACHE_SECONDS: int = _s(
        10,
        "seconds a process remembers which event types an account's endpoints subscribe to "
        "(the per-message check on the send path); changes made in the same process apply at "
        "once",
        WEBHOOKS,
        ge=0,
    )

    @model_validator(mode="after")
    def _paths_under_var_dir(self) -> Settings:
        """The embedded defaults that live under ``VAR_DIR``."""
        var = self.VAR_DIR
        self.DATABASE_URL = self.DATABASE_URL or f"sqlite:///{var / 'envoy.sqlite3'}"
        self.MAILDIR_PATH = self.MAILDIR_PATH or str(var / "outbox")
        self.IMPORT_DIR = self.IMPORT_DIR or str(var / "imports")
        self.MEDIA_DIR = self.MEDIA_DIR or str(var / "media")
        self.TRACKING_SPOOL_DIR = self.TRACKING_SPOOL_DIR or str(var / "spool")
        return self


#: Every declared name.
NAMES = frozenset(Settings.model_fields)


def _extra(info: FieldInfo) -> dict[str, Any]:
    extra = info.json_schema_extra
    return extra if isinstance(extra, dict) else {}


def load_settings(overrides: dict[str, Any] | None = None) -> Settings:
    """The declared settings from the environment, ``overrides`` (declared names only) first.

    Raises SettingsError naming every setting whose value is not allowed, with what it allows;
    the value itself is quoted only for settings that hold no secret."""
    try:
        return Settings(**(overrides or {}))
    except ValidationError as error:
        raise SettingsError([_problem(e) for e in error.errors()]) from None


def _problem(error: Any) -> str:
    location = error.get("loc") or ("settings",)
    name = str(location[0])
    message = str(error.get("msg", "")).removeprefix("Value error, ")
    info = Settings.model_fields.get(name)
    if info is None:
        return f"{name}: {message}"
    shown = "a value not shown" if _extra(info).get("secret") else repr(error.get("input"))
    if message.startswith("must be"):  # our own validators say what is allowed
        return f"{name}={shown}: {message}"
    return f"{name}={shown}: {message} (allowed: {allowed_text(info)})"


def development_secret(
    var_dir: Path, name: str, make: Callable[[], str] = lambda: secrets.token_urlsafe(48)
) -> str:
    """A random key kept in ``var_dir/name`` (made once by ``make``), so that embedded installs
    keep their keys across restarts without configuration. Created with mode 0600 and
    O_EXCL: never readable by others, even for a moment, and never made twice."""
    path = var_dir / name
    if path.exists():
        return path.read_text().strip()
    var_dir.mkdir(parents=True, exist_ok=True)
    key = make()
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another process made it first
        return path.read_text().strip()
    with os.fdopen(fd, "w") as file:
        file.write(key)
    return key


def load_config(overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    """The Flask config: every declared setting, typed and validated (environment, then the
    declared names in ``overrides``), the keys made when none are configured, Flask's own
    session and CSRF keys, then the other ``overrides`` as given (Flask keys, test hooks).

    Raises SettingsError on a value that is not allowed."""
    rest = dict(overrides or {})
    declared = {name: rest.pop(name) for name in list(rest) if name in NAMES}
    settings = load_settings(declared)
    config: dict[str, Any] = settings.model_dump()
    if not config["SECRET_KEYS"]:
        config["SECRET_KEYS"] = [development_secret(settings.VAR_DIR, "secret_key")]
    if not config["ENCRYPTION_KEYS"]:
        from core.secrets import generate_key

        config["ENCRYPTION_KEYS"] = [
            development_secret(settings.VAR_DIR, "encryption_key", generate_key)
        ]
    if not config["ADDRESS_HASH_KEY"]:
        # Never rotated: suppression hashes must keep matching (see subscribers/suppression.py).
        config["ADDRESS_HASH_KEY"] = development_secret(settings.VAR_DIR, "address_hash_key")
    config.update(
        {
            # Oldest first: itsdangerous signs with the last key and verifies with all of them.
            "SECRET_KEY": config["SECRET_KEYS"][-1],
            "SESSION_COOKIE_HTTPONLY": True,
            "SESSION_COOKIE_SAMESITE": "Lax",
            "SESSION_COOKIE_SECURE": config["BASE_URL"].startswith("https://"),
            "WTF_CSRF_TIME_LIMIT": None,
            "TESTING": False,
        }
    )
    if "SECRET_KEYS" in declared:
        rest.pop("SECRET_KEY", None)
    config.update(rest)
    return config


def setting(name: str) -> Any:
    """The current app's typed value of the declared setting ``name`` (outside an app: the
    environment's, else the default).

    Raises KeyError for a name that is not declared in ``Settings``."""
    if name not in NAMES:
        raise KeyError(f"{name} is not a declared setting (core/settings.py)")
    if not has_app_context():
        return getattr(load_settings(), name)
    return current_app.config[name]


# --- the generated table ------------------------------------------------------------------


def allowed_text(info: FieldInfo) -> str:
    """What a setting accepts, in words (its declared ``allowed`` text, else from its type)."""
    extra = _extra(info)
    if "allowed" in extra:
        return str(extra["allowed"])
    annotation = info.annotation
    if annotation is bool:
        return "boolean"
    if get_origin(annotation) is Literal:
        return _either([f"`{choice}`" for choice in get_args(annotation)])
    kind = {int: "integer", float: "number", str: "text", Path: "path"}.get(
        annotation,  # type: ignore[arg-type]
        str(annotation),
    )
    bounds: dict[str, Any] = {}
    for item in info.metadata:  # annotated_types' Ge, Gt, Le, Lt from Field(ge=...)
        for key in ("ge", "gt", "le", "lt"):
            if getattr(item, key, None) is not None:
                bounds[key] = getattr(item, key)
    if "ge" in bounds and "le" in bounds:
        return f"{kind}, {bounds['ge']} to {bounds['le']}"
    signs = {"ge": "≥", "gt": ">", "le": "≤", "lt": "<"}
    return " ".join([kind, ", ".join(f"{signs[k]} {v}" for k, v in bounds.items())]).strip()


def default_text(info: FieldInfo) -> str:
    """A setting's default as the table shows it."""
    extra = _extra(info)
    if "shown" in extra:
        return str(extra["shown"])
    value = info.default
    if value in ("", [], None):
        return "empty"
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return f"`{value}`"


INTRO = """\
# Settings

<!-- Generated by `python -m core.settings --markdown > docs/readme/settings.md`; do not edit.
     The declarations are in core/settings.py; tests/test_settings.py fails when this file
     differs from what they generate. -->

Every setting is an environment variable of the same name; an empty variable means the
default. `core/settings.py` declares them all (pydantic-settings) and is the only code that
reads the environment. A value that is not allowed stops the start (`./scripts/start`,
`gunicorn wsgi:app`, `flask --app wsgi ...`, `dramatiq core.worker`) with a message naming the
setting and what it allows. Booleans take `true`/`false`, `1`/`0`, `yes`/`no` or `on`/`off`, in
any case; anything else is refused. `$VAR_DIR` below is the value of `VAR_DIR`.

The start script alone also reads `HOST` and `PORT` (where `flask run` listens, default
`127.0.0.1:5000`), `PYTHON` (the interpreter that makes the venv) and `ENVOY_VENV` (`.venv`).
"""


def markdown() -> str:
    """The settings document: the introduction and one table per area, in declaration order."""
    out = [INTRO]
    for area in AREAS:
        out.append(f"\n## {area.capitalize()}\n\n| name | type | default | description |\n")
        out.append("|---|---|---|---|\n")
        for name, info in Settings.model_fields.items():
            if _extra(info).get("area") == area:
                cells = (f"`{name}`", allowed_text(info), default_text(info), info.description)
                out.append("| " + " | ".join(str(c).replace("|", "\\|") for c in cells) + " |\n")
    return "".join(out)


def main(argv: list[str] | None = None) -> int:
    """``--markdown`` prints the settings document; ``--check`` validates the environment."""
    parser = argparse.ArgumentParser(prog="python -m core.settings", description=__doc__)
    group = parser.add_mutually_exclusive_group(required=True)
    group.add_argument("--markdown", action="store_true", help="print docs/readme/settings.md")
    group.add_argument("--check", action="store_true", help="validate the environment")
    args = parser.parse_args(argv)
    if args.markdown:
        sys.stdout.write(markdown())
        return 0
    try:
        load_settings()
    except SettingsError as error:
        print(error, file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
