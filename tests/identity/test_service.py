from __future__ import annotations

import pytest
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from qilu.codes.errors import CodeError
from qilu.errors import NotFound
from qilu.identity.service import find_person, id_number_of, phone_of, register_counts
from qilu.pii import Vault

from ..factories import make_person


def test_find_person_by_id_number_as_typed(session: Session, vault: Vault) -> None:
    person = make_person(session, vault, id_number="11010519491231002X")
    assert find_person(session, vault, " １１０１０５１９４９１２３１００２ｘ ").id == person.id
    assert id_number_of(vault, person) == "11010519491231002X"
    assert phone_of(vault, person) == "13800138000"


def test_unknown_person_is_not_found(session: Session, vault: Vault) -> None:
    make_person(session, vault)
    with pytest.raises(NotFound) as caught:
        find_person(session, vault, "11010519491231002X")
    assert caught.value.code == "person.not_found"


def test_invalid_id_number_is_refused_before_any_lookup(session: Session, vault: Vault) -> None:
    with pytest.raises(CodeError) as caught:
        find_person(session, vault, "11010519491231002")
    assert caught.value.code == "id_number.length"


def test_one_person_per_id_number(session: Session, vault: Vault) -> None:
    make_person(session, vault, id_number="11010519491231002X")
    with pytest.raises(IntegrityError):
        make_person(session, vault, id_number="11010519491231002X")


def test_register_counts(session: Session, vault: Vault) -> None:
    before = register_counts(session).residents
    make_person(session, vault)
    assert register_counts(session).residents == before + 1
