"""Facts about an application that 秒批 rules and approvers use: the applicant's age and
household, their insurance and credit standing read from the data libraries, licences they
hold, and what the form says. Each is looked up once, when first asked for."""

from __future__ import annotations

from datetime import date
from typing import Any

from sqlalchemy.orm import Session

from qilu.codes.divisions import SHANDONG
from qilu.data.loading import find_record
from qilu.data.reading import read_for_applicant
from qilu.errors import NotFound
from qilu.identity.models import LegalEntity, Person
from qilu.identity.service import audit_subject
from qilu.pii import Vault
from qilu.services.licences import holds_licence, person_wallet
from qilu.services.models import Application

# The department running the 一网通办 platform, which reads on the applicant's behalf.
PLATFORM_DEPARTMENT = "370000-bigdata"
INSURANCE, CREDIT = "ZT-SB-001", "ZT-XY-001"


class Facts:
    def __init__(
        self,
        session: Session,
        vault: Vault,
        application: Application,
        today: date,
        person: Person | None = None,
    ):
        self.session = session
        self.vault = vault
        self.application = application
        self.today = today
        self._cache: dict[str, Any] = {}
        self._person = person

    @property
    def person(self) -> Person:
        if self._person is None:
            self._person = self.session.get_one(Person, self.application.applicant_person_id)
        return self._person

    @property
    def entity(self) -> LegalEntity | None:
        if self.application.entity_id is None:
            return None
        return self.session.get(LegalEntity, self.application.entity_id)

    def __call__(self, name: str) -> Any:
        if ".holds." in name:  # a licence may be issued while the facts are in use
            return self._look_up(name)
        if name not in self._cache:
            self._cache[name] = self._look_up(name)
        return self._cache[name]

    def _look_up(self, name: str) -> Any:
        head, _, rest = name.partition(".")
        if head == "form":
            return self._form(rest)
        if head == "answer":
            return self.application.answers.get(rest)
        if head == "entity":
            return self._entity(rest)
        if rest.startswith("holds."):
            return holds_licence(
                self.session,
                person_wallet(self.vault, self.person),
                rest.removeprefix("holds."),
                self.today,
            )
        if rest == "age":
            born = self.person.birth_date
            return (
                self.today.year
                - born.year
                - ((self.today.month, self.today.day) < (born.month, born.day))
            )
        if rest == "in_shandong":
            return self.person.household_division_code[:2] == SHANDONG[:2]
        if rest in ("insured", "months_paid"):
            insurance = self._insurance()
            return None if insurance is None else insurance.get(rest)
        if rest == "blacklisted":
            return self._blacklisted(self._id_number())
        raise KeyError(f"unknown fact {name}")

    def _form(self, rest: str) -> Any:
        field, _, derived = rest.partition(".")
        value = self.application.form.get(field)
        if value in (None, ""):
            return None
        if derived == "days_ago":
            try:
                return (self.today - date.fromisoformat(str(value))).days
            except ValueError:
                return None
        return value

    def _entity(self, rest: str) -> Any:
        entity = self.entity
        if entity is None:
            return None
        if rest == "active":
            return entity.status == "active"
        if rest == "blacklisted":
            return self._blacklisted(entity.uscc)
        raise KeyError(f"unknown fact entity.{rest}")

    def _id_number(self) -> str:
        return self.vault.decrypt(self.person.id_number_cipher, "id_number")

    def _insurance(self) -> dict[str, Any] | None:
        try:
            return read_for_applicant(
                self.session,
                self.vault,
                INSURANCE,
                [self._id_number()],
                subject=audit_subject(self.vault, self._id_number()),
                department_code=PLATFORM_DEPARTMENT,
                purpose=f"办件 {self.application.number} 资格核验",
                reader_person_id=self.application.clerk_person_id
                or self.application.applicant_person_id,
            )
        except NotFound:  # the library is not published here: the fact is unknown
            return None

    def _blacklisted(self, code: str) -> bool | None:
        try:
            listing = find_record(self.session, self.vault, CREDIT, [code])
        except NotFound:
            return None
        return bool(
            listing and listing.get("list_type") == "黑名单" and not listing.get("removed_on")
        )
