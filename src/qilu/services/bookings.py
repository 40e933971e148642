"""预约: for an item that needs a visit, a half-day slot at the competent department's window in
the next five working days, with a queue number (A… mornings, B… afternoons), a message when
booked, a reminder the day before (the hourly sweep), and cancellation. The window sees the
day's bookings."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, joinedload

from qilu.audit.service import record
from qilu.errors import NotFound, QiluError
from qilu.identity.models import Department, Person
from qilu.messages import service as messages
from qilu.services.catalog import competent_department, current_item
from qilu.services.models import Booking, ServiceItem
from qilu.workdays import add_working_days, beijing_today

DAYS = 5  # working days ahead one may book
CAPACITY = 20  # bookings a window takes per half day
PERIODS = {"am": ("上午 9:00–12:00", "A"), "pm": ("下午 13:30–17:00", "B")}


@dataclass(frozen=True)
class Slot:
    day: date
    period: str
    label: str
    left: int


def bookable(item: ServiceItem) -> bool:
    return int(item.spec.get("visits", 0)) > 0


def _item(session: Session, code: str) -> ServiceItem:
    item = current_item(session, code)
    if not bookable(item):
        raise QiluError("booking.online_only", "该事项全程网办，无需预约到现场", field="item")
    return item


def _window(session: Session, person: Person, code: str) -> tuple[ServiceItem, Department]:
    """The item (if it needs a visit) and the window that handles it for the person."""
    item = _item(session, code)
    return item, competent_department(session, item, person.household_division_code)


def slots(session: Session, person: Person, code: str, today: date | None = None) -> list[Slot]:
    """The next working days' half days at the person's competent window, with places left."""
    _, department = _window(session, person, code)
    return _slots(session, department, today or beijing_today())


def _slots(session: Session, department: Department, today: date) -> list[Slot]:
    days = [add_working_days(today, n) for n in range(1, DAYS + 1)]
    taken = dict(
        ((d, p), n)
        for d, p, n in session.execute(
            select(Booking.day, Booking.period, func.count())
            .where(
                Booking.department_id == department.id,
                Booking.day.in_(days),
                Booking.status == "booked",
            )
            .group_by(Booking.day, Booking.period)
        )
    )
    return [
        Slot(d, p, f"{d:%m月%d日} {label}", CAPACITY - taken.get((d, p), 0))
        for d in days
        for p, (label, _) in PERIODS.items()
    ]


def book(
    session: Session, person: Person, code: str, day: date, period: str, today: date | None = None
) -> Booking:
    """A place in the slot, with the next queue number of that half day."""
    today = today or beijing_today()
    item, department = _window(session, person, code)
    offered = {(s.day, s.period): s for s in _slots(session, department, today)}
    slot = offered.get((day, period))
    if slot is None:
        raise QiluError("booking.slot", "请选择可预约的日期和时段", field="slot")
    if slot.left <= 0:
        raise QiluError("booking.full", "该时段已约满，请选择其他时段", field="slot")
    held = session.scalar(
        select(Booking.id).where(
            Booking.person_id == person.id,
            Booking.item_id == item.id,
            Booking.status == "booked",
            Booking.day >= today,
        )
    )
    if held is not None:
        raise QiluError("booking.held", "您已预约该事项：如需改期，请先取消原预约", field="slot")
    prefix = PERIODS[period][1]
    count = session.scalar(
        select(func.count()).where(
            Booking.department_id == department.id, Booking.day == day, Booking.period == period
        )
    )
    booking = Booking(
        person_id=person.id,
        item_id=item.id,
        department_id=department.id,
        day=day,
        period=period,
        queue_number=f"{prefix}{(count or 0) + 1:03d}",
        status="booked",
        created_at=datetime.now(UTC),
    )
    try:
        with session.begin_nested():
            session.add(booking)
    except IntegrityError:  # someone took that number a moment ago
        raise QiluError("booking.busy", "该时段预约的人较多，请重新提交", field="slot") from None
    record(
        session,
        "services.booked",
        actor_person_id=person.id,
        subject=f"booking:{booking.id}",
        details={"item": item.code, "day": day.isoformat(), "period": period},
    )
    messages.send(
        session,
        person.id,
        title="预约成功",
        body=f"您已预约 {describe(booking, item.name, department.name)}。"
        "请携带身份证原件按时到窗口取号办理。",
        link="/account/bookings",
    )
    return booking


def describe(booking: Booking, item: str, department: str) -> str:
    return (
        f"{booking.day:%Y年%m月%d日}{PERIODS[booking.period][0]}到{department}办理“{item}”，"
        f"预约号 {booking.queue_number}"
    )


def bookings_of(session: Session, person_id: int) -> list[Booking]:
    return list(
        session.scalars(
            select(Booking)
            .where(Booking.person_id == person_id)
            .options(joinedload(Booking.item), joinedload(Booking.department))
            .order_by(Booking.day.desc(), Booking.id.desc())
            .limit(50)
        )
    )


def cancel(session: Session, booking_id: int, person_id: int) -> Booking:
    booking = session.get(Booking, booking_id)
    if booking is None or booking.person_id != person_id:
        raise NotFound("booking.not_found", "预约不存在", field="booking")
    if booking.status != "booked" or booking.day < beijing_today():
        raise QiluError("booking.not_cancellable", "该预约已取消或已过期", field="booking")
    booking.status = "cancelled"
    booking.cancelled_at = datetime.now(UTC)
    record(
        session,
        "services.booking_cancelled",
        actor_person_id=person_id,
        subject=f"booking:{booking.id}",
    )
    return booking


def remind(session: Session, today: date | None = None) -> int:
    """Tell everyone booked for the next working day (once); returns how many were told."""
    tomorrow = add_working_days(today or beijing_today(), 1)
    due = session.scalars(
        select(Booking)
        .where(Booking.day == tomorrow, Booking.status == "booked", Booking.reminded_at.is_(None))
        .options(joinedload(Booking.item), joinedload(Booking.department))
    ).all()
    for booking in due:
        messages.send(
            session,
            booking.person_id,
            title="预约提醒",
            body=f"明天请按预约{describe(booking, booking.item.name, booking.department.name)}。",
            link="/account/bookings",
        )
        booking.reminded_at = datetime.now(UTC)
    session.flush()
    return len(due)


def day_list(session: Session, department_ids: list[int], day: date) -> list[tuple[Booking, str]]:
    """The window's bookings of a day, by queue number, with each person's name."""
    rows = session.execute(
        select(Booking, Person.name)
        .join(Person, Person.id == Booking.person_id)
        .where(
            Booking.department_id.in_(department_ids),
            Booking.day == day,
            Booking.status == "booked",
        )
        .options(joinedload(Booking.item))
        .order_by(Booking.period, Booking.queue_number)
    )
    return [(b, name) for b, name in rows]
