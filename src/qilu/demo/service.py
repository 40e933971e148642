"""Use cases of the demo: generate a synthetic Shandong, or set up (and reuse) the embedded demo."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import date

from sqlalchemy import Connection, Engine, func, select
from sqlalchemy.orm import Session

from qilu.data.catalog import install_standard_catalog
from qilu.data.models import DataRecord
from qilu.db import upgrade
from qilu.demo.applications import sample_applications
from qilu.demo.files import load_files, write_files
from qilu.demo.libraries import LIBRARIES, fill_libraries
from qilu.demo.monitoring import sample_monitoring
from qilu.demo.seed import (
    Progress,
    SeedPlan,
    SeedReport,
    existing_run,
    reset_synthetic,
    seed_shandong,
)
from qilu.identity import roles
from qilu.identity.accounts import register_resident
from qilu.identity.models import (
    Account,
    Department,
    LegalEntity,
    OidcClient,
    Person,
    StaffMember,
)
from qilu.identity.oidc_clients import Integration, register_client
from qilu.identity.roles import grant_role
from qilu.identity.service import id_number_of, register_counts
from qilu.pii import Vault, load_vault
from qilu.services import offers
from qilu.services.catalog import competent_departments, install_catalog
from qilu.services.models import ServiceChain, ServiceItem
from qilu.services.specs import shipped_catalog
from qilu.settings import Settings


def generate(
    engine: Engine,
    settings: Settings,
    *,
    scale: int,
    seed: int,
    entities: int | None = None,
    workers: int | None = None,
    reset: bool = False,
    progress: Progress | None = None,
) -> SeedReport:
    """Migrate if needed, then generate in one transaction (all or nothing)."""
    plan = SeedPlan.for_scale(scale, seed, entities)
    vault = load_vault(settings)
    upgrade(engine)
    with engine.begin() as connection:
        if reset:
            reset_synthetic(connection)
        report = seed_shandong(connection, vault, plan, workers=workers, progress=progress)
        records = _fill(connection, vault, plan.seed, workers, progress)
    return replace(report, library_records=records)


def _fill(
    connection: Connection,
    vault: Vault,
    seed: int,
    workers: int | None,
    progress: Progress | None,
    loaded_already: frozenset[str] = frozenset(),
) -> int:
    """Fill the data libraries and install the service catalog in the seeding transaction;
    the rows loaded."""
    if progress is not None:
        progress.start("数据资源", len(LIBRARIES) - len(loaded_already))
    session = Session(bind=connection)
    loaded = fill_libraries(
        session,
        vault,
        seed=seed,
        today=date.today(),
        workers=workers or 1,
        progress=(lambda _code, _rows: progress.advance("数据资源", 1)) if progress else None,
        loaded_already=loaded_already,
    )
    install_catalog(session)  # the service catalog, so applications can be made at once
    session.flush()
    return sum(loaded.values())


@dataclass(frozen=True)
class DemoIdentity:
    role: str
    name: str
    id_number: str
    note: str


@dataclass(frozen=True)
class DemoSummary:
    reused: bool
    residents: int
    entities: int
    departments: int
    identities: list[DemoIdentity]
    client_id: str | None = None
    records: int = 0  # in the data libraries
    items: int = 0  # service items and chains in the catalog
    chains: int = 0

    def describe(self, base_url: str) -> str:
        origin = "沿用已有数据" if self.reused else "已生成合成数据"
        lines = [
            f"Qilu 演示环境：{origin}（居民 {self.residents:,}，法人 {self.entities:,}，"
            f"部门 {self.departments:,}；数据资源记录 {self.records:,}；"
            f"政务服务事项 {self.items}，一链办理 {self.chains}）",
            f"  门户      {base_url}/",
            f"  办事大厅  {base_url}/services",
            f"  工作台    {base_url}/workbench/cases",
            f"  应急指挥  {base_url}/monitor/alarms（态势图 {base_url}/monitor/map）",
            f"  健康检查  {base_url}/healthz",
            f"  API 文档  {base_url}/api/docs",
            f"演示账号（合成数据，密码均为 {DEMO_PASSWORD}；公职人员首次登录须设置两步验证）：",
        ]
        lines += [f"  {i.role:<6} {i.name:<4} {i.id_number}  {i.note}" for i in self.identities]
        if self.client_id:
            lines.append(
                f"示例部门系统（单点登录）：python examples/department_system.py "
                f"--qilu {base_url} --client-id {self.client_id}"
            )
        return "\n".join(lines)


SEED_FILES = "seed-files"  # in the data folder: the files the demo province was loaded from
FROM_FILES = frozenset({"JC-RK-001", "JC-FR-001"})  # libraries those files fill


def prepare_demo(
    engine: Engine,
    settings: Settings,
    *,
    scale: int | None = None,
    progress: Progress | None = None,
) -> DemoSummary:
    """Migrate, generate the synthetic province the first time only, and describe it."""
    vault = load_vault(settings)
    upgrade(engine)
    with engine.begin() as connection:
        reused = existing_run(connection) is not None
        if not reused:  # the province as files, loaded as production loads a real one
            plan = SeedPlan.for_scale(scale or settings.demo_scale, settings.demo_seed)
            folder = settings.data_dir / SEED_FILES
            write_files(folder, plan)
            with Session(bind=connection) as session:
                if progress is not None:
                    progress.start("机构、人口、法人、人员文件", 1)
                load_files(session, vault, folder, plan, profile=settings.security_profile)
                if progress is not None:
                    progress.advance("机构、人口、法人、人员文件", 1)
            _fill(connection, vault, plan.seed, None, progress, FROM_FILES)
    with Session(engine) as session, session.begin():
        identities = demo_identities(session, vault)
        if not reused:
            open_demo_accounts(session, vault, settings, identities)
        install_standard_catalog(session)
        install_catalog(session)
        if not reused:
            offers.scan(session, vault)  # 免申即享: what residents are offered unasked
            sample_applications(session, vault)  # work waiting in the clerks' queues
            sample_monitoring(session)  # alarms waiting on the duty officer's wall
        counts = register_counts(session)
        client = session.scalars(
            select(OidcClient).where(OidcClient.name == DEMO_CLIENT_NAME)
        ).first()
        return DemoSummary(
            reused,
            counts.residents,
            counts.entities,
            counts.departments,
            identities,
            client.client_id if client else None,
            session.scalar(select(func.count()).select_from(DataRecord)) or 0,
            len(shipped_catalog().items),
            len(shipped_catalog().chains),
        )


DEMO_PASSWORD = "Qilu-demo-2026"
DEMO_CLIENT_NAME = "示例部门系统"
DEMO_COUNTY = "370102"  # 历下区: where the demo's resident, enterprise and desk staff are
# The journeys the demo is walked through; every department they reach gets the demo's window
# clerk and approver, so each case has someone to take it.
DEMO_JOURNEYS = ("新生儿出生", "开办餐饮店", "我要开小餐馆")
DEMO_ITEMS = ("临时救助申请",)  # single items the demo's queues hold (demo/applications.py)
DEMO_ROLES = {
    "数据管理": ("370000-bigdata", "data_steward"),
    # The 人口 library's provider: only its own steward decides who may use it.
    "数据管理（人口库）": ("370000-public_security", "data_steward"),
    "窗口受理": ("370102-approval", "window_clerk"),
    "审批": ("370102-approval", "approver"),
    "管理员": ("370000-bigdata", "admin"),
    "值班": ("370102-emergency", "duty_officer"),
}


def open_demo_accounts(
    session: Session, vault: Vault, settings: Settings, identities: list[DemoIdentity]
) -> None:
    """Accounts for the demo identities, their roles, and a client for the example system.

    Only `qilu demo` calls this, on the embedded store it generates: a production store has no
    default accounts.
    """
    accounts: dict[str, Account] = {}
    for identity in identities:  # one person may show up in two roles
        account = accounts.get(identity.id_number) or register_resident(
            session,
            vault,
            name=identity.name,
            id_number=identity.id_number,
            password=DEMO_PASSWORD,
            profile=settings.security_profile,
            client_address="demo",
        )
        accounts[identity.id_number] = account
        if identity.role in DEMO_ROLES:
            department, role = DEMO_ROLES[identity.role]
            grant_role(
                session,
                person_id=account.person_id,
                department_code=department,
                role=role,
                profile=settings.security_profile,
                actor=roles.OPERATOR,
            )
    _staff_the_journeys(session, settings, accounts, identities)
    register_client(
        session,
        name=DEMO_CLIENT_NAME,
        redirect_uris=["http://127.0.0.1:8001/callback"],
        public=True,
        post_logout_redirect_uris=["http://127.0.0.1:8001/"],
        integration=Integration(
            backchannel_logout_uri="http://127.0.0.1:8001/backchannel-logout",
            frontchannel_logout_uri="http://127.0.0.1:8001/frontchannel-logout",
        ),
        actor=roles.OPERATOR,
    )


def journey_departments(session: Session) -> list[Department]:
    """The departments the demo's journeys and queued items reach for an applicant of 历下区."""
    items = [
        *session.scalars(
            select(ServiceItem).where(ServiceItem.name.in_(DEMO_ITEMS), ServiceItem.is_current)
        ),
        *(
            item
            for chain in session.scalars(
                select(ServiceChain).where(
                    ServiceChain.name.in_(DEMO_JOURNEYS), ServiceChain.is_current
                )
            )
            for item in session.scalars(
                select(ServiceItem).where(
                    ServiceItem.code.in_([entry["item"] for entry in chain.spec["items"]]),
                    ServiceItem.is_current,
                )
            )
        ),
    ]
    chosen = competent_departments(session, items, DEMO_COUNTY) if items else {}
    return sorted({d.id: d for d in chosen.values()}.values(), key=lambda d: d.code)


