"""Applications (申请): started from a chain's answers or a single item, prefilled from the
applicant's own records, saved as drafts, given materials (uploaded, e-licences, library data,
or a written promise), and submitted once — after which `cases` takes over."""

from __future__ import annotations

import json
import re
import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from sqlalchemy import ColumnElement, and_, func, select, update
from sqlalchemy.orm import Session

from qilu.audit.service import record
from qilu.codes.idcard import parse_id_number
from qilu.data.loading import find_record
from qilu.data.reading import read_for_applicant
from qilu.errors import NotFound, QiluError, Refused
from qilu.filestore import FileStore
from qilu.identity import family
from qilu.identity.enterprises import SCOPES, Identity
from qilu.identity.models import LegalEntity, Person
from qilu.identity.service import audit_subject
from qilu.pii import Vault
from qilu.services import cases, memo, national, trust
from qilu.services.catalog import current_chain, current_item
from qilu.services.chains import Plan, given_values, plan_chain, plan_item
from qilu.services.facts import PLATFORM_DEPARTMENT
from qilu.services.licences import (
    Wallet,
    entity_wallet,
    find_held,
    person_wallet,
    record_use,
)
from qilu.services.models import (
    Application,
    ApplicationMaterial,
    Case,
    Licence,
    LicenceCopy,
    ServiceChain,
)
from qilu.services.specs import FormField, Material, shipped_catalog
from qilu.workdays import beijing_today

PERSON_LIBRARY, ENTITY_LIBRARY = "JC-RK-001", "JC-FR-001"
PHONE = re.compile(r"^1\d{10}$|^0\d{2,3}-?\d{7,8}$")
MAX_FILE_BYTES = 10 * 1024 * 1024
LARGEST_NUMBER = Decimal(10) ** 12
SEX = {"1": "男", "2": "女", "M": "男", "F": "女"}
# Where a prefill source reads in the libraries: person.* in 人口, entity.* in 法人.
PERSON_SOURCES = {
    "name": "name",
    "id_number": "id_number",
    "sex": "sex",
    "birth_date": "birth_date",
    "phone": "phone",
    "address": "address",
    "household_division": "household_division",
}
ENTITY_SOURCES = {
    "name": "name",
    "uscc": "uscc",
    "address": "address",
    "legal_representative": "legal_representative",
    "registered_capital": "registered_capital",
}


@dataclass(frozen=True)
class Started:
    application: Application
    plan: Plan


def plan_of(session: Session, application: Application) -> Plan:
    """The plan an application was made under (its own chain or item version); worked out
    once per transaction."""
    plans = memo.kept(session, "plans")
    key = (
        application.id,
        application.chain_id,
        application.item_id,
        tuple(sorted(application.answers.items())),
    )
    if key not in plans:
        if application.chain is not None:
            plans[key] = plan_chain(session, application.chain, application.answers)
        else:
            assert application.item is not None
            plans[key] = plan_item(application.item)
    return plans[key]  # type: ignore[no-any-return]


def start_as(session: Session, vault: Vault, applicant: Applicant, **what: Any) -> Started:
    """`start` for someone in the portal: an agent needs the "办理业务" scope."""
    if applicant.entity is not None:
        applicant.require("apply")
    return start(session, vault, applicant=applicant.person, entity=applicant.entity, **what)


