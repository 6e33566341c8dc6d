"""A/B tests of a campaign's subject (and, optionally, sender name).

Set up on a draft (:func:`save_ab_test`): two to four variants, a test share of the audience
(10 to 50 %), what picks the winner (human unique opens or clicks), how long to wait, and
whether the rest goes out by itself or once the marketer confirms.

When the campaign starts (:func:`split_audience`, called by :func:`campaigns.services.start`
after the audience is frozen into ``Message`` rows), the test share is drawn at random and
split evenly between the variants (``messages.ab_variant``); the other rows (``ab_rest``) stay
pending but held (``due_at`` = :data:`HELD`, which no claim reaches). After ``wait_minutes``
the scheduler job :func:`decide_due` counts, per variant, the messages with at least one
*human* event of the metric (tracking's machine classification: mail proxies, scanners, HEAD,
early hits and honeypot evidence are ``is_machine``, so a scanner burst never makes a variant
win), chooses the winner (the most; a tie goes to the earlier variant) and releases the held
rows with it (or waits for :func:`confirm_winner`). Every step is a guarded UPDATE of the
database state: the job is safe to run twice, late, or in two processes.

Counting people needs identified events: an A/B test requires the account's individual
tracking (Settings > Privacy) and the campaign's tracking of the chosen metric.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, func, select, update

from accounts.queries import get_account
from campaigns.input_checks import check_templates, one_line
from campaigns.models import (
    AB_HELD,
    AB_MAX_PERCENT,
    AB_MAX_VARIANTS,
    AB_MIN_PERCENT,
    ABMetric,
    ABTest,
    ABTestStatus,
    ABVariant,
    Campaign,
    CampaignStatus,
    Message,
    MessageStatus,
)
from campaigns.sending.servers import enqueue_chains
from core import db
from core.db import rowcount, utcnow
from core.errors import NotFoundError, ValidationError
from privacy.policy import may_identify_in_urls
from tracking.models import TrackingEvent

HELD = AB_HELD
#: The longest wait before the winner is chosen (a week).
MAX_WAIT_MINUTES = 7 * 24 * 60
LETTERS = "ABCD"


def _campaign(account_id: int, campaign_id: int) -> Campaign:
    found = db.session.scalar(
        select(Campaign).where(Campaign.id == campaign_id, Campaign.account_id == account_id)
    )
    if found is None:
        raise NotFoundError("campaign")
    return found


def get_ab_test(campaign_id: int) -> ABTest | None:
    """The campaign's A/B test, or None."""
    return db.session.scalar(select(ABTest).where(ABTest.campaign_id == campaign_id))


def variants(ab_test_id: int) -> list[ABVariant]:
    """The test's variants, A first."""
    return list(
        db.session.scalars(
            select(ABVariant).where(ABVariant.ab_test_id == ab_test_id).order_by(ABVariant.position)
        )
    )


def save_ab_test(
    account_id: int,
    campaign_id: int,
    *,
    subjects: Sequence[str],
    from_names: Sequence[str] = (),
    test_percent: int,
    metric: str,
    wait_minutes: int,
    auto_send: bool,
) -> ABTest:
    """Set up (or replace) the draft campaign's A/B test. ``subjects`` are the variants (empty
    entries are left out; two to four remain), ``from_names[i]`` the sender name of variant i
    (empty: the campaign's). ValidationError (with its field) on anything out of bounds.
    Commits."""
    campaign = _campaign(account_id, campaign_id)
    if campaign.status != CampaignStatus.DRAFT:
        raise ValidationError("An A/B test can only be set up on a draft.")
    names = list(from_names) + [""] * (len(subjects) - len(from_names))
    chosen: list[tuple[str, str]] = []
    for index, (subject, name) in enumerate(zip(subjects, names, strict=False)):
        subject = one_line(subject or "", f"subject_{index}", "subject")
        name = one_line(name or "", f"from_name_{index}", "sender name")
        if len(subject) > 500 or len(name) > 200:
            raise ValidationError("This is too long.", field=f"subject_{index}")
        if subject:
            try:
                check_templates(subject, "", "")
            except ValidationError as exc:
                raise ValidationError(exc.message, field=f"subject_{index}") from exc
            chosen.append((subject, name))
        elif name:
            raise ValidationError("Give this variant a subject.", field=f"subject_{index}")
    if not 2 <= len(chosen) <= AB_MAX_VARIANTS:
        raise ValidationError(
            f"Write two to {AB_MAX_VARIANTS} subjects to compare.", field="subject_0"
        )
    if len({subject for subject, _ in chosen}) < len(chosen) and len(set(chosen)) < len(chosen):
        raise ValidationError("Two variants are the same.", field="subject_1")
    if not AB_MIN_PERCENT <= test_percent <= AB_MAX_PERCENT:
        raise ValidationError(
            f"Choose a test share between {AB_MIN_PERCENT} and {AB_MAX_PERCENT} %.",
            field="test_percent",
        )
    if not 1 <= wait_minutes <= MAX_WAIT_MINUTES:
        raise ValidationError("Wait between one minute and a week.", field="wait_hours")
    if metric not in {m.value for m in ABMetric}:
        raise ValidationError("Choose opens or clicks.", field="metric")
    if not may_identify_in_urls(get_account(account_id).individual_tracking):
        raise ValidationError(
            "An A/B test counts the people who opened or clicked each variant: turn on "
            "individual tracking in Settings > Privacy first.",
            field="metric",
        )
    tracked = campaign.track_opens if metric == ABMetric.OPENS else campaign.track_clicks
    if not tracked:
        raise ValidationError(
            f"This campaign does not track {metric}: turn it on when editing the campaign, "
            "or choose the other measure.",
            field="metric",
        )
    test = get_ab_test(campaign.id)
    if test is None:
        test = ABTest(account_id=account_id, campaign_id=campaign.id)
        db.session.add(test)
    test.status = ABTestStatus.DRAFT
    test.metric = metric
    test.test_percent = test_percent
    test.wait_minutes = wait_minutes
    test.auto_send = auto_send
    test.decide_at = test.winner = test.decided_at = None
    db.session.flush()
    db.session.execute(delete(ABVariant).where(ABVariant.ab_test_id == test.id))
    db.session.add_all(
        ABVariant(ab_test_id=test.id, position=i, subject=subject, from_name=name)
        for i, (subject, name) in enumerate(chosen)
    )
    db.session.commit()
    return test


