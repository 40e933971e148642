"""一网通办 figures: `python -m bench.services [--residents N] [--past N] [--count N] [--keep]`.

A PostgreSQL store with N residents (1,000,000 by default, seeded as `qilu seed` does) and N
past applications with their cases and steps (1,000,000, written by SQL in the platform's
shape), the shipped catalog, and the people who act: applicants whose library records exist
(prefill reads them) and a clerk and an approver in the departments their cases go to. Kept
between runs with `--keep` (database `qilu_bench_services`), since filling it takes minutes.

Figures, each beside its target on the 2-core reference machine:
- chain submissions (我要开饭店 for an enterprise: questionnaire, prefill from the libraries,
  draft, materials, validation, fan-out to four departments, audit), in process with 8 threads:
  submissions/s and p50/p99 per submission — target ≥ 300/s, p99 ≤ 100 ms;
- completed chains: those applications driven through every step by scripted civil servants
  (accept, review, grant, finish on each case, the waiting item released on the way; one
  transaction per click) — target ≥ 50 chains/s (≈ 25 steps each);
- 秒批: 新生儿出生 from submission to issued licence, every item decided by its rule —
  target p99 ≤ 200 ms;
- over HTTP against `qilu serve --workers 2` with wrk, beside a plain endpoint of the same
  server: catalog search (random plain-Chinese queries) — target p99 ≤ 50 ms; a workbench queue
  page of a department with 20,000 open cases — target p99 ≤ 150 ms.
"""

from __future__ import annotations

import argparse
import multiprocessing
import random
import re
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable
from datetime import date, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote

from sqlalchemy import create_engine, func, select, text
from sqlalchemy.orm import Session

from bench.server import served
from qilu.data.catalog import install_standard_catalog
from qilu.data.loading import load_rows
from qilu.db import database_url, make_engine, upgrade
from qilu.demo.seed import SeedPlan, seed_shandong
from qilu.identity.accounts import register_resident
from qilu.identity.models import Account, Department, LegalEntity, Person, StaffMember
from qilu.identity.roles import OPERATOR, grant_role, roles_of
from qilu.identity.sessions import complete_second_factor, start_session
from qilu.pii import Vault, load_vault
from qilu.services import applications, cases
from qilu.services.catalog import install_catalog
from qilu.services.models import Application, Case, ServiceChain
from qilu.services.specs import shipped_catalog
from qilu.settings import Settings

DATABASE = "qilu_bench_services"
PII_KEY, INDEX_KEY = "2a" * 16, "3b" * 32  # fixed so the kept store opens next run
PASSWORD = "Bench-Services-2026"
HOME = "370102"  # the county whose departments get the busy queue and the scripted staff
QUERIES = [
    "营业执照",
    "生孩子",
    "我要开饭店",
    "公积金提取",
    "退休",
    "低保",
    "落户",
    "社保卡",
    "驾驶证",
    "结婚",
    "食品经营",
    "高龄津贴",
    "不动产",
    "医保",
    "招牌",
]
RESTAURANT_FORM = {
    "business_premises": "泉城路100号",
    "premises_area": "120",
    "business_scope": "热食类食品制售",
    "seats": "80",
    "signboard_text": "鑫华酒家",
    "signboard_size": "6x1.2",
    "reason": "增加餐饮",
}


def settings_for(url: str, folder: Path) -> Settings:
    return Settings(
        data_dir=folder,
        database_url=url,
        pii_key=PII_KEY,
        index_key=INDEX_KEY,
        log_level="warning",
        db_pool_size=THREADS_EACH + 2,
    )


