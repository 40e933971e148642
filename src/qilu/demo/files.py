"""The synthetic province as the files a real one exports (`qilu seed --files DIR`): 机构.csv
from the 编制 system, 人口.csv and 法人.csv from the population and market registers, 人员.csv
from the 组织 system — the same people, departments, staff and entities `qilu seed` stores, in
the columns the README's going-live walk loads with `qilu org load` and `qilu data load`.

Residents are written in batches as they are generated; only the few the other files name
(staff, legal representatives) are remembered, by index, so a large scale streams.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session

from qilu.data import organisation
from qilu.data.catalog import get_resource, install_standard_catalog
from qilu.data.files import read_rows
from qilu.data.loading import Layout, load_rows
from qilu.data.registers import ENTITIES as ENTITY_LIBRARY
from qilu.data.registers import POPULATION
from qilu.demo import organisations, population
from qilu.demo.models import SeedRun
from qilu.demo.seed import SeedPlan, SeedReport
from qilu.errors import QiluError
from qilu.identity import roles
from qilu.identity.passwords import Profile
from qilu.pii import Vault

LEVELS = {"province": "省级", "city": "市级", "county": "县级"}
STATUS = {"active": "存续", "deregistered": "注销", "revoked": "吊销"}
SEX = {"M": "1", "F": "2"}
DEPARTMENTS = "机构.csv"
PEOPLE = "人口.csv"
ENTITIES = "法人.csv"
STAFF = "人员.csv"


@dataclass(frozen=True)
class Written:
    departments: int
    residents: int
    entities: int
    staff: int


def write_files(folder: Path, plan: SeedPlan) -> Written:
    """Write the four files into `folder` (made if missing; existing files are replaced)."""
    folder.mkdir(parents=True, exist_ok=True)
    departments = organisations.department_rows()
    codes = {d.id: d.code for d in departments}
    with _writer(folder / DEPARTMENTS) as out:
        out.writerow(["机构编码", "机构名称", "机构类别", "层级", "行政区划", "上级机构编码",
                      "统一社会信用代码"])  # fmt: skip
        for d in departments:
            parent = codes[d.parent_id] if d.parent_id else ""
            out.writerow([d.code, d.name, d.kind, LEVELS[d.level], d.division_code, parent, d.uscc])
    staff = list(organisations.staff_rows(plan.seed, plan.residents, departments))
    entities = [
        row
        for start in range(0, plan.entities, population.BATCH)
        for row in organisations.entity_rows(
            plan.seed, plan.residents, start, min(start + population.BATCH, plan.entities)
        )
    ]
    # The residents the other files name: staff and legal representatives (person id = index + 1).
    wanted = {person_id - 1 for _, _, person_id, _ in staff}
    wanted |= {int(str(row[6])) - 1 for row in entities}
    named: dict[int, population.Resident] = {}
    with _writer(folder / PEOPLE) as out:
        out.writerow(["公民身份号码", "姓名", "性别", "出生日期", "民族代码", "户籍地行政区划",
                      "住址", "联系电话"])  # fmt: skip
        for start in range(0, plan.residents, population.BATCH):
            stop = min(start + population.BATCH, plan.residents)
            for index, r in enumerate(population.plain_residents(plan.seed, start, stop), start):
                out.writerow([r.id_number, r.name, SEX[r.sex], r.birth_date.isoformat(),
                              r.ethnicity, r.household, r.address, r.phone or ""])  # fmt: skip
                if index in wanted:
                    named[index] = r
    with _writer(folder / ENTITIES) as out:
        out.writerow(["统一社会信用代码", "名称", "行业门类", "住所行政区划", "住所",
                      "法定代表人姓名", "法定代表人公民身份号码", "注册资本（万元）", "成立日期",
                      "登记状态"])  # fmt: skip
        for _, uscc, name, industry, division, address, person_id, capital, on, status in entities:
            representative = named[int(str(person_id)) - 1]
            out.writerow([uscc, name, industry, division, address, representative.name,
                          representative.id_number, capital, on, STATUS[str(status)]])  # fmt: skip
    with _writer(folder / STAFF) as out:
        out.writerow(["公民身份号码", "姓名", "机构编码", "职务", "角色"])
        for _, department_id, person_id, title in staff:
            person = named[person_id - 1]
            out.writerow([person.id_number, person.name, codes[department_id], title, ""])
    return Written(len(departments), plan.residents, len(entities), len(staff))


@contextmanager
def _writer(path: Path) -> Iterator[Any]:
    """A CSV file in UTF-8 with the BOM spreadsheet programs write, as the exports come."""
    with path.open("w", encoding="utf-8-sig", newline="") as handle:
        yield csv.writer(handle)


def load_files(
    session: Session, vault: Vault, folder: Path, plan: SeedPlan, *, profile: Profile
) -> SeedReport:
    """Load the four files as a province going live would (`qilu org load`, `qilu data load`):
    the demo's departments, residents, entities and staff arrive through the loaders, checks and
    register derivation that production runs. Every row must load."""
    with (folder / DEPARTMENTS).open("rb") as stream:
        _, rows = organisation.read(stream, DEPARTMENTS)
        departments = organisation.load_departments(session, rows, source=DEPARTMENTS)
    install_standard_catalog(session)  # its resources name their providing departments
    loads = {}
    for code, name in ((POPULATION, PEOPLE), (ENTITY_LIBRARY, ENTITIES)):
        with (folder / name).open("rb") as stream:
            fields = Layout.of(session, get_resource(session, code)).fields
            loads[code] = load_rows(
                session, vault, code, read_rows(stream, name, fields), source=name,
                actor=roles.OPERATOR,
            )  # fmt: skip
    with (folder / STAFF).open("rb") as stream:
        _, rows = organisation.read(stream, STAFF)
        staff = organisation.load_staff(session, vault, rows, source=STAFF, profile=profile)
    problems = [
        (name, p)
        for name, found in (
            (DEPARTMENTS, departments.problems),
            (PEOPLE, loads[POPULATION].problems),
            (ENTITIES, loads[ENTITY_LIBRARY].problems),
            (STAFF, staff.problems),
        )
        for p in found
    ]
    if problems:  # the generator and the loaders disagree: a bug, not bad data
        name, first = problems[0]
        raise QiluError(
            "seed.files_refused",
            f"合成文件有 {len(problems)} 处未能加载，首个：{name} 第 {first['row']} 行 "
            f"{first['field']}：{first['reason']}",
        )
    report = SeedReport(plan.residents, plan.entities, departments.added, staff.added)
    session.add(
        SeedRun(
            seed=plan.seed,
            residents=report.residents,
            entities=report.entities,
            departments=report.departments,
            staff=report.staff,
        )
    )
    session.flush()
    return report