def delete_ab_test(account_id: int, campaign_id: int) -> None:
    """Remove the draft campaign's A/B test (nothing when it has none). Commits."""
    campaign = _campaign(account_id, campaign_id)
    if campaign.status != CampaignStatus.DRAFT:
        raise ValidationError("The A/B test of a campaign that started cannot be removed.")
    db.session.execute(delete(ABTest).where(ABTest.campaign_id == campaign.id))
    db.session.commit()


def split_audience(campaign: Campaign, now: datetime) -> None:
    """When the campaign starts, after its Message rows are written: draw the test share at
    random, give it the variants in turn (so each gets the same number, give or take one) and
    hold the other rows until the winner is known. Nothing without a draft A/B test. No
    commit (part of the start's transaction)."""
    test = get_ab_test(campaign.id)
    if test is None or test.status != ABTestStatus.DRAFT:
        return
    count = len(variants(test.id))
    ids = list(db.session.scalars(select(Message.id).where(Message.campaign_id == campaign.id)))
    secrets.SystemRandom().shuffle(ids)
    size = min(len(ids), max(count, round(len(ids) * test.test_percent / 100)))
    for position in range(count):
        chunk = ids[position:size:count]
        for start in range(0, len(chunk), 1000):
            db.session.execute(
                update(Message)
                .where(Message.id.in_(chunk[start : start + 1000]))
                .values(ab_variant=position)
            )
    rest = ids[size:]
    for start in range(0, len(rest), 1000):
        db.session.execute(
            update(Message)
            .where(Message.id.in_(rest[start : start + 1000]))
            .values(due_at=HELD, ab_rest=True)
        )
    test.status = ABTestStatus.TESTING
    test.decide_at = now + timedelta(minutes=test.wait_minutes)


@dataclass(frozen=True)
class VariantResult:
    """One variant's figures: messages sent, people (messages) with a human open or click,
    and machine activity beside them (events, never counted for the winner)."""

    position: int
    subject: str
    from_name: str
    sent: int
    human_opens: int
    human_clicks: int
    machine_opens: int
    machine_clicks: int

    @property
    def letter(self) -> str:
        return LETTERS[self.position]

    def score(self, metric: str) -> int:
        return self.human_opens if metric == ABMetric.OPENS else self.human_clicks

    def rate(self, metric: str) -> float:
        """The metric's share of the messages sent, in percent."""
        return round(100 * self.score(metric) / self.sent, 1) if self.sent else 0.0


