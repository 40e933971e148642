"""Migration 0038 (issue 16): a store written with the province's own item codes is carried
over to the GB/T 39554.1 layout, cases get 实施编码 and 办件编号 by the national rule, and the
serials continue from what the migration counted."""

from __future__ import annotations

from alembic import command
from sqlalchemy import select, text
from sqlalchemy.orm import Session

from qilu.codes import items as item_codes
from qilu.db import alembic_config, make_engine, upgrade
from qilu.services.models import Case, CaseSerial, ServiceChain, ServiceItem
from qilu.services.specs import shipped_catalog
from qilu.settings import Settings

from .test_cli import archived_store


def test_old_codes_and_cases_are_carried_over(empty_store: Settings) -> None:
    archived_store(empty_store)  # at head: one 高龄津贴 case, decided by its rule
    engine = make_engine(empty_store)
    with Session(engine) as session:
        case = session.scalars(select(Case)).one()
        expected = (case.implementation_code, case.national_number)
        item_code = case.item.code
    # Back to the old layout, as a store of the previous release holds it: 7-character codes,
    # 实施编码 in the province's old form, no national number.
    with engine.begin() as connection:
        command.downgrade(alembic_config(connection), "0037")
        connection.execute(
            text("UPDATE service_cases SET implementation_code = 'old-' || implementation_code")
        )
        old = connection.execute(text("SELECT code, spec FROM service_items LIMIT 1")).one()
        assert len(old.code) == 7
    upgrade(engine)
    with Session(engine) as session:
        case = session.scalars(select(Case)).one()
        assert (case.implementation_code, case.national_number) == expected
        assert case.item.code == item_code and case.item.spec["code"] == item_code
        shipped = {i.code for i in shipped_catalog().items}
        stored = set(session.scalars(select(ServiceItem.code)))
        assert stored == shipped  # every item, not only the one used
        chain_codes = {
            entry["item"]
            for chain in session.scalars(select(ServiceChain))
            for entry in chain.spec["items"]
        }
        assert chain_codes <= shipped
        number = item_codes.parse_case_number(case.national_number or "")
        serial = session.get(CaseSerial, f"{case.implementation_code}{number.accepted_on:%Y%m%d}")
        assert serial is not None and serial.last == number.serial == 1
    engine.dispose()
