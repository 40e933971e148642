"""A hot path as the previous release runs it, for `tests/test_migrations_expand.py`: run with
the previous release's `qilu` package first on the path, against a store the new release has
migrated. It uses only what that release had: a resident opens an account, and an elder's
高龄津贴 is applied for and decided at once (秒批), with its case document sealed by the
department's key. Prints the application's number; exits non-zero on any failure."""

from __future__ import annotations

import sys

from sqlalchemy import select
from sqlalchemy.orm import Session

from qilu.db import make_engine
from qilu.identity.accounts import register_resident
from qilu.identity.service import find_person
from qilu.pii import load_vault
from qilu.services import applications
from qilu.services.models import ServiceItem
from qilu.settings import Settings


def main(id_number: str, name: str) -> None:
    settings = Settings()
    engine, vault = make_engine(settings), load_vault(settings)
    with Session(engine) as session, session.begin():
        register_resident(
            session, vault, name=name, id_number=id_number, password="Previous-Release-1",
            profile="standard",
        )  # fmt: skip
        elder = find_person(session, vault, id_number)
        item = session.scalars(
            select(ServiceItem).where(ServiceItem.name == "高龄津贴申领", ServiceItem.is_current)
        ).one()
        started = applications.start(session, vault, applicant=elder, item_code=item.code)
        done = applications.submit(session, vault, started.application, actor_person_id=elder.id)
        assert done.status == "done", done.status
        print(done.number)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
