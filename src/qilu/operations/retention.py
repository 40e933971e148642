"""How long things are kept, by setting (运行多年): drafts nobody finished, the row-by-row error
reports of data loads, and the audit log's off-line archive.

Audit entries are never deleted: 等保 level 3 asks for at least six months of logs, and the SM3
chain is only whole from its first entry. What ages out of the working store is what people
would not miss: a draft untouched for `QILU_DRAFT_DAYS`, and the rejected rows of a load older
than `QILU_LOAD_REPORT_DAYS` (its counts stay). Each expiry is itself an audit entry with what
went. `qilu audit archive` writes entries older than `QILU_AUDIT_ARCHIVE_DAYS` (at least 183)
to JSON Lines files with their SM3 digests, for the province's write-once storage.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import delete, func, or_, select, update
from sqlalchemy.orm import Session

from qilu.audit.models import AuditEvent
from qilu.audit.service import hashed_fields, record
from qilu.data.models import DataLoad
from qilu.digests import sm3
from qilu.messages import service as messages
from qilu.outbox.models import SweeperBeat
from qilu.services.models import Application, ApplicationMaterial
from qilu.workdays import beijing_today

BATCH = 1_000
ARCHIVE_FOLDER = "audit-archive"


WARN_AHEAD = 7  # days before a draft expires that its applicant is told


@dataclass(frozen=True)
class Expired:
    drafts: int
    load_reports: int
    warned: int = 0


def expire(
    session: Session, *, draft_days: int, load_report_days: int, now: datetime | None = None
) -> Expired:
    """One pass of expiry (a batch of each kind), audited; the hourly work calls it. A draft's
    applicant is told `WARN_AHEAD` days before it goes (once per save)."""
    now = now or datetime.now(UTC)
    warned = _warn_drafts(session, draft_days, now)
    untouched = now - timedelta(days=draft_days)
    drafts = list(
        session.scalars(
            select(Application.number)
            .where(Application.status == "draft", Application.saved_at < untouched)
            .order_by(Application.id)
            .limit(BATCH)
        )
    )
    if drafts:
        stale = select(Application.id).where(Application.number.in_(drafts))
        session.execute(
            delete(ApplicationMaterial).where(ApplicationMaterial.application_id.in_(stale))
        )
        session.execute(delete(Application).where(Application.number.in_(drafts)))
        record(
            session,
            "services.drafts_expired",
            details={"days": draft_days, "applications": drafts},
        )
    reports = list(
        session.scalars(
            select(DataLoad.id)
            .where(
                DataLoad.finished_at < now - timedelta(days=load_report_days),
                or_(  # json_array_length: SQLite's JSON1 and PostgreSQL alike
                    func.json_array_length(DataLoad.problems) > 0,
                    func.json_array_length(DataLoad.warnings) > 0,
                ),
            )
            .order_by(DataLoad.id)
            .limit(BATCH)
        )
    )
    if reports:
        session.execute(
            update(DataLoad).where(DataLoad.id.in_(reports)).values(problems=[], warnings=[])
        )
        record(
            session,
            "data.load_reports_expired",
            details={"days": load_report_days, "loads": reports},
        )
    # A sweeper that stopped (a process restarted) is shown for a day, then forgotten.
    session.execute(delete(SweeperBeat).where(SweeperBeat.beat_at < now - timedelta(days=7)))
    return Expired(len(drafts), len(reports), warned)


def _warn_drafts(session: Session, draft_days: int, now: datetime) -> int:
    """Tell the applicants of drafts that expire within `WARN_AHEAD` days, once per save."""
    soon = now - timedelta(days=max(draft_days - WARN_AHEAD, 0))
    drafts = session.scalars(
        select(Application)
        .where(
            Application.status == "draft",
            Application.saved_at < soon,
            Application.saved_at >= now - timedelta(days=draft_days),  # not gone this hour
            or_(
                Application.expiry_warned_at.is_(None),
                Application.expiry_warned_at < Application.saved_at,
            ),
        )
        .order_by(Application.id)
        .limit(BATCH)
    ).all()
    for draft in drafts:
        goes = draft.saved_at + timedelta(days=draft_days)
        what = draft.item.name if draft.item else draft.chain.name if draft.chain else "申请"
        messages.send(
            session,
            draft.applicant_person_id,
            title="草稿即将删除",
            body=f"您的“{what}”草稿已较长时间未修改，将于 {beijing_today(goes):%Y年%m月%d日} "
            "删除；如需继续办理，请在此之前修改或提交。",
            link=f"/services/applications/{draft.id}",
        )
        draft.expiry_warned_at = now
    session.flush()
    return len(drafts)


@dataclass(frozen=True)
class Archived:
    path: Path | None
    entries: int


def archive_audit(
    session: Session, data_dir: Path, *, days: int, now: datetime | None = None
) -> Archived:
    """Write the audit entries older than `days` that no earlier archive holds into one new
    JSON Lines file (entries in chain and sequence order, with their hashes), and record its
    SM3 digest as an audit entry. The entries stay in the store."""
    now = now or datetime.now(UTC)
    done = _archived_up_to(session)
    cutoff = now - timedelta(days=days)
    folder = data_dir / ARCHIVE_FOLDER
    folder.mkdir(parents=True, exist_ok=True)
    name = f"audit-{now:%Y%m%dT%H%M%S}.jsonl"
    work = folder / f".{name}.partial"
    count, ranges = 0, {}
    with work.open("w", encoding="utf-8") as out:
        for chain in sorted({*session.scalars(select(AuditEvent.chain).distinct())}):
            entries = session.scalars(
                select(AuditEvent)
                .where(
                    AuditEvent.chain == chain,
                    AuditEvent.seq > done.get(chain, 0),
                    AuditEvent.occurred_at < cutoff,
                )
                .order_by(AuditEvent.seq)
                .execution_options(yield_per=5_000)
            )
            first = last = None
            for event in entries:
                out.write(json.dumps(_line(event), ensure_ascii=False) + "\n")
                first, last, count = first or event.seq, event.seq, count + 1
            if last is not None:
                ranges[str(chain)] = [first, last]
    if not count:
        work.unlink()
        return Archived(None, 0)
    target = folder / name
    os.replace(work, target)
    record(
        session,
        "system.audit_archived",
        subject=str(target),
        details={"entries": count, "ranges": ranges, "sm3": sm3(target.read_bytes()).hex()},
    )
    return Archived(target, count)


def _archived_up_to(session: Session) -> dict[int, int]:
    """The last sequence number each chain's earlier archives hold."""
    done: dict[int, int] = {}
    for details in session.scalars(
        select(AuditEvent.details).where(AuditEvent.action == "system.audit_archived")
    ):
        for chain, (_first, last) in details.get("ranges", {}).items():
            done[int(chain)] = max(done.get(int(chain), 0), int(last))
    return done


def _line(event: AuditEvent) -> dict[str, object]:
    """An archived entry: what its hash covers, and the hashes that chain it (so the file can
    be checked on its own with `qilu.audit.service.entry_hash`)."""
    return {
        **hashed_fields(event),
        "previous_hash": event.previous_hash.hex(),
        "hash": event.hash.hex(),
    }