def _staff_the_journeys(
    session: Session,
    settings: Settings,
    accounts: dict[str, Account],
    identities: list[DemoIdentity],
) -> None:
    """The demo's window clerk and approver take their roles in every department a journey
    reaches, besides their own."""
    for identity in identities:
        if identity.role not in ("窗口受理", "审批"):
            continue
        role = DEMO_ROLES[identity.role][1]
        for department in journey_departments(session):
            if department.code == DEMO_ROLES[identity.role][0]:
                continue
            grant_role(
                session,
                person_id=accounts[identity.id_number].person_id,
                department_code=department.code,
                role=role,
                profile=settings.security_profile,
                actor=roles.OPERATOR,
            )


def demo_identities(session: Session, vault: Vault) -> list[DemoIdentity]:
    """One resident, one legal representative, and staff of the departments demos start from."""
    identities: list[DemoIdentity] = []
    staff_ids = select(StaffMember.person_id)
    # The resident and the enterprise live in 历下区, where the demo's desk staff work: the
    # journeys they start reach departments that have someone to take them (issue 13).
    resident = session.scalars(
        select(Person)
        .where(Person.id.not_in(staff_ids), Person.birth_date < date(2000, 1, 1))
        .order_by((Person.household_division_code != DEMO_COUNTY), Person.id)
        .limit(1)
    ).first()
    if resident is not None:
        identities.append(DemoIdentity("居民", resident.name, id_number_of(vault, resident), ""))
    entity = session.scalars(
        select(LegalEntity)
        .where(LegalEntity.uscc.like("91%"))
        .order_by((LegalEntity.division_code != DEMO_COUNTY), LegalEntity.id)
        .limit(1)
    ).first()
    if entity is not None:
        person = entity.legal_representative
        identities.append(
            DemoIdentity(
                "法定代表人",
                person.name,
                id_number_of(vault, person),
                f"{entity.name}（{entity.uscc}）",
            )
        )
    staff = (  # (role, which member of its department)
        ("数据管理", 0),
        ("数据管理（人口库）", 0),
        ("窗口受理", 0),
        ("审批", 1),
        ("管理员", 1),
        ("值班", 0),
    )
    for role, offset in staff:
        code = DEMO_ROLES[role][0]
        member = session.scalars(
            select(StaffMember)
            .join(Department)
            .where(Department.code == code)
            .order_by(StaffMember.id)
            .offset(offset)
            .limit(1)
        ).first()
        if member is not None:
            where = f"{member.department.name} {member.title}"
            if role in ("窗口受理", "审批"):
                where += "（并在演示一件事所涉各部门）"
            identities.append(
                DemoIdentity(role, member.person.name, id_number_of(vault, member.person), where)
            )
    return identities
