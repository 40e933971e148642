"""What outlives its keeping (issue 14): stale drafts and old load reports expire, audited;
audit entries are archived off-line and never deleted."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import select, update

from qilu.audit.models import AuditEvent
from qilu.audit.service import record, verify
from qilu.data.loading import load_rows
from qilu.data.models import DataLoad
from qilu.digests import sm3
from qilu.identity.roles import OPERATOR
from qilu.messages import service as messages
from qilu.operations import retention
from qilu.services import applications
from qilu.services.models import Application, ServiceItem

from .conftest import Province


def item_code(province: Province, name: str) -> str:
    return province.session.scalars(
        select(ServiceItem.code).where(ServiceItem.name == name, ServiceItem.is_current)
    ).one()


def test_stale_drafts_and_old_load_reports_expire_and_say_so(province: Province) -> None:
    session, vault = province.session, province.vault
    now = datetime.now(UTC)
    code = item_code(province, "高龄津贴申领")
    stale = applications.start(session, vault, applicant=province.resident, item_code=code)
    fresh = applications.start(
        session, vault, applicant=province.resident, item_code=item_code(province, "临时救助申请")
    )
    session.execute(
        update(Application)
        .where(Application.id == stale.application.id)
        .values(saved_at=now - timedelta(days=91))
    )
    bad = {"id_number": "370102199003073510", "name": "王五", "sex": "9"}
    load = load_rows(session, vault, "JC-RK-001", enumerate([bad], 1), source="t", actor=OPERATOR)
    assert load.rejected == 1 and load.problems
    session.execute(
        update(DataLoad).where(DataLoad.id == load.id).values(finished_at=now - timedelta(181))
    )
    soon = applications.start(
        session,
        vault,
        applicant=province.resident,
        item_code=item_code(province, "内地居民结婚登记"),
    )
    session.execute(
        update(Application)
        .where(Application.id == soon.application.id)
        .values(saved_at=now - timedelta(days=85))
    )
    expired = retention.expire(session, draft_days=90, load_report_days=180, now=now)
    assert expired == retention.Expired(drafts=1, load_reports=1, warned=1)
    [told] = [m for m in messages.inbox(session, province.resident.id) if m.title == "草稿即将删除"]
    assert "结婚登记" in told.body and told.link == f"/services/applications/{soon.application.id}"
    numbers = set(session.scalars(select(Application.number)))
    assert stale.application.number not in numbers and fresh.application.number in numbers
    session.refresh(load)
    assert load.problems == [] and load.rejected == 1  # the counts stay
    actions = {
        e.action: e.details
        for e in session.scalars(select(AuditEvent).where(AuditEvent.action.like("%expired")))
    }
    assert actions["services.drafts_expired"]["applications"] == [stale.application.number]
    assert actions["data.load_reports_expired"]["loads"] == [load.id]
    again = retention.expire(session, draft_days=90, load_report_days=180, now=now)
    assert again == retention.Expired(drafts=0, load_reports=0, warned=0)  # told once
    session.execute(  # told long ago, saved since, then untouched again: told again
        update(Application)
        .where(Application.id == soon.application.id)
        .values(expiry_warned_at=now - timedelta(days=100), saved_at=now - timedelta(days=84))
    )
    later = retention.expire(session, draft_days=90, load_report_days=180, now=now)
    assert later.warned == 1


def test_old_audit_entries_are_archived_once_and_stay(province: Province, tmp_path: Path) -> None:
    session = province.session
    old = datetime.now(UTC) - timedelta(days=200)
    for n in range(3):
        record(session, "test.old_entry", subject=f"old:{n}", at=old + timedelta(minutes=n))
    record(session, "test.new_entry", subject="new")
    archived = retention.archive_audit(session, tmp_path, days=183)
    assert archived.path is not None and archived.entries >= 3
    lines = [json.loads(line) for line in archived.path.read_text("utf-8").splitlines()]
    subjects = {line["subject"] for line in lines}
    assert {"old:0", "old:1", "old:2"} <= subjects and "new" not in subjects
    for line in lines:  # the file checks on its own: each entry hashes to its recorded hash
        fields = {k: v for k, v in line.items() if k not in ("previous_hash", "hash")}
        payload = json.dumps(fields, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
        assert sm3(bytes.fromhex(line["previous_hash"]), payload.encode()).hex() == line["hash"]
    entry = session.scalars(
        select(AuditEvent).where(AuditEvent.action == "system.audit_archived")
    ).one()
    assert entry.details["sm3"] == sm3(archived.path.read_bytes()).hex()
    assert entry.details["entries"] == len(lines)
    assert retention.archive_audit(session, tmp_path, days=183).path is None  # nothing new
    kept = session.scalars(select(AuditEvent.subject).where(AuditEvent.action == "test.old_entry"))
    assert sorted(kept) == ["old:0", "old:1", "old:2"]  # archived, never deleted
    assert verify(session).broken is None
