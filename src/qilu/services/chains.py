"""From a chain's questionnaire answers to what the applicant does (一链办理): which items apply,
in what order they depend on each other, one merged form asking each fact once, and one set of
materials with duplicates removed. A single item is a chain of one with no questions."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

from sqlalchemy import Select, select
from sqlalchemy.orm import Session

from qilu.errors import QiluError
from qilu.services.models import ServiceChain, ServiceItem
from qilu.services.specs import DEFAULT_FIELDS, Catalog, FormField, Material, shipped_catalog


class NotEligible(QiluError):
    """An answer leads to an exit page: this chain is not for the applicant, and why."""

    def __init__(self, question: str, explanation: str):
        super().__init__("services.not_eligible", explanation, field=question)
        self.explanation = explanation


@dataclass(frozen=True)
class PlannedItem:
    item: ServiceItem
    after: list[str]  # codes of the selected items whose results it needs


@dataclass(frozen=True)
class PlannedMaterial:
    material: Material
    items: list[str]  # names of the items needing it


@dataclass
class Plan:
    subject: str
    items: list[PlannedItem]
    fields: list[FormField]
    materials: list[PlannedMaterial]
    # What bundling saved: facts and materials that separate applications would have asked
    # for again (the portal shows these).
    fields_if_separate: int = 0
    materials_if_separate: int = 0
    answers: dict[str, str] = field(default_factory=dict)

    @property
    def fields_saved(self) -> int:
        return self.fields_if_separate - len(self.fields)

    @property
    def materials_saved(self) -> int:
        return self.materials_if_separate - len(self.materials)


def check_answers(chain: ServiceChain, answers: dict[str, str]) -> dict[str, str]:
    """The answers to every question, each one of its options; an exit option ends here."""
    checked: dict[str, str] = {}
    for question in chain.spec["questions"]:
        answer = answers.get(question["key"])
        option = next(
            (o for o in question["options"] if answer and answer in (o.get("value"), o["label"])),
            None,
        )
        if option is None and question.get("field") and answer:
            option = _by_number(question, answer)
        if option is None:
            raise QiluError(
                "services.answer_missing",
                f"请回答：{question['text']}",
                field=f"answers.{question['key']}",
            )
        if option.get("exit"):
            raise NotEligible(f"answers.{question['key']}", option["exit"])
        checked[question["key"]] = option["value"]
    return checked


def _number(answer: str) -> Decimal | None:
    try:
        number = Decimal(answer.strip())
    except InvalidOperation:
        return None
    return number if number.is_finite() and number >= 0 else None


def _by_number(question: dict[str, Any], answer: str) -> dict[str, Any] | None:
    """The option a number falls in: the one with the highest `min` not above it."""
    number = _number(answer)
    if number is None:
        raise QiluError(
            "services.answer_number",
            f"请填写数字：{question['text']}",
            field=f"answers.{question['key']}",
        )
    fitting = [o for o in question["options"] if Decimal(str(o["min"])) <= number]
    return max(fitting, key=lambda o: float(o["min"])) if fitting else None


def given_values(chain: ServiceChain, answers: dict[str, str]) -> dict[str, str]:
    """Form fields the questionnaire already asked (a number answer), to fill in, not ask again."""
    return {
        q["field"]: answers[q["key"]].strip()
        for q in chain.spec["questions"]
        if q.get("field") and _number(answers.get(q["key"]) or "") is not None
    }


def plan_chain(
    session: Session, chain: ServiceChain, answers: dict[str, str], catalog: Catalog | None = None
) -> Plan:
    """What the answers make of the chain: the items that apply, each waiting only for the
    selected items it needs, with the merged form and materials."""
    checked = check_answers(chain, answers)
    entries = [
        e
        for e in chain.spec["items"]
        if all(checked.get(key) == value for key, value in e.get("when", {}).items())
    ]
    if not entries:  # every item depends on an answer, and none applies
        raise NotEligible("answers", "按您的回答，这件事没有需要申请的事项，无需办理。")
    codes = [e["item"] for e in entries]
    rows = {i.code: i for i in session.scalars(_current_items(codes))}
    selected = set(codes)
    planned = [
        PlannedItem(rows[e["item"]], [a for a in e.get("after", []) if a in selected])
        for e in entries
    ]
    plan = _merge(chain.subject, planned, catalog or shipped_catalog())
    plan.answers = checked
    return plan


def plan_item(item: ServiceItem, catalog: Catalog | None = None) -> Plan:
    return _merge(item.subject, [PlannedItem(item, [])], catalog or shipped_catalog())


def _current_items(codes: list[str]) -> Select[ServiceItem]:
    return select(ServiceItem).where(ServiceItem.is_current.is_(True), ServiceItem.code.in_(codes))


def _merge(subject: str, planned: list[PlannedItem], catalog: Catalog) -> Plan:
    field_keys: list[str] = list(DEFAULT_FIELDS[subject])
    separate_fields = 0
    needs: dict[str, list[str]] = {}
    separate_materials = 0
    for entry in planned:
        own = list(dict.fromkeys([*DEFAULT_FIELDS[subject], *entry.item.spec["fields"]]))
        separate_fields += len(own)
        field_keys += [k for k in own if k not in field_keys]
        for material in entry.item.spec["materials"]:
            separate_materials += 1
            needs.setdefault(material, []).append(entry.item.name)
    return Plan(
        subject=subject,
        items=planned,
        fields=[catalog.fields[k] for k in field_keys],
        materials=[PlannedMaterial(catalog.material(n), items) for n, items in needs.items()],
        fields_if_separate=separate_fields,
        materials_if_separate=separate_materials,
    )