def start(
    session: Session,
    vault: Vault,
    *,
    applicant: Person,
    entity: LegalEntity | None = None,
    chain_code: str | None = None,
    item_code: str | None = None,
    answers: dict[str, str] | None = None,
    channel: str = "online",
    clerk_person_id: int | None = None,
    receiving_department_id: int | None = None,
    division_code: str | None = None,
    submission_key: str | None = None,
) -> Started:
    """A new draft: the chain's answers checked (an exit option refuses with its explanation),
    the form prefilled from the applicant's records in the libraries."""
    chain: ServiceChain | None = None
    if chain_code is not None:
        chain = current_chain(session, chain_code)
        subject = chain.subject
    elif item_code is not None:
        item = current_item(session, item_code)
        subject = item.subject
    else:
        raise QiluError("services.what", "请选择要办理的事项或一件事", field="item")
    if subject == "enterprise" and entity is None:
        raise Refused(
            "services.entity_required", "该事项由企业办理，请切换到企业身份", field="identity"
        )
    if subject == "person":
        entity = None
    if submission_key:
        earlier = session.scalars(
            select(Application).where(
                Application.applicant_person_id == applicant.id,
                Application.submission_key == submission_key,
            )
        ).one_or_none()
        if earlier is not None:  # the same start form sent twice
            return Started(earlier, plan_of(session, earlier))
    now = datetime.now(UTC)
    application = Application(
        # Unique until the id is known (an empty placeholder would make concurrent inserts wait
        # on each other's unique-index entry until commit).
        number=f"tmp{uuid.uuid4().hex[:29]}",
        chain_id=chain.id if chain else None,
        item_id=None if chain else item.id,
        applicant_person_id=applicant.id,
        entity_id=entity.id if entity else None,
        channel=channel,
        clerk_person_id=clerk_person_id,
        receiving_department_id=receiving_department_id,
        division_code=division_code
        or (entity.division_code if entity else applicant.household_division_code),
        status="draft",
        answers=dict(answers or {}),
        form={},
        disputed={},
        prefilled=[],
        submission_key=submission_key,
        created_at=now,
        saved_at=now,
    )
    application.chain = chain
    application.item = None if chain else item
    plan = plan_of(session, application)  # checks the answers before anything is written
    cases.check_province_wide(session, plan, application.division_code, receiving_department_id)
    application.answers = plan.answers
    session.add(application)
    session.flush()
    application.number = f"SQ{beijing_today(now):%Y%m%d}{application.id:010d}"
    reader = clerk_person_id or applicant.id
    values = prefill(session, vault, applicant, entity, plan.fields, application.number, reader)
    if chain is not None:  # what the questionnaire asked is not asked again
        known = {f.key for f in plan.fields}
        values |= {k: v for k, v in given_values(chain, answers or {}).items() if k in known}
    application.form = values
    application.prefilled = sorted(values)
    return Started(application, plan)


def prefill(
    session: Session,
    vault: Vault,
    person: Person,
    entity: LegalEntity | None,
    fields: list[FormField],
    number: str,
    reader_person_id: int,
) -> dict[str, Any]:
    """Values for the fields the applicant's library records hold, as the libraries have them
    (the applicant can say a value is wrong and type their own). The person's record is read
    through the data module and the read is in their data-use record."""
    wanted = [f for f in fields if f.prefill]
    if not wanted:
        return {}
    id_number = vault.decrypt(person.id_number_cipher, "id_number")
    own: dict[str, Any] = {}
    if any(f.prefill and f.prefill.startswith("person.") for f in wanted):
        try:
            own = (
                read_for_applicant(
                    session,
                    vault,
                    PERSON_LIBRARY,
                    [id_number],
                    subject=audit_subject(vault, id_number),
                    department_code=PLATFORM_DEPARTMENT,
                    purpose=f"申请 {number} 表单预填",
                    reader_person_id=reader_person_id,
                )
                or {}
            )
        except NotFound:
            own = {}
    registered: dict[str, Any] = {}
    if entity is not None:
        try:
            registered = find_record(session, vault, ENTITY_LIBRARY, [entity.uscc]) or {}
        except NotFound:
            registered = {}
    values: dict[str, Any] = {}
    for spec in wanted:
        assert spec.prefill is not None
        source, _, name = spec.prefill.partition(".")
        record_values, names = (
            (own, PERSON_SOURCES) if source == "person" else (registered, ENTITY_SOURCES)
        )
        value = record_values.get(names.get(name, ""))
        if value in (None, ""):
            continue
        values[spec.key] = SEX.get(str(value), value) if name == "sex" else str(value)
    return values


def get_application(session: Session, application_id: int) -> Application:
    found = session.get(Application, application_id)
    if found is None:
        raise NotFound("services.application_not_found", "申请不存在", field="application")
    return found


