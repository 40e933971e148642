"""Background work of the platform (composition, like `web`): the outbox's handlers by kind, the
sweeper a web process runs beside its requests, and the loop of a dedicated worker process."""

from __future__ import annotations

import os
import time
from functools import partial

import anyio
import structlog
from sqlalchemy.orm import Session, sessionmaker

from qilu.data import disputes, extracts, quality, sharing, subscriptions
from qilu.data import retention as data_retention
from qilu.filestore import file_store
from qilu.identity import oidc_logout, sms_codes
from qilu.messages import service as messages
from qilu.operations import retention
from qilu.outbox.service import BEAT_EVERY, Handler, beat, sweep, sweeper_name
from qilu.pii import Vault
from qilu.services import archive, bookings, clocks, documents, national
from qilu.settings import Settings
from qilu.sms import sender_for
from qilu.workdays import beijing_today

log = structlog.get_logger("qilu.workers")


def handlers(settings: Settings, vault: Vault) -> dict[str, Handler]:
    """What runs each kind of effect."""
    return {
        archive.ARCHIVE: partial(
            archive.run_archive,
            vault=vault,
            data_dir=settings.data_dir,
            fonds=settings.archive_fonds,
            scanner=settings.archive_scanner,
        ),
        documents.PDF: partial(
            documents.write_pdf,
            font=settings.cjk_font,
            base_url=settings.issuer,
            store=file_store(settings.data_dir),
        ),
        oidc_logout.BACKCHANNEL: partial(oidc_logout.deliver, vault=vault, issuer=settings.issuer),
        sms_codes.SEND: partial(sms_codes.deliver, vault=vault, sender=sender_for(settings)),
        messages.SMS: partial(messages.deliver_sms, vault=vault, sender=sender_for(settings)),
        **(
            {national.REPORT: partial(national.deliver, vault=vault, url=settings.national_url)}
            if settings.national_url
            else {}
        ),
    }


NATIONAL_EVERY = 5.0  # seconds between two collections of reports for the national platform


def collect_reports(sessions: sessionmaker[Session], settings: Settings, vault: Vault) -> int:
    """Make the reports for the 国家政务服务平台 of what happened since the last time."""
    with sessions.begin() as session:
        return national.collect(session, vault, send=bool(settings.national_url))


HOURLY = 3600.0  # seconds between two runs of the hourly work


def hourly(sessions: sessionmaker[Session], settings: Settings, vault: Vault) -> tuple[int, int]:
    """The cases' clocks (approvers warned) and tomorrow's bookings (people reminded); the
    national reports of yesterday reconciled, once a day; data disputes and conditional sharing
    requests near or past their deadline (reminded, escalated); the resources' quality rules
    checked (providers alerted below their threshold); bulk extracts past their keeping and
    records past their resource's 保存期限 (removed); and what has outlived its keeping (stale
    drafts, old load reports), a batch an hour."""
    with sessions.begin() as session:
        warned, reminded = clocks.warn(session), bookings.remind(session)
    with sessions.begin() as session:
        national.reconcile_yesterday(session, settings.national_url, beijing_today())
    with sessions.begin() as session:
        disputes.watch(session)
        sharing.watch(session)
    with sessions.begin() as session:
        quality.watch(session, vault)
    with sessions.begin() as session:
        extracts.expire(session, settings.data_dir)
        data_retention.expire_records(session)
    with sessions.begin() as session:
        retention.expire(
            session,
            draft_days=settings.draft_days,
            load_report_days=settings.load_report_days,
        )
    return warned, reminded


def deliver_changes(sessions: sessionmaker[Session], vault: Vault) -> int:
    """Push the resources' changes to their subscribers' webhooks (`data.subscriptions`)."""
    return subscriptions.deliver_due(sessions, vault)


def make_extracts(sessions: sessionmaker[Session], settings: Settings, vault: Vault) -> int:
    """Write the bulk extracts departments asked for (`data.extracts`), a large one on every
    CPU."""
    return extracts.make_due(sessions, vault, settings.data_dir, workers=os.cpu_count() or 1)


def _due(next_run: float) -> bool:
    return time.monotonic() >= next_run


async def sweep_forever(sessions: sessionmaker[Session], settings: Settings, vault: Vault) -> None:
    """A web process's sweeper: every `outbox_interval` seconds, in a worker thread; and once
    an hour, the hourly work (clocks, booking reminders)."""
    table = handlers(settings, vault)
    next_hourly = next_beat = next_national = 0.0
    name, done = sweeper_name(), 0
    while True:
        await anyio.sleep(settings.outbox_interval)
        try:
            if _due(next_national):
                await anyio.to_thread.run_sync(collect_reports, sessions, settings, vault)
                next_national = time.monotonic() + NATIONAL_EVERY
            done += await anyio.to_thread.run_sync(sweep, sessions, table)
            done += await anyio.to_thread.run_sync(deliver_changes, sessions, vault)
            done += await anyio.to_thread.run_sync(make_extracts, sessions, settings, vault)
            if _due(next_beat):
                await anyio.to_thread.run_sync(beat, sessions, name, "web", done)
                next_beat, done = time.monotonic() + BEAT_EVERY, 0
            if _due(next_hourly):
                await anyio.to_thread.run_sync(hourly, sessions, settings, vault)
                next_hourly = time.monotonic() + HOURLY
        except Exception:
            # The database may be away for a moment; the next round tries again.
            log.exception("outbox.sweep_failed")


def run_worker(sessions: sessionmaker[Session], settings: Settings, vault: Vault) -> None:
    """`qilu outbox run`: sweep until stopped, at least once a second."""
    table = handlers(settings, vault)
    next_hourly = next_beat = next_national = 0.0
    name, done = sweeper_name(), 0
    while True:
        if _due(next_hourly):
            hourly(sessions, settings, vault)
            next_hourly = time.monotonic() + HOURLY
        if _due(next_national):
            collect_reports(sessions, settings, vault)
            next_national = time.monotonic() + NATIONAL_EVERY
        ran = sweep(sessions, table) + deliver_changes(sessions, vault)
        ran += make_extracts(sessions, settings, vault)
        done += ran
        if _due(next_beat):
            beat(sessions, name, "worker", done)
            next_beat, done = time.monotonic() + BEAT_EVERY, 0
        if not ran:
            time.sleep(max(settings.outbox_interval, 1.0))
