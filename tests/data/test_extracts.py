"""Bulk extracts: a snapshot or the records changed after a feed cursor, as the grant shows them,
made by the sweeper into one gzip file with its SHA-256, downloaded whole or resumed by range;
one audit entry names everyone in it; the grant is checked again when it is made and fetched."""

from __future__ import annotations

import csv
import gzip
import hashlib
import io
import json
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from qilu.audit.models import AuditEvent
from qilu.data import evidence, extracts, reading, sharing
from qilu.data.catalog import install_standard_catalog
from qilu.data.models import DataExtract, ShareGrant
from qilu.db import make_engine, upgrade
from qilu.errors import QiluError
from qilu.identity.oidc_provider import ServiceCaller
from qilu.identity.roles import OPERATOR
from qilu.identity.service import audit_subject
from qilu.pii import Vault, load_vault
from qilu.settings import Settings

from ..conftest import write_departments
from ..factories import make_service_client, service_token
from .test_feed import LI, WANG, ZHAO, _token, consumer, load, person
from .test_feed import loaded as loaded
from .test_feed import sessions as sessions


def rows_of(path: Path) -> list[dict[str, str]]:
    with gzip.open(path, "rt", encoding="utf-8", newline="") as text:
        return list(csv.DictReader(text))


def made(
    session: Session, sessions: sessionmaker[Session], vault: Vault, data_dir: Path
) -> DataExtract:
    """Run the sweeper's part and give back the (only) extract as it then stands."""
    session.flush()
    extracts.make_due(sessions, vault, data_dir)
    found = session.scalars(select(DataExtract).order_by(DataExtract.id.desc())).first()
    assert found is not None
    session.refresh(found)
    return found


def test_a_snapshot_holds_every_record_as_the_grant_shows_it_with_its_checksum(
    session: Session,
    vault: Vault,
    loaded: None,
    sessions: sessionmaker[Session],
    tmp_path: Path,
) -> None:
    me = consumer(session)
    asked = extracts.request_extract(session, vault, me, "JC-RK-001", format="csv")
    assert (asked.status, asked.to_seq, asked.since_seq) == ("pending", 5, None)
    ready = made(session, sessions, vault, tmp_path)
    assert (ready.status, ready.records, ready.withheld) == ("ready", 3, 0)
    path = extracts.folder(tmp_path) / f"{ready.id}.csv.gz"
    assert hashlib.sha256(path.read_bytes()).hexdigest() == ready.sha256
    assert path.stat().st_size == ready.size
    rows = rows_of(path)
    assert list(rows[0]) == ["id_number", "name", "household_division"]  # granted fields only
    assert [r["name"] for r in rows] == ["王芳", "李刚", "赵磊"]  # each record as it is now
    assert rows[0]["id_number"] == "110105********002X"  # not granted in clear: masked
    (entry,) = session.scalars(select(AuditEvent).where(AuditEvent.action == "data.read")).all()
    assert entry.details["extract"] == ready.id and entry.details["records"] == 3
    for number in (WANG, LI, ZHAO):
        uses = reading.uses_of(session, audit_subject(vault, number))
        assert entry.id in [u.id for u in uses]
    assert not list(extracts.folder(tmp_path).glob("*.part"))  # nothing half-written


def test_an_incremental_extract_holds_only_what_changed_after_the_cursor_within_the_rows(
    session: Session,
    vault: Vault,
    loaded: None,
    sessions: sessionmaker[Session],
    tmp_path: Path,
) -> None:
    me = consumer(session)
    extracts.request_extract(session, vault, me, "JC-RK-001", format="jsonl", since=3)
    ready = made(session, sessions, vault, tmp_path)
    path = extracts.folder(tmp_path) / f"{ready.id}.jsonl.gz"
    lines = [json.loads(line) for line in gzip.decompress(path.read_bytes()).splitlines()]
    assert [(line["data"]["name"], line["version"]) for line in lines] == [("李刚", 3)]
    assert lines[0]["masked"] == ["id_number"]

    session.query(ShareGrant).delete()  # a consumer limited to 370102's rows instead
    limited = consumer(session, rows={"household_division": "370102"})
    extracts.request_extract(session, vault, limited, "JC-RK-001", format="csv")
    ready = made(session, sessions, vault, tmp_path)
    rows = rows_of(extracts.folder(tmp_path) / f"{ready.id}.csv.gz")
    assert [r["name"] for r in rows] == ["王芳"]  # 赵磊 never in the rows, 李刚 moved out