def results(test: ABTest) -> list[VariantResult]:
    """Each variant's figures, side by side, from the messages of the test share."""
    sent = dict(
        db.session.execute(
            select(Message.ab_variant, func.count())
            .where(
                Message.campaign_id == test.campaign_id,
                Message.ab_variant.is_not(None),
                Message.ab_rest.is_(None),
                Message.status == MessageStatus.SENT,
            )
            .group_by(Message.ab_variant)
        ).all()
    )
    rows = db.session.execute(
        select(
            Message.ab_variant,
            TrackingEvent.kind,
            TrackingEvent.is_machine,
            func.count(func.distinct(TrackingEvent.message_id)),
            func.count(),
        )
        .join(Message, Message.id == TrackingEvent.message_id)
        .where(
            TrackingEvent.campaign_id == test.campaign_id,
            TrackingEvent.kind.in_(("open", "click")),
            Message.campaign_id == test.campaign_id,
            Message.ab_variant.is_not(None),
            Message.ab_rest.is_(None),
        )
        .group_by(Message.ab_variant, TrackingEvent.kind, TrackingEvent.is_machine)
    ).all()
    people: dict[tuple[int, str], int] = {}
    machine: dict[tuple[int, str], int] = {}
    for position, kind, is_machine, messages, events in rows:
        if position is None:
            continue
        if is_machine:
            machine[(position, kind)] = int(events)
        else:
            people[(position, kind)] = int(messages)
    return [
        VariantResult(
            position=v.position,
            subject=v.subject,
            from_name=v.from_name,
            sent=int(sent.get(v.position, 0)),
            human_opens=people.get((v.position, "open"), 0),
            human_clicks=people.get((v.position, "click"), 0),
            machine_opens=machine.get((v.position, "open"), 0),
            machine_clicks=machine.get((v.position, "click"), 0),
        )
        for v in variants(test.id)
    ]


def choose_winner(test: ABTest, found: list[VariantResult]) -> int:
    """The position of the variant with the most people by the test's metric (human events
    only); a tie goes to the earlier variant."""
    best = max(found, key=lambda r: (r.score(test.metric), -r.position))
    return best.position


def _release(test: ABTest, winner: int, now: datetime) -> int:
    """Give the held rows the winner and make them due now; start the sending again when the
    campaign sends. Returns the rows released. No commit."""
    released = rowcount(
        db.session.execute(
            update(Message)
            .where(
                Message.campaign_id == test.campaign_id,
                Message.ab_rest.is_(True),
                Message.ab_variant.is_(None),
                Message.status == MessageStatus.PENDING,
            )
            .values(ab_variant=winner, due_at=now)
        )
    )
    campaign = db.session.get(Campaign, test.campaign_id)
    assert campaign is not None
    if campaign.status == CampaignStatus.SENDING:
        enqueue_chains(campaign)  # a paused campaign's resume enqueues them
    return released


def decide_due(now: datetime | None = None) -> int:
    """Scheduler job: choose the winner of every test whose wait is over, and send the rest
    the winner when the test says so (else wait for :func:`confirm_winner`). A test whose
    campaign was cancelled ends without sending. Idempotent: each test moves from
    ``testing`` once (a guarded UPDATE); commits per test. Returns the tests decided."""
    now = now or utcnow()
    due = list(
        db.session.scalars(
            select(ABTest.id).where(ABTest.status == ABTestStatus.TESTING, ABTest.decide_at <= now)
        )
    )
    decided = 0
    for test_id in due:
        test = db.session.get(ABTest, test_id)
        if test is None:
            continue
        campaign = db.session.get(Campaign, test.campaign_id)
        assert campaign is not None
        winner = choose_winner(test, results(test))
        if campaign.status == CampaignStatus.CANCELLED:
            target = ABTestStatus.DONE
        else:
            target = ABTestStatus.DONE if test.auto_send else ABTestStatus.AWAITING
        moved = rowcount(
            db.session.execute(
                update(ABTest)
                .where(ABTest.id == test_id, ABTest.status == ABTestStatus.TESTING)
                .values(status=target, winner=winner, decided_at=now)
            )
        )
        if not moved:
            db.session.rollback()
            continue
        if target == ABTestStatus.DONE and campaign.status != CampaignStatus.CANCELLED:
            _release(test, winner, now)
        db.session.commit()
        decided += 1
    return decided


def confirm_winner(account_id: int, campaign_id: int, position: int | None = None) -> ABTest:
    """The marketer sends the rest a variant (the chosen winner unless ``position`` names
    another). Only once: a second confirmation is refused. Commits."""
    campaign = _campaign(account_id, campaign_id)
    test = get_ab_test(campaign.id)
    if test is None or test.status != ABTestStatus.AWAITING:
        raise ValidationError("There is no A/B test winner waiting for confirmation.")
    winner = test.winner if position is None else position
    if winner is None or winner not in {v.position for v in variants(test.id)}:
        raise ValidationError("Choose one of the variants.", field="position")
    if campaign.status == CampaignStatus.CANCELLED:
        raise ValidationError("This campaign was cancelled.")
    now = utcnow()
    moved = rowcount(
        db.session.execute(
            update(ABTest)
            .where(ABTest.id == test.id, ABTest.status == ABTestStatus.AWAITING)
            .values(status=ABTestStatus.DONE, winner=winner)
        )
    )
    if not moved:
        db.session.rollback()
        raise ValidationError("There is no A/B test winner waiting for confirmation.")
    _release(test, winner, now)
    db.session.commit()
    db.session.refresh(test)
    return test
