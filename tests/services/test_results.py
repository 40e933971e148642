"""What an application leaves behind: e-licences anyone can verify, ratings that lead to
action, benefits offered unasked, and an archive package that catches tampering."""

from __future__ import annotations

import os
import stat
from datetime import timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Connection, select

from qilu.data.loading import find_record
from qilu.errors import QiluError, Refused
from qilu.filestore import LocalFileStore
from qilu.services import applications, archive, cases, licences, offers, ratings
from qilu.services.models import Application, Archive, Licence, Offer, Rectification
from qilu.workdays import add_working_days, beijing_today

from ..factories import make_person
from .conftest import Province
from .test_applications import PNG, newborn


def finished_newborn(province: Province, store: LocalFileStore) -> Application:
    application = newborn(province, store)
    applications.submit(
        province.session, province.vault, application, actor_person_id=province.resident.id
    )
    card = next(c for c in application.cases if c.item.name == "社会保障卡申领")
    clerk = province.official("370102-human_resources", "window_clerk", "社保窗口")
    approver = province.official("370102-human_resources", "approver", "社保审批")
    for action, who in (
        ("accept", clerk),
        ("review", approver),
        ("grant", approver),
        ("finish", approver),
    ):
        cases.act(
            province.session,
            province.vault,
            card.id,
            action,
            actor_person_id=who.id,
            expected_version=card.version,
        )
    assert application.status == "done"
    return application


def certificate(province: Province) -> Licence:
    return province.session.scalars(
        select(Licence).where(Licence.licence_type == "出生医学证明")
    ).one()


def test_an_issued_licence_is_in_the_library_and_verifies(
    province: Province, store: LocalFileStore
) -> None:
    finished_newborn(province, store)
    licence = certificate(province)
    entry = find_record(province.session, province.vault, "JC-ZZ-001", [licence.number])
    assert entry is not None
    # the library names the child (by the pre-assigned number), not the mother who applied
    assert entry["holder_id"] == licence.content["child_id_number"] and entry["status"] == "有效"
    assert entry["holder_id"] != province.resident_id_number
    today = beijing_today()
    verdict = licences.verify_number(
        province.session, licence.number, licence.signature.hex(), today
    )
    assert verdict.status == "valid"
    document = licences.document_of(licence, licence.issuer)
    assert (
        licences.verify_document(province.session, document, licence.signature.hex(), today).status
        == "valid"
    )
    svg = licences.qr_svg(licence, "http://127.0.0.1:8000")
    assert svg.startswith("<svg")


def test_a_changed_document_or_a_wrong_seal_is_forged(
    province: Province, store: LocalFileStore
) -> None:
    finished_newborn(province, store)
    licence = certificate(province)
    today = beijing_today()
    document = licences.document_of(licence, licence.issuer)
    document["holder_name"] = "李四"
    verdict = licences.verify_document(province.session, document, licence.signature.hex(), today)
    assert verdict.status == "forged"
    assert (
        licences.verify_number(province.session, licence.number, "00" * 64, today).status
        == "forged"
    )
    assert licences.verify_number(province.session, "370102000", "00", today).status == "forged"


def test_revoked_and_expired_licences_say_so(province: Province, store: LocalFileStore) -> None:
    finished_newborn(province, store)
    card = province.session.scalars(
        select(Licence).where(Licence.licence_type == "社会保障卡")
    ).one()
    assert card.valid_until is not None
    later = card.valid_until + timedelta(days=1)
    seal = card.signature.hex()
    assert licences.verify_number(province.session, card.number, seal, later).status == "expired"
    licences.revoke_licence(province.session, card, reason="卡片挂失", actor_person_id=None)
    verdict = licences.verify_number(province.session, card.number, seal, beijing_today())
    assert verdict.status == "revoked" and "卡片挂失" in verdict.reason


