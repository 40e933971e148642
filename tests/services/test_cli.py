"""`qilu archive verify` on a real data folder: intact packages pass, a changed file fails."""

from __future__ import annotations

import stat
from dataclasses import astuple
from datetime import date
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from qilu.codes.idcard import make_id_number
from qilu.data.catalog import install_standard_catalog
from qilu.data.loading import load_rows
from qilu.db import make_engine, upgrade
from qilu.demo import organisations
from qilu.demo.seed import write_rows
from qilu.filestore import file_store
from qilu.identity.roles import OPERATOR
from qilu.pii import load_vault
from qilu.services import applications, archive
from qilu.services.catalog import install_catalog
from qilu.services.models import ServiceItem
from qilu.settings import Settings
from qilu.workdays import beijing_today

from ..conftest import make_settings
from ..factories import make_person
from ..test_cli import run


def archived_store(settings: Settings) -> Path:
    """Migrate the store and fill it with one finished, archived application (高龄津贴 of a
    resident known to the population library); returns the package's folder."""
    tmp_path = settings.data_dir
    engine = make_engine(settings)
    upgrade(engine)
    vault = load_vault(settings)
    number = make_id_number("370102", date(1941, 2, 3), 17)
    with Session(engine) as session, session.begin():
        columns = ["id", "code", "kind", "name", "level", "division_code", "parent_id", "uscc"]
        rows = [astuple(d) for d in organisations.department_rows()]
        write_rows(session.connection(), "departments", columns, rows)
        install_standard_catalog(session)
        install_catalog(session)
        elder = make_person(session, vault, name="赵奶奶", id_number=number, phone=None)
        row = {
            "id_number": number,
            "name": "赵奶奶",
            "sex": "2",
            "birth_date": "1941-02-03",
            "household_division": "370102",
            "address": "历下区",
            "phone": "13600001111",
        }
        load_rows(session, vault, "JC-RK-001", enumerate([row], 1), source="t", actor=OPERATOR)
        item = session.scalars(
            select(ServiceItem).where(ServiceItem.name == "高龄津贴申领", ServiceItem.is_current)
        ).one()
        started = applications.start(session, vault, applicant=elder, item_code=item.code)
        application = applications.submit(
            session, vault, started.application, actor_person_id=elder.id
        )
        assert application.status == "done"
        package = archive.archive_application(
            session, vault, file_store(tmp_path), tmp_path, application, fonds="Q001"
        )
        path = tmp_path / package.path
    engine.dispose()
    return path


def store_env(settings: Settings) -> dict[str, str]:
    """The environment a `qilu` command needs to reach this store under its keys."""
    env = {
        "QILU_DATA_DIR": str(settings.data_dir),
        "QILU_PII_KEY": settings.pii_key.get_secret_value(),  # type: ignore[union-attr]
        "QILU_INDEX_KEY": settings.index_key.get_secret_value(),  # type: ignore[union-attr]
    }
    if settings.database_url:
        env["QILU_DATABASE_URL"] = settings.database_url
    return env


def test_archive_verify_passes_intact_packages_and_catches_a_changed_one(tmp_path: Path) -> None:
    settings = make_settings(tmp_path)
    path = archived_store(settings)
    env = store_env(settings)
    intact = run("archive", "verify", env=env)
    assert intact.returncode == 0, intact.stderr
    assert "共 1 个归档包，1 个完好" in intact.stdout
    metadata = path / "data" / "metadata.json"
    metadata.chmod(metadata.stat().st_mode | stat.S_IWUSR)
    metadata.write_text(metadata.read_text("utf-8").replace("赵奶奶", "钱奶奶"), "utf-8")
    broken = run("archive", "verify", env=env)
    assert broken.returncode == 1
    assert "metadata.json" in broken.stdout and "1 个校验失败" in broken.stdout


def test_archive_check_and_transfer_from_the_command_line(tmp_path: Path) -> None:
    settings = make_settings(tmp_path)
    path = archived_store(settings)
    env = store_env(settings)
    checked = run("archive", "check", env=env)
    assert checked.returncode == 0, checked.stderr
    assert "Q001-ZW·" in checked.stdout and "通过" in checked.stdout
    assert "安全性·病毒检测：提示" in checked.stdout  # said, not hidden
    target = tmp_path / "handed-over"
    moved = run("archive", "transfer", "--to", str(target), env=env)
    assert moved.returncode == 0, moved.stderr
    assert "已移交 1 个归档包" in moved.stdout and (target / "移交清单.json").is_file()
    form = path / "data" / "form.json"
    form.chmod(form.stat().st_mode | stat.S_IWUSR)
    form.write_text("{}", "utf-8")
    failed = run("archive", "check", env=env)
    assert failed.returncode == 1 and "不通过" in failed.stdout


def test_national_reconcile_from_the_command_line(tmp_path: Path) -> None:
    settings = make_settings(tmp_path)
    archived_store(settings)
    env = store_env(settings)
    collected = run("national", "collect", env=env)
    assert collected.returncode == 0 and "新生成上报记录" in collected.stdout
    unsent = run("national", "resend", env=env)
    assert unsent.returncode != 0 and "QILU_NATIONAL_URL" in unsent.stderr
    today = run("national", "reconcile", "--day", beijing_today().isoformat(), env=env)
    assert today.returncode == 0, today.stderr
    assert "accept：待发送" in today.stdout and "process：待发送" in today.stdout
