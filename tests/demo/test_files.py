"""`qilu seed --files` (issue 14): the synthetic province as the files a real one exports, loaded
through the going-live commands without a refused row, is the province `qilu seed` stores."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from qilu.db import make_engine
from qilu.identity.models import Department, LegalEntity, Person, StaffMember
from qilu.identity.service import id_number_of
from qilu.pii import load_vault
from qilu.settings import Settings

from ..conftest import make_settings
from ..services.test_cli import store_env
from ..test_cli import run


def census(settings: Settings) -> dict[str, object]:
    """What identity knows, comparable across stores (ID numbers in clear)."""
    engine, vault = make_engine(settings), load_vault(settings)
    with Session(engine) as session:
        found = {
            "people": sorted(id_number_of(vault, p) for p in session.scalars(select(Person))),
            "departments": sorted(session.scalars(select(Department.code))),
            "entities": sorted(session.scalars(select(LegalEntity.uscc))),
            "staff": session.scalar(select(func.count()).select_from(StaffMember)),
        }
    engine.dispose()
    return found


def test_the_seeds_files_load_through_the_going_live_commands(
    empty_store: Settings, tmp_path: Path
) -> None:
    folder = tmp_path / "exports"
    written = run("seed", "--scale", "300", "--files", str(folder))
    assert written.returncode == 0, written.stderr
    assert {p.name for p in folder.iterdir()} == {"机构.csv", "人口.csv", "法人.csv", "人员.csv"}
    env = store_env(empty_store)
    assert run("db", "upgrade", env=env).returncode == 0
    steps = [
        ("org", "load", str(folder / "机构.csv")),
        ("data", "catalog", "install"),
        ("data", "load", "JC-RK-001", str(folder / "人口.csv")),
        ("data", "load", "JC-FR-001", str(folder / "法人.csv")),
        ("org", "load", str(folder / "人员.csv")),
    ]
    for step in steps:
        done = run(*step, env=env)
        assert done.returncode == 0, (step, done.stdout, done.stderr)
        assert "拒绝" not in done.stdout or "拒绝 0" in done.stdout, done.stdout

    seeded = make_settings(tmp_path / "seeded")
    direct = run("seed", "--scale", "300", env=store_env(seeded))
    assert direct.returncode == 0, direct.stderr
    from_files, stored = census(empty_store), census(seeded)
    assert from_files == stored and len(stored["people"]) == 300  # type: ignore[arg-type]


def test_a_file_the_loaders_refuse_says_which_row_and_why(session: Session, tmp_path: Path) -> None:
    from qilu.demo.files import STAFF, load_files, write_files
    from qilu.demo.seed import SeedPlan
    from qilu.errors import QiluError

    plan = SeedPlan.for_scale(300, 5)
    write_files(tmp_path, plan)
    staff = tmp_path / STAFF
    lines = staff.read_text("utf-8-sig").splitlines()
    lines[1] = lines[1].replace(lines[1].split(",")[2], "370199-nowhere", 1)
    staff.write_text("\n".join(lines) + "\n", encoding="utf-8")
    vault = load_vault(make_settings(tmp_path / "d"))
    with pytest.raises(QiluError) as refused:
        load_files(session, vault, tmp_path, plan, profile="standard")
    assert "人员.csv 第 2 行 department" in refused.value.message
    assert "370199-nowhere" in refused.value.message