def test_a_bad_rating_opens_a_task_per_department_due_in_15_working_days(
    province: Province, store: LocalFileStore
) -> None:
    application = finished_newborn(province, store)
    scores = {"overall": 2, "efficiency": 2, "guidance": 3, "convenience": 2, "usability": 4}
    with pytest.raises(QiluError) as refused:
        ratings.rate(province.session, application, person_id=province.resident.id, scores=scores)
    assert refused.value.field == "comment"
    rating = ratings.rate(
        province.session,
        application,
        person_id=province.resident.id,
        scores=scores,
        comment="社保卡等了很久",
    )
    tasks = province.session.scalars(select(Rectification).order_by(Rectification.id)).all()
    assert len(tasks) == len({c.department_id for c in application.cases}) >= 3
    assert all(t.due_on == add_working_days(beijing_today(), 15) for t in tasks)
    with pytest.raises(QiluError) as refused:
        ratings.rate(
            province.session,
            application,
            person_id=province.resident.id,
            scores=scores,
            comment="again",
        )
    assert refused.value.code == "rating.twice"
    department = province.department("370102-human_resources")
    task = next(t for t in tasks if t.department_id == department.id)
    outsider = province.official("370102-civil_affairs", "approver", "民政")
    with pytest.raises(Refused):
        ratings.fix(
            province.session,
            task.id,
            actor_person_id=outsider.id,
            expected_version=task.version,
            fix_note="x",
            callback_note="y",
        )
    staff = province.official("370102-human_resources", "approver", "社保科长")
    with pytest.raises(QiluError) as refused:
        ratings.fix(
            province.session,
            task.id,
            actor_person_id=staff.id,
            expected_version=task.version,
            fix_note="优化制卡流程",
            callback_note="",
        )
    assert refused.value.field == "callback_note"
    ratings.fix(
        province.session,
        task.id,
        actor_person_id=staff.id,
        expected_version=task.version,
        fix_note="优化制卡流程",
        callback_note="已电话回访，申请人表示理解",
    )
    assert task.status == "fixed"
    # the rater is told, and sees what each department did
    from qilu.messages import service as messages

    told = messages.inbox(province.session, province.resident.id)[0]
    assert told.title == "差评整改结果" and "优化制卡流程" in told.body
    seen = {r.department_id: r for r in ratings.rectifications_of(province.session, rating)}
    assert seen[department.id].callback_note == "已电话回访，申请人表示理解"
    assert len(seen) == len(tasks)
    by_department = {r.key: r for r in ratings.roll_up(province.session)}
    assert by_department["370102-human_resources"].bad == 1
    assert rating.overall == 2


def test_an_upheld_appeal_takes_the_rating_out_of_the_statistics(
    province: Province, store: LocalFileStore
) -> None:
    application = finished_newborn(province, store)
    ratings.rate(
        province.session,
        application,
        person_id=province.resident.id,
        scores={k: 1 for k in ratings.INDICATORS},
        comment="不满意",
    )
    department = province.department("370102-public_security")
    task = province.session.scalars(
        select(Rectification).where(Rectification.department_id == department.id)
    ).one()
    staff = province.official("370102-public_security", "approver", "户籍民警")
    ratings.appeal(
        province.session,
        task.id,
        actor_person_id=staff.id,
        expected_version=task.version,
        reason="秒批当场办结，评价与事实不符",
    )
    admin = province.official("370000-bigdata", "admin", "平台管理员")
    with pytest.raises(Refused):
        ratings.decide_appeal(
            province.session,
            task.id,
            actor_person_id=staff.id,
            expected_version=task.version,
            upheld=True,
            note="x",
        )
    ratings.decide_appeal(
        province.session,
        task.id,
        actor_person_id=admin.id,
        expected_version=task.version,
        upheld=True,
        note="申诉成立",
    )
    assert task.status == "appeal_upheld" and task.rating.excluded
    assert ratings.roll_up(province.session) == []


def test_a_rating_before_the_end_is_refused(province: Province, store: LocalFileStore) -> None:
    application = newborn(province, store)
    with pytest.raises(QiluError) as refused:
        ratings.rate(
            province.session,
            application,
            person_id=province.resident.id,
            scores={k: 5 for k in ratings.INDICATORS},
        )
    assert refused.value.code == "rating.not_finished"