@dataclass(frozen=True)
class Applicant:
    """Who is asking in the portal: a person, perhaps acting for an enterprise (as its legal
    representative or as an agent with the scopes it was given, checked at this request)."""

    person: Person
    identity: Identity | None = None

    @property
    def entity(self) -> LegalEntity | None:
        return self.identity.entity if self.identity else None

    def may(self, scope: str) -> bool:
        """An agent does what its scopes say; a person for themselves, everything."""
        return self.identity is None or scope in self.identity.scopes

    def require(self, scope: str) -> None:
        if not self.may(scope):
            raise Refused(
                "agent.scope",
                f"您的经办人授权不包括“{SCOPES[scope]}”：请联系企业法定代表人",
                scope=scope,
            )


def owned(
    session: Session, application_id: int, applicant: Applicant, scope: str = "view"
) -> Application:
    """The application, if `applicant` may `scope` it: an enterprise's application to whoever
    acts for that enterprise now with that scope (its legal representative sees what its agents
    did; a revoked agent nothing), a person's to that person or the clerk who applied with them."""
    application = get_application(session, application_id)
    if application.entity_id is not None:
        entity = applicant.entity
        allowed = entity is not None and entity.id == application.entity_id
        if allowed:
            applicant.require(scope)
    else:
        person_id = applicant.person.id
        allowed = person_id in (application.applicant_person_id, application.clerk_person_id)
        if (
            allowed
            and application.channel == "family"
            and person_id != application.applicant_person_id
        ):
            # a family member reaches it only while the resident's authorisation lives
            allowed = family.live(session, application.applicant_person_id, person_id) is not None
    if not allowed:
        raise NotFound("services.application_not_found", "申请不存在", field="application")
    return application


def save_draft(
    session: Session,
    application: Application,
    values: dict[str, str],
    disputed: dict[str, str] | None = None,
) -> Application:
    """Keep what the applicant typed so far (explicit save or autosave); nothing is checked
    yet except that the draft is still a draft and the fields belong to its form."""
    if application.status != "draft":
        raise QiluError("services.not_draft", "申请已提交，不能再修改草稿", field="application")
    plan = plan_of(session, application)
    known = {f.key for f in plan.fields}
    application.form = {
        **application.form,
        **{k: v.strip() for k, v in values.items() if k in known},
    }
    notes = {k: v.strip() for k, v in (disputed or {}).items() if k in known and v.strip()}
    application.disputed = {**application.disputed, **notes}
    application.saved_at = datetime.now(UTC)
    session.flush()
    return application


def add_upload(
    session: Session,
    store: FileStore,
    application: Application,
    material: str,
    *,
    file_name: str,
    content_type: str,
    content: bytes,
    max_bytes: int = MAX_FILE_BYTES,
) -> ApplicationMaterial:
    """One file of a material (several allowed, up to the material's limit, of its types). The
    name is kept without folders or control characters; the content must be what its
    extension says (checked by its first bytes, not by the name alone)."""
    spec = _planned_material(session, application, material)
    file_name = safe_file_name(file_name)
    extension = file_name.rsplit(".", 1)[-1].lower() if "." in file_name else ""
    field = f"materials.{material}"
    if extension not in spec.types:
        allowed = "、".join(t.upper() for t in spec.types)
        raise QiluError("services.file_type", f"{material}须为 {allowed} 文件", field=field)
    if not content:
        raise QiluError("services.file_empty", f"{material}：文件为空", field=field)
    if len(content) > max_bytes:
        limit = max_bytes // (1024 * 1024)
        raise QiluError("services.file_size", f"{material}：单个文件不超过 {limit} MB", field=field)
    if not content.startswith(SIGNATURES.get(extension, b"")):
        raise QiluError(
            "services.file_content",
            f"{material}：文件内容不是 {extension.upper()} 格式（可能改过扩展名）",
            field=field,
        )
    existing = [
        m
        for m in materials_of(session, application)
        if m.material == material and m.source == "upload"
    ]
    if len(existing) >= spec.max_files:
        raise QiluError(
            "services.file_count", f"{material}最多上传 {spec.max_files} 个文件", field=field
        )
    row = ApplicationMaterial(
        application_id=application.id,
        material=material,
        source="upload",
        file_name=file_name,
        content_type=content_type[:100],
        size=len(content),
        digest=store.put(content),
        created_at=datetime.now(UTC),
    )
    session.add(row)
    session.flush()
    return row