def test_an_extract_needs_a_listing_grant_a_known_format_and_a_cursor_within_the_feed(
    session: Session, vault: Vault, loaded: None
) -> None:
    me = consumer(session, listing=False)
    with pytest.raises(reading.SharingRefused) as refused:
        extracts.request_extract(session, vault, me, "JC-RK-001", format="csv")
    assert refused.value.code == "sharing.listing_not_granted"
    session.query(ShareGrant).delete()
    me = consumer(session)
    for format, since, code in (("xml", None, "extract.format"), ("csv", 6, "extract.since")):
        with pytest.raises(QiluError) as refused:
            extracts.request_extract(session, vault, me, "JC-RK-001", format=format, since=since)
        assert refused.value.code == code


def test_a_grant_revoked_before_the_extract_is_made_fails_it_with_the_reason(
    session: Session,
    vault: Vault,
    loaded: None,
    sessions: sessionmaker[Session],
    tmp_path: Path,
) -> None:
    me = consumer(session)
    extracts.request_extract(session, vault, me, "JC-RK-001", format="csv")
    grant = session.scalars(select(ShareGrant)).one()
    sharing.revoke(session, grant.id, reason="用途已完成", actor=OPERATOR)
    failed = made(session, sessions, vault, tmp_path)
    assert failed.status == "failed" and "撤销" in failed.error
    assert not list(extracts.folder(tmp_path).glob("*.gz"))


def test_the_api_asks_reports_and_serves_the_file_whole_or_from_a_byte_on(
    session: Session,
    vault: Vault,
    loaded: None,
    sessions: sessionmaker[Session],
    settings: Settings,
    client: Any,
) -> None:
    consumer(session)
    load(session, vault, person(WANG, name="王芳芳"))  # seq 6
    token = {"Authorization": _token(client, session)}
    asked = client.post("/api/v1/data/JC-RK-001/extracts", json={"format": "csv"}, headers=token)
    assert asked.status_code == 202, asked.text
    extract_id = asked.json()["id"]
    early = client.get(f"/api/v1/data/extracts/{extract_id}/file", headers=token)
    assert early.status_code == 400 and early.json()["error"]["code"] == "extract.pending"
    made(session, sessions, vault, settings.data_dir)
    shown = client.get(f"/api/v1/data/extracts/{extract_id}", headers=token).json()
    assert shown["status"] == "ready" and shown["records"] == 3 and shown["to_seq"] == 6

    whole = client.get(f"/api/v1/data/extracts/{extract_id}/file", headers=token)
    assert whole.status_code == 200 and whole.headers["content-type"] == "application/gzip"
    assert hashlib.sha256(whole.content).hexdigest() == shown["sha256"]
    assert whole.headers["repr-digest"].startswith("sha-256=:")
    broken_at = len(whole.content) // 2  # the transfer broke here: resume from that byte
    rest = client.get(
        f"/api/v1/data/extracts/{extract_id}/file",
        headers={**token, "Range": f"bytes={broken_at}-"},
    )
    assert rest.status_code == 206
    assert whole.content[:broken_at] + rest.content == whole.content
    for answer, status in ((whole, 200), (rest, 206)):  # each a shared call, signed and kept
        kept = evidence.check(session, answer.headers["qilu-call-id"], whole.content)
        assert kept.holds and kept.evidence.status == status
        assert kept.evidence.answer_bytes == len(whole.content)
    names = [
        r["name"] for r in csv.DictReader(io.StringIO(gzip.decompress(whole.content).decode()))
    ]
    assert names == ["王芳芳", "李刚", "赵磊"]
    downloads = session.scalars(
        select(AuditEvent).where(AuditEvent.action == "data.extract_downloaded")
    ).all()
    assert [d.details["range"] for d in downloads] == ["", f"bytes={broken_at}-"]

    stranger = service_token(client, session, "370000-health")
    session.commit()  # the refused read below rolls back to here
    hidden = client.get(f"/api/v1/data/extracts/{extract_id}", headers=stranger)
    assert hidden.status_code == 404 and hidden.json()["error"]["code"] == "extract.not_found"
    bad = client.post("/api/v1/data/JC-RK-001/extracts", json={"format": "xml"}, headers=token)
    assert bad.status_code == 422 and bad.json()["error"]["field"] == "format"