def test_the_scan_offers_a_benefit_and_one_click_grants_it(province: Province) -> None:
    elder = make_person(
        province.session, province.vault, name="孙大爷", phone=None, id_number="370102194001010017"
    )
    province.library(
        "JC-RK-001",
        [
            {
                "id_number": "370102194001010017",
                "name": "孙大爷",
                "sex": "1",
                "birth_date": "1940-01-01",
                "household_division": "370102",
                "address": "山东省济南市历下区文化东路5号",
                "phone": "13700001234",
            }
        ],
    )
    young = province.resident
    made = offers.scan(province.session, province.vault)
    offered = province.session.scalars(select(Offer).where(Offer.person_id == elder.id)).all()
    names = {item.name for _, item in offers.offers_of(province.session, elder.id)}
    assert names == {"高龄津贴申领", "老年人优待证办理"} and made >= 2
    assert offers.offers_of(province.session, young.id) == []
    assert offers.scan(province.session, province.vault) == 0  # nobody is offered twice
    allowance = next(o for o in offered if o.item_code.endswith("09009000"))  # 民政 09, item 009
    application = offers.accept(province.session, province.vault, allowance.id, elder)
    assert application.status == "done"
    assert application.cases[0].instant
    with pytest.raises(QiluError):
        offers.accept(province.session, province.vault, allowance.id, elder)


def test_a_finished_application_is_archived_once_and_tampering_is_caught(
    province: Province, store: LocalFileStore, tmp_path: Path
) -> None:
    application = finished_newborn(province, store)
    package = archive.archive_application(
        province.session, province.vault, store, tmp_path, application, fonds="Q001"
    )
    assert (
        archive.archive_application(
            province.session, province.vault, store, tmp_path, application, fonds="Q001"
        ).id
        == package.id
    )
    root = tmp_path / package.path
    assert (root / "bagit.txt").exists() and (root / "manifest-sm3.txt").exists()
    names = {p.name for p in (root / "data").rglob("*") if p.is_file()}
    assert {"metadata.json", "form.json", "decisions.json", "audit.json", "licences.json"} <= names
    assert any(n.endswith("photo.png") for n in names)
    assert archive.verify(tmp_path, package) == []
    form = root / "data" / "form.json"
    assert not os.access(form, os.W_OK) or os.geteuid() == 0  # written read-only
    form.chmod(form.stat().st_mode | stat.S_IWUSR)
    form.write_text(form.read_text("utf-8").replace("王小宝", "王大宝"), "utf-8")
    problems = archive.verify(tmp_path, package)
    assert any("form.json" in p for p in problems)


def test_an_unfinished_application_is_not_archived(
    province: Province, store: LocalFileStore, tmp_path: Path
) -> None:
    application = newborn(province, store)
    with pytest.raises(QiluError) as refused:
        archive.archive_application(
            province.session, province.vault, store, tmp_path, application, fonds="Q001"
        )
    assert refused.value.code == "archive.not_finished"


def test_a_finished_application_is_archived_after_commit_from_the_outbox(
    province: Province, store: LocalFileStore, tmp_path: Path, connection: Connection
) -> None:
    """Found: archiving ran inside the request after 办结, so its failure rolled the decision
    back every time, and a package moved into place before a failed commit blocked every retry.
    Now the decision commits with an outbox row; the package is written after, and a package
    left by a failed try is set aside and written again."""
    from sqlalchemy.orm import sessionmaker

    from qilu.outbox.service import sweep
    from qilu.settings import Settings
    from qilu.workers import handlers

    application = finished_newborn(province, store)
    archive.archive_when_finished(province.session, application)
    province.session.commit()
    assert archive.pending(province.session) == [application]  # not yet: after commit
    final = tmp_path / "archive" / application.number[2:10] / application.number
    final.mkdir(parents=True)
    (final / "bagit.txt").write_text("a half-written package of a failed try")
    settings = Settings(data_dir=tmp_path)
    sessions = sessionmaker(bind=connection, join_transaction_mode="create_savepoint")
    table = handlers(settings, province.vault) | {
        archive.ARCHIVE: lambda session, payload: archive.run_archive(
            session, payload, vault=province.vault, data_dir=tmp_path, fonds="Q001", store=store
        )
    }
    assert sweep(sessions, table) >= 1  # the package (and the documents' PDFs, if a font is here)
    assert archive.pending(province.session) == []
    [package] = province.session.scalars(select(Archive)).all()
    assert archive.verify(tmp_path, package) == []
    assert [p.name.startswith(".orphan-") for p in final.parent.iterdir()].count(True) == 1