def remove_upload(session: Session, application: Application, file_id: int) -> str:
    """Take back an uploaded file while the application can still change (a wrong file, a
    better scan); returns its material's name. Only a file of this application: another id is
    "not found", whoever's it is."""
    row = session.get(ApplicationMaterial, file_id)
    if row is None or row.application_id != application.id or row.source != "upload":
        raise NotFound("services.file_not_found", "没有这个已上传的文件", field="material")
    _planned_material(session, application, row.material)  # still a draft or in correction
    session.delete(row)
    session.flush()
    return row.material


# The first bytes each accepted file type starts with.
SIGNATURES = {
    "pdf": b"%PDF",
    "png": b"\x89PNG\r\n\x1a\n",
    "jpg": b"\xff\xd8\xff",
    "jpeg": b"\xff\xd8\xff",
    "dwg": b"AC10",
}


def safe_file_name(name: str) -> str:
    """A file name as sent, without the folders a browser or a crafted request puts before it,
    control characters or leading dots, at most 100 characters (keeping the extension)."""
    base = name.replace("\\", "/").rsplit("/", 1)[-1]
    base = "".join(c for c in base if c.isprintable() and c not in '<>:"|?*').strip().lstrip(".")
    stem, dot, extension = base.rpartition(".")
    if dot and len(extension) <= 10:
        return f"{stem[: 100 - len(extension) - 1]}.{extension}" if stem else "文件"
    return base[:100] or "文件"


def fetch_elsewhere(
    session: Session,
    vault: Vault,
    store: FileStore,
    application: Application,
    material: str,
    *,
    url: str | None,
    consent: bool,
    actor_person_id: int,
) -> ApplicationMaterial:
    """跨省免提交: a licence the material asks for, issued in another province, fetched from the
    national platform's 电子证照 library with the holder's authorisation and kept as the
    material (its record, as the platform gave it)."""
    spec = _planned_material(session, application, material)
    field = f"materials.{material}"
    kind, _, licence_type = spec.source.partition(":")
    if kind != "licence":
        raise QiluError("licence.not_a_licence", "该材料不是证照，不能调取", field=field)
    if not url:
        raise QiluError(
            "national.not_connected", "本平台尚未接入国家政务服务平台，请上传材料", field=field
        )
    if not consent:
        raise QiluError(
            "licence.consent", "请勾选授权：同意本次办理从全国证照库调取该证照", field=field
        )
    holder_name, holder_code = _holder(session, vault, application)
    found = national.fetch_licences(
        session,
        vault,
        url,
        holder_code=holder_code,
        holder_name=holder_name,
        licence_type=licence_type,
        purpose=f"办理申请 {application.number}，代替提交“{material}”",
    )
    if not found:
        raise NotFound(
            "licence.not_found_elsewhere",
            f"全国证照库中没有您有效的“{licence_type}”，请上传材料",
            field=field,
        )
    licence = found[0]
    content = json.dumps(licence, ensure_ascii=False, sort_keys=True).encode()
    digest = store.put(content)
    row = ApplicationMaterial(
        application_id=application.id,
        material=material,
        source="licence",
        file_name=f"{licence.get('cert_identifier', licence_type)}.json"[:200],
        content_type="application/json",
        size=len(content),
        digest=digest,
        created_at=datetime.now(UTC),
    )
    session.add(row)
    session.flush()
    record(
        session,
        "services.licence_fetched",
        actor_person_id=actor_person_id,
        subject=f"application:{application.number}",
        details={
            "material": material,
            "identifier": licence.get("cert_identifier"),
            "issuer": licence.get("issuer_name"),
        },
    )
    return row


def _holder(session: Session, vault: Vault, application: Application) -> tuple[str, str]:
    """Whose licences the application uses, by name and code (ID number or USCC)."""
    if application.entity_id is not None:
        entity = session.get_one(LegalEntity, application.entity_id)
        return entity.name, entity.uscc
    person = session.get_one(Person, application.applicant_person_id)
    return person.name, vault.decrypt(person.id_number_cipher, "id_number")


def promise(
    session: Session, application: Application, *materials: str
) -> list[ApplicationMaterial]:
    """告知承诺 / 容缺: the applicant promises in writing to hand these materials in later."""
    for material in materials:
        _planned_material(session, application, material)
    now = datetime.now(UTC)
    rows = [
        ApplicationMaterial(
            application_id=application.id, material=m, source="promise", created_at=now
        )
        for m in materials
    ]
    session.add_all(rows)
    session.flush()
    return rows


