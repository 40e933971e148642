"""Use cases of the demo: generate a synthetic Shandong, or set up (and reuse) the embedded demo."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from qilu.db import upgrade
from qilu.demo.seed import (
    Progress,
    SeedPlan,
    SeedReport,
    existing_run,
    reset_synthetic,
    seed_shandong,
)
from qilu.identity.models import Department, LegalEntity, Person, StaffMember
from qilu.identity.service import id_number_of, register_counts
from qilu.pii import Vault, load_vault
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
        return seed_shandong(connection, vault, plan, workers=workers, progress=progress)


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

    def describe(self, base_url: str) -> str:
        origin = "沿用已有数据" if self.reused else "已生成合成数据"
        lines = [
            f"Qilu 演示环境：{origin}（居民 {self.residents:,}，法人 {self.entities:,}，"
            f"部门 {self.departments:,}）",
            f"  门户      {base_url}/",
            f"  健康检查  {base_url}/healthz",
            f"  API 文档  {base_url}/api/docs",
            "演示身份（合成数据；登录功能随“一号通行”上线）：",
        ]
        lines += [f"  {i.role:<6} {i.name:<4} {i.id_number}  {i.note}" for i in self.identities]
        return "\n".join(lines)


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
        if not reused:
            plan = SeedPlan.for_scale(scale or settings.demo_scale, settings.demo_seed)
            seed_shandong(connection, vault, plan, progress=progress)
    with Session(engine) as session:
        counts = register_counts(session)
        return DemoSummary(
            reused,
            counts.residents,
            counts.entities,
            counts.departments,
            demo_identities(session, vault),
        )


def demo_identities(session: Session, vault: Vault) -> list[DemoIdentity]:
    """One resident, one legal representative, and staff of the departments demos start from."""
    identities: list[DemoIdentity] = []
    staff_ids = select(StaffMember.person_id)
    resident = session.scalars(
        select(Person)
        .where(Person.id.not_in(staff_ids), Person.birth_date < date(2000, 1, 1))
        .order_by(Person.id)
        .limit(1)
    ).first()
    if resident is not None:
        identities.append(DemoIdentity("居民", resident.name, id_number_of(vault, resident), ""))
    entity = session.scalars(
        select(LegalEntity).where(LegalEntity.uscc.like("91%")).order_by(LegalEntity.id).limit(1)
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
    for code, role in (("370000-bigdata", "数据管理"), ("370102-approval", "窗口受理")):
        member = session.scalars(
            select(StaffMember).join(Department).where(Department.code == code).limit(1)
        ).first()
        if member is not None:
            identities.append(
                DemoIdentity(
                    role,
                    member.person.name,
                    id_number_of(vault, member.person),
                    f"{member.department.name} {member.title}",
                )
            )
    return identities
