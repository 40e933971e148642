"""`qilu keys rotate-pii` with a new index key (issue 14): every blind index is rebuilt under
the new HMAC-SM3 key in batches; meanwhile every look-up still finds the person, their record,
their licences (held, kept, their enterprise's) and their consents; a load does not make a
second copy; and nothing a relying party or a data-use record keeps changes."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from qilu.data import consent, reading
from qilu.data.loading import find_record
from qilu.data.models import DataRecord
from qilu.filestore import LocalFileStore
from qilu.identity.models import LegalEntity, Person
from qilu.identity.oidc_provider import pairwise_sub
from qilu.identity.service import find_person, person_subject
from qilu.operations import index_rotation
from qilu.pii import KEY_FILE, Vault, load_vault
from qilu.services import licences
from qilu.services.models import Application, Licence
from qilu.settings import Settings
from qilu.workdays import beijing_today

from ..operations.test_pii_rotation import reads_everything
from ..test_cli import run
from .conftest import Province
from .test_cli import archived_store
from .test_results import certificate, finished_newborn


def keys_of(settings: Settings) -> tuple[bytes, bytes]:
    pii_key, index_key = settings.pii_key, settings.index_key
    assert pii_key is not None and index_key is not None
    return bytes.fromhex(pii_key.get_secret_value()), bytes.fromhex(index_key.get_secret_value())


def enterprise_licence(
    province: Province, entity: LegalEntity, application: Application
) -> Licence:
    """A licence an enterprise holds (issued as a case's would be, on a case that issued none)."""
    department = province.department("370102-approval")
    issued = set(province.session.scalars(select(Licence.case_id)))
    case_id = next(c.id for c in application.cases if c.id not in issued)
    return licences.issue_licence(
        province.session,
        province.vault,
        licence_type="食品经营许可证",
        years=5,
        holder_kind="enterprise",
        holder_code=entity.uscc,
        holder_code_index=licences.entity_holder_index(province.vault, entity.uscc),
        holder_name=entity.name,
        issuer=department,
        case_id=case_id,
        content={"经营场所": "历下区"},
        today=beijing_today(),
    )


def everything_is_found(province: Province, vault: Vault, entity: LegalEntity) -> None:
    """What a resident, a department system and an enterprise reach, through `vault`."""
    session, number = province.session, province.resident_id_number
    resident = find_person(session, vault, number)
    assert resident.id == province.resident.id
    record = find_record(session, vault, "JC-RK-001", [number])
    assert record is not None and record["name"] == "王丽"
    wallet = licences.licences_of(session, licences.person_wallet(vault, resident))
    assert certificate(province).id in {held.id for held in wallet}  # kept for the child
    held = licences.licences_of(session, licences.entity_wallet(vault, entity.uscc))
    assert [h.licence_type for h in held] == ["食品经营许可证"]
    subject = vault.blind_indexes(number, "id_number")
    health = reading_ids(session)
    assert consent.live_consent(session, subject, *health, datetime.now(UTC)) is not None


def reading_ids(session: Session) -> tuple[int, int]:
    given = session.scalars(select(consent.Consent)).one()
    return given.resource_id, given.consumer_id


def test_indexes_move_to_a_new_key_while_everything_is_still_found(
    province: Province,
    store: LocalFileStore,
    settings: Settings,
) -> None:
    session = province.session
    application = finished_newborn(province, store)
    entity = province.enterprise(province.resident)
    enterprise_licence(province, entity, application)
    consent.give(
        session,
        province.vault,
        province.resident,
        resource_code="ZT-YL-001",
        consumer_code="370102-approval",
        purpose="家庭医生签约服务",
        valid_until=datetime.now(UTC) + timedelta(days=30),
    )
    session.flush()
    uses_before = reading.uses_of(session, person_subject(province.vault, province.resident))
    assert uses_before  # the prefill and consent of the newborn application, at least
    sm4, old_index = keys_of(settings)
    new_index = bytes(b ^ 0x5A for b in old_index)
    rotating = Vault(sm4, new_index, subject_key=old_index, earlier_index=(old_index,))
    everything_is_found(province, rotating, entity)  # nothing rebuilt yet
    # A 人口 load meanwhile changes the resident and adds no second person nor record.
    persons = session.scalar(select(func.count()).select_from(Person))
    records = session.scalar(select(func.count()).select_from(DataRecord))
    province.vault = rotating
    province.library(
        "JC-RK-001",
        [
            {
                "id_number": province.resident_id_number,
                "name": "王丽",
                "sex": "2",
                "birth_date": "1992-05-17",
                "household_division": "370102",
                "address": "山东省济南市历下区经十路1号",
                "phone": "13900001111",
            }
        ],
    )
    assert session.scalar(select(func.count()).select_from(Person)) == persons
    assert session.scalar(select(func.count()).select_from(DataRecord)) == records
    session.refresh(province.resident)
    assert province.resident.address == "山东省济南市历下区经十路1号"

    cut_short = index_rotation.rebuild(session.connection(), rotating, max_batches=1)
    assert cut_short["persons"] >= 1 and cut_short["data_records"] == 0
    session.expire_all()
    everything_is_found(province, rotating, entity)  # half and half
    rest = index_rotation.rebuild(session.connection(), rotating)
    assert rest["service_licences"] >= 2 and rest["data_records"] >= 1  # child's, enterprise's
    assert index_rotation.rebuild(session.connection(), rotating) == dict.fromkeys(
        index_rotation.PASSES, 0
    )  # a second run finds nothing left
    session.expire_all()

    only_new = Vault(sm4, new_index, subject_key=old_index)
    everything_is_found(province, only_new, entity)
    resident = session.get_one(Person, province.resident.id)
    assert resident.id_number_index == only_new.blind_index(
        province.resident_id_number, "id_number"
    )
    assert resident.phone_index == only_new.blind_index("13900001111", "phone")
    stored = session.scalars(select(DataRecord.record_key)).all()
    assert rotating.blind_indexes(province.resident_id_number, "id_number")[1].hex() not in stored
    # What others keep is the same: the data-use record and the relying parties' subs.
    uses_after = reading.uses_of(session, person_subject(only_new, resident))
    assert {u.id for u in uses_before} <= {u.id for u in uses_after}
    assert pairwise_sub(only_new, "社保", resident.id) == pairwise_sub(
        Vault(sm4, old_index), "社保", resident.id
    )


def test_the_embedded_store_changes_its_own_index_key(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "data", log_level="warning", outbox_interval=0)
    archived_store(settings)
    before = json.loads((settings.data_dir / KEY_FILE).read_text())
    sub = pairwise_sub(load_vault(settings), "社保", 1)
    env = {"QILU_DATA_DIR": str(settings.data_dir)}
    done = run("keys", "rotate-pii", "--new-index-key", "--forget-earlier", env=env)
    assert done.returncode == 0, done.stderr
    assert "重建" in done.stdout and "旧密钥已删除" in done.stdout
    after = json.loads((settings.data_dir / KEY_FILE).read_text())
    assert after["index_key"] != before["index_key"]
    assert after["subject_key"] == before["index_key"] and "earlier_index" not in after
    reads_everything(settings)  # found under the new key only
    assert pairwise_sub(load_vault(settings), "社保", 1) == sub
    verified = run("audit", "verify", env=env)
    assert verified.returncode == 0, verified.stdout