def promise_missing(session: Session, vault: Vault, application: Application) -> list[str]:
    """承诺后补 for every material still missing (one click at the window or in the portal);
    returns their names."""
    plan = plan_of(session, application)
    holder = wallet_of(session, vault, application)
    statuses = material_statuses(session, application, plan, holder, beijing_today())
    missing = [s.name for s in statuses if s.source == "missing"]
    if missing:
        promise(session, application, *missing)
    return missing


def _planned_material(session: Session, application: Application, material: str) -> Material:
    if application.status not in ("draft", "correcting"):
        raise QiluError("services.not_draft", "申请已提交，不能再修改材料", field="application")
    for planned in plan_of(session, application).materials:
        if planned.material.name == material:
            return planned.material
    raise QiluError("services.material_unknown", f"本申请不需要“{material}”", field="material")


def materials_of(session: Session, application: Application) -> list[ApplicationMaterial]:
    return list(
        session.scalars(
            select(ApplicationMaterial)
            .where(ApplicationMaterial.application_id == application.id)
            .order_by(ApplicationMaterial.id)
        )
    )


@dataclass(frozen=True)
class MaterialStatus:
    name: str
    source: str  # upload | licence | library | chain | promise | missing
    detail: str
    items: list[str]
    types: list[str]
    max_files: int
    files: list[ApplicationMaterial]
    licence_id: int | None = None
    copy: LicenceCopy | None = None  # a B-grade copy brought to a window before
    licence_type: str | None = None  # the licence it is, if it is one


def material_statuses(
    session: Session, application: Application, plan: Plan, wallet: Wallet, today: date
) -> list[MaterialStatus]:
    """Where each material of the application comes from now: uploaded, an e-licence the
    applicant holds, library data, the result of an earlier item of this chain, promised, or
    still missing."""
    rows = materials_of(session, application)
    issued_here = {
        entry.item.spec["issues"]["licence"]
        for entry in plan.items
        if entry.item.spec.get("issues")
    }
    out = []
    for planned in plan.materials:
        spec = planned.material
        files = [r for r in rows if r.material == spec.name and r.source == "upload"]
        fetched = [r for r in rows if r.material == spec.name and r.source == "licence"]
        kind, _, target = spec.source.partition(":")
        held = find_held(session, wallet, target, today) if kind == "licence" else None
        copy = trust.reusable(session, wallet, target) if kind == "licence" and not held else None
        if files:
            source, detail = "upload", f"已上传 {len(files)} 个文件"
        elif fetched:
            files = fetched
            source, detail = "licence", f"已从全国证照库调取“{target}”，免提交"
        elif kind == "library":
            source, detail = "library", "由数据共享获取，免提交"
        elif held is not None:
            source, detail = "licence", f"调用您的电子证照“{target}”，免提交"
        elif copy is not None:
            source, detail = "licence", f"调用窗口已核验原件的“{target}”（B级），免提交"
        elif kind == "licence" and target in issued_here:
            source, detail = "chain", "由本次办理的前置事项生成，免提交"
        elif any(r.material == spec.name and r.source == "promise" for r in rows):
            source, detail = "promise", "已书面承诺后补（容缺受理）"
        else:
            source, detail = "missing", "待上传"
        out.append(
            MaterialStatus(
                spec.name,
                source,
                detail,
                planned.items,
                spec.types,
                spec.max_files,
                files,
                held.id if held is not None and source == "licence" else None,
                copy if copy is not None and source == "licence" else None,
                target if kind == "licence" else None,
            )
        )
    return out


def _incomplete(problems: list[dict[str, str]]) -> QiluError:
    """Every problem of a form at once, the first one in the message."""
    return QiluError(
        "services.application_invalid",
        f"有 {len(problems)} 处需要补充：{problems[0]['reason']}",
        field=problems[0]["field"],
        problems=problems,
    )


