"""Change subscriptions (增量订阅): a department system has a resource's changes pushed to its
webhook, in order, at least once, from where it last acknowledged.

A delivery is one page of the feed (`feed.read_changes`, so the grant, its rows, masking and
consent apply exactly as to a pull) POSTed as JSON, signed SM2 by the platform over the body's
bytes (`Qilu-Signature`, hexadecimal r‖s; `Qilu-Key-Id` names the key published at
`/oidc/jwks/sm2`). A 2xx answer moves the cursor on and logs the page's read; anything else, or
no answer within the timeout, is tried again 2 s, 4 s, 8 s … later. After `MAX_ATTEMPTS` the page
is dead-lettered and the subscription stops there (nothing after it arrives before it) until the
department resumes it or replays from a cursor of its choice. A subscriber must therefore expect
a change twice (by its `seq`) but never out of order.

One subscription is delivered by one sweeper at a time (a lease taken by compare-and-set), so
several web processes never send its pages in parallel.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol
from urllib.parse import urlsplit

import httpx
from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session, sessionmaker

from qilu.audit.service import record
from qilu.data import changes as store
from qilu.data import feed
from qilu.data.models import DeadLetter, Subscription
from qilu.data.reading import SharingRefused, begin_read, listing_grant
from qilu.errors import NotFound, QiluError
from qilu.identity.oidc_provider import ServiceCaller
from qilu.identity.signing_keys import sm2_key
from qilu.pii import Vault

BATCH = 1_000
MAX_ATTEMPTS = 8  # 2 s … 256 s apart: about 8.5 minutes of an unreachable subscriber
LEASE = timedelta(minutes=1)
TIMEOUT = 10.0
ACTIVE, SUSPENDED, CANCELLED = "active", "suspended", "cancelled"
STATUS_NAMES = {ACTIVE: "推送中", SUSPENDED: "已暂停", CANCELLED: "已取消"}


class Poster(Protocol):
    def __call__(
        self, url: str, *, content: bytes, headers: dict[str, str], timeout: float
    ) -> httpx.Response: ...


def subscribe(
    session: Session,
    vault: Vault,
    caller: ServiceCaller,
    code: str,
    url: str,
    *,
    after: int | None = None,
    now: datetime | None = None,
) -> Subscription:
    """Subscribe the calling system's webhook `url` to resource `code`'s changes after
    sequence number `after` (default: from now on). Its grant must allow listing."""
    moment = now or datetime.now(UTC)
    _check_url(url)
    begun = begin_read(session, vault, caller, code, moment)
    listing_grant(begun.read, begun.grants, feed.NOT_LISTING)
    resource_id = begun.read.resource.id
    latest = store.latest(session, resource_id)
    if after is not None and not 0 <= after <= latest:
        raise QiluError("feed.after", f"起始序号须在 0 到 {latest} 之间", field="after")
    subscription = Subscription(
        resource_id=resource_id,
        department_id=caller.department_id,
        client_id=caller.client_id,
        url=url,
        cursor=latest if after is None else after,
        status=ACTIVE,
        attempts=0,
        next_attempt_at=moment,
        last_error="",
        delivered=0,
        created_at=moment,
    )
    session.add(subscription)
    session.flush()
    _audit(session, "feed.subscribed", subscription, caller.client_id, {"url": url})
    return subscription


def _check_url(url: str) -> None:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname or len(url) > 500:
        raise QiluError(
            "feed.url", "推送地址须为 http 或 https 开头的完整网址（500 字符以内）", field="url"
        )


def subscriptions_of(session: Session, caller: ServiceCaller) -> list[Subscription]:
    """The subscriptions of the caller's department, newest first."""
    return list(
        session.scalars(
            select(Subscription)
            .where(Subscription.department_id == caller.department_id)
            .order_by(Subscription.id.desc())
        )
    )


def own_subscription(session: Session, caller: ServiceCaller, subscription_id: int) -> Subscription:
    """A subscription of the caller's department (another's is as good as absent)."""
    subscription = session.get(Subscription, subscription_id)
    if subscription is None or subscription.department_id != caller.department_id:
        raise NotFound("feed.not_found", "没有这项订阅", field="subscription")
    return subscription


