"""预约: half-day slots at the competent window for items that need a visit, queue numbers in
order, one live booking per item, capacity, cancellation, a reminder the day before, and the
window's list of the day."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from qilu.errors import NotFound, QiluError
from qilu.messages import service as messages
from qilu.services import bookings
from qilu.services.models import Booking, ServiceItem
from qilu.workdays import add_working_days, beijing_today

from ..factories import make_person
from ..identity.test_pages import csrf
from .conftest import Province
from .test_showing import signed_in_as


def code_of(province: Province, name: str) -> str:
    return province.session.scalars(
        select(ServiceItem.code).where(ServiceItem.name == name, ServiceItem.is_current)
    ).one()


def test_slots_numbers_capacity_and_one_live_booking(province: Province) -> None:
    code = code_of(province, "机动车注册登记")  # visits: 1
    today = beijing_today()
    offered = bookings.slots(province.session, province.resident, code, today)
    assert len(offered) == bookings.DAYS * 2 and offered[0].day == add_working_days(today, 1)
    first = offered[0]
    booked = bookings.book(province.session, province.resident, code, first.day, "am", today)
    assert booked.queue_number == "A001" and booked.department.division_code == "370102"
    assert messages.inbox(province.session, province.resident.id)[0].title == "预约成功"
    with pytest.raises(QiluError) as twice:
        bookings.book(province.session, province.resident, code, first.day, "pm", today)
    assert twice.value.code == "booking.held"
    neighbour = make_person(province.session, province.vault, name="李四")
    second = bookings.book(province.session, neighbour, code, first.day, "am", today)
    assert second.queue_number == "A002"
    left = {(s.day, s.period): s.left for s in bookings.slots(province.session, neighbour, code)}
    assert left[(first.day, "am")] == bookings.CAPACITY - 2
    for wrong_day, period in ((today, "am"), (first.day, "night")):
        with pytest.raises(QiluError) as refused:
            bookings.book(province.session, neighbour, code, wrong_day, period, today)
        assert refused.value.code == "booking.slot"
    online = code_of(province, "临时救助申请")  # no visit needed
    with pytest.raises(QiluError) as needless:
        bookings.slots(province.session, province.resident, online)
    assert needless.value.code == "booking.online_only"


def test_a_full_slot_refuses(province: Province, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(bookings, "CAPACITY", 1)
    code = code_of(province, "机动车注册登记")
    day = add_working_days(beijing_today(), 2)
    bookings.book(province.session, province.resident, code, day, "pm")
    other = make_person(province.session, province.vault, name="李四")
    with pytest.raises(QiluError) as full:
        bookings.book(province.session, other, code, day, "pm")
    assert full.value.code == "booking.full"


def test_cancel_remind_and_the_day_list(province: Province) -> None:
    code = code_of(province, "机动车注册登记")
    today = beijing_today()
    tomorrow = add_working_days(today, 1)
    booked = bookings.book(province.session, province.resident, code, tomorrow, "pm", today)
    assert bookings.remind(province.session, today) == 1
    assert bookings.remind(province.session, today) == 0  # once
    assert messages.inbox(province.session, province.resident.id)[0].title == "预约提醒"
    listed = bookings.day_list(province.session, [booked.department_id], tomorrow)
    assert [(b.queue_number, name) for b, name in listed] == [("B001", province.resident.name)]
    stranger = make_person(province.session, province.vault, name="路人")
    with pytest.raises(NotFound):
        bookings.cancel(province.session, booked.id, stranger.id)
    bookings.cancel(province.session, booked.id, province.resident.id)
    assert booked.status == "cancelled"
    assert bookings.day_list(province.session, [booked.department_id], tomorrow) == []
    with pytest.raises(QiluError):
        bookings.cancel(province.session, booked.id, province.resident.id)
    again = bookings.book(province.session, province.resident, code, tomorrow, "pm", today)
    assert again.queue_number == "B002"  # numbers are never reused within a half day


def test_the_booking_pages(client: TestClient, province: Province) -> None:
    code = code_of(province, "机动车注册登记")
    signed_in_as(client, province, province.resident)
    guide = client.get(f"/services/items/{code}")
    assert f"/services/items/{code}/booking" in guide.text
    page = client.get(f"/services/items/{code}/booking")
    assert page.status_code == 200 and 'name="slot"' in page.text
    missing = client.post(f"/services/items/{code}/booking", data={"csrf_token": csrf(client)})
    assert missing.status_code == 400 and "请选择预约的日期和时段" in missing.text
    day = add_working_days(beijing_today(), 1).isoformat()
    done = client.post(
        f"/services/items/{code}/booking",
        data={"slot": f"{day}/am", "csrf_token": csrf(client)},
        follow_redirects=False,
    )
    assert done.status_code == 303
    mine = client.get("/account/bookings")
    assert 'data-booking="A001"' in mine.text and "取消预约" in mine.text
    booking = province.session.scalars(select(Booking)).one()
    client.post(f"/account/bookings/{booking.id}/cancel", data={"csrf_token": csrf(client)})
    province.session.refresh(booking)
    assert booking.status == "cancelled"


def test_the_window_sees_the_days_bookings(client: TestClient, province: Province) -> None:
    code = code_of(province, "机动车注册登记")
    day = add_working_days(beijing_today(), 1)
    booked = bookings.book(province.session, province.resident, code, day, "am")
    clerk = province.official(booked.department.code, "window_clerk", "车管窗口")
    signed_in_as(client, province, clerk)
    page = client.get("/workbench/bookings", params={"day": day.isoformat()})
    assert page.status_code == 200 and 'data-booking="A001"' in page.text
    assert province.resident.name in page.text
    today = client.get("/workbench/bookings", params={"day": "not-a-day"})
    assert today.status_code == 200 and "当天没有预约" in today.text  # falls back to today