def check_form(fields: list[FormField], values: dict[str, Any]) -> list[dict[str, str]]:
    """Every problem of the form: a field, and the reason in Chinese."""
    problems = []
    for spec in fields:
        value = str(values.get(spec.key, "") or "").strip()
        field = f"form.{spec.key}"
        if not value:
            problems.append({"field": field, "reason": f"请填写{spec.label}"})
            continue
        reason = _field_problem(spec, value)
        if reason:
            problems.append({"field": field, "reason": f"{spec.label}{reason}"})
    return problems


def _field_problem(spec: FormField, value: str) -> str | None:
    if spec.type == "date":
        try:
            date.fromisoformat(value)
        except ValueError:
            return "须为日期（年-月-日）"
    elif spec.type == "number":
        # Amounts, areas, counts: a plain non-negative number (not -1, nan, inf or 1e400).
        try:
            number = Decimal(value)
        except InvalidOperation:
            return "须为数字"
        if not number.is_finite() or number < 0 or number >= LARGEST_NUMBER:
            return "须为不小于 0 的数字"
    elif spec.type == "choice" and value not in spec.options:
        return f"须为：{'、'.join(spec.options)}"
    elif spec.type == "phone" and not PHONE.match(value):
        return "格式有误"
    elif spec.type == "id_number":
        try:
            parse_id_number(value)
        except QiluError as error:
            return f"有误：{error.message}"
    return None


def submit(
    session: Session,
    vault: Vault,
    application: Application,
    *,
    actor_person_id: int,
    consent_to_licences: bool = True,
) -> Application:
    """Submit a draft once. Every field is checked (all problems reported together), every
    material must be there, come from a licence or the libraries, or be promised. The draft
    becomes submitted in one conditional update, so a double submit makes one application."""
    plan = plan_of(session, application)
    problems = check_form(plan.fields, application.form)
    today = beijing_today()
    holder = wallet_of(session, vault, application)
    statuses = material_statuses(session, application, plan, holder, today)
    for status in statuses:
        if status.source == "missing" or (status.source == "licence" and not consent_to_licences):
            problems.append({"field": f"materials.{status.name}", "reason": f"请上传{status.name}"})
    if problems:
        raise _incomplete(problems)
    moved = session.execute(
        update(Application)
        .where(
            Application.id == application.id,
            Application.status == "draft",
            Application.version == application.version,
        )
        .values(status="submitted", version=Application.version + 1, submitted_at=datetime.now(UTC))
        .execution_options(synchronize_session=False)
    )
    if moved.rowcount != 1:  # type: ignore[attr-defined]
        session.refresh(application)
        if application.status != "draft":
            return application  # the same form sent twice: the first one counts
        raise QiluError("services.conflict", "申请已被修改，请刷新后再提交", field="application")
    session.refresh(application)
    for status in statuses:
        if status.source in ("licence", "library") and not status.files:
            copy = status.copy
            session.add(
                ApplicationMaterial(
                    application_id=application.id,
                    material=status.name,
                    source=status.source,
                    licence_id=status.licence_id,
                    digest=copy.digest if copy else None,
                    file_name=copy.file_name if copy else None,
                    content_type=copy.content_type if copy else None,
                    created_at=datetime.now(UTC),
                )
            )
    record(
        session,
        "services.application_submitted",
        actor_person_id=actor_person_id,
        subject=f"application:{application.number}",
        details={
            "channel": application.channel,
            "chain": application.chain.code if application.chain else None,
            "items": [e.item.code for e in plan.items],
            "prefilled": len(application.prefilled),
            "disputed": sorted(application.disputed),
        },
    )
    made = cases.fan_out(session, vault, application, plan, today)
    _record_licence_uses(session, application, statuses, made)
    trust.record_copies(
        session, application, materials_of(session, application), holder[0], shipped_catalog()
    )
    return application


def _record_licence_uses(
    session: Session, application: Application, statuses: list[MaterialStatus], made: list[Case]
) -> None:
    """用证: each licence read instead of a material, once per department that relies on it."""
    for status in statuses:
        if status.source != "licence" or status.licence_id is None or status.files:
            continue
        licence = session.get_one(Licence, status.licence_id)
        for case in made:
            if case.item.name in status.items:
                record_use(
                    session,
                    licence,
                    user=case.department.name,
                    department_id=case.department_id,
                    purpose=f"办理“{case.item.name}”，代替提交“{status.name}”"
                    f"（申请编号 {application.number}）",
                    authorisation="申请人提交申请时同意调用本人电子证照",
                    application_id=application.id,
                )


