"""Migrations 0038 and 0039 (issue 16): a store written with the province's own item codes is
carried over to the GB/T 39554.1 layout, cases get 实施编码 and 办件编号 by the national rule, and
the serials continue from what the migration counted; licences issued before get their
identifiers, states and history."""

from __future__ import annotations

from datetime import date

from alembic import command
from sqlalchemy import select, text
from sqlalchemy.orm import Session

from qilu.codes import items as item_codes
from qilu.db import alembic_config, make_engine, upgrade
from qilu.identity.models import Department, Person
from qilu.pii import load_vault
from qilu.services import licences
from qilu.services.models import (
    Case,
    CaseSerial,
    Licence,
    LicenceEvent,
    ServiceChain,
    ServiceItem,
)
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


def test_licences_issued_before_get_identifiers_states_and_history(
    empty_store: Settings,
) -> None:
    """Migration 0039 on licences written before it: the identifier it gives is the one a new
    licence would get (version 001), the state is the status, and their 签发/注销 are events."""
    archived_store(empty_store)
    engine, vault = make_engine(empty_store), load_vault(empty_store)
    with Session(engine) as session, session.begin():
        elder = session.scalars(select(Person)).one()
        case_id = session.scalars(select(Case.id)).one()
        issuer = session.scalars(
            select(Department).where(Department.code == "370102-civil_affairs")
        ).one()
        made = [
            licences.issue_licence(
                session,
                vault,
                licence_type="结婚证",
                years=0,
                holder_kind="person",
                holder_code=f"3701021941020300{n}",
                holder_code_index=elder.id_number_index,
                holder_name=elder.name,
                issuer=issuer,
                case_id=case_id,
                content={"事项": "内地居民结婚登记"},
                today=date(2026, 12, 6 + n),
            )
            for n in (1, 2)
        ]
        licences.revoke_licence(session, made[1], reason="登记错误", actor_person_id=None)
        expected = [(m.number, m.identifier) for m in made]
    with engine.begin() as connection:
        command.downgrade(alembic_config(connection), "0038")
    upgrade(engine)
    with Session(engine) as session:
        stored = session.scalars(select(Licence).order_by(Licence.id)).all()
        assert [(s.number, s.identifier) for s in stored] == expected
        assert [(s.state, s.version) for s in stored] == [("valid", None), ("revoked", None)]
        events = session.scalars(select(LicenceEvent).order_by(LicenceEvent.id)).all()
        assert [(e.licence_id, e.action) for e in events] == [
            (stored[0].id, "issue"),
            (stored[1].id, "issue"),
            (stored[1].id, "revoke"),
        ]
        assert events[2].reason == "登记错误"
    engine.dispose()