def dead_letters(session: Session, subscription_id: int) -> list[DeadLetter]:
    return list(
        session.scalars(
            select(DeadLetter)
            .where(DeadLetter.subscription_id == subscription_id)
            .order_by(DeadLetter.id.desc())
        )
    )


def replay(
    session: Session,
    caller: ServiceCaller,
    subscription_id: int,
    *,
    after: int | None = None,
    now: datetime | None = None,
) -> Subscription:
    """Deliver again from sequence number `after` (default: where it stopped), and resume a
    suspended subscription; its dead letters are settled."""
    moment = now or datetime.now(UTC)
    subscription = own_subscription(session, caller, subscription_id)
    if subscription.status == CANCELLED:
        raise QiluError("feed.cancelled", "该订阅已取消，请重新订阅", field="subscription")
    latest = subscription.resource.change_seq
    if after is not None and not 0 <= after <= latest:
        raise QiluError("feed.after", f"起始序号须在 0 到 {latest} 之间", field="after")
    subscription.cursor = subscription.cursor if after is None else after
    subscription.status, subscription.attempts = ACTIVE, 0
    subscription.next_attempt_at, subscription.leased_until = moment, None
    session.execute(
        update(DeadLetter)
        .where(DeadLetter.subscription_id == subscription.id, DeadLetter.resolved_at.is_(None))
        .values(resolved_at=moment)
    )
    _audit(session, "feed.replayed", subscription, caller.client_id, {"after": subscription.cursor})
    return subscription


def cancel(session: Session, caller: ServiceCaller, subscription_id: int) -> Subscription:
    subscription = own_subscription(session, caller, subscription_id)
    subscription.status, subscription.leased_until = CANCELLED, None
    _audit(session, "feed.cancelled", subscription, caller.client_id, {})
    return subscription


def _audit(
    session: Session, action: str, subscription: Subscription, client: str, extra: dict[str, Any]
) -> None:
    record(
        session,
        action,
        subject=f"resource:{subscription.resource.code}",
        details={"subscription": subscription.id, "client": client, **extra},
    )


def due(session: Session, now: datetime | None = None) -> list[int]:
    """Active subscriptions whose next delivery is due and that no sweeper holds."""
    moment = now or datetime.now(UTC)
    return list(
        session.scalars(
            select(Subscription.id)
            .where(
                Subscription.status == ACTIVE,
                Subscription.next_attempt_at <= moment,
                or_(Subscription.leased_until.is_(None), Subscription.leased_until < moment),
            )
            .order_by(Subscription.next_attempt_at)
        )
    )


@dataclass(frozen=True)
class Delivery:
    """What one round did for one subscription."""

    delivered: int  # changes acknowledged
    caught_up: bool  # nothing more to send now
    failed: bool = False


def deliver(
    sessions: sessionmaker[Session],
    vault: Vault,
    subscription_id: int,
    *,
    post: Poster = httpx.post,
    limit: int = BATCH,
) -> Delivery:
    """Send the subscription's next page, if it is due and this process gets its lease."""
    with sessions.begin() as session:
        prepared = _prepare(session, vault, subscription_id, limit)
    if prepared is None:
        return Delivery(0, caught_up=True)
    if isinstance(prepared, int):  # nothing to show the consumer: the cursor just moved on
        return Delivery(0, caught_up=False)
    page, body, headers, url, cursor = prepared
    try:
        response = post(url, content=body, headers=headers, timeout=TIMEOUT)
        error = None if 200 <= response.status_code < 300 else f"订阅方返回 {response.status_code}"
    except httpx.HTTPError as failure:
        error = f"无法送达：{type(failure).__name__}"
    with sessions.begin() as session:
        return _settle(session, subscription_id, page, cursor, error)