def ensure_database(server: str, keep: bool) -> tuple[str, bool]:
    """The bench database URL, and whether it was already filled."""
    admin = create_engine(server, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        exists = connection.scalar(
            text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": DATABASE}
        )
        if exists and not keep:
            connection.execute(text(f"DROP DATABASE {DATABASE}"))
            exists = False
        if not exists:
            connection.execute(text(f"CREATE DATABASE {DATABASE}"))
    admin.dispose()
    url = database_url(server).set(database=DATABASE).render_as_string(hide_password=False)
    engine = create_engine(url)
    with engine.connect() as connection:
        filled = bool(
            exists
            and connection.scalar(text("SELECT to_regclass('service_applications') IS NOT NULL"))
            and connection.scalar(text("SELECT count(*) > 0 FROM persons"))
        )
    engine.dispose()
    return url, filled


def fill(settings: Settings, residents: int, past: int) -> None:
    engine = make_engine(settings)
    vault = load_vault(settings)
    upgrade(engine)
    started = time.perf_counter()
    with engine.begin() as connection:
        seed_shandong(connection, vault, SeedPlan.for_scale(residents, 2020))
    print(f"  seeded {residents:,} residents in {time.perf_counter() - started:.0f} s")
    with Session(engine) as session, session.begin():
        install_standard_catalog(session)
        install_catalog(session)
    started = time.perf_counter()
    with engine.begin() as connection:
        past_applications(connection, past)
    print(f"  wrote {past:,} past applications in {time.perf_counter() - started:.0f} s")
    engine.dispose()


def past_applications(connection: Any, count: int) -> None:
    """Finished applications (two cases, four steps each) spread over the county departments,
    and 20,000 open cases in the home county's 行政审批服务局 (the busy queue)."""
    items = (
        connection.execute(
            text("SELECT id FROM service_items WHERE is_current ORDER BY code LIMIT 2")
        )
        .scalars()
        .all()
    )
    departments = (
        connection.execute(text("SELECT id FROM departments WHERE level = 'county' ORDER BY id"))
        .scalars()
        .all()
    )
    home = connection.scalar(text(f"SELECT id FROM departments WHERE code = '{HOME}-approval'"))
    persons = connection.scalar(text("SELECT max(id) FROM persons"))
    array = "ARRAY[" + ",".join(map(str, departments)) + "]::bigint[]"
    connection.execute(
        text(f"""
        INSERT INTO service_applications (id, number, item_id, applicant_person_id, channel,
            division_code, status, answers, form, disputed, prefilled, created_at, saved_at,
            submitted_at, finished_at, version)
        SELECT g, 'SQH' || lpad(g::text, 12, '0'), {items[0]}, 1 + g % {persons}, 'online',
            '{HOME}', 'done', '{{}}', '{{"reason": "历史申请"}}', '{{}}', '[]',
            now() - (g % 700) * interval '1 day', now() - (g % 700) * interval '1 day',
            now() - (g % 700) * interval '1 day', now() - (g % 690) * interval '1 day', 2
        FROM generate_series(1, {count}) g""")
    )
    connection.execute(
        text(f"""
        INSERT INTO service_cases (id, application_id, item_id, number, implementation_code,
            department_id, state, waits_for, decision, paused_days, instant, flags, version,
            updated_at, accepted_on, due_on)
        SELECT c, (c + 1) / 2, {items[0]}, 'SQH' || lpad(((c + 1) / 2)::text, 12, '0') || '-0'
            || (1 + c % 2), 'bench', CASE WHEN c <= 40000 THEN {home}
            ELSE ({array})[1 + c % {len(departments)}] END,
            CASE WHEN c <= 40000 AND c % 2 = 0 THEN 'accepted' WHEN c <= 40000 THEN 'submitted'
            ELSE 'done' END, '[]', CASE WHEN c > 40000 THEN 'granted' END, 0, false, '[]', 5,
            now(), current_date - (c % 30), current_date + (c % 20) - 5
        FROM generate_series(1, {count * 2}) c""")
    )
    connection.execute(
        text(f"""
        INSERT INTO service_case_steps (case_id, seq, action, from_state, to_state, reason, at)
        SELECT c, s, (ARRAY['submit','accept','review','grant'])[s], 'x', 'y', '', now()
        FROM generate_series(1, {count * 2}) c, generate_series(1, 4) s""")
    )
    connection.execute(
        text("UPDATE service_applications SET status = 'in_progress' WHERE id <= 20000")
    )
    for table in ("service_applications", "service_cases"):
        connection.execute(
            text(
                f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                f"(SELECT max(id) FROM {table}))"
            )
        )
    connection.execute(text("ANALYZE"))


def people(settings: Settings, how_many: int) -> tuple[list[int], list[tuple[int, int]], int, int]:
    """Applicants (persons with library records), enterprises (entity, representative) of the
    home county with theirs, and the scripted clerk and approver; made once, found after."""
    engine = make_engine(settings)
    vault = load_vault(settings)
    with Session(engine) as session, session.begin():
        staff_ids = select(StaffMember.person_id)
        adults = session.scalars(
            select(Person)
            .where(Person.birth_date < date(1998, 1, 1), Person.id.not_in(staff_ids))
            .order_by(Person.id)
            .limit(how_many + 2)
        ).all()
        entities = session.scalars(
            select(LegalEntity)
            .where(LegalEntity.division_code == HOME, LegalEntity.status == "active")
            .order_by(LegalEntity.id)
            .limit(how_many)
        ).all()
        desk = session.scalars(
            select(StaffMember.person_id)
            .join(Department, Department.id == StaffMember.department_id)
            .where(Department.code == f"{HOME}-approval")
            .order_by(StaffMember.id)
            .limit(2)
        ).all()
        clerk, approver = (session.get_one(Person, p) for p in desk)
        applicants = adults[:-2]
        loaded = session.scalar(
            text(
                "SELECT count(*) FROM data_records r JOIN data_resources d "
                "ON d.id = r.resource_id WHERE d.code = 'JC-RK-001'"
            )
        )
        if not loaded:
            everyone = {p.id: p for p in [*applicants, *(e.legal_representative for e in entities)]}
            records = [_population(vault, p) for p in everyone.values()]
            load_rows(
                session, vault, "JC-RK-001", enumerate(records, 1), source="bench", actor=OPERATOR
            )
            firms = [_entity(e) for e in entities]
            load_rows(
                session, vault, "JC-FR-001", enumerate(firms, 1), source="bench", actor=OPERATOR
            )
        for person, role in ((clerk, "window_clerk"), (approver, "approver")):
            held = {(g.department_name, g.role) for g in roles_of(session, person.id)}
            for kind in ("approval", "emergency"):
                department = session.scalars(
                    select(Department).where(Department.code == f"{HOME}-{kind}")
                ).one()
                if (department.name, role) not in held:
                    grant_role(
                        session,
                        person_id=person.id,
                        department_code=department.code,
                        role=role,
                        profile="standard",
                        actor=OPERATOR,
                    )
        result = (
            [p.id for p in applicants],
            [(e.id, e.legal_representative_id) for e in entities],
            clerk.id,
            approver.id,
        )
    engine.dispose()
    return result


def _population(vault: Vault, person: Person) -> dict[str, Any]:
    return {
        "id_number": vault.decrypt(person.id_number_cipher, "id_number"),
        "name": person.name,
        "sex": "1" if person.sex == "M" else "2",
        "birth_date": person.birth_date.isoformat(),
        "household_division": person.household_division_code,
        "address": person.address,
        "phone": "13800000000",
    }


def _entity(entity: LegalEntity) -> dict[str, Any]:
    return {
        "uscc": entity.uscc,
        "name": entity.name,
        "industry": entity.industry_code,
        "division": entity.division_code,
        "address": entity.address,
        "legal_representative": entity.legal_representative.name,
        "registered_capital": str(entity.registered_capital),
        "established_on": entity.established_on.isoformat(),
        "status": "存续",
    }


PROCESSES, THREADS_EACH = 2, 4  # one process per core (the GIL), a few threads each


def run_parallel(
    kind: str, settings: Settings, data: Any, jobs: list[Any]
) -> tuple[float, list[float], list[Any]]:
    """Run WORK[kind] for every job on PROCESSES processes × THREADS_EACH threads; the wall
    seconds, each job's seconds, and what the jobs returned."""
    shares = [jobs[n::PROCESSES] for n in range(PROCESSES)]
    context = multiprocessing.get_context("spawn")
    with context.Pool(PROCESSES) as pool:
        started = time.perf_counter()
        parts = pool.starmap(_process, [(kind, settings, data, share) for share in shares])
        seconds = time.perf_counter() - started
    latencies = [t for part in parts for t in part[0]]
    results = [r for part in parts for r in part[1]]
    return seconds, latencies, results


def _process(
    kind: str, settings: Settings, data: Any, jobs: list[Any]
) -> tuple[list[float], list[Any]]:
    engine = make_engine(settings)
    vault = load_vault(settings)
    work = WORK[kind]
    shipped_catalog()  # read the catalog files before the clock starts, as a server would
    latencies: list[float] = []
    results: list[Any] = []
    lock = threading.Lock()
    errors: list[Exception] = []
    pending = iter(jobs)

    def worker() -> None:
        while True:
            with lock:
                job = next(pending, None)
            if job is None:
                return
            started = time.perf_counter()
            try:
                result = work(engine, vault, data, job)
            except Exception as error:  # reported after the run
                errors.append(error)
                return
            spent = time.perf_counter() - started
            with lock:
                latencies.append(spent)
                results.append(result)

    threads = [threading.Thread(target=worker) for _ in range(THREADS_EACH)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    engine.dispose()
    if errors:
        raise errors[0]
    return latencies, results


def pct(values: list[float], q: float) -> float:
    return sorted(values)[min(len(values) - 1, int(len(values) * q))] * 1000


def chain_code(engine: Any, name: str) -> str:
    with Session(engine) as session:
        return session.scalars(
            select(ServiceChain.code).where(ServiceChain.name == name, ServiceChain.is_current)
        ).one()


def _submit_restaurant(
    engine: Any, vault: Vault, data: dict[str, Any], job: tuple[int, int]
) -> int:
    entity_id, representative_id = job
    with Session(engine) as session, session.begin():
        entity = session.get_one(LegalEntity, entity_id)
        person = session.get_one(Person, representative_id)
        started = applications.start(
            session,
            vault,
            applicant=person,
            entity=entity,
            chain_code=data["code"],
            answers=data["answers"],
        )
        application = started.application
        applications.save_draft(session, application, RESTAURANT_FORM)
        applications.promise_missing(session, vault, application)  # 承诺后补, one click
        applications.submit(session, vault, application, actor_person_id=person.id)
        return application.id


def _drive(engine: Any, vault: Vault, data: dict[str, int], application_id: int) -> int:
    """Every step of every case of one application, one transaction per click."""
    steps = 0
    while True:
        with Session(engine) as session:
            open_cases = session.execute(
                select(Case.id, Case.state, Case.version)
                .where(
                    Case.application_id == application_id,
                    Case.state.not_in(cases.FINAL | {"waiting"}),
                )
                .order_by(Case.id)
            ).all()
        if not open_cases:
            return steps
        for case_id, state, version in open_cases:
            action = {
                "submitted": "accept",
                "accepted": "review",
                "reviewing": "grant",
                "granted": "finish",
            }[state]
            who = data["clerk"] if action == "accept" else data["approver"]
            with Session(engine) as session, session.begin():
                cases.act(
                    session, vault, case_id, action, actor_person_id=who, expected_version=version
                )
            steps += 1


def _submit_newborn(engine: Any, vault: Vault, data: dict[str, Any], person_id: int) -> bool:
    with Session(engine) as session, session.begin():
        person = session.get_one(Person, person_id)
        started = applications.start(
            session,
            vault,
            applicant=person,
            chain_code=data["code"],
            answers={"born_in_shandong": "yes", "medical": "no"},
        )
        applications.save_draft(session, started.application, data["child"])
        application = applications.submit(
            session, vault, started.application, actor_person_id=person.id
        )
        return application.status == "done"


WORK: dict[str, Callable[..., Any]] = {
    "restaurant": _submit_restaurant,
    "drive": _drive,
    "newborn": _submit_newborn,
}


def submissions(settings: Settings, firms: list[tuple[int, int]], count: int) -> list[int]:
    engine = make_engine(settings)
    data = {
        "code": chain_code(engine, "开办餐饮店"),
        "answers": {"area": "big", "scope": "no", "signboard": "yes"},
    }
    engine.dispose()
    jobs = [firms[n % len(firms)] for n in range(count)]
    seconds, latencies, made = run_parallel("restaurant", settings, data, jobs)
    threads = PROCESSES * THREADS_EACH
    print(
        f"chain submissions (开办餐饮店: 5 cases in 2 departments), {threads} threads in "
        f"{PROCESSES} processes, {count:,}:"
    )
    verdict = "meets" if count / seconds >= 300 and pct(latencies, 0.99) <= 100 else "MISSES"
    print(
        f"    {count / seconds:,.0f} submissions/s, p50 {pct(latencies, 0.5):.1f} ms, "
        f"p99 {pct(latencies, 0.99):.1f} ms  (target ≥ 300/s, p99 ≤ 100 ms: {verdict})"
    )
    return made


def drive(settings: Settings, made: list[int], clerk: int, approver: int) -> None:
    seconds, _, steps = run_parallel(
        "drive", settings, {"clerk": clerk, "approver": approver}, made
    )
    engine = make_engine(settings)
    with Session(engine) as session:
        done = (
            session.scalar(
                select(func.count())
                .select_from(Application)
                .where(Application.id.in_(made), Application.status == "done")
            )
            or 0
        )
    engine.dispose()
    total = sum(steps)
    per_chain = (total + 5 * len(made)) / len(made)  # the five submit steps count too
    verdict = "meets" if done / seconds >= 50 else "MISSES"
    print(
        f"completed chains driven by scripted civil servants: {done:,} of {len(made):,} done, "
        f"{done / seconds:,.1f} chains/s = {total / seconds:,.0f} steps/s "
        f"(≈ {per_chain:.0f} steps each; target ≥ 50 chains/s: {verdict})"
    )


def instant(settings: Settings, applicants: list[int], count: int) -> None:
    engine = make_engine(settings)
    born = (date.today() - timedelta(days=3)).isoformat()
    data = {
        "code": chain_code(engine, "新生儿出生"),
        "child": {
            "child_name": "王小宝",
            "child_sex": "男",
            "child_birth_date": born,
            "birth_place": "医院",
            "mother_name": "王丽",
            "father_name": "张伟",
            "bank_account": "6222020200112233445",
        },
    }
    engine.dispose()
    jobs = [applicants[(n * 7919) % len(applicants)] for n in range(count)]
    seconds, latencies, done = run_parallel("newborn", settings, data, jobs)
    verdict = "meets" if pct(latencies, 0.99) <= 200 else "MISSES"
    print(
        f"秒批 新生儿出生 (4 items decided by their rules, a licence issued and registered): "
        f"{sum(done):,} of {count:,} finished at submission, {count / seconds:,.0f}/s, "
        f"p50 {pct(latencies, 0.5):.1f} ms, p99 {pct(latencies, 0.99):.1f} ms "
        f"(target p99 ≤ 200 ms: {verdict})"
    )


def wrk(args: list[str], seconds: int, connections: int = 16) -> tuple[float, float, float]:
    out = subprocess.run(
        ["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "--latency", *args],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", out)[1])  # type: ignore[index]

    def ms(label: str) -> float:
        value, unit = re.search(rf"{label}\s+([\d.]+)(us|ms|s)", out).groups()  # type: ignore[union-attr]
        return float(value) * {"us": 0.001, "ms": 1, "s": 1000}[unit]

    return rate, ms("50%"), ms("99%")


def over_http(settings: Settings, approver: int, seconds: int) -> None:
    engine = make_engine(settings)
    with Session(engine) as session, session.begin():
        person = session.get_one(Person, approver)
        vault = load_vault(settings)
        account = session.scalars(select(Account).where(Account.person_id == person.id)).first()
        if account is None:
            account = register_resident(
                session,
                vault,
                name=person.name,
                id_number=vault.decrypt(person.id_number_cipher, "id_number"),
                password=PASSWORD,
                profile="standard",
            )
        token, web_session = start_session(
            session,
            account,
            assurance=3,
            profile="standard",
            client_address="127.0.0.1",
            user_agent="wrk",
        )
        complete_second_factor(web_session)
    engine.dispose()
    env = {
        "QILU_DATABASE_URL": str(settings.database_url),
        "QILU_PII_KEY": PII_KEY,
        "QILU_INDEX_KEY": INDEX_KEY,
        "QILU_DATA_DIR": str(settings.data_dir),
    }
    script = Path(tempfile.mkdtemp()) / "search.lua"
    queries = ", ".join(f'"{quote(q)}"' for q in QUERIES)
    script.write_text(
        f"local q = {{{queries}}}\n"
        "request = function()\n"
        "  return wrk.format('GET', '/services?q=' .. q[math.random(#q)])\n"
        "end\n",
        encoding="utf-8",
    )
    with served(env, 8093) as base:
        wrk(["-s", str(script), base], 2)  # warm up: templates compiled, pools filled
        plain = wrk([f"{base}/api/v1/codes/check?value=11010519491231002X"], seconds)
        search = wrk(["-s", str(script), base], seconds)
        cookie = ["-H", f"Cookie: qilu_session={token}", f"{base}/workbench/cases?tab=accept"]
        queue = wrk(cookie, seconds)
        # The same pages with 4 clients at a time: latency without the queueing of 16.
        search4 = wrk(["-s", str(script), base], seconds, connections=4)
        queue4 = wrk(cookie, seconds, connections=4)
    print(f"over HTTP (qilu serve --workers 2, wrk 2 threads x 16 connections, {seconds} s each):")
    print(
        f"    plain endpoint: {plain[0]:,.0f} requests/s, "
        f"p50 {plain[1]:.1f} ms, p99 {plain[2]:.1f} ms"
    )
    for name, figures, target in (
        ("catalog search", search, 50),
        ("workbench queue page", queue, 150),
        ("catalog search, 4 clients", search4, 50),
        ("workbench queue page, 4 clients", queue4, 150),
    ):
        verdict = "meets" if figures[2] <= target else "MISSES"
        print(
            f"    {name}: {figures[0]:,.0f} requests/s = {figures[0] / plain[0]:.2f} x plain, "
            f"p50 {figures[1]:.1f} ms, p99 {figures[2]:.1f} ms "
            f"(target p99 ≤ {target} ms: {verdict})"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--server", default="postgresql://127.0.0.1:5432/postgres")
    parser.add_argument("--residents", type=int, default=1_000_000)
    parser.add_argument("--past", type=int, default=1_000_000)
    parser.add_argument("--count", type=int, default=2_000, help="submissions to time")
    parser.add_argument("--seconds", type=int, default=15)
    parser.add_argument("--keep", action="store_true", help="keep (and reuse) the filled store")
    args = parser.parse_args()
    url, filled = ensure_database(args.server, args.keep)
    folder = Path(tempfile.mkdtemp(prefix="qilu-bench-services-"))
    settings = settings_for(url, folder)
    if not filled:
        print(f"filling {DATABASE}: {args.residents:,} residents, {args.past:,} past applications")
        fill(settings, args.residents, args.past)
    applicants, firms, clerk, approver = people(settings, 3_000)
    random.seed(7)
    made = submissions(settings, firms, args.count)
    drive(settings, made[: args.count // 2], clerk, approver)
    instant(settings, applicants, args.count // 2)
    over_http(settings, approver, args.seconds)


if __name__ == "__main__":
    main()
