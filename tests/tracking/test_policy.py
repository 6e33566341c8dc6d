"""The privacy layer's decisions, one path at a time (privacy.policy is pure)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import pytest

from privacy import policy
from privacy.policy import ContactState, Decision, TrackingContext


@pytest.mark.parametrize(
    ("raw", "mode", "expected"),
    [
        ("203.0.113.77", "truncate", "203.0.113.0/24"),
        (" 10.1.2.3 ", "truncate", "10.1.2.0/24"),
        ("2001:db8:abcd:12:34::1", "truncate", "2001:db8:abcd::/48"),
        ("::ffff:198.51.100.9", "truncate", "198.51.100.0/24"),
        ("203.0.113.77", "drop", None),
        ("2001:db8::1", "drop", None),
        ("999.1.1.1", "truncate", None),
        ("1.2.3.256", "truncate", None),
        ("1.2.3", "truncate", None),
        ("1.2.3.4.5", "truncate", None),
        ("1.2.3.0004", "truncate", None),
        ("\u0661.2.3.4", "truncate", None),  # a non-ASCII digit
        ("1.2.3.4x", "truncate", None),
        ("010.2.3.4", "truncate", "10.2.3.0/24"),
        ("not-an-ip", "truncate", None),
        ("", "truncate", None),
        (None, "truncate", None),
        ("203.0.113.77", "something-else", None),
    ],
)
def test_ip_reduction(raw: str | None, mode: str, expected: str | None) -> None:
    assert policy.reduce_ip(raw, mode) == expected


@pytest.mark.parametrize(
    ("agent", "expected"),
    [
        ("Mozilla/5.0", "apple-mpp"),
        (
            "Mozilla/5.0 (Windows NT 5.1; rv:11.0) Gecko Firefox/11.0"
            " (via ggpht.com GoogleImageProxy)",
            "gmail-proxy",
        ),
        ("YahooMailProxy; https://help.yahoo.com/kb/yahoo-mail-proxy-SLN28749.html", "yahoo-proxy"),
        ("Mozilla/5.0 (compatible; Barracuda Sentinel)", "scanner"),
        ("python-requests/2.31", "bot"),
        (
            "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15"
            " Mobile/15E148",
            "mobile",
        ),
        (
            "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 Chrome/120 Safari/537.36",
            "desktop",
        ),
        ("Thunderbird/115.0", "mail-client"),
        ('"><script>alert(1)</script>', "other"),
        ("", "unknown"),
        (None, "unknown"),
    ],
)
def test_user_agent_reduction(agent: str | None, expected: str) -> None:
    assert policy.classify_user_agent(agent) == expected


def test_minimise_keeps_nothing_raw() -> None:
    reduced = policy.minimise(
        "203.0.113.77", "Mozilla/5.0 (X11; Linux x86_64) Firefox/120", "truncate"
    )
    assert reduced == policy.ReducedRequest(ip_prefix="203.0.113.0/24", ua_class="desktop")
    assert "77" not in repr(reduced) and "Firefox" not in repr(reduced)


def _ctx(**overrides: object) -> TrackingContext:
    values: dict[str, object] = {
        "kind": "open",
        "individual_tracking": True,
        "track_opens": True,
        "track_clicks": True,
        "identified_token": True,
        "contact": ContactState(),
    }
    values.update(overrides)
    return TrackingContext(**values)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ({}, Decision.IDENTIFIED),
        ({"kind": "click"}, Decision.IDENTIFIED),
        ({"track_opens": False}, Decision.DROP),
        ({"kind": "click", "track_clicks": False}, Decision.DROP),
        ({"kind": "click", "track_opens": False}, Decision.IDENTIFIED),
        ({"individual_tracking": False}, Decision.ANONYMOUS),
        ({"identified_token": False, "contact": None}, Decision.ANONYMOUS),
        ({"contact": ContactState(unsubscribed=True)}, Decision.ANONYMOUS),
        ({"contact": ContactState(restricted=True)}, Decision.DROP),
        ({"contact": ContactState(objected=True)}, Decision.DROP),
        ({"contact": ContactState(consent_withdrawn=True)}, Decision.DROP),
        ({"contact": ContactState(exists=False)}, Decision.DROP),
        ({"contact": None}, Decision.DROP),
        ({"individual_tracking": False, "contact": ContactState(restricted=True)}, Decision.DROP),
        ({"kind": "unsubscribe", "track_opens": False, "track_clicks": False}, Decision.IDENTIFIED),
        # Honeypot fetches are click-tracking evidence: nothing when clicks are not tracked.
        ({"kind": "honeypot"}, Decision.IDENTIFIED),
        ({"kind": "honeypot", "track_clicks": False}, Decision.DROP),
        # The recipient turned tracking of their opens and clicks off (preference centre).
        ({"contact": ContactState(refused_tracking=True)}, Decision.DROP),
        ({"kind": "click", "contact": ContactState(refused_tracking=True)}, Decision.DROP),
        ({"kind": "honeypot", "contact": ContactState(refused_tracking=True)}, Decision.DROP),
        (
            {"individual_tracking": False, "contact": ContactState(refused_tracking=True)},
            Decision.DROP,
        ),
        (
            {"kind": "unsubscribe", "contact": ContactState(refused_tracking=True)},
            Decision.ANONYMOUS,
        ),
        (
            {
                "kind": "unsubscribe",
                "contact": ContactState(refused_tracking=True, restricted=True),
            },
            Decision.DROP,
        ),
    ],
)
def test_every_decision_path(overrides: dict[str, object], expected: Decision) -> None:
    assert policy.decide(_ctx(**overrides)) is expected


def test_contact_state_reads_whatever_timestamps_the_contact_has() -> None:
    @dataclass
    class Row:
        restricted_at: datetime | None = None
        objected_at: datetime | None = None

    @dataclass
    class RowWithConsent(Row):
        consent_withdrawn_at: datetime | None = None

    @dataclass
    class RowWithTrackingChoice(RowWithConsent):
        tracking_refused_at: datetime | None = None

    now = datetime(2026, 1, 1)
    assert policy.contact_state(None, "subscribed") == ContactState(exists=False)
    assert policy.contact_state(Row(), "subscribed") == ContactState()
    assert policy.contact_state(Row(), "unsubscribed").unsubscribed
    assert policy.contact_state(Row(restricted_at=now), None).excluded_from_processing
    assert policy.contact_state(Row(objected_at=now), None).excluded_from_processing
    assert policy.contact_state(RowWithConsent(consent_withdrawn_at=now), None).consent_withdrawn
    refused = policy.contact_state(RowWithTrackingChoice(tracking_refused_at=now), "subscribed")
    assert refused.refused_tracking and not refused.excluded_from_processing
    assert not policy.contact_state(RowWithTrackingChoice(), "subscribed").refused_tracking


@pytest.mark.parametrize(
    ("evidence", "expected"),
    [
        (policy.MachineEvidence("desktop", "203.0.113.0/24"), None),
        (policy.MachineEvidence("desktop", None, method="HEAD"), "head"),
        (policy.MachineEvidence("desktop", None, honeypot=True), "honeypot"),
        (policy.MachineEvidence("apple-mpp", None), "ua:apple-mpp"),
        (policy.MachineEvidence("gmail-proxy", None), "ua:gmail-proxy"),
        (policy.MachineEvidence("scanner", None), "ua:scanner"),
        (policy.MachineEvidence("other", "17.58.3.0/24"), "network:apple"),
        (policy.MachineEvidence("desktop", "66.102.1.0/24"), "network:google"),
        (policy.MachineEvidence("desktop", "148.163.130.0/24"), "network:proofpoint"),
        (policy.MachineEvidence("desktop", None, seconds_since_delivery=3.0), "early"),
        (policy.MachineEvidence("desktop", None, seconds_since_delivery=600.0), None),
        (policy.MachineEvidence("desktop", None, burst=True), "burst"),
    ],
)
def test_machine_classification_on_reduced_values(
    evidence: policy.MachineEvidence, expected: str | None
) -> None:
    assert policy.classify_machine(evidence) == expected


def test_configured_networks_extend_the_list() -> None:
    evidence = policy.MachineEvidence("desktop", "192.0.2.0/24")
    assert policy.classify_machine(evidence) is None
    assert policy.classify_machine(evidence, extra_networks=("192.0.2.0/23",)) == (
        "network:configured"
    )


def _engine(**overrides: object) -> policy.EngineContext:
    values: dict[str, object] = {
        "tracking": _ctx(),
        "account_participates": True,
        "is_machine": False,
        "account_id": 3,
        "message_id": 9,
        "occurred_at": datetime(2026, 3, 4, 15, 42, 7),
    }
    values.update(overrides)
    return policy.EngineContext(**values)  # type: ignore[arg-type]


def test_engine_signal_carries_only_ids_and_the_hour() -> None:
    signal = policy.engine_signal(_engine())
    assert signal == policy.EngineSignal(
        account_id=3, message_id=9, kind="open", hour=datetime(2026, 3, 4, 15)
    )
    assert set(vars(signal)) == {"account_id", "message_id", "kind", "hour"}
    assert policy.engine_signal(_engine(tracking=_ctx(kind="click"))) is not None


@pytest.mark.parametrize(
    "overrides",
    [
        {"account_participates": False},
        {"is_machine": True},
        {"message_id": None},
        {"tracking": _ctx(kind="unsubscribe")},
        {"tracking": _ctx(kind="honeypot")},
        {"tracking": _ctx(individual_tracking=False)},
        {"tracking": _ctx(identified_token=False, contact=None)},
        {"tracking": _ctx(contact=ContactState(restricted=True))},
        {"tracking": _ctx(contact=ContactState(objected=True))},
        {"tracking": _ctx(contact=ContactState(consent_withdrawn=True))},
        {"tracking": _ctx(contact=ContactState(exists=False))},
        {"tracking": _ctx(contact=ContactState(unsubscribed=True))},
        {"tracking": _ctx(track_opens=False)},
        {"tracking": _ctx(contact=ContactState(refused_tracking=True))},
    ],
)
def test_engine_gets_nothing_otherwise(overrides: dict[str, object]) -> None:
    assert policy.engine_signal(_engine(**overrides)) is None


def test_urls_identify_only_with_individual_tracking() -> None:
    assert policy.may_identify_in_urls(True) is True
    assert policy.may_identify_in_urls(False) is False