def test_files_past_their_keeping_are_removed_and_their_extract_marked_expired(
    session: Session,
    vault: Vault,
    loaded: None,
    sessions: sessionmaker[Session],
    tmp_path: Path,
) -> None:
    me = consumer(session)
    extracts.request_extract(session, vault, me, "JC-RK-001", format="csv")
    ready = made(session, sessions, vault, tmp_path)
    path = extracts.folder(tmp_path) / f"{ready.id}.csv.gz"
    assert path.exists()
    assert ready.expires_at is not None
    assert extracts.expire(session, tmp_path, now=ready.expires_at) == 0
    later = ready.expires_at + extracts.KEEP
    assert extracts.expire(session, tmp_path, now=later) == 1
    assert ready.status == "expired" and not path.exists()
    caller = ServiceCaller.of(make_service_client(session, "370102-approval").client)
    with pytest.raises(QiluError) as refused:
        extracts.download(session, vault, caller, tmp_path, ready.id)
    assert refused.value.code == "extract.expired"


def test_a_large_extract_read_by_worker_processes_holds_what_one_process_writes(
    empty_store: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Worker processes read their own ranges of ids on their own connections (so the rows
    must be committed, in a store of this test's own): the file says the same, in order."""
    engine = make_engine(empty_store)
    upgrade(engine)
    vault = load_vault(empty_store)
    store = sessionmaker(engine)
    with store.begin() as session:
        write_departments(session.connection())
        install_standard_catalog(session)
        load(session, vault, person(WANG), person(LI), person(ZHAO))
        load(session, vault, person(LI, name="李刚"))
        me = consumer(session)
        asked = [
            extracts.request_extract(session, vault, me, "JC-RK-001", format="jsonl").id
            for _ in range(2)
        ]
    monkeypatch.setattr(extracts, "PAGE", 2)  # two ranges: (0, second id] and the rest
    monkeypatch.setattr(extracts, "PARALLEL_FROM", 1)
    data_dir = empty_store.data_dir
    assert extracts.make(store, vault, data_dir, asked[0], workers=1)
    assert extracts.make(store, vault, data_dir, asked[1], workers=2)
    with store() as session:
        one, two = (session.get_one(DataExtract, n) for n in asked)
        texts = [gzip.decompress((extracts.folder(data_dir) / f"{n}.jsonl.gz").read_bytes())
                 for n in asked]  # fmt: skip
        assert (one.records, two.records) == (3, 3)
        assert texts[0] == texts[1]
        names = [json.loads(line)["data"]["name"] for line in texts[1].decode().splitlines()]
        assert names == ["王芳", "李刚", "赵磊"]
        logged = session.scalars(
            select(AuditEvent).where(AuditEvent.action == "data.read").order_by(AuditEvent.id)
        ).all()
        assert [e.details["extract"] for e in logged] == asked
        assert logged[0].details["subjects"] == logged[1].details["subjects"]
    engine.dispose()