def wallet_of(session: Session, vault: Vault, application: Application) -> Wallet:
    """Whose licences an application uses: the enterprise's if one applies, else the
    person's."""
    if application.entity_id is not None:
        entity = session.get_one(LegalEntity, application.entity_id)
        return entity_wallet(vault, entity.uscc)
    return person_wallet(vault, session.get_one(Person, application.applicant_person_id))


@dataclass(frozen=True)
class Corrections:
    """What the open corrections of an application ask for, from every case correcting."""

    fields: set[str]
    materials: dict[str, datetime]  # name → when it was asked for (a new file must be newer)
    asked: list[tuple[Case, dict[str, Any]]]


def corrections_of(application: Application) -> Corrections:
    asked = [
        (c, c.correction) for c in application.cases if c.state == "correcting" and c.correction
    ]
    return Corrections(
        {f for _, c in asked for f in c["fields"]},
        {m: datetime.fromisoformat(c["at"]) for _, c in asked for m in c["materials"]},
        asked,
    )


def answer_correction(
    session: Session,
    vault: Vault,
    application: Application,
    values: dict[str, str],
    *,
    actor_person_id: int,
) -> Application:
    """The applicant's answer to a correction (补正): the corrected facts (new files are added
    as uploads), checked like a submission; then every case waiting for it is reviewed again."""
    if application.status != "correcting":
        raise QiluError("services.not_correcting", "该申请目前无需补正", field="application")
    plan = plan_of(session, application)
    known = {f.key for f in plan.fields}
    changed = {k: v.strip() for k, v in values.items() if k in known and v.strip()}
    corrected = {**application.form, **changed}
    problems = check_form(plan.fields, corrected)
    uploads = materials_of(session, application)
    for name, asked_at in corrections_of(application).materials.items():
        if not any(u.material == name and u.digest and u.created_at >= asked_at for u in uploads):
            problems.append({"field": f"materials.{name}", "reason": f"请重新上传{name}"})
    if problems:
        raise _incomplete(problems)
    application.form = corrected
    record(
        session,
        "services.correction_answered",
        actor_person_id=actor_person_id,
        subject=f"application:{application.number}",
        details={"changed": sorted(changed)},
    )
    for case in application.cases:
        if case.state == "correcting":
            cases.resume(session, vault, case, actor_person_id=actor_person_id)
    return application


def made_for(session: Session, principal_id: int, proxy_id: int) -> list[Application]:
    """What a family member applied for a resident (亲友代办), newest first."""
    return list(
        session.scalars(
            select(Application)
            .where(
                Application.applicant_person_id == principal_id,
                Application.clerk_person_id == proxy_id,
                Application.channel == "family",
            )
            .order_by(Application.id.desc())
            .limit(20)
        )
    )


def _visible_to(applicant: Applicant) -> ColumnElement[bool] | None:
    """Which applications `applicant` sees in their lists: an enterprise's to whoever may view
    them for it, a person's own otherwise; None when they may see none."""
    entity = applicant.entity
    if entity is not None:
        return Application.entity_id == entity.id if applicant.may("view") else None
    return and_(
        Application.applicant_person_id == applicant.person.id, Application.entity_id.is_(None)
    )


def applications_of(
    session: Session,
    applicant: Applicant,
    *,
    statuses: tuple[str, ...] | None = None,
    limit: int = 50,
) -> list[Application]:
    """The applicant's applications (`_visible_to`), newest first, only those in `statuses` if
    given."""
    visible = _visible_to(applicant)
    if visible is None:
        return []
    query = select(Application).where(visible)
    if statuses is not None:
        query = query.where(Application.status.in_(statuses))
    query = query.order_by(Application.created_at.desc(), Application.id.desc())
    return list(session.scalars(query.limit(limit)))


def status_counts(session: Session, applicant: Applicant) -> dict[str, int]:
    """How many of the applicant's applications are in each status (one grouped count)."""
    visible = _visible_to(applicant)
    if visible is None:
        return {}
    rows = session.execute(
        select(Application.status, func.count()).where(visible).group_by(Application.status)
    )
    return {status: int(n) for status, n in rows}
