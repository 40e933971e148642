"""The command line as an operator meets it: real processes, exit codes, one-line errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from qilu.codes.idcard import make_id_number
from qilu.codes.uscc import make_uscc
from qilu.data import sharing
from qilu.db import head_revision, make_engine
from qilu.identity import roles
from qilu.identity.service import find_person
from qilu.pii import load_vault
from qilu.services import applications, archive
from qilu.services.models import ServiceItem
from qilu.settings import Settings
from qilu.web import create_app

from .servers import free_port, wait_until_healthy


def run(
    *args: str, stdin: str | None = None, env: dict[str, str] | None = None, user: int | None = None
) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "qilu.entry", *args]  # as the installed `qilu`
    if user is not None:
        command = ["setpriv", f"--reuid={user}", f"--regid={user}", "--clear-groups", *command]
    return subprocess.run(
        command,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "COLUMNS": "200", **(env or {})},
    )


def assert_one_line_error(result: subprocess.CompletedProcess[str], *fragments: str) -> None:
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("错误：")
    for fragment in fragments:
        assert fragment in lines[0]


def test_codes_check_prints_one_line_per_value_and_exit_code() -> None:
    uscc = make_uscc("9", "1", "370102", "MA3C5W2B")
    result = run("codes", "check", "11010519491231002X", uscc)
    assert result.returncode == 0
    lines = result.stdout.splitlines()
    assert lines[0].split("\t")[:2] == ["11010519491231002X", "ok"]
    assert lines[1].split("\t")[:2] == [uscc, "ok"]
    assert "统一社会信用代码" in lines[1]


def test_codes_check_fails_on_garbage_naming_the_reason() -> None:
    result = run("codes", "check", "11010519491231002X", "not-a-code", "370102199003073510")
    assert result.returncode == 1
    lines = [line.split("\t") for line in result.stdout.splitlines()]
    assert [line[1] for line in lines] == ["ok", "error", "error"]
    assert lines[2][2].startswith("id_number.check_digit:") and "第 18 位" in lines[2][2]
    assert "Traceback" not in result.stderr


def test_codes_check_reads_standard_input() -> None:
    values = "11010519491231002X\n\n370102900307351\r\n91350100M000100Y43\n"
    result = run("codes", "check", "-", stdin=values)
    assert result.returncode == 0
    assert len(result.stdout.splitlines()) == 3
    assert "由 15 位号码升级" in result.stdout.splitlines()[1]


def test_strict_makes_warnings_fail() -> None:
    unknown_county = make_id_number("370199", date(1980, 1, 1), 123)
    assert run("codes", "check", unknown_county).returncode == 0
    assert run("codes", "check", "--strict", unknown_county).returncode == 1


def test_negative_scale_is_a_one_line_usage_error(tmp_path: Path) -> None:
    result = run("seed", "--scale", "-1", env={"QILU_DATA_DIR": str(tmp_path)})
    assert result.returncode == 2
    assert_one_line_error(result, "--scale")


def test_unreachable_database_is_a_one_line_error(tmp_path: Path) -> None:
    env = {
        "QILU_DATA_DIR": str(tmp_path),
        "QILU_DATABASE_URL": "postgresql://qilu:hunter2@127.0.0.1:1/qilu",
    }
    result = run("db", "upgrade", env=env)
    assert_one_line_error(result, "QILU_DATABASE_URL", "127.0.0.1")
    assert "hunter2" not in result.stderr


def test_invalid_setting_is_a_one_line_error(tmp_path: Path) -> None:
    result = run("db", "upgrade", env={"QILU_DATA_DIR": str(tmp_path), "QILU_PORT": "abc"})
    assert_one_line_error(result, "QILU_PORT")


@pytest.fixture
def read_only_folder() -> Iterator[tuple[Path, int | None]]:
    """A folder the command cannot write: mode 555, run as nobody when we are root."""
    root = Path(tempfile.mkdtemp(prefix="qilu-ro-"))
    root.chmod(0o755)
    folder = root / "data"
    folder.mkdir(mode=0o555)
    folder.chmod(0o555)
    yield folder, 65534 if os.geteuid() == 0 else None
    folder.chmod(0o755)
    subprocess.run(["rm", "-rf", str(root)], check=False)


def test_read_only_data_folder_is_a_one_line_error(
    read_only_folder: tuple[Path, int | None],
) -> None:
    folder, user = read_only_folder
    result = run("db", "upgrade", env={"QILU_DATA_DIR": str(folder)}, user=user)
    assert_one_line_error(result, str(folder), "QILU_DATA_DIR")


def test_seed_then_upgrade_on_a_fresh_folder(tmp_path: Path) -> None:
    env = {"QILU_DATA_DIR": str(tmp_path / "data")}
    result = run("seed", "--scale", "150", "--entities", "10", env=env)
    assert result.returncode == 0, result.stderr
    assert "居民 150" in result.stdout
    assert (tmp_path / "data" / "qilu.db").exists()
    assert (tmp_path / "data" / "keys.json").exists()
    again = run("seed", "--scale", "150", env=env)
    assert_one_line_error(again, "--reset")
    assert run("seed", "--scale", "120", "--reset", env=env).returncode == 0
    upgraded = run("db", "upgrade", env=env)
    assert upgraded.returncode == 0 and str(head_revision()) in upgraded.stdout


def _start_demo(env: dict[str, str], port: int) -> tuple[subprocess.Popen[str], str]:
    process = subprocess.Popen(
        [sys.executable, "-m", "qilu.cli", "demo", "--port", str(port)],
        env={**os.environ, **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    lines = []
    assert process.stdout is not None
    for line in process.stdout:
        lines.append(line)
        if "API 文档" in line:
            break
    wait_until_healthy(f"http://127.0.0.1:{port}")
    return process, "".join(lines)


def test_demo_serves_and_reuses_its_data(tmp_path: Path) -> None:
    env = {"QILU_DATA_DIR": str(tmp_path / "data"), "QILU_DEMO_SCALE": "300"}
    port = free_port()
    process, printed = _start_demo(env, port)
    try:
        assert f"http://127.0.0.1:{port}/" in printed and "已生成合成数据" in printed
        home = httpx.get(f"http://127.0.0.1:{port}/", timeout=5)
        assert home.status_code == 200 and 'data-stat="residents">300<' in home.text
    finally:
        process.terminate()
        process.wait(timeout=10)
    process, printed = _start_demo(env, port)
    try:
        assert "沿用已有数据" in printed
    finally:
        process.terminate()
        process.wait(timeout=10)


def test_serving_an_unmigrated_store_is_refused(tmp_path: Path) -> None:
    result = run("serve", env={"QILU_DATA_DIR": str(tmp_path)})
    assert_one_line_error(result, "qilu db upgrade")


def test_audit_verify_reports_the_first_broken_link(tmp_path: Path) -> None:
    import sqlite3

    from sqlalchemy.orm import Session

    from qilu.audit.service import record
    from qilu.db import make_engine, upgrade
    from qilu.settings import Settings

    env = {"QILU_DATA_DIR": str(tmp_path)}
    engine = make_engine(Settings(data_dir=tmp_path))
    upgrade(engine)
    with Session(engine) as session, session.begin():
        for number in range(5):
            record(session, "test.entry", details={"n": number}, chain=0)
    engine.dispose()
    intact = run("audit", "verify", env=env)
    assert intact.returncode == 0 and "共 5 条记录" in intact.stdout
    with sqlite3.connect(tmp_path / "qilu.db") as raw:
        raw.execute("DROP TRIGGER audit_events_no_update")
        raw.execute("""UPDATE audit_events SET details = '{"n": 99}' WHERE seq = 3""")
    broken = run("audit", "verify", env=env)
    assert broken.returncode == 1
    assert "第 3 条" in broken.stdout and "此前 2 条记录校验通过" in broken.stdout


def test_users_add_and_reset_password(tmp_path: Path) -> None:
    from sqlalchemy.orm import Session

    from qilu.db import make_engine
    from qilu.identity.accounts import authenticate
    from qilu.pii import load_vault
    from qilu.settings import Settings

    from .factories import make_person

    settings = Settings(data_dir=tmp_path)
    engine = make_engine(settings)
    env = {"QILU_DATA_DIR": str(tmp_path)}
    assert run("db", "upgrade", env=env).returncode == 0
    vault = load_vault(settings)
    with Session(engine) as session, session.begin():
        make_person(session, vault, name="赵敏", id_number="11010519491231002X")
    added = run(
        "users",
        "add",
        "--id-number",
        "11010519491231002X",
        "--name",
        "赵敏",
        stdin="first-Pass-2026\n",
        env=env,
    )
    assert added.returncode == 0, added.stderr
    again = run(
        "users",
        "add",
        "--id-number",
        "11010519491231002X",
        "--name",
        "赵敏",
        stdin="first-Pass-2026\n",
        env=env,
    )
    assert_one_line_error(again, "已注册")
    weak = run("users", "reset-password", "11010519491231002X", stdin="short\n", env=env)
    assert_one_line_error(weak, "至少 10 个字符")
    reset = run(
        "users", "reset-password", "11010519491231002X", stdin="second-Pass-2027\n", env=env
    )
    assert reset.returncode == 0, reset.stderr
    with Session(engine) as session, session.begin():
        assert authenticate(
            session,
            vault,
            id_number="11010519491231002X",
            password="second-Pass-2027",
            profile="standard",
            client_address="test",
        )
    missing = run("users", "reset-password", "370102199003073516", stdin="x-Pass-20277\n", env=env)
    assert_one_line_error(missing, "没有账号")
    no_password = run("users", "reset-password", "11010519491231002X", stdin="", env=env)
    assert_one_line_error(no_password, "标准输入")


def test_users_grant_makes_a_civil_servant(tmp_path: Path) -> None:
    env = {"QILU_DATA_DIR": str(tmp_path)}
    assert run("seed", "--scale", "200", "--entities", "0", env=env).returncode == 0
    from sqlalchemy import select
    from sqlalchemy.orm import Session

    from qilu.db import make_engine
    from qilu.identity.models import Person
    from qilu.identity.roles import roles_of
    from qilu.identity.service import id_number_of
    from qilu.pii import load_vault
    from qilu.settings import Settings

    settings = Settings(data_dir=tmp_path)
    with Session(make_engine(settings)) as session:
        person = session.scalars(select(Person).order_by(Person.id.desc()).limit(1)).one()
        number, person_id = id_number_of(load_vault(settings), person), person.id
    granted = run(
        "users",
        "grant",
        number,
        "--department",
        "370100-bigdata",
        "--role",
        "data_steward",
        env=env,
    )
    assert granted.returncode == 0 and "数据管理" in granted.stdout
    with Session(make_engine(settings)) as session:
        assert [g.role for g in roles_of(session, person_id)] == ["data_steward"]
    unknown = run(
        "users", "grant", number, "--department", "370100-bigdata", "--role", "king", env=env
    )
    assert_one_line_error(unknown, "king")


def test_keys_rotate(tmp_path: Path) -> None:
    from sqlalchemy.orm import Session

    from qilu.db import make_engine
    from qilu.identity.signing_keys import published_jwks
    from qilu.settings import Settings

    env = {"QILU_DATA_DIR": str(tmp_path)}
    assert run("db", "upgrade", env=env).returncode == 0
    with Session(make_engine(Settings(data_dir=tmp_path))) as session:
        assert len(published_jwks(session)["keys"]) == 1  # from the first start, never empty
    first = run("keys", "rotate", env=env)
    second = run("keys", "rotate", env=env)
    assert first.returncode == second.returncode == 0 and "10 分钟后开始签名" in second.stdout
    with Session(make_engine(Settings(data_dir=tmp_path))) as session:
        # the first key (made by the upgrade) and the two published ahead
        assert len(published_jwks(session)["keys"]) == 3
    urgent = run("keys", "rotate", "--compromised", env=env)
    assert urgent.returncode == 0 and "已立即启用" in urgent.stdout
    with Session(make_engine(Settings(data_dir=tmp_path))) as session:
        assert len(published_jwks(session)["keys"]) == 1


def test_clients_add_prints_the_secret_once(tmp_path: Path) -> None:
    import json

    env = {"QILU_DATA_DIR": str(tmp_path)}
    assert run("db", "upgrade", env=env).returncode == 0
    confidential = run(
        "clients",
        "add",
        "济南市社保系统",
        "--redirect-uri",
        "https://sb.jinan.example/callback",
        env=env,
    )
    assert confidential.returncode == 0, confidential.stderr
    body = json.loads(confidential.stdout)
    assert body["client_secret"] and len(body["client_id"]) >= 20
    public = run(
        "clients", "add", "App", "--redirect-uri", "http://127.0.0.1:9/cb", "--public", env=env
    )
    assert json.loads(public.stdout)["client_secret"] is None
    bad = run("clients", "add", "X", "--redirect-uri", "http://evil.example/cb", env=env)
    assert_one_line_error(bad, "https")


def test_clients_add_service_binds_a_system_to_its_department(tmp_path: Path) -> None:
    import json

    env = {"QILU_DATA_DIR": str(tmp_path)}
    assert run("seed", "--scale", "100", "--entities", "10", env=env).returncode == 0
    made = run(
        "clients", "add-service", "历下区审批系统", "--department", "370102-approval", env=env
    )
    assert made.returncode == 0, made.stderr
    body = json.loads(made.stdout)
    assert body["client_secret"] and body["department"] == "370102-approval"
    bad = run("clients", "add-service", "X", "--department", "nowhere", env=env)
    assert_one_line_error(bad, "nowhere")


def test_data_catalog_install_and_publish(tmp_path: Path) -> None:
    env = {"QILU_DATA_DIR": str(tmp_path)}
    seeded = run("seed", "--scale", "100", "--entities", "10", env=env)
    assert seeded.returncode == 0 and "数据资源记录" in seeded.stdout  # seeding installs it
    again = run("data", "catalog", "install", env=env)
    assert again.returncode == 0 and "均已存在" in again.stdout
    bad = tmp_path / "bad.yaml"
    bad.write_text("code: YW-X-1\nname: 坏的\nfields: []\n", encoding="utf-8")
    refused = run("data", "catalog", "publish", str(bad), env=env)
    assert refused.returncode != 0 and "资源定义有误" in refused.stderr
    assert len(refused.stderr.strip().splitlines()) == 1
    good = tmp_path / "dogs.yaml"
    good.write_text(
        """
