"""Login throttling: failed logins per address and per client network, then a lockout.

Built on the ``limits`` library (the engine of Flask-Limiter) with moving windows, stored in
Redis when ``REDIS_URL`` is set (shared by every process) and in memory on the embedded
default. Only failures count. Keys are the address's keyed hash and the client's network
prefix (/24, /48), never the clear address or IP. Unknown and known addresses are counted and
answered alike; only the lockout email (sent by a job) differs, and nobody sees it but the
owner of the address.

Tiers (configurable, see core/settings.py): more than 5 failures within a minute, or 8 within
10 minutes, and the address must wait (429 with Retry-After); the 10th failure within 15
minutes locks it for 15 minutes, even for the right password, and emails its owner a
password-reset link. A successful password reset lifts the lockout.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

from flask import current_app
from limits import RateLimitItem, RateLimitItemPerSecond, parse_many
from limits.strategies import MovingWindowRateLimiter

from core.limiting import moving_window
from privacy.policy import reduce_ip
from subscribers.suppression import address_hash


@dataclass(frozen=True)
class Verdict:
    """May this login attempt be checked? If not, how many seconds until it may."""

    allowed: bool
    retry_after: int = 0
    locked: bool = False


def _limiter() -> MovingWindowRateLimiter:
    return moving_window("login-throttle")


def _tiers(name: str) -> list[RateLimitItem]:
    return list(parse_many(str(current_app.config[name])))


def _lockout_counter() -> RateLimitItem:
    config = current_app.config
    return RateLimitItemPerSecond(
        int(config["LOGIN_LOCKOUT_AFTER"]), int(config["LOGIN_LOCKOUT_WINDOW"])
    )


def _lockout() -> RateLimitItem:
    return RateLimitItemPerSecond(1, int(current_app.config["LOGIN_LOCKOUT_SECONDS"]))


def _address_key(email: str) -> str:
    return "a:" + address_hash(email.strip().lower()[:320])


def _network_key(raw_ip: str | None) -> str:
    return "n:" + (reduce_ip(raw_ip) or "unknown")


def _wait(limiter: MovingWindowRateLimiter, item: RateLimitItem, key: str) -> int:
    reset_at = limiter.get_window_stats(item, key).reset_time
    return max(1, math.ceil(reset_at - time.time()))


def check(email: str, raw_ip: str | None) -> Verdict:
    """Whether a login attempt for ``email`` from ``raw_ip`` may have its password checked."""
    limiter = _limiter()
    address, network = _address_key(email), _network_key(raw_ip)
    if not limiter.test(_lockout(), address):
        return Verdict(False, _wait(limiter, _lockout(), address), locked=True)
    waits = [
        _wait(limiter, item, key)
        for key, items in (
            (address, _tiers("LOGIN_LIMITS_PER_ADDRESS")),
            (network, _tiers("LOGIN_LIMITS_PER_NETWORK")),
        )
        for item in items
        if not limiter.test(item, key)
    ]
    return Verdict(False, max(waits)) if waits else Verdict(True)


def record_failure(email: str, raw_ip: str | None) -> bool:
    """Count a failed login. True when this failure locked the address (just now)."""
    limiter = _limiter()
    address, network = _address_key(email), _network_key(raw_ip)
    for item in _tiers("LOGIN_LIMITS_PER_ADDRESS"):
        limiter.hit(item, address)
    for item in _tiers("LOGIN_LIMITS_PER_NETWORK"):
        limiter.hit(item, network)
    limiter.hit(_lockout_counter(), address)
    if limiter.test(_lockout_counter(), address):
        return False
    limiter.clear(_lockout_counter(), address)
    limiter.hit(_lockout(), address)
    return True


def forget_address(email: str) -> None:
    """Clear the address's failures and lockout (after a login or a password reset)."""
    limiter = _limiter()
    address = _address_key(email)
    for item in [*_tiers("LOGIN_LIMITS_PER_ADDRESS"), _lockout_counter(), _lockout()]:
        limiter.clear(item, address)