def _prepare(
    session: Session, vault: Vault, subscription_id: int, limit: int
) -> tuple[feed.ChangePage, bytes, dict[str, str], str, int] | int | None:
    """Lease the subscription and make its next page, signed; None if there is nothing to do,
    or the new cursor if the page held nothing the consumer may see."""
    moment = datetime.now(UTC)
    leased = session.execute(
        update(Subscription)
        .where(
            Subscription.id == subscription_id,
            Subscription.status == ACTIVE,
            Subscription.next_attempt_at <= moment,
            or_(Subscription.leased_until.is_(None), Subscription.leased_until < moment),
        )
        .values(leased_until=moment + LEASE)
        .returning(Subscription.id)
    ).scalar_one_or_none()
    if leased is None:
        return None
    subscription = session.get_one(Subscription, subscription_id)
    caller = ServiceCaller.stored(session, subscription.client_id)
    if caller is None:
        _suspend(subscription, "订阅系统已停用")
        return None
    try:
        page = feed.read_changes(
            session, vault, caller, subscription.resource.code,
            after=subscription.cursor, limit=limit, now=moment,
        )  # fmt: skip
    except SharingRefused as refusal:  # the grant ended: stop, and say why
        _suspend(subscription, refusal.message)
        return None
    if page.next_after == subscription.cursor:
        subscription.leased_until = None
        return None
    if not page.changes:
        subscription.cursor, subscription.leased_until = page.next_after, None
        return page.next_after
    kid, key = sm2_key(session, vault)
    body = json.dumps(
        {"subscription": subscription.id, "sent_at": moment.isoformat(), **feed.page_json(page)},
        ensure_ascii=False,
        separators=(",", ":"),
    ).encode()
    headers = {
        "Content-Type": "application/json; charset=utf-8",
        "Qilu-Signature": key.sign(body).hex(),
        "Qilu-Key-Id": kid,
        "Qilu-Subscription": str(subscription.id),
    }
    return page, body, headers, subscription.url, subscription.cursor


def _suspend(subscription: Subscription, reason: str) -> None:
    subscription.status, subscription.last_error = SUSPENDED, reason
    subscription.leased_until = None


def _settle(
    session: Session, subscription_id: int, page: feed.ChangePage, cursor: int, error: str | None
) -> Delivery:
    """Record the answer: the cursor moves on and the read is logged, or the page waits."""
    moment = datetime.now(UTC)
    subscription = session.get_one(Subscription, subscription_id)
    if subscription.cursor != cursor or subscription.status != ACTIVE:
        return Delivery(0, caught_up=True)  # replayed or stopped meanwhile: its answer is moot
    subscription.leased_until = None
    if error is None:
        subscription.cursor = page.next_after
        subscription.delivered += len(page.changes)
        subscription.attempts, subscription.last_error = 0, ""
        subscription.last_delivered_at = moment
        feed.log_page(page, session, subscription=subscription.id)
        return Delivery(len(page.changes), caught_up=page.next_after >= page.latest)
    subscription.attempts += 1
    subscription.last_error = error
    subscription.next_attempt_at = moment + timedelta(seconds=2**subscription.attempts)
    if subscription.attempts >= MAX_ATTEMPTS:
        session.add(
            DeadLetter(
                subscription_id=subscription.id,
                after_seq=cursor,
                last_seq=page.next_after,
                attempts=subscription.attempts,
                error=error,
                failed_at=moment,
            )
        )
        subscription.status = SUSPENDED
    return Delivery(0, caught_up=True, failed=True)


def deliver_due(
    sessions: sessionmaker[Session],
    vault: Vault,
    *,
    budget: float = 2.0,
    post: Poster = httpx.post,
) -> int:
    """One sweep: every due subscription gets pages until it is caught up, fails, or this
    sweep has spent `budget` seconds (the rest wait for the next)."""
    started = datetime.now(UTC)
    with sessions() as session:
        waiting = due(session, started)
    sent = 0
    for subscription_id in waiting:
        while (datetime.now(UTC) - started).total_seconds() < budget:
            delivery = deliver(sessions, vault, subscription_id, post=post)
            sent += delivery.delivered
            if delivery.caught_up:
                break
    return sent