def test_a_crafted_upload_name_is_kept_without_its_folders(
    province: Province, store: LocalFileStore
) -> None:
    application = newborn(province, store)
    for earlier in applications.materials_of(province.session, application):
        province.session.delete(earlier)  # the photo newborn() uploaded: room for one more
    province.session.flush()
    crafted = applications.add_upload(
        province.session,
        store,
        application,
        "照片",
        file_name="../../../etc/\x00passwd.png",
        content_type="image/png",
        content=PNG,
    )
    assert crafted.file_name == "passwd.png"


def test_an_upload_must_be_what_its_extension_says(
    province: Province, store: LocalFileStore
) -> None:
    application = newborn(province, store)
    with pytest.raises(QiluError) as refused:
        applications.add_upload(
            province.session,
            store,
            application,
            "照片",
            file_name="photo.png",
            content_type="image/png",
            content=b"MZ\x90\x00 an executable renamed",
        )
    assert refused.value.code == "services.file_content"


def test_a_rating_refused_for_its_comment_keeps_every_choice(
    client: TestClient, province: Province, store: LocalFileStore
) -> None:
    """Issue 13: 好差评 lost all 25 choices when the comment was missing."""
    from qilu.identity import sessions
    from qilu.identity.access import SESSION_COOKIE

    from ..factories import make_account
    from ..identity.test_pages import csrf

    application = finished_newborn(province, store)
    cookie, _ = sessions.start_session(
        province.session,
        make_account(province.session, province.vault, province.resident),
        assurance=3,
        profile="standard",
        client_address="t",
        user_agent="t",
    )
    province.session.commit()
    client.cookies.set(SESSION_COOKIE, cookie)
    scores = {
        "overall": "2",
        "efficiency": "1",
        "guidance": "3",
        "convenience": "2",
        "usability": "4",
    }
    page = client.post(
        f"/services/applications/{application.id}/rate",
        data={**scores, "comment": "", "csrf_token": csrf(client)},
    )
    assert page.status_code == 400 and "差评请写明不满意的原因" in page.text
    for key, score in scores.items():
        assert f'name="{key}" value="{score}" checked' in page.text


def test_one_tap_is_a_whole_rating(province: Province, store: LocalFileStore) -> None:
    """Issue 13: 好差评 in one tap — the overall rating alone is enough; a given indicator is
    kept, a missing one is not made up."""
    application = finished_newborn(province, store)
    with pytest.raises(QiluError) as refused:
        ratings.rate(
            province.session,
            application,
            person_id=province.resident.id,
            scores={"efficiency": 5},
        )
    assert refused.value.field == "scores.overall"
    rating = ratings.rate(
        province.session,
        application,
        person_id=province.resident.id,
        scores={"overall": 5, "guidance": 4},
    )
    assert rating.overall == 5 and rating.scores == {"overall": 5, "guidance": 4}


def test_the_rater_sees_the_rectification_on_the_application(
    client: TestClient, province: Province, store: LocalFileStore
) -> None:
    from .test_showing import signed_in_as

    application = finished_newborn(province, store)
    rating = ratings.rate(
        province.session,
        application,
        person_id=province.resident.id,
        scores={"overall": 1},
        comment="等了很久",
    )
    department = province.department("370102-human_resources")
    task = next(
        t
        for t in ratings.rectifications_of(province.session, rating)
        if t.department_id == department.id
    )
    staff = province.official("370102-human_resources", "approver", "社保科长")
    ratings.fix(
        province.session,
        task.id,
        actor_person_id=staff.id,
        expected_version=task.version,
        fix_note="增加制卡窗口",
        callback_note="已回访",
    )
    signed_in_as(client, province, province.resident)
    page = client.get(f"/services/applications/{application.id}")
    assert 'data-rectification="fixed"' in page.text and "增加制卡窗口" in page.text
    assert 'data-rectification="open"' in page.text  # the other departments' are still open