code: YW-JN-001
name: 济南市养犬登记
provider: 370100-public_security
library: business
topic: 养犬管理
sharing: unconditional
update_cycle: daily
legal_basis: 《济南市养犬管理条例》
fields:
  - {name: tag, label: 犬牌号, type: string, required: true, key: true}
""",
        encoding="utf-8",
    )
    published = run("data", "catalog", "publish", str(good), env=env)
    assert published.returncode == 0 and "YW-JN-001" in published.stdout
    exported = run("data", "catalog", "export", env=env)
    entries = json.loads(exported.stdout)
    assert exported.returncode == 0 and "JC-RK-001" in {e["code"] for e in entries}
    whole = tmp_path / "whole.json"
    whole.write_text(exported.stdout, encoding="utf-8")
    mixed = run("data", "catalog", "cascade", str(whole), "--origin", "济南市", env=env)
    assert_one_line_error(mixed, "同一个设区市")  # provincial and city providers together
    city = tmp_path / "city.json"
    dogs = next(e for e in entries if e["code"] == "YW-JN-001")
    city.write_text(json.dumps([{**dogs, "code": "YW-JN-002"}]), encoding="utf-8")
    cascaded = run("data", "catalog", "cascade", str(city), "--origin", "济南市", env=env)
    assert cascaded.returncode == 0 and "新增 1 项" in cascaded.stdout


def test_data_load_reports_rejected_rows_in_a_file(tmp_path: Path) -> None:
    env = {"QILU_DATA_DIR": str(tmp_path)}
    assert run("seed", "--scale", "100", "--entities", "10", env=env).returncode == 0
    assert run("data", "catalog", "install", env=env).returncode == 0
    people = tmp_path / "people.csv"
    people.write_text(
        "公民身份号码,姓名,性别,出生日期,户籍地行政区划\n"
        "11010519491231002X,王芳,2,1949-12-31,110105\n"
        "370102199003073510,李强,1,1990-03-07,370102\n",
        encoding="utf-8",
    )
    loaded = run("data", "load", "JC-RK-001", str(people), env=env)
    assert loaded.returncode == 1 and "新增 1" in loaded.stdout and "拒绝 1" in loaded.stdout
    report = (tmp_path / "people.csv.errors.csv").read_text(encoding="utf-8")
    assert "3,id_number," in report
    again = run("data", "load", "JC-RK-001", str(people), env=env)
    assert "未变 1" in again.stdout
    unknown = run("data", "load", "NO-SUCH", str(people), env=env)
    assert unknown.returncode != 0 and "NO-SUCH" in unknown.stderr


def test_outbox_sweep_runs_what_is_due(tmp_path: Path) -> None:
    env = {"QILU_DATA_DIR": str(tmp_path)}
    assert run("db", "upgrade", env=env).returncode == 0
    result = run("outbox", "sweep", env=env)
    assert result.returncode == 0 and result.stdout.strip() == "已执行 0 项"


def test_a_fresh_store_goes_live_from_a_provinces_files(empty_store: Settings) -> None:
    """Issue 14, as the README's "Going live" walks it: nothing synthetic. The organisation
    tree, the population and legal-entity registers and the staff come from files shaped like
    a province's exports; a resident registers, a department system signs in and reads, an
    application runs to its archive, and the audit chain holds. On SQLite and PostgreSQL."""
    from .services.test_cli import store_env

    env, folder = store_env(empty_store), empty_store.data_dir.parent
    assert run("db", "upgrade", env=env).returncode == 0
    province = {
        "bigdata": "山东省大数据局",
        "public_security": "山东省公安厅",
        "market_regulation": "山东省市场监督管理局",
        "health": "山东省卫生健康委员会",
        "human_resources": "山东省人力资源和社会保障厅",
        "natural_resources": "山东省自然资源厅",
        "development_reform": "山东省发展和改革委员会",
    }
    providers = [(f"370000-{k}", name, k, "省级", "370000", "") for k, name in province.items()]
    providers += [
        ("370100-approval", "济南市行政审批服务局", "approval", "市级", "370100", ""),
        ("370102-approval", "历下区审批服务局", "approval", "县级", "370102", "370100-approval"),
        ("370102-civil_affairs", "历下区民政局", "civil_affairs", "县级", "370102", ""),
    ]  # fmt: skip
    lines = ["机构编码,机构名称,机构类别,层级,行政区划,上级机构编码,统一社会信用代码"]
    for n, (code, name, kind, level, division, parent) in enumerate(providers):
        uscc = make_uscc("1", "1", division, f"MB2{n:05d}")
        lines.append(f"{code},{name},{kind},{level},{division},{parent},{uscc}")
    departments = folder / "机构.csv"
    departments.write_text("\n".join(lines) + "\n", encoding="utf-8")
    loaded = run("org", "load", str(departments), env=env)
    assert loaded.returncode == 0, loaded.stderr
    assert "新增 10" in loaded.stdout
    assert run("data", "catalog", "install", env=env).returncode == 0
    assert run("services", "install", env=env).returncode == 0

    clerk = make_id_number("370102", date(1985, 6, 1), 31)
    resident = make_id_number("370102", date(1990, 3, 7), 51)
    asker = make_id_number("370102", date(1988, 9, 9), 71)
    keeper = make_id_number("370102", date(1979, 1, 2), 91)
    elder = make_id_number("370102", date(1941, 2, 3), 17)
    people = folder / "人口.csv"
    people.write_text(
        "公民身份号码,姓名,性别,出生日期,户籍地行政区划,住址,联系电话\n"
        f"{clerk},周明,1,1985-06-01,370102,,\n"
        f"{resident},吴兰,1,1990-03-07,370102,,\n"
        f"{asker},郑涛,1,1988-09-09,370102,,\n"
        f"{keeper},冯霞,1,1979-01-02,370102,,\n"
        f"{elder},赵奶奶,2,1941-02-03,370102,历下区泉城路 1 号,13600001111\n",
        encoding="utf-8",
    )
    assert "新增 5" in run("data", "load", "JC-RK-001", str(people), env=env).stdout
    uscc = make_uscc("9", "1", "370102", "MA3C5W2B")
    entities = folder / "法人.csv"
    entities.write_text(
        "统一社会信用代码,名称,行业门类,住所行政区划,登记状态,成立日期,法定代表人公民身份号码\n"
        f"{uscc},济南吴兰餐饮有限公司,H,370102,存续,2021-04-01,{resident}\n",
        encoding="utf-8",
    )
    assert "新增 1" in run("data", "load", "JC-FR-001", str(entities), env=env).stdout
    staff = folder / "人员.csv"
    staff.write_text(
        "公民身份号码,姓名,机构编码,职务,角色\n"
        f"{clerk},周明,370102-approval,科员,窗口受理\n"
        f"{asker},郑涛,370102-approval,科员,数据管理\n"
        f"{keeper},冯霞,370000-public_security,科员,数据管理\n",
        encoding="utf-8",
    )
    staffed = run("org", "load", str(staff), env=env)
    assert staffed.returncode == 0 and "人员：共 3 行，新增 3" in staffed.stdout
    added = run(
        "users", "add", "--id-number", resident, "--name", "吴兰",
        stdin="Going-Live-2026\n", env=env,
    )  # fmt: skip
    assert added.returncode == 0, added.stderr
    system = run(
        "clients", "add-service", "审批局业务系统", "--department", "370102-approval", env=env
    )
    assert system.returncode == 0, system.stderr
    credentials = json.loads(system.stdout)

    engine = make_engine(empty_store)
    vault = load_vault(empty_store)
    with Session(engine) as session, session.begin():  # the stewards, in the workbench
        ask, keep = (
            roles.staff(session, find_person(session, vault, n).id) for n in (asker, keeper)
        )
        grant = sharing.request_access(
            session, "JC-RK-001", consumer="370102-approval", fields=["id_number", "name"],
            purpose="高龄津贴核验", legal_basis="《山东省老年人权益保障条例》",
            valid_until=datetime.now(UTC) + timedelta(days=30), actor=ask,
        )  # fmt: skip
        sharing.decide(session, grant.id, approve=True, reason="同意", actor=keep)
        elderly = find_person(session, vault, elder)
        item = session.scalars(
            select(ServiceItem).where(ServiceItem.name == "高龄津贴申领", ServiceItem.is_current)
        ).one()
        started = applications.start(session, vault, applicant=elderly, item_code=item.code)
        done = applications.submit(session, vault, started.application, actor_person_id=elderly.id)
        assert done.status == "done"  # 秒批 against the 人口 library just loaded
        archive.archive_when_finished(session, done)  # as the portal's submit does
    engine.dispose()
    with TestClient(create_app(empty_store)) as web:  # the department system signs in and reads
        token = web.post(
            "/oidc/token",
            data={"grant_type": "client_credentials"},
            auth=(credentials["client_id"], credentials["client_secret"]),
        ).json()["access_token"]
        read = web.post(
            "/api/v1/data/JC-RK-001/lookup",
            json={"key": elder},
            headers={"Authorization": f"Bearer {token}"},
        )
        assert read.status_code == 200, read.text
        record = read.json()["records"][0]
        assert record["data"]["name"] == "赵**" and "name" in record["masked"]  # masked
    assert run("outbox", "sweep", env=env).returncode == 0
    archived = run("archive", "verify", env=env)
    assert archived.returncode == 0 and "共 1 个归档包，1 个完好" in archived.stdout, (
        archived.stdout
    )
    bad = folder / "坏人员.csv"
    bad.write_text(f"公民身份号码,姓名,机构编码\n{clerk},周明,370199-nowhere\n", encoding="utf-8")
    refused = run("org", "load", str(bad), env=env)
    assert refused.returncode == 1 and "拒绝 1" in refused.stdout
    assert "370199-nowhere" in (folder / "坏人员.csv.errors.csv").read_text("utf-8")
    verified = run("audit", "verify", env=env)
    assert verified.returncode == 0, verified.stdout + verified.stderr
